//! `wharf deploy`, `wharf change …` and `wharf service …`: ship an image in batches,
//! follow the rollout with a progress bar per batch, release the next batch, approve,
//! abort and roll back; scale, start, stop, restart and delete a deployment; manage its
//! Services. Every one of them is a change order on the server.

use std::collections::BTreeSet;
use std::io::IsTerminal;

use clap::Subcommand;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Map, Value, json};

use super::Remote;
use super::client::Client;
use super::cluster::{encode, put, table};

/// Which deployment: an app in an environment of a project.
#[derive(clap::Args, Clone)]
pub struct Target {
    pub project: String,
    pub app: String,
    pub env: String,
}

impl Target {
    fn path(&self) -> String {
        format!(
            "/api/v1/projects/{}/apps/{}/deployments/{}",
            encode(&self.project),
            encode(&self.app),
            encode(&self.env)
        )
    }
}

/// How the command waits after the server accepted the change.
#[derive(clap::Args, Clone)]
pub struct Follow {
    /// Return at once with the change order id instead of following it.
    #[arg(long)]
    pub no_watch: bool,
    /// Keep following through approval and MANUAL pauses (until the change ends).
    #[arg(long)]
    pub until_done: bool,
}

#[derive(clap::Args)]
pub struct DeployArgs {
    #[command(flatten)]
    target: Target,
    /// Container image, e.g. nginx:1.25.
    #[arg(long)]
    image: Option<String>,
    /// Pods (seed `podNum`).
    #[arg(long)]
    replicas: Option<u32>,
    /// Split the rollout into N equal batches (1-5).
    #[arg(long, conflicts_with = "batch_list")]
    batches: Option<u32>,
    /// Pods per batch, e.g. 1,2,2 (must add up to the replicas).
    #[arg(long, value_delimiter = ',')]
    batch_list: Option<Vec<u32>>,
    /// Wait for `wharf change next-batch` between batches (the default with batches).
    #[arg(long, conflicts_with = "auto")]
    manual: bool,
    /// Continue on its own after --batch-wait seconds.
    #[arg(long)]
    auto: bool,
    #[arg(long)]
    batch_wait: Option<u32>,
    /// Seconds a batch may take to become ready before the change fails.
    #[arg(long)]
    timeout: Option<u32>,
    /// Start from this deploy config of the app.
    #[arg(long)]
    deploy_config: Option<String>,
    /// The whole spec as JSON (seed 001 5.3.18 fields); flags override it.
    #[arg(long)]
    file: Option<std::path::PathBuf>,
    /// A gray release: the canary runs beside the serving revision, routed by this rule
    /// (seed 001 `grayRule`, JSON); each batch pauses for `wharf change next-batch`, and
    /// a last next-batch promotes the canary.
    #[arg(long)]
    gray_rule: Option<std::path::PathBuf>,
    #[arg(long)]
    description: Option<String>,
    #[command(flatten)]
    follow: Follow,
}

