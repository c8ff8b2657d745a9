//! `wharf region …`, `wharf pool …`, `wharf cluster …`, `wharf namespace …` and
//! `wharf node …`: where Wharf deploys, from a terminal.

use clap::Subcommand;
use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use serde_json::{Map, Value, json};

use super::Remote;

#[derive(Subcommand)]
pub enum RegionCommand {
    List,
    /// Creates a region (ID: 2-30 of a-z, 0-9, -).
    Create {
        id: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        description: Option<String>,
    },
    Get {
        id: String,
    },
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// Deletes a region without resource pools.
    Delete {
        id: String,
    },
}

#[derive(Subcommand)]
pub enum PoolCommand {
    List {
        #[arg(long)]
        region: Option<String>,
    },
    /// Creates a resource pool in a region.
    Create {
        id: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        region: String,
        #[arg(long)]
        description: Option<String>,
    },
    Get {
        id: String,
    },
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// Deletes a pool that holds no clusters.
    Delete {
        id: String,
    },
}

#[derive(Subcommand)]
pub enum ClusterCommand {
    List {
        #[arg(long)]
        pool: Option<String>,
    },
    /// Registers a cluster: `--kubeconfig FILE` (read here, sent and stored encrypted),
    /// `--kubeconfig-path PATH` (a file in the server's `--kubeconfig-dir`) or
    /// `--in-cluster`. Either kubeconfig may carry only inline credentials (no `exec`,
    /// `auth-provider` or file references).
    Add {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        pool: Option<String>,
        #[arg(long, conflicts_with_all = ["kubeconfig_path", "in_cluster"])]
        kubeconfig: Option<std::path::PathBuf>,
        #[arg(long, conflicts_with = "in_cluster")]
        kubeconfig_path: Option<String>,
        #[arg(long)]
        context: Option<String>,
        #[arg(long)]
        in_cluster: bool,
    },
    /// Shows a cluster (never its credentials).
    Get { id: String },
    /// Changes name, description, pool (`--pool ""` removes it), kubeconfig or context.
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        pool: Option<String>,
        #[arg(long)]
        kubeconfig: Option<std::path::PathBuf>,
        #[arg(long)]
        context: Option<String>,
    },
    /// Removes a cluster no environment binds.
    Remove { id: String },
    /// Server version, reachability and latency.
    Health { id: String },
    /// Prints a kubeconfig for kubectl (the embedded cluster's loopback HTTPS endpoint).
    Kubeconfig {
        #[arg(default_value = "embedded")]
        id: String,
    },
}

#[derive(Subcommand)]
pub enum NamespaceCommand {
    List {
        #[arg(long, default_value = "embedded")]
        cluster: String,
    },
    Create {
        name: String,
        #[arg(long, default_value = "embedded")]
        cluster: String,
    },
    /// Deletes a namespace no environment binds.
    Delete {
        name: String,
        #[arg(long, default_value = "embedded")]
        cluster: String,
    },
}

#[derive(Subcommand)]
pub enum NodeCommand {
    /// Nodes with readiness, capacity and labels.
    List {
        #[arg(long, default_value = "embedded")]
        cluster: String,
    },
    Get {
        name: String,
        #[arg(long, default_value = "embedded")]
        cluster: String,
    },
    /// Sets labels (`key=value`) and removes them (`key-`), like kubectl label.
    Label {
        name: String,
        #[arg(required = true)]
        labels: Vec<String>,
        #[arg(long, default_value = "embedded")]
        cluster: String,
    },
}

/// Prints rows as a table, or the whole answer with `--json`.
pub(super) fn table(remote: &Remote, value: &Value, columns: &[(&str, &str)]) {
    if remote.json {
        println!("{value:#}");
        return;
    }
    let rows = value["items"].as_array().cloned().unwrap_or_default();
    let mut table = Table::new();
    table.load_style(UTF8_BORDERS_ONLY);
    table.set_header(columns.iter().map(|(header, _)| *header));
    for row in &rows {
        table.add_row(columns.iter().map(|(_, field)| cell(&row[*field])));
    }
    println!("{table}");
}

fn cell(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
                )
            })
            .collect::<Vec<_>>()
            .join(", "),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// Prints one object: JSON always (it is small and nested).
pub(super) fn show(value: &Value) {
    println!("{value:#}");
}

/// An optional field set in a JSON object.
pub(super) fn put(body: &mut Map<String, Value>, key: &str, value: Option<impl Into<Value>>) {
    if let Some(value) = value {
        body.insert(key.to_owned(), value.into());
    }
}

pub(super) fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn read_file(path: &std::path::Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))
}

