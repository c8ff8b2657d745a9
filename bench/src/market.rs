//! `market`: a 10-component template installed with deploy into the embedded cluster.
//!
//! Starts `wharf serve` (time scale 0), publishes a Rainbond template to a local catalog
//! market (`market-local`: no network, so the figure is Wharf's own) with one database
//! component and nine services depending on it, installs it with `deploy`, and waits for
//! every component to run. Prints, for the install:
//! - the plugin's part: fetching and normalizing the template (the median of the template
//!   preview route, which is that plugin call and nothing else of note);
//! - the host's create: the install request (plugin call, plan, the one store batch) less
//!   the plugin's part;
//! - the host's deploy: from the install's answer until every component runs (change
//!   orders, dependencies first, then each component's Service);
//! and each part's share of the whole, measured in one run.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::deploys::{Server, project_with_env};
use crate::plugins::TempDir;

const PROJECT: &str = "bench";
const ENV: &str = "market";
const NAMESPACE: &str = "bench-market";
const COMPONENTS: usize = 10;
const PREVIEWS: usize = 21;

fn component(i: usize) -> Value {
    let key = format!("{i:032x}");
    let deps = if i == 0 {
        json!([])
    } else {
        json!([{"dep_service_key": format!("{:032x}+{:032x}", 0, 0)}])
    };
    json!({
        "service_id": key,
        "service_key": key,
        "service_share_uuid": format!("{key}+{key}"),
        "service_cname": if i == 0 { "Database".to_owned() } else { format!("Service {i}") },
        "k8s_component_name": if i == 0 { "db".to_owned() } else { format!("svc{i}") },
        "image": format!("registry.bench/suite/c{i}:1.0"),
        "cmd": "",
        "version": "1.0",
        "category": "application",
        "extend_method": if i == 0 { "state_singleton" } else { "stateless_multiple" },
        "extend_method_map": {"min_node": 1, "init_memory": 128, "container_cpu": 100},
        "port_map_list": [{"container_port": 8000 + i, "protocol": "http",
            "port_alias": if i == 0 { "DB".to_owned() } else { format!("SVC{i}") },
            "is_inner_service": true, "is_outer_service": false}],
        "service_env_map_list": [{"attr_name": "ROLE", "attr_value": format!("c{i}")}],
        "service_connect_info_map_list": [],
        "service_volume_map_list": [],
        "dep_service_map_list": deps,
        "probes": [],
    })
}

fn template() -> Value {
    json!({
        "group_key": "bench-suite",
        "group_name": "Bench suite",
        "group_version": "1.0",
        "template_version": "v2",
        "apps": (0..COMPONENTS).map(component).collect::<Vec<_>>(),
    })
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub async fn run() -> anyhow::Result<()> {
    let dir = TempDir::new("market")?;
    let server = Server::start(&dir.0, 3).await?;
    project_with_env(&server, PROJECT, ENV, "Market", NAMESPACE).await?;
    let group = server
        .call(
            "POST",
            &format!("/api/v1/projects/{PROJECT}/app-groups"),
            Some(json!({"name": "suite"})),
        )
        .await?;
    let group = group["id"].as_str().context("group id")?.to_owned();
    server
        .call(
            "POST",
            "/api/v1/markets",
            Some(json!({"name": "team", "type": "local"})),
        )
        .await?;
    server
        .call("POST", "/api/v1/markets/team/apps", Some(template()))
        .await?;

    let mut previews = Vec::with_capacity(PREVIEWS);
    for _ in 0..PREVIEWS {
        let started = Instant::now();
        server
            .call(
                "GET",
                "/api/v1/markets/team/apps/bench-suite/versions/1.0",
                None,
            )
            .await?;
        previews.push(started.elapsed());
    }
    let plugin = median(previews);

    let started = Instant::now();
    let install = server
        .call(
            "POST",
            &format!("/api/v1/projects/{PROJECT}/installs"),
            Some(
                json!({"market": "team", "appId": "bench-suite", "version": "1.0",
                "group": group, "env": ENV, "deploy": true}),
            ),
        )
        .await?;
    let created = started.elapsed();
    let id = install["id"].as_str().context("install id")?.to_owned();
    let mut polls = 0u32;
    loop {
        let now = server
            .call(
                "GET",
                &format!("/api/v1/projects/{PROJECT}/installs/{id}"),
                None,
            )
            .await?;
        match now["state"].as_str() {
            Some("Running") => break,
            Some("Failed") => bail!("the install failed: {now}"),
            _ => {}
        }
        polls += 1;
        if polls > 6000 {
            bail!("the install did not finish in 10 minutes: {now}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let total = started.elapsed();
    let host_create = created.saturating_sub(plugin);
    let host_deploy = total.saturating_sub(created);
    let share = |d: Duration| 100.0 * d.as_secs_f64() / total.as_secs_f64();
    println!(
        "market install of a {COMPONENTS}-component template with deploy (local catalog, embedded cluster, time scale 0)"
    );
    println!("  all components running after   {:>9.1} ms", ms(total));
    println!(
        "  plugin: fetch + normalize      {:>9.1} ms  ({:>5.1} %)  median of {PREVIEWS} template previews",
        ms(plugin),
        share(plugin)
    );
    println!(
        "  host: create (plan + batch)    {:>9.1} ms  ({:>5.1} %)",
        ms(host_create),
        share(host_create)
    );
    println!(
        "  host: deploy (change orders)   {:>9.1} ms  ({:>5.1} %)  {COMPONENTS} deploys + {COMPONENTS} Services, the database first",
        ms(host_deploy),
        share(host_deploy)
    );
    Ok(())
}