#[derive(Subcommand)]
pub enum ChangeCommand {
    /// One change order: state, batches, approval, timeline.
    Get { id: String },
    /// Follows a change order with a progress bar per batch.
    Watch {
        id: String,
        #[arg(long)]
        until_done: bool,
    },
    /// A project's change orders (`--state waiting_approval` is the review queue).
    List {
        project: String,
        #[arg(long)]
        app: Option<String>,
        #[arg(long)]
        env: Option<String>,
        #[arg(long)]
        state: Option<String>,
    },
    /// The change orders of one deployment.
    History {
        #[command(flatten)]
        target: Target,
    },
    Approve {
        id: String,
        #[arg(long)]
        comment: Option<String>,
    },
    Reject {
        id: String,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Hands the decision to another user.
    Delegate { id: String, user: String },
    /// Releases the next batch of a paused rollout (seed 执行下一批发布).
    NextBatch {
        id: String,
        #[command(flatten)]
        follow: Follow,
    },
    /// Stops a change order where it stands.
    Abort { id: String },
    /// Undoes a change order (in flight: reverts it; finished: a rollback change order).
    Rollback {
        id: String,
        #[command(flatten)]
        follow: Follow,
    },
    /// Rolls a deployment back to a revision of its history.
    RollbackTo {
        #[command(flatten)]
        target: Target,
        revision: u64,
        #[command(flatten)]
        follow: Follow,
    },
    /// Rolls the serving spec out again as a new revision.
    Redeploy {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        follow: Follow,
    },
    Scale {
        #[command(flatten)]
        target: Target,
        replicas: u32,
        #[command(flatten)]
        follow: Follow,
    },
    Start {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        replicas: Option<u32>,
        #[command(flatten)]
        follow: Follow,
    },
    Stop {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        follow: Follow,
    },
    Restart {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        follow: Follow,
    },
    /// Removes the app's objects from the cluster (the history stays).
    Delete {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        follow: Follow,
    },
}

#[derive(Subcommand)]
pub enum ServiceCommand {
    List {
        #[command(flatten)]
        target: Target,
    },
    /// Creates a Service: --port PORT:TARGET[/PROTOCOL][@NODEPORT], repeatable.
    Create {
        #[command(flatten)]
        target: Target,
        name: String,
        #[arg(long = "port", required = true)]
        ports: Vec<String>,
        /// ClusterIP or NodePort.
        #[arg(long = "type", default_value = "ClusterIP")]
        service_type: String,
        /// Local or Cluster.
        #[arg(long)]
        traffic_policy: Option<String>,
        #[command(flatten)]
        follow: Follow,
    },
    Update {
        #[command(flatten)]
        target: Target,
        name: String,
        #[arg(long = "port", required = true)]
        ports: Vec<String>,
        #[arg(long = "type", default_value = "ClusterIP")]
        service_type: String,
        #[arg(long)]
        traffic_policy: Option<String>,
        #[command(flatten)]
        follow: Follow,
    },
    Delete {
        #[command(flatten)]
        target: Target,
        name: String,
        #[command(flatten)]
        follow: Follow,
    },
}

fn deploy_body(args: &DeployArgs) -> anyhow::Result<Map<String, Value>> {
    let mut body = match &args.file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
            match serde_json::from_str(&text)? {
                Value::Object(map) => map,
                _ => anyhow::bail!("{} must hold a JSON object", path.display()),
            }
        }
        None => Map::new(),
    };
    put(&mut body, "image", args.image.clone());
    put(&mut body, "replicas", args.replicas);
    put(&mut body, "timeoutSeconds", args.timeout);
    put(&mut body, "deployConfig", args.deploy_config.clone());
    put(&mut body, "description", args.description.clone());
    let replicas = body.get("replicas").and_then(Value::as_u64).unwrap_or(1) as u32;
    let sizes = match (&args.batch_list, args.batches) {
        (Some(list), _) => Some(list.clone()),
        (None, Some(n)) if n >= 1 => {
            let n = n.min(replicas.max(1));
            Some(
                (0..n)
                    .map(|i| replicas / n + u32::from(i < replicas % n))
                    .collect(),
            )
        }
        _ => None,
    };
    let gray_rule = args
        .gray_rule
        .as_deref()
        .map(super::gray::read_json)
        .transpose()?;
    if sizes.is_some()
        || args.manual
        || args.auto
        || args.batch_wait.is_some()
        || gray_rule.is_some()
    {
        let strategy = body
            .entry("deploymentStrategy")
            .or_insert_with(|| json!({}));
        if let (Some(sizes), Some(strategy)) = (sizes, strategy.as_object_mut()) {
            let list: Vec<Value> = sizes
                .iter()
                .enumerate()
                .map(|(i, n)| json!({"batchSeq": i + 1, "instNum": n}))
                .collect();
            strategy.insert("batchList".into(), Value::Array(list));
        }
        if let Some(strategy) = strategy.as_object_mut() {
            let mode = if args.auto || (!args.manual && args.batch_wait.is_some()) {
                "AUTO"
            } else {
                "MANUAL"
            };
            strategy.insert("betweenBatchProcessingMode".into(), mode.into());
            if let Some(wait) = args.batch_wait {
                strategy.insert("batchWaitTime".into(), wait.into());
            }
            if let Some(rule) = gray_rule {
                strategy.insert("grayUpdate".into(), true.into());
                strategy.insert("grayRule".into(), rule);
            }
        }
    }
    Ok(body)
}