pub async fn run_region(command: RegionCommand, remote: &Remote) -> anyhow::Result<()> {
    let client = remote.client()?;
    match command {
        RegionCommand::List => {
            let page: Value = client.get("/api/v1/regions?pageSize=500").await?;
            table(
                remote,
                &page,
                &[
                    ("ID", "id"),
                    ("NAME", "name"),
                    ("DESCRIPTION", "description"),
                ],
            );
        }
        RegionCommand::Create {
            id,
            name,
            description,
        } => show(
            &client
                .post(
                    "/api/v1/regions",
                    &json!({"id": id, "name": name, "description": description}),
                )
                .await?,
        ),
        RegionCommand::Get { id } => show(&client.get(&format!("/api/v1/regions/{id}")).await?),
        RegionCommand::Update {
            id,
            name,
            description,
        } => {
            let mut body = Map::new();
            put(&mut body, "name", name);
            put(&mut body, "description", description);
            let path = format!("/api/v1/regions/{id}");
            show(
                &client
                    .send(reqwest::Method::PATCH, &path, Some(&body))
                    .await?
                    .unwrap_or_default(),
            );
        }
        RegionCommand::Delete { id } => {
            client.delete(&format!("/api/v1/regions/{id}")).await?;
            println!("deleted region {id}");
        }
    }
    Ok(())
}

pub async fn run_pool(command: PoolCommand, remote: &Remote) -> anyhow::Result<()> {
    let client = remote.client()?;
    match command {
        PoolCommand::List { region } => {
            let filter = region
                .map(|r| format!("&region={}", encode(&r)))
                .unwrap_or_default();
            let page: Value = client
                .get(&format!("/api/v1/resource-pools?pageSize=500{filter}"))
                .await?;
            table(
                remote,
                &page,
                &[("ID", "id"), ("NAME", "name"), ("REGION", "region")],
            );
        }
        PoolCommand::Create {
            id,
            name,
            region,
            description,
        } => {
            let body =
                json!({"id": id, "name": name, "region": region, "description": description});
            show(&client.post("/api/v1/resource-pools", &body).await?);
        }
        PoolCommand::Get { id } => {
            show(&client.get(&format!("/api/v1/resource-pools/{id}")).await?)
        }
        PoolCommand::Update {
            id,
            name,
            description,
        } => {
            let mut body = Map::new();
            put(&mut body, "name", name);
            put(&mut body, "description", description);
            let path = format!("/api/v1/resource-pools/{id}");
            show(
                &client
                    .send(reqwest::Method::PATCH, &path, Some(&body))
                    .await?
                    .unwrap_or_default(),
            );
        }
        PoolCommand::Delete { id } => {
            client
                .delete(&format!("/api/v1/resource-pools/{id}"))
                .await?;
            println!("deleted resource pool {id}");
        }
    }
    Ok(())
}

pub async fn run_cluster(command: ClusterCommand, remote: &Remote) -> anyhow::Result<()> {
    let client = remote.client()?;
    match command {
        ClusterCommand::List { pool } => {
            let filter = pool
                .map(|p| format!("&resourcePool={}", encode(&p)))
                .unwrap_or_default();
            let page: Value = client
                .get(&format!("/api/v1/clusters?pageSize=500{filter}"))
                .await?;
            table(
                remote,
                &page,
                &[
                    ("ID", "id"),
                    ("NAME", "name"),
                    ("KIND", "kind"),
                    ("POOL", "resourcePool"),
                    ("REGION", "region"),
                    ("SERVER", "server"),
                ],
            );
        }
        ClusterCommand::Add {
            id,
            name,
            description,
            pool,
            kubeconfig,
            kubeconfig_path,
            context,
            in_cluster,
        } => {
            let mut body = Map::new();
            body.insert("id".into(), id.into());
            let kind = if in_cluster {
                "in-cluster"
            } else {
                "kubeconfig"
            };
            body.insert("kind".into(), kind.into());
            put(&mut body, "name", name);
            put(&mut body, "description", description);
            put(&mut body, "resourcePool", pool);
            put(
                &mut body,
                "kubeconfig",
                kubeconfig.as_deref().map(read_file).transpose()?,
            );
            put(&mut body, "kubeconfigPath", kubeconfig_path);
            put(&mut body, "context", context);
            show(&client.post("/api/v1/clusters", &body).await?);
        }
        ClusterCommand::Get { id } => show(&client.get(&format!("/api/v1/clusters/{id}")).await?),
        ClusterCommand::Update {
            id,
            name,
            description,
            pool,
            kubeconfig,
            context,
        } => {
            let mut body = Map::new();
            put(&mut body, "name", name);
            put(&mut body, "description", description);
            put(&mut body, "resourcePool", pool);
            put(
                &mut body,
                "kubeconfig",
                kubeconfig.as_deref().map(read_file).transpose()?,
            );
            put(&mut body, "context", context);
            let path = format!("/api/v1/clusters/{id}");
            show(
                &client
                    .send(reqwest::Method::PATCH, &path, Some(&body))
                    .await?
                    .unwrap_or_default(),
            );
        }
        ClusterCommand::Remove { id } => {
            client.delete(&format!("/api/v1/clusters/{id}")).await?;
            println!("removed cluster {id}");
        }
        ClusterCommand::Health { id } => {
            let health: Value = client.get(&format!("/api/v1/clusters/{id}/health")).await?;
            if remote.json {
                show(&health);
            } else if health["reachable"] == true {
                println!(
                    "{id}: reachable, {} ({} ms)",
                    health["serverVersion"].as_str().unwrap_or("?"),
                    health["latencyMs"]
                );
            } else {
                println!(
                    "{id}: unreachable: {}",
                    health["error"].as_str().unwrap_or("?")
                );
            }
        }
        ClusterCommand::Kubeconfig { id } => {
            let answer: Value = client
                .get(&format!("/api/v1/clusters/{id}/kubeconfig"))
                .await?;
            if remote.json {
                show(&answer);
            } else {
                print!("{}", answer["kubeconfig"].as_str().unwrap_or_default());
            }
        }
    }
    Ok(())
}

