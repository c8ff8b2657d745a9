//! Browsing a store through Wharf and installing from it: without deploy (apps, deploy
//! configs with the dependency's connection variables, nothing in the cluster), with deploy
//! through seed 000's route verbatim (every `ServiceBaseInfo` field read back from what was
//! created, the dependency deployed before its dependent, both running), and the same
//! install twice.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::{Api, ListParams};
use serde_json::{Value, json};
use wharf_tests::{Kubectl, Server};

use super::fake_store::FakeStore;
use super::ram::{self, MYSQL, MYSQL_KEY, WEB, WEB_CONFIG, WEB_KEY};
use super::*;

fn names(items: &Value, field: &str) -> Vec<String> {
    items
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| i[field].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn a_user_connects_a_store_and_browses_its_apps_versions_and_templates_through_wharf() {
    let server = Server::start().await;
    let store = FakeStore::start(ACCESS_KEY, DOMAIN);
    store.publish(&ram::shop("1.0", "1.0"));
    store.publish(&ram::shop("2.0", "2.0"));
    store.publish(&ram::template("blog", "Blog", "0.9", vec![ram::mysql()]));

    let market = connect(&server, &store, "hub").await;
    assert_eq!(market["name"], "hub");
    assert_eq!(market["type"], "rainstore");
    assert_eq!(market["plugin"], "market-rainstore");
    assert_eq!(market["url"], store.url.as_str());
    assert_eq!(market["domain"], DOMAIN);
    assert_eq!(market["hasAccessKey"], true);
    assert_eq!(market["createdBy"], "admin");
    assert!(market["id"].is_string() && market["createdAt"].is_string());
    // The key is never returned, and not kept in the clear.
    for path in ["/api/v1/markets", "/api/v1/markets/hub"] {
        let reply = server.get(path).await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        assert!(
            !reply.body.to_string().contains(ACCESS_KEY),
            "{path}: {:?}",
            reply.body
        );
    }
    let by_id = server
        .get(&format!(
            "/api/v1/markets/{}",
            market["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(by_id.body["name"], "hub");
    assert!(
        !data_dir_contains(&server, ACCESS_KEY.as_bytes()),
        "the access key is stored in the clear"
    );

    let apps = server
        .get("/api/v1/markets/hub/apps?query=shop&page=1&pageSize=10")
        .await;
    assert_eq!(apps.status, 200, "{:?}", apps.body);
    assert_eq!(apps.body["total"], 1, "{:?}", apps.body);
    assert_eq!(
        (&apps.body["page"], &apps.body["pageSize"]),
        (&json!(1), &json!(10))
    );
    let shop = &apps.body["items"][0];
    assert_eq!(
        (&shop["id"], &shop["name"]),
        (&json!("shop-suite"), &json!("Shop Suite"))
    );
    assert_eq!(names(&shop["versions"], "version"), ["2.0", "1.0"]);
    assert!(
        shop["logo"]
            .as_str()
            .is_some_and(|l| l.ends_with("shop-suite.png"))
    );
    // What the plugin sent: the raw key, the market domain, the search and the page.
    let list = store
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.path == "/app-server/openapi/apps")
        .expect("the store was asked for its apps");
    assert_eq!(list.method, "GET");
    assert_eq!(list.authorization.as_deref(), Some(ACCESS_KEY));
    assert_eq!(list.param("marketDomain").as_deref(), Some(DOMAIN));
    assert_eq!(list.param("query").as_deref(), Some("shop"));
    assert_eq!(list.param("page").as_deref(), Some("1"));
    assert_eq!(list.param("pageSize").as_deref(), Some("10"));
    let all = server.get("/api/v1/markets/hub/apps").await;
    assert_eq!(all.body["total"], 2, "{:?}", all.body);

    let versions = server
        .get("/api/v1/markets/hub/apps/shop-suite/versions")
        .await;
    assert_eq!(versions.status, 200, "{:?}", versions.body);
    assert_eq!(names(&versions.body["items"], "version"), ["2.0", "1.0"]);
    assert_eq!(versions.body["items"][1]["alias"], "v1.0");

    store.clear_requests();
    let template = server
        .get("/api/v1/markets/hub/apps/shop-suite/versions/1.0")
        .await;
    assert_eq!(template.status, 200, "{:?}", template.body);
    let asked = store.requests();
    assert!(
        asked.iter().any(
            |r| r.path == "/app-server/openapi/apps/shop-suite/versions/1.0"
                && r.param("getTemplate")
                    .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        ),
        "the template is only sent with getTemplate=true: {asked:?}"
    );
    assert_normalized(&template.body);

    // A domain the store does not serve is the store's 404 "market not found".
    let reply = server
        .post(
            "/api/v1/markets",
            json!({"name": "elsewhere", "url": store.url, "domain": "nowhere",
                   "accessKey": ACCESS_KEY}),
        )
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let missing = server.get("/api/v1/markets/elsewhere/apps").await;
    assert_refused(&missing, &[404], "market not found");
}

/// True when some file of the server's data directory holds `needle`.
fn data_dir_contains(server: &Server, needle: &[u8]) -> bool {
    let mut dirs = vec![server.data.path().to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if std::fs::read(&path)
                .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
            {
                return true;
            }
        }
    }
    false
}

/// The template of `ram::shop("1.0", "1.0")` as the `catalog` interface normalizes it.
fn assert_normalized(template: &Value) {
    assert_eq!(template["appId"], "shop-suite");
    assert_eq!(template["appName"], "Shop Suite");
    assert_eq!(template["version"], "1.0");
    assert_eq!(template["versionAlias"], "v1.0");
    assert_eq!(names(&template["components"], "key"), [MYSQL_KEY, WEB_KEY]);
    let mysql = &template["components"][0];
    assert_eq!(mysql["name"], MYSQL.cname);
    assert_eq!(mysql["k8sName"], MYSQL.k8s_name);
    assert_eq!(
        mysql["image"], MYSQL.image,
        "share_image is what the store's registry holds"
    );
    assert!(
        mysql["command"].is_null(),
        "an empty cmd keeps the image's: {mysql}"
    );
    assert_eq!(mysql["version"], "8.0");
    assert_eq!(mysql["category"], "database");
    assert_eq!(mysql["extendMethod"], "state_singleton");
    assert_eq!(mysql["stateful"], true);
    assert_eq!(
        mysql["resources"],
        json!({"instances": 1, "cpuMillicores": 500, "memoryMb": 1024, "gpu": 0})
    );
    assert_eq!(
        mysql["ports"],
        json!([{"containerPort": 3306, "protocol": "mysql", "alias": "MYSQL",
                "inner": true, "outer": false}])
    );
    assert_eq!(
        mysql["envs"],
        json!([{"name": "MYSQL_ROOT_PASSWORD", "value": "root-secret"},
               {"name": "MYSQL_DATABASE", "value": "shop"}])
    );
    assert_eq!(
        mysql["connectionInfo"],
        json!([{"name": "MYSQL_USER", "value": "shop"},
               {"name": "MYSQL_PASSWORD", "value": "shop-secret"}])
    );
    assert_eq!(
        mysql["volumes"],
        json!([{"name": "data", "path": "/var/lib/mysql", "kind": "share-file",
                "capacityMb": 10240, "content": null, "mode": null}])
    );
    assert_eq!(mysql["dependsOn"], json!([]));

    let web = &template["components"][1];
    assert_eq!(web["name"], WEB.cname);
    assert_eq!(web["image"], WEB.image);
    assert_eq!(web["command"], "web --listen 8080");
    assert_eq!(web["version"], "1.0");
    assert_eq!(web["stateful"], false);
    assert_eq!(web["extendMethod"], "stateless_multiple");
    assert_eq!(
        web["resources"],
        json!({"instances": 2, "cpuMillicores": 250, "memoryMb": 256, "gpu": 0})
    );
    assert_eq!(
        web["ports"],
        json!([{"containerPort": 8080, "protocol": "http", "alias": "WEB",
                "inner": true, "outer": true}])
    );
    assert_eq!(
        web["volumes"],
        json!([{"name": "nginx-conf", "path": "/etc/nginx/conf.d/default.conf",
                "kind": "config-file", "capacityMb": 0, "content": WEB_CONFIG, "mode": 0o644}])
    );
    assert_eq!(web["dependsOn"], json!([MYSQL_KEY]));
}

#[tokio::test]
async fn installing_without_deploy_creates_an_app_per_component_with_the_dependency_variables_and_deploys_nothing()
 {
    let server = Server::start().await;
    let store = FakeStore::start(ACCESS_KEY, DOMAIN);
    store.publish(&ram::shop("1.0", "1.0"));
    connect(&server, &store, "hub").await;
    let group = shop_with_group(&server).await;

    let reply = server
        .post(
            INSTALLS,
            install_body("hub", "shop-suite", "1.0", &group, false),
        )
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let install = reply.body;
    let id = install["id"].as_str().expect("install id").to_owned();
    assert_eq!(install["project"], "shop");
    assert_eq!(install["env"], "dev");
    assert_eq!(install["appId"], "shop-suite");
    assert_eq!(install["appName"], "Shop Suite");
    assert_eq!(install["version"], "1.0");
    assert_eq!(install["createdBy"], "admin");
    assert!(
        install["group"] == group.as_str() || install["group"] == "mall",
        "{install:#}"
    );
    assert_eq!(
        keys(&install),
        BTreeSet::from([MYSQL_KEY.into(), WEB_KEY.into()])
    );
    for expect in [MYSQL, WEB] {
        let c = component(&install, expect.key);
        assert_eq!(c["state"], "Created", "{c}");
        assert_eq!(c["image"], expect.image, "{c}");
        assert_eq!(c["name"], expect.cname, "{c}");
        assert!(c["changeOrder"].is_null(), "nothing deployed: {c}");
    }
    let mysql_app = component(&install, MYSQL_KEY)["app"]
        .as_str()
        .expect("app")
        .to_owned();
    let web_app = component(&install, WEB_KEY)["app"]
        .as_str()
        .expect("app")
        .to_owned();
    assert_ne!(mysql_app, web_app);

    // One app per component, in the group; `cart` stays outside.
    assert_eq!(
        group_apps(&server, &group).await,
        BTreeSet::from([mysql_app.clone(), web_app.clone()])
    );
    assert_eq!(
        project_apps(&server).await,
        BTreeSet::from(["cart".to_owned(), mysql_app.clone(), web_app.clone()])
    );
    let app = server
        .get(&format!("/api/v1/projects/shop/apps/{web_app}"))
        .await;
    assert_eq!(app.body["groupId"], group.as_str(), "{:?}", app.body);

    // Deploy configs: each component's own envs; the dependent gets the dependency's
    // connection info and <ALIAS>_HOST/_PORT.
    let mysql_config = deploy_config(&server, &mysql_app).await;
    assert_eq!(
        env_var(&mysql_config, "MYSQL_ROOT_PASSWORD").as_deref(),
        Some("root-secret")
    );
    assert_eq!(
        env_var(&mysql_config, "MYSQL_DATABASE").as_deref(),
        Some("shop")
    );
    let web_config = deploy_config(&server, &web_app).await;
    assert_eq!(env_var(&web_config, "LOG_LEVEL").as_deref(), Some("info"));
    assert_eq!(env_var(&web_config, "WEB_WORKERS").as_deref(), Some("4"));
    assert_eq!(env_var(&web_config, "MYSQL_PORT").as_deref(), Some("3306"));
    assert_eq!(env_var(&web_config, "MYSQL_USER").as_deref(), Some("shop"));
    assert_eq!(
        env_var(&web_config, "MYSQL_PASSWORD").as_deref(),
        Some("shop-secret")
    );
    let host = env_var(&web_config, "MYSQL_HOST").expect("MYSQL_HOST for the dependent");
    assert!(!host.is_empty() && host != "127.0.0.1", "{host}");
    assert!(
        env_var(&mysql_config, "LOG_LEVEL").is_none(),
        "inner envs stay with their component: {mysql_config:#}"
    );
    let resources = &web_config["podResourceSpec"];
    assert!(
        (resources["cpuRequest"] == 250 || resources["cpuLimit"] == 250)
            && (resources["memoryRequest"] == 256 || resources["memoryLimit"] == 256),
        "the web resources (250m, 256 MB) are in its config: {web_config:#}"
    );

    // Nothing deployed: no deployments, no workloads in the namespace.
    assert!(deployed(&server).await.is_empty());
    let client = Kubectl::for_server(&server).await.kube_client().await;
    let workloads: Api<k8s_openapi::api::apps::v1::Deployment> = Api::namespaced(client, NAMESPACE);
    let none = workloads
        .list(&ListParams::default())
        .await
        .expect("deployments");
    assert!(none.items.is_empty(), "{:?}", none.items);

    let listed = server.get(INSTALLS).await;
    assert_eq!(names(&listed.body["items"], "id"), [id.clone()]);
    assert_eq!(get_install(&server, &id).await["version"], "1.0");
    let action = action_of("POST", "/api/v1/projects/{code}/installs");
    let records = audit(&server, action).await;
    assert!(
        records.iter().any(|r| r["outcome"] == "ok"
            && r["plugin"]
                .as_str()
                .is_some_and(|p| p.starts_with("market-rainstore@"))),
        "the install is audited with the plugin that took part: {records:#?}"
    );
}

#[tokio::test]
async fn the_seed_route_installs_and_deploys_both_components_dependency_first() {
    let server = Server::start().await;
    let store = FakeStore::start(ACCESS_KEY, DOMAIN);
    store.publish(&ram::shop("1.0", "1.0"));
    let group = shop_with_group(&server).await;

    // No market connection beforehand: the seed's body names the store.
    let reply = server
        .post(
            &seed_path(&group, true),
            seed_body(&store, "shop-suite", "1.0"),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let answer = reply.body;
    assert_eq!(answer["team_id"], "shop");
    assert_eq!(answer["region_name"], "dev");
    assert!(answer["enterprise_id"].is_string(), "{answer:#}");
    assert!(!answer["ID"].is_null(), "{answer:#}");
    let services = answer["service_list"]
        .as_array()
        .expect("service_list")
        .clone();
    assert_eq!(services.len(), 2, "{answer:#}");
    // The store saw the install calls the console makes, with the raw key.
    let asked = store.requests();
    assert!(
        asked
            .iter()
            .all(|r| r.authorization.as_deref() == Some(ACCESS_KEY)),
        "{asked:?}"
    );
    assert!(
        asked
            .iter()
            .any(|r| r.path == "/app-server/openapi/apps/shop-suite"),
        "{asked:?}"
    );

    let installs = server.get(INSTALLS).await;
    assert_eq!(
        installs.body["items"].as_array().map(Vec::len),
        Some(1),
        "{:?}",
        installs.body
    );
    let id = installs.body["items"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let install = until_install(&server, &id, all_running).await;
    let template = preview_of(&server, &install).await;

    let mut group_ids = BTreeSet::new();
    let mut service_ids = BTreeSet::new();
    for expect in [MYSQL, WEB] {
        let service = services
            .iter()
            .find(|s| s["service_key"] == expect.key)
            .unwrap_or_else(|| panic!("no service {} in {answer:#}", expect.key));
        let created = component(&install, expect.key);
        let normalized = template["components"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["key"] == expect.key)
            .expect("the component in the template");
        let app_name = created["app"].as_str().expect("app");
        let app = server
            .get(&format!("/api/v1/projects/shop/apps/{app_name}"))
            .await;
        assert_eq!(app.status, 200, "{:?}", app.body);
        assert_eq!(service["service_id"], app.body["id"], "{service:#}");
        assert_eq!(service["service_alias"], app_name, "{service:#}");
        assert_eq!(service["service_cname"], expect.cname);
        assert_eq!(service["image"], expect.image);
        let cmd = normalized["command"].as_str().unwrap_or_default();
        assert_eq!(
            service["cmd"].as_str().unwrap_or_default(),
            cmd,
            "{service:#}"
        );
        assert_eq!(service["min_node"], expect.instances, "{service:#}");
        assert_eq!(service["min_cpu"], expect.cpu, "{service:#}");
        assert_eq!(service["min_memory"], expect.memory, "{service:#}");
        assert_eq!(service["container_gpu"], normalized["resources"]["gpu"]);
        assert_eq!(service["extend_method"], normalized["extendMethod"]);
        assert_eq!(service["category"], normalized["category"]);
        assert_eq!(service["version"], normalized["version"]);
        assert_eq!(service["service_region"], "dev", "{service:#}");
        assert!(
            service["status"].as_str().is_some_and(|s| !s.is_empty()),
            "{service:#}"
        );
        let workload = service["k8s_component_name"]
            .as_str()
            .expect("k8s_component_name");
        assert!(
            workload_exists(&server, workload).await,
            "no workload {workload} in {NAMESPACE}"
        );
        assert!(!service["tenant_service_group_id"].is_null(), "{service:#}");
        group_ids.insert(service["tenant_service_group_id"].to_string());
        service_ids.insert(service["service_id"].to_string());
        until_pods(&server, app_name, expect.instances as usize, expect.image).await;
    }
    assert_eq!(group_ids.len(), 1, "one component group for the install");
    assert_eq!(service_ids.len(), 2);

    // The dependency's change order finished before the dependent's began.
    let order = |key: &str| {
        component(&install, key)["changeOrder"]
            .as_str()
            .expect("a change order per deployed component")
            .to_owned()
    };
    let mysql = crate::rollouts::change(&server, &order(MYSQL_KEY)).await;
    let web = crate::rollouts::change(&server, &order(WEB_KEY)).await;
    assert_eq!(
        (&mysql["state"], &web["state"]),
        (&json!("succeeded"), &json!("succeeded"))
    );
    let finished = timestamp(&mysql["finishedAt"]);
    let began = if web["startedAt"].is_string() {
        &web["startedAt"]
    } else {
        &web["createdAt"]
    };
    assert!(
        finished <= timestamp(began),
        "mysql finished {} but web began {began}",
        mysql["finishedAt"]
    );

    // The dependent reaches the dependency through a Service of its port, and mounts its
    // config file.
    let web_app = component(&install, WEB_KEY)["app"]
        .as_str()
        .expect("app")
        .to_owned();
    let config = deploy_config(&server, &web_app).await;
    let host = env_var(&config, "MYSQL_HOST").expect("MYSQL_HOST");
    let client = Kubectl::for_server(&server).await.kube_client().await;
    let services: Api<Service> = Api::namespaced(client.clone(), NAMESPACE);
    let service = services
        .get(&host)
        .await
        .unwrap_or_else(|e| panic!("no Service {host}: {e}"));
    let ports: Vec<i32> = service
        .spec
        .and_then(|s| s.ports)
        .unwrap_or_default()
        .iter()
        .map(|p| p.port)
        .collect();
    assert!(ports.contains(&3306), "{host}: {ports:?}");
    let workloads: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), NAMESPACE);
    let web_workload = component(&install, WEB_KEY)["workload"]
        .as_str()
        .unwrap_or(&web_app)
        .to_owned();
    let mounts: Vec<String> = workloads
        .list(&ListParams::default().labels(&format!("app.kubernetes.io/name={web_workload}")))
        .await
        .expect("deployments")
        .items
        .iter()
        .filter_map(|d| d.spec.as_ref()?.template.spec.as_ref())
        .flat_map(|pod| pod.containers.iter())
        .flat_map(|c| c.volume_mounts.iter().flatten())
        .map(|m| m.mount_path.clone())
        .collect();
    assert!(
        mounts.iter().any(|m| m == "/etc/nginx/conf.d/default.conf"),
        "the web config-file volume is mounted: {mounts:?}"
    );
    let maps: Api<ConfigMap> = Api::namespaced(client, NAMESPACE);
    let all = maps
        .list(&ListParams::default())
        .await
        .expect("config maps");
    assert!(
        all.items.iter().any(|m| m
            .data
            .as_ref()
            .is_some_and(|d| d.values().any(|v| v.contains("listen 8080;")))),
        "the web config file is in a ConfigMap"
    );

    let action = action_of(
        "POST",
        "/openapi/v1/teams/{team_id}/regions/{region_name}/apps/{app_id}/install",
    );
    assert!(
        audit(&server, action)
            .await
            .iter()
            .any(|r| r["outcome"] == "ok")
    );
}

/// The normalized template an install came from, through Wharf's preview.
async fn preview_of(server: &Server, install: &Value) -> Value {
    let market = install["market"].as_str().expect("market");
    let reply = server
        .get(&format!(
            "/api/v1/markets/{market}/apps/{}/versions/{}",
            install["appId"].as_str().unwrap_or_default(),
            install["version"].as_str().unwrap_or_default()
        ))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body
}

/// Whether Deployments of workload `name` (Wharf names each revision `<name>-v<N>` and
/// labels it `app.kubernetes.io/name=<name>`) exist in the namespace.
async fn workload_exists(server: &Server, name: &str) -> bool {
    let client = Kubectl::for_server(server).await.kube_client().await;
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client, NAMESPACE);
    let selector = ListParams::default().labels(&format!("app.kubernetes.io/name={name}"));
    deployments
        .list(&selector)
        .await
        .is_ok_and(|list| !list.items.is_empty())
}

fn timestamp(value: &Value) -> time::OffsetDateTime {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a time: {value}"));
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
}

#[tokio::test]
async fn installing_the_same_version_into_the_same_group_twice_is_idempotent() {
    let server = Server::start().await;
    let store = FakeStore::start(ACCESS_KEY, DOMAIN);
    store.publish(&ram::shop("1.0", "1.0"));
    connect(&server, &store, "hub").await;
    let group = shop_with_group(&server).await;
    let body = install_body("hub", "shop-suite", "1.0", &group, false);

    let first = server.post(INSTALLS, body.clone()).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    let apps = group_apps(&server, &group).await;
    let again = server.post(INSTALLS, body).await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    assert_eq!(again.body["id"], first.body["id"]);
    assert_eq!(
        group_apps(&server, &group).await,
        apps,
        "no second set of apps"
    );
    assert_eq!(
        server.get(INSTALLS).await.body["items"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    // The seed route into the same group answers with the same components.
    let seed = server
        .post(
            &seed_path(&group, false),
            seed_body(&store, "shop-suite", "1.0"),
        )
        .await;
    assert_eq!(seed.status, 200, "{:?}", seed.body);
    let again = server
        .post(
            &seed_path(&group, false),
            seed_body(&store, "shop-suite", "1.0"),
        )
        .await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    let ids = |answer: &Value| -> BTreeSet<String> {
        answer["service_list"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| s["service_id"].to_string())
            .collect()
    };
    assert_eq!(ids(&seed.body), ids(&again.body));
    assert_eq!(ids(&seed.body).len(), 2);
    assert_eq!(group_apps(&server, &group).await, apps);
    assert_eq!(
        server.get(INSTALLS).await.body["items"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}