/// `PORT:TARGET[/PROTOCOL][@NODEPORT]` → a seed 001 `servicesPorts` entry.
fn service_port(text: &str) -> anyhow::Result<Value> {
    let bad = || {
        anyhow::anyhow!("--port `{text}`: use PORT:TARGET[/PROTOCOL][@NODEPORT], e.g. 80:8080/TCP")
    };
    let (rest, node_port) = match text.split_once('@') {
        Some((rest, node)) => (rest, Some(node.parse::<u32>().map_err(|_| bad())?)),
        None => (text, None),
    };
    let (ports, protocol) = rest.split_once('/').unwrap_or((rest, "TCP"));
    let (port, target) = ports.split_once(':').ok_or_else(bad)?;
    let mut entry = json!({
        "port": port.parse::<u32>().map_err(|_| bad())?,
        "targetPort": target.parse::<u32>().map_err(|_| bad())?,
        "protocol": protocol,
    });
    if let Some(node_port) = node_port {
        entry["nodePort"] = node_port.into();
    }
    Ok(entry)
}

fn service_body(
    name: &str,
    ports: &[String],
    service_type: &str,
    traffic_policy: Option<String>,
) -> anyhow::Result<Value> {
    let ports: Vec<Value> = ports
        .iter()
        .map(|p| service_port(p))
        .collect::<Result<_, _>>()?;
    let mut body = Map::new();
    body.insert("name".into(), name.into());
    body.insert("type".into(), service_type.into());
    body.insert("servicesPorts".into(), Value::Array(ports));
    put(&mut body, "trafficPolicy", traffic_policy);
    Ok(Value::Object(body))
}

pub async fn run_deploy(args: DeployArgs, remote: &Remote) -> anyhow::Result<()> {
    let client = remote.client()?;
    let body = deploy_body(&args)?;
    let accepted = client
        .post(
            &format!("{}/deploy", args.target.path()),
            &Value::Object(body),
        )
        .await?;
    accepted_then_follow(&client, remote, accepted, &args.follow).await
}

pub async fn run_service(command: ServiceCommand, remote: &Remote) -> anyhow::Result<()> {
    let client = remote.client()?;
    match command {
        ServiceCommand::List { target } => {
            let services: Value = client.get(&format!("{}/services", target.path())).await?;
            table(
                remote,
                &services,
                &[
                    ("NAME", "name"),
                    ("TYPE", "type"),
                    ("POLICY", "trafficPolicy"),
                    ("PORTS", "servicesPorts"),
                ],
            );
            Ok(())
        }
        ServiceCommand::Create {
            target,
            name,
            ports,
            service_type,
            traffic_policy,
            follow,
        } => {
            let body = service_body(&name, &ports, &service_type, traffic_policy)?;
            let accepted = client
                .post(&format!("{}/services", target.path()), &body)
                .await?;
            accepted_then_follow(&client, remote, accepted, &follow).await
        }
        ServiceCommand::Update {
            target,
            name,
            ports,
            service_type,
            traffic_policy,
            follow,
        } => {
            let body = service_body(&name, &ports, &service_type, traffic_policy)?;
            let accepted = client
                .put(
                    &format!("{}/services/{}", target.path(), encode(&name)),
                    &body,
                )
                .await?;
            accepted_then_follow(&client, remote, accepted, &follow).await
        }
        ServiceCommand::Delete {
            target,
            name,
            follow,
        } => {
            let accepted = client
                .send::<()>(
                    reqwest::Method::DELETE,
                    &format!("{}/services/{}", target.path(), encode(&name)),
                    None,
                )
                .await?
                .unwrap_or(Value::Null);
            accepted_then_follow(&client, remote, accepted, &follow).await
        }
    }
}