pub async fn run_namespace(command: NamespaceCommand, remote: &Remote) -> anyhow::Result<()> {
    let client = remote.client()?;
    match command {
        NamespaceCommand::List { cluster } => {
            let page: Value = client
                .get(&format!(
                    "/api/v1/clusters/{cluster}/namespaces?pageSize=500"
                ))
                .await?;
            table(
                remote,
                &page,
                &[
                    ("NAME", "name"),
                    ("PHASE", "phase"),
                    ("CREATED", "createdAt"),
                ],
            );
        }
        NamespaceCommand::Create { name, cluster } => {
            client
                .post(
                    &format!("/api/v1/clusters/{cluster}/namespaces"),
                    &json!({"name": name}),
                )
                .await?;
            println!("created namespace {name} in {cluster}");
        }
        NamespaceCommand::Delete { name, cluster } => {
            client
                .delete(&format!("/api/v1/clusters/{cluster}/namespaces/{name}"))
                .await?;
            println!("deleted namespace {name} in {cluster}");
        }
    }
    Ok(())
}

/// `key=value` sets, `key-` removes.
fn label_changes(labels: &[String]) -> anyhow::Result<Map<String, Value>> {
    let mut changes = Map::new();
    for label in labels {
        if let Some((key, value)) = label.split_once('=') {
            changes.insert(key.to_owned(), value.into());
        } else if let Some(key) = label.strip_suffix('-') {
            changes.insert(key.to_owned(), Value::Null);
        } else {
            anyhow::bail!("`{label}`: write key=value to set a label or key- to remove it");
        }
    }
    Ok(changes)
}

pub async fn run_node(command: NodeCommand, remote: &Remote) -> anyhow::Result<()> {
    let client = remote.client()?;
    match command {
        NodeCommand::List { cluster } => {
            let mut page: Value = client
                .get(&format!("/api/v1/clusters/{cluster}/nodes?pageSize=500"))
                .await?;
            if let Some(items) = page["items"].as_array_mut() {
                for node in items {
                    node["cpu"] = node["capacity"]["cpu"].clone();
                    node["memory"] = node["capacity"]["memory"].clone();
                }
            }
            table(
                remote,
                &page,
                &[
                    ("NAME", "name"),
                    ("READY", "ready"),
                    ("IP", "ip"),
                    ("CPU", "cpu"),
                    ("MEMORY", "memory"),
                    ("LABELS", "labels"),
                ],
            );
        }
        NodeCommand::Get { name, cluster } => show(
            &client
                .get(&format!("/api/v1/clusters/{cluster}/nodes/{name}"))
                .await?,
        ),
        NodeCommand::Label {
            name,
            labels,
            cluster,
        } => {
            let body = json!({"labels": label_changes(&labels)?});
            let path = format!("/api/v1/clusters/{cluster}/nodes/{name}/labels");
            let node = client
                .send(reqwest::Method::PATCH, &path, Some(&body))
                .await?
                .unwrap_or_default();
            if remote.json {
                show(&node);
            } else {
                println!("{name}: {}", cell(&node["labels"]));
            }
        }
    }
    Ok(())
}
