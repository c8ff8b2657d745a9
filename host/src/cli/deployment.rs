//! `wharf deployment …`: what deployed apps are doing, from a terminal — the deployed apps
//! of an environment, one deployment's record, replica counts, pods, events, pod logs
//! (also followed live) and its history of versions. Read-only; changes go through
//! `wharf deploy` and `wharf change`.

use std::io::Write as _;

use clap::Subcommand;
use serde_json::{Value, json};

use super::Remote;
use super::client::Client;
use super::cluster::{encode, table};

/// Which deployment: an app in an environment of a project.
#[derive(clap::Args, Clone)]
pub struct Which {
    pub project: String,
    pub app: String,
    pub env: String,
}

impl Which {
    fn path(&self) -> String {
        format!(
            "/api/v1/projects/{}/apps/{}/deployments/{}",
            encode(&self.project),
            encode(&self.app),
            encode(&self.env)
        )
    }
}

#[derive(Subcommand)]
pub enum DeploymentCommand {
    /// The apps deployed to an environment, with running/total pods.
    List {
        project: String,
        env: String,
        /// Only apps whose name contains this.
        #[arg(long)]
        app: Option<String>,
    },
    /// A deployment's record: cluster, namespace, status, stable revision, replicas.
    Get {
        #[command(flatten)]
        which: Which,
    },
    /// Replica counts over the live revisions, read from the cluster.
    Status {
        #[command(flatten)]
        which: Which,
    },
    /// The pods: phase, ready, restarts, node, IP, image and why they are not ready.
    Pods {
        #[command(flatten)]
        which: Which,
    },
    /// Kubernetes events of the deployment's objects, newest first.
    Events {
        #[command(flatten)]
        which: Which,
        /// At most this many (1-1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// A pod's log.
    Logs {
        #[command(flatten)]
        which: Which,
        pod: String,
        /// For pods with several containers.
        #[arg(long, short = 'c')]
        container: Option<String>,
        /// The last N lines.
        #[arg(long)]
        tail: Option<u32>,
        /// Stop after N bytes.
        #[arg(long)]
        bytes: Option<u32>,
        /// Keep printing lines as they are written, until the pod goes away.
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// The versions rolled out, newest first; `*` marks the one serving.
    History {
        #[command(flatten)]
        which: Which,
    },
}

pub async fn run(command: DeploymentCommand, remote: &Remote) -> anyhow::Result<()> {
    let client = remote.client()?;
    match command {
        DeploymentCommand::List { project, env, app } => {
            let filter = app
                .map(|a| format!("&app={}", encode(&a)))
                .unwrap_or_default();
            let mut page: Value = client
                .get(&format!(
                    "/api/v1/projects/{}/environments/{}/deployments?pageSize=500{filter}",
                    encode(&project),
                    encode(&env)
                ))
                .await?;
            for item in page["items"].as_array_mut().into_iter().flatten() {
                let pods = match (item["runningPods"].as_u64(), item["totalPods"].as_u64()) {
                    (Some(running), Some(total)) => format!("{running}/{total}"),
                    _ => "?".to_owned(),
                };
                item["pods"] = json!(pods);
            }
            table(
                remote,
                &page,
                &[
                    ("APP", "app"),
                    ("STATUS", "status"),
                    ("PODS", "pods"),
                    ("REVISION", "stableRevision"),
                    ("IMAGE", "image"),
                    ("CLUSTER", "cluster"),
                    ("NAMESPACE", "namespace"),
                    ("CHANGE", "activeChange"),
                ],
            );
        }
        DeploymentCommand::Get { which } => {
            let record: Value = client.get(&which.path()).await?;
            if remote.json {
                println!("{record:#}");
            } else {
                print_record(&record);
            }
        }
        DeploymentCommand::Status { which } => {
            let status: Value = client.get(&format!("{}/status", which.path())).await?;
            if remote.json {
                println!("{status:#}");
                return Ok(());
            }
            println!(
                "replicas   desired {} · ready {} · updated {} · available {} · unavailable {}",
                status["desired"],
                status["ready"],
                status["updated"],
                status["available"],
                status["unavailable"]
            );
            println!(
                "pods       {}/{} running",
                status["runningPods"], status["totalPods"]
            );
            let mut revisions = json!({"items": status["revisions"].clone()});
            for r in revisions["items"].as_array_mut().into_iter().flatten() {
                r["serving"] = json!(if r["stable"] == true { "*" } else { "" });
            }
            table(
                remote,
                &revisions,
                &[
                    ("", "serving"),
                    ("REVISION", "revision"),
                    ("DEPLOYMENT", "name"),
                    ("IMAGE", "image"),
                    ("DESIRED", "replicas"),
                    ("READY", "ready"),
                    ("UPDATED", "updated"),
                    ("AVAILABLE", "available"),
                ],
            );
        }
        DeploymentCommand::Pods { which } => {
            let pods: Value = client.get(&format!("{}/pods", which.path())).await?;
            table(
                remote,
                &pods,
                &[
                    ("NAME", "name"),
                    ("REV", "revision"),
                    ("PHASE", "phase"),
                    ("READY", "ready"),
                    ("STATUS", "statusCdName"),
                    ("RESTARTS", "restarts"),
                    ("REASON", "reason"),
                    ("NODE", "node"),
                    ("IP", "ip"),
                    ("IMAGE", "image"),
                ],
            );
        }
        DeploymentCommand::Events { which, limit } => {
            let events: Value = client
                .get(&format!("{}/events?limit={limit}", which.path()))
                .await?;
            table(
                remote,
                &events,
                &[
                    ("LAST SEEN", "lastSeen"),
                    ("TYPE", "type"),
                    ("REASON", "reason"),
                    ("OBJECT", "name"),
                    ("KIND", "kind"),
                    ("COUNT", "count"),
                    ("MESSAGE", "message"),
                ],
            );
        }
        DeploymentCommand::Logs {
            which,
            pod,
            container,
            tail,
            bytes,
            follow,
        } => {
            let mut query = Vec::new();
            if let Some(c) = container {
                query.push(format!("container={}", encode(&c)));
            }
            if let Some(n) = tail {
                query.push(format!("tailLines={n}"));
            }
            if let Some(n) = bytes {
                query.push(format!("limitBytes={n}"));
            }
            if follow {
                query.push("follow=true".to_owned());
            }
            let path = format!(
                "{}/pods/{}/logs?{}",
                which.path(),
                encode(&pod),
                query.join("&")
            );
            if follow {
                follow_logs(&client, &path).await?;
            } else {
                let text = client.get_text(&path).await?;
                print!("{text}");
                std::io::stdout().flush()?;
            }
        }
        DeploymentCommand::History { which } => {
            let mut history: Value = client.get(&format!("{}/history", which.path())).await?;
            for entry in history["items"].as_array_mut().into_iter().flatten() {
                entry["serving"] = json!(if entry["current"] == true { "*" } else { "" });
            }
            table(
                remote,
                &history,
                &[
                    ("", "serving"),
                    ("REVISION", "revision"),
                    ("IMAGE", "image"),
                    ("VERSION", "deployVer"),
                    ("CHANGE ORDER", "changeOrder"),
                    ("CREATED", "createdAt"),
                    ("BY", "createdBy"),
                ],
            );
        }
    }
    Ok(())
}

fn print_record(record: &Value) {
    let text = |v: &Value| match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let rows = [
        ("deployment", "id"),
        ("project", "project"),
        ("app", "app"),
        ("environment", "env"),
        ("cluster", "cluster"),
        ("namespace", "namespace"),
        ("workload", "workload"),
        ("status", "status"),
        ("stable revision", "stableRevision"),
        ("replicas", "replicas"),
        ("active change", "activeChange"),
        ("last change", "lastChange"),
        ("updated", "updatedAt"),
    ];
    for (label, field) in rows {
        println!("{label:<16} {}", text(&record[field]));
    }
    if let Some(image) = record["revisions"]
        .as_array()
        .and_then(|revs| {
            revs.iter()
                .find(|r| r["revision"] == record["stableRevision"])
        })
        .map(|r| text(&r["image"]))
    {
        println!("{:<16} {image}", "image");
    }
}

/// Prints each `data:` line of the server-sent events until the server ends the stream.
async fn follow_logs(client: &Client, path: &str) -> anyhow::Result<()> {
    let mut response = client.open_stream(path).await?;
    let mut buffer = String::new();
    let mut out = std::io::stdout();
    while let Some(chunk) = response.chunk().await? {
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let mut event = "message";
            let mut data = Vec::new();
            for line in frame.lines() {
                if let Some(name) = line.strip_prefix("event:") {
                    event = if name.trim() == "error" {
                        "error"
                    } else if name.trim() == "end" {
                        "end"
                    } else {
                        "message"
                    };
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push(d.strip_prefix(' ').unwrap_or(d).to_owned());
                }
            }
            match event {
                "end" => return Ok(()),
                "error" => anyhow::bail!("the log stream broke: {}", data.join("\n")),
                _ if data.is_empty() => {}
                _ => {
                    writeln!(out, "{}", data.join("\n"))?;
                    out.flush()?;
                }
            }
        }
    }
    Ok(())
}