pub async fn run_change(command: ChangeCommand, remote: &Remote) -> anyhow::Result<()> {
    let client = remote.client()?;
    let change_path = |id: &str| format!("/api/v1/change-orders/{}", encode(id));
    let columns: &[(&str, &str)] = &[
        ("ID", "id"),
        ("KIND", "kind"),
        ("STATE", "state"),
        ("APP", "app"),
        ("ENV", "env"),
        ("REVISION", "targetRevision"),
        ("REPLICAS", "targetReplicas"),
        ("BY", "requestedBy"),
        ("CREATED", "createdAt"),
    ];
    match command {
        ChangeCommand::Get { id } => {
            let change: Value = client.get(&change_path(&id)).await?;
            if remote.json {
                println!("{change:#}");
            } else {
                describe(&change);
            }
            Ok(())
        }
        ChangeCommand::Watch { id, until_done } => {
            let follow = Follow {
                no_watch: false,
                until_done,
            };
            watch(&client, remote, &id, &follow).await
        }
        ChangeCommand::List {
            project,
            app,
            env,
            state,
        } => {
            let mut query = vec!["pageSize=500".to_owned()];
            for (key, value) in [("app", app), ("env", env), ("state", state)] {
                if let Some(value) = value {
                    query.push(format!("{key}={}", encode(&value)));
                }
            }
            let page: Value = client
                .get(&format!(
                    "/api/v1/projects/{}/change-orders?{}",
                    encode(&project),
                    query.join("&")
                ))
                .await?;
            table(remote, &page, columns);
            Ok(())
        }
        ChangeCommand::History { target } => {
            let page: Value = client
                .get(&format!("{}/changes?pageSize=500", target.path()))
                .await?;
            table(remote, &page, columns);
            Ok(())
        }
        ChangeCommand::Approve { id, comment } => {
            let change = client
                .post(
                    &format!("{}/approve", change_path(&id)),
                    &json!({"comment": comment}),
                )
                .await?;
            print_state(remote, &change);
            Ok(())
        }
        ChangeCommand::Reject { id, comment } => {
            let change = client
                .post(
                    &format!("{}/reject", change_path(&id)),
                    &json!({"comment": comment}),
                )
                .await?;
            print_state(remote, &change);
            Ok(())
        }
        ChangeCommand::Delegate { id, user } => {
            let change = client
                .post(
                    &format!("{}/delegate", change_path(&id)),
                    &json!({"user": user}),
                )
                .await?;
            print_state(remote, &change);
            Ok(())
        }
        ChangeCommand::NextBatch { id, follow } => {
            let change = client
                .post(&format!("{}/next-batch", change_path(&id)), &json!({}))
                .await?;
            print_state(remote, &change);
            if follow.no_watch || remote.json {
                return Ok(());
            }
            watch(&client, remote, &id, &follow).await
        }
        ChangeCommand::Abort { id } => {
            let change = client
                .post(&format!("{}/abort", change_path(&id)), &json!({}))
                .await?;
            print_state(remote, &change);
            Ok(())
        }
        ChangeCommand::Rollback { id, follow } => {
            let answer = client
                .post(&format!("{}/rollback", change_path(&id)), &json!({}))
                .await?;
            // In flight the same change order rolls back; finished, a new one does.
            let accepted = match answer.get("changeOrderId") {
                Some(_) => answer,
                None => json!({"changeOrderId": answer["id"], "state": answer["state"]}),
            };
            accepted_then_follow(&client, remote, accepted, &follow).await
        }
        ChangeCommand::RollbackTo {
            target,
            revision,
            follow,
        } => {
            let accepted = client
                .post(
                    &format!("{}/rollback", target.path()),
                    &json!({"revision": revision}),
                )
                .await?;
            accepted_then_follow(&client, remote, accepted, &follow).await
        }
        ChangeCommand::Redeploy { target, follow } => {
            let accepted = client
                .post(&format!("{}/redeploy", target.path()), &json!({}))
                .await?;
            accepted_then_follow(&client, remote, accepted, &follow).await
        }
        ChangeCommand::Scale {
            target,
            replicas,
            follow,
        } => {
            let accepted = client
                .post(
                    &format!("{}/scale", target.path()),
                    &json!({"replicas": replicas}),
                )
                .await?;
            accepted_then_follow(&client, remote, accepted, &follow).await
        }
        ChangeCommand::Start {
            target,
            replicas,
            follow,
        } => {
            let accepted = client
                .post(
                    &format!("{}/start", target.path()),
                    &json!({"replicas": replicas}),
                )
                .await?;
            accepted_then_follow(&client, remote, accepted, &follow).await
        }
        ChangeCommand::Stop { target, follow } => {
            let accepted = client
                .post(&format!("{}/stop", target.path()), &json!({}))
                .await?;
            accepted_then_follow(&client, remote, accepted, &follow).await
        }
        ChangeCommand::Restart { target, follow } => {
            let accepted = client
                .post(&format!("{}/restart", target.path()), &json!({}))
                .await?;
            accepted_then_follow(&client, remote, accepted, &follow).await
        }
        ChangeCommand::Delete { target, follow } => {
            let accepted = client
                .send::<()>(reqwest::Method::DELETE, &target.path(), None)
                .await?
                .unwrap_or(Value::Null);
            accepted_then_follow(&client, remote, accepted, &follow).await
        }
    }
}

fn print_state(remote: &Remote, change: &Value) {
    if remote.json {
        println!("{change:#}");
    } else {
        println!(
            "change order {} is {}",
            change["id"].as_str().unwrap_or("?"),
            change["state"].as_str().unwrap_or("?")
        );
    }
}

async fn accepted_then_follow(
    client: &Client,
    remote: &Remote,
    accepted: Value,
    follow: &Follow,
) -> anyhow::Result<()> {
    let id = accepted["changeOrderId"]
        .as_str()
        .ok_or_else(|| {
            anyhow::anyhow!("the server answered without a change order id: {accepted}")
        })?
        .to_owned();
    if remote.json {
        println!("{accepted:#}");
    } else {
        println!(
            "change order {id} ({})",
            accepted["state"].as_str().unwrap_or("?")
        );
    }
    if follow.no_watch || remote.json {
        return Ok(());
    }
    watch(client, remote, &id, follow).await
}

/// Prints a change order for people.
fn describe(change: &Value) {
    let text = |v: &Value| {
        v.as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| v.to_string())
    };
    println!("change order  {}", text(&change["id"]));
    println!("kind          {}", text(&change["kind"]));
    println!("state         {}", text(&change["state"]));
    println!(
        "deployment    {}/{}/{}",
        text(&change["project"]),
        text(&change["app"]),
        text(&change["env"])
    );
    println!(
        "revision      {} ({} replicas)",
        text(&change["targetRevision"]),
        text(&change["targetReplicas"])
    );
    println!("requested by  {}", text(&change["requestedBy"]));
    if let Some(error) = change["error"].as_str() {
        println!("error         {error}");
    }
    if let Some(batches) = change["batches"].as_array() {
        for batch in batches {
            println!(
                "batch {}       {} (+{} → {}, ready {}){}",
                text(&batch["seq"]),
                text(&batch["state"]),
                text(&batch["instNum"]),
                text(&batch["targetReplicas"]),
                text(&batch["ready"]),
                batch["startedBy"]
                    .as_str()
                    .map(|b| format!(" by {b}"))
                    .unwrap_or_default()
            );
        }
    }
    println!("timeline:");
    for step in change["timeline"].as_array().into_iter().flatten() {
        println!(
            "  {}  {:<10} {}",
            text(&step["at"]),
            text(&step["actor"]),
            text(&step["message"])
        );
    }
}

/// Bars, one per batch, moved by the change order's `change` events.
struct Bars {
    multi: MultiProgress,
    bars: Vec<ProgressBar>,
    printed: usize,
}

impl Bars {
    fn new() -> Self {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Self {
            multi: MultiProgress::with_draw_target(target),
            bars: Vec::new(),
            printed: 0,
        }
    }

    fn show(&mut self, change: &Value) {
        let batches = change["batches"].as_array().cloned().unwrap_or_default();
        let style =
            ProgressStyle::with_template("{prefix:>9} [{bar:30.cyan/blue}] {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
        while self.bars.len() < batches.len() {
            let seq = self.bars.len() + 1;
            let bar = self.multi.add(ProgressBar::new(1));
            bar.set_style(style.clone());
            bar.set_prefix(format!("batch {seq}"));
            self.bars.push(bar);
        }
        let mut before = 0;
        for (bar, batch) in self.bars.iter().zip(&batches) {
            let inst = batch["instNum"].as_u64().unwrap_or(0);
            let target = batch["targetReplicas"].as_u64().unwrap_or(0);
            let ready = batch["ready"].as_u64().unwrap_or(0);
            let state = batch["state"].as_str().unwrap_or("pending");
            bar.set_length(inst.max(1));
            let done = if state == "succeeded" {
                inst
            } else {
                ready.saturating_sub(before).min(inst)
            };
            bar.set_position(done);
            bar.set_message(state.to_owned());
            if matches!(state, "succeeded" | "failed") && !bar.is_finished() {
                bar.finish_with_message(state.to_owned());
            }
            before = target;
        }
        // The timeline, line by line, above the bars (and alone when there are none).
        let steps = change["timeline"].as_array().cloned().unwrap_or_default();
        for step in steps.iter().skip(self.printed) {
            let line = format!(
                "{}  {}  {}",
                step["at"].as_str().unwrap_or(""),
                step["actor"].as_str().unwrap_or(""),
                step["message"].as_str().unwrap_or("")
            );
            if self.multi.is_hidden() {
                println!("{line}");
            } else {
                let _ = self.multi.println(line);
            }
        }
        self.printed = self.printed.max(steps.len());
    }
}

/// Follows a change order's events until it ends, or until it waits on a person unless
/// `until_done`. A change that fails or is rejected or aborted makes the command fail.
async fn watch(client: &Client, remote: &Remote, id: &str, follow: &Follow) -> anyhow::Result<()> {
    let mut response = client
        .open_stream(&format!("/api/v1/change-orders/{}/events", encode(id)))
        .await?;
    let mut bars = Bars::new();
    let mut buffer = String::new();
    let mut announced = BTreeSet::new();
    let mut last = Value::Null;
    while let Some(chunk) = response.chunk().await? {
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let data: String = frame
                .lines()
                .filter_map(|line| line.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect::<Vec<_>>()
                .join("\n");
            if data.is_empty() {
                continue;
            }
            let change: Value = serde_json::from_str(&data)?;
            if !remote.json {
                bars.show(&change);
            }
            let state = change["state"].as_str().unwrap_or("").to_owned();
            last = change;
            let waiting = matches!(
                state.as_str(),
                "paused_between_batches" | "waiting_approval"
            ) && last["resumeAt"].is_null();
            if waiting && !follow.until_done {
                if announced.insert(state.clone()) {
                    let hint = if state == "waiting_approval" {
                        format!(
                            "waiting for approval: another reviewer runs `wharf change approve {id}`"
                        )
                    } else {
                        format!(
                            "paused between batches: `wharf change next-batch {id}` releases the next one"
                        )
                    };
                    println!("{hint}");
                }
                return Ok(());
            }
        }
    }
    if remote.json {
        println!("{last:#}");
    }
    match last["state"].as_str() {
        Some("succeeded" | "rolled_back") => Ok(()),
        Some(state) => anyhow::bail!(
            "change order {id} ended {state}{}",
            last["error"]
                .as_str()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        ),
        None => anyhow::bail!("the event stream of change order {id} ended early"),
    }
}
