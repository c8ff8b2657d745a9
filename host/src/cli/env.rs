//! `wharf env …` and `wharf config-item …`: a project's environments, their cluster +
//! namespace bindings and resources, and their config items, from a terminal.

use clap::Subcommand;
use serde_json::{Map, Value, json};

use super::Remote;
use super::cluster::{encode, put, show, table};

#[derive(Subcommand)]
pub enum EnvCommand {
    /// The project's environments.
    List {
        #[arg(long)]
        project: String,
        #[arg(long)]
        search: Option<String>,
    },
    /// Creates an environment (CODE: 3-30 of a-z, 0-9, -, a letter first).
    Create {
        code: String,
        #[arg(long)]
        project: String,
        #[arg(long)]
        name: String,
        /// DEVELOP, TEST, PRE_ONLINE or ONLINE.
        #[arg(long = "type")]
        env_type: String,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        pool: Option<String>,
        /// Changes in this environment wait for approval.
        #[arg(long)]
        approval_required: bool,
        /// The gray-router plugin that routes gray releases (default gray-gateway-api).
        #[arg(long)]
        traffic_provider: Option<String>,
        /// NAMESPACE/NAME of the Gateway gray HTTPRoutes attach to.
        #[arg(long)]
        traffic_gateway: Option<String>,
    },
    Get {
        code: String,
        #[arg(long)]
        project: String,
    },
    Update {
        code: String,
        #[arg(long)]
        project: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long = "type")]
        env_type: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        approval_required: Option<bool>,
        #[arg(long)]
        traffic_provider: Option<String>,
        /// NAMESPACE/NAME of a Gateway; "" clears it.
        #[arg(long)]
        traffic_gateway: Option<String>,
    },
    /// Deletes an environment without config items (its namespaces stay).
    Delete {
        code: String,
        #[arg(long)]
        project: String,
    },
    /// Binds a cluster + namespace to the environment.
    Bind {
        code: String,
        #[arg(long)]
        project: String,
        #[arg(long, default_value = "embedded")]
        cluster: String,
        #[arg(long)]
        namespace: String,
        /// Create the namespace when it does not exist.
        #[arg(long)]
        create_namespace: bool,
    },
    /// Removes a binding (the namespace stays).
    Unbind {
        code: String,
        #[arg(long)]
        project: String,
        #[arg(long, default_value = "embedded")]
        cluster: String,
        #[arg(long)]
        namespace: String,
    },
    /// Deployments, pods, services and config maps of the environment with their state.
    Resources {
        code: String,
        #[arg(long)]
        project: String,
        #[arg(long)]
        kind: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum ConfigItemCommand {
    List {
        #[arg(long)]
        project: String,
        #[arg(long)]
        env: String,
        #[arg(long)]
        search: Option<String>,
    },
    /// Creates a config item from `--item key=value` and `--from-file key=path`.
    Create {
        name: String,
        #[arg(long)]
        project: String,
        #[arg(long)]
        env: String,
        /// Needed only when the environment has several bindings.
        #[arg(long)]
        cluster: Option<String>,
        #[arg(long)]
        namespace: Option<String>,
        #[arg(long = "item")]
        items: Vec<String>,
        #[arg(long = "from-file")]
        files: Vec<String>,
    },
    /// Shows a config item with each key's storage path.
    Get {
        name: String,
        #[arg(long)]
        project: String,
        #[arg(long)]
        env: String,
    },
    /// Replaces all keys of a config item.
    Update {
        name: String,
        #[arg(long)]
        project: String,
        #[arg(long)]
        env: String,
        #[arg(long = "item")]
        items: Vec<String>,
        #[arg(long = "from-file")]
        files: Vec<String>,
    },
    Delete {
        name: String,
        #[arg(long)]
        project: String,
        #[arg(long)]
        env: String,
    },
}

fn env_path(project: &str, env: &str) -> String {
    format!("/api/v1/projects/{project}/environments/{env}")
}

/// `key=value` pairs and `key=path` files as config entries.
fn entries(items: &[String], files: &[String]) -> anyhow::Result<Vec<Value>> {
    let mut entries = Vec::new();
    for item in items {
        let (name, value) = item
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("`--item {item}`: write key=value"))?;
        entries.push(json!({"name": name, "value": value}));
    }
    for file in files {
        let (name, path) = file
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("`--from-file {file}`: write key=path"))?;
        let value =
            std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("reading {path}: {e}"))?;
        entries.push(json!({"name": name, "value": value}));
    }
    Ok(entries)
}

pub async fn run_env(command: EnvCommand, remote: &Remote) -> anyhow::Result<()> {
    let client = remote.client()?;
    match command {
        EnvCommand::List { project, search } => {
            let filter = search
                .map(|s| format!("&search={}", encode(&s)))
                .unwrap_or_default();
            let mut page: Value = client
                .get(&format!(
                    "/api/v1/projects/{project}/environments?pageSize=500{filter}"
                ))
                .await?;
            if let Some(items) = page["items"].as_array_mut() {
                for env in items {
                    let bound: Vec<String> = env["bindings"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|b| {
                            format!(
                                "{}/{}",
                                b["cluster"].as_str().unwrap_or(""),
                                b["namespace"].as_str().unwrap_or("")
                            )
                        })
                        .collect();
                    env["bound"] = bound.join(", ").into();
                }
            }
            table(
                remote,
                &page,
                &[
                    ("CODE", "envCode"),
                    ("NAME", "envName"),
                    ("TYPE", "envType"),
                    ("APPROVAL", "approvalRequired"),
                    ("TRAFFIC", "trafficProvider"),
                    ("BINDINGS", "bound"),
                ],
            );
        }
        EnvCommand::Create {
            code,
            project,
            name,
            env_type,
            description,
            pool,
            approval_required,
            traffic_provider,
            traffic_gateway,
        } => {
            let mut body = Map::new();
            body.insert("envCode".into(), code.into());
            body.insert("envName".into(), name.into());
            body.insert("envType".into(), env_type.into());
            body.insert("approvalRequired".into(), approval_required.into());
            put(&mut body, "description", description);
            put(&mut body, "resourcePool", pool);
            put(&mut body, "trafficProvider", traffic_provider);
            put(&mut body, "trafficGateway", traffic_gateway);
            let path = format!("/api/v1/projects/{project}/environments");
            show(&client.post(&path, &body).await?);
        }
        EnvCommand::Get { code, project } => show(&client.get(&env_path(&project, &code)).await?),
        EnvCommand::Update {
            code,
            project,
            name,
            env_type,
            description,
            approval_required,
            traffic_provider,
            traffic_gateway,
        } => {
            let mut body = Map::new();
            put(&mut body, "envName", name);
            put(&mut body, "envType", env_type);
            put(&mut body, "description", description);
            put(&mut body, "approvalRequired", approval_required);
            put(&mut body, "trafficProvider", traffic_provider);
            put(&mut body, "trafficGateway", traffic_gateway);
            let path = env_path(&project, &code);
            show(
                &client
                    .send(reqwest::Method::PATCH, &path, Some(&body))
                    .await?
                    .unwrap_or_default(),
            );
        }
        EnvCommand::Delete { code, project } => {
            client.delete(&env_path(&project, &code)).await?;
            println!("deleted environment {code}");
        }
        EnvCommand::Bind {
            code,
            project,
            cluster,
            namespace,
            create_namespace,
        } => {
            let body = json!({"cluster": cluster, "namespace": namespace, "createNamespace": create_namespace});
            let env = client
                .post(&format!("{}/bindings", env_path(&project, &code)), &body)
                .await?;
            if remote.json {
                show(&env);
            } else {
                println!("bound {code} to {cluster}/{namespace}");
            }
        }
        EnvCommand::Unbind {
            code,
            project,
            cluster,
            namespace,
        } => {
            client
                .delete(&format!(
                    "{}/bindings/{cluster}/{namespace}",
                    env_path(&project, &code)
                ))
                .await?;
            println!("unbound {code} from {cluster}/{namespace}");
        }
        EnvCommand::Resources {
            code,
            project,
            kind,
        } => {
            let filter = kind
                .map(|k| format!("?kind={}", encode(&k)))
                .unwrap_or_default();
            let found: Value = client
                .get(&format!("{}/resources{filter}", env_path(&project, &code)))
                .await?;
            table(
                remote,
                &found,
                &[
                    ("CLUSTER", "cluster"),
                    ("NAMESPACE", "namespace"),
                    ("KIND", "kind"),
                    ("NAME", "name"),
                    ("STATE", "state"),
                    ("READY", "ready"),
                ],
            );
            for error in found["errors"].as_array().into_iter().flatten() {
                eprintln!(
                    "{}/{}: {}",
                    error["cluster"].as_str().unwrap_or(""),
                    error["namespace"].as_str().unwrap_or(""),
                    error["error"].as_str().unwrap_or("")
                );
            }
        }
    }
    Ok(())
}

pub async fn run_config_item(command: ConfigItemCommand, remote: &Remote) -> anyhow::Result<()> {
    let client = remote.client()?;
    match command {
        ConfigItemCommand::List {
            project,
            env,
            search,
        } => {
            let filter = search
                .map(|s| format!("&search={}", encode(&s)))
                .unwrap_or_default();
            let mut page: Value = client
                .get(&format!(
                    "{}/config-items?pageSize=500{filter}",
                    env_path(&project, &env)
                ))
                .await?;
            if let Some(items) = page["items"].as_array_mut() {
                for item in items {
                    let keys: Vec<Value> = item["items"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|e| e["name"].clone())
                        .collect();
                    item["keys"] = keys.into();
                }
            }
            table(
                remote,
                &page,
                &[
                    ("NAME", "name"),
                    ("CLUSTER", "cluster"),
                    ("NAMESPACE", "namespace"),
                    ("KEYS", "keys"),
                    ("UPDATED", "updatedAt"),
                ],
            );
        }
        ConfigItemCommand::Create {
            name,
            project,
            env,
            cluster,
            namespace,
            items,
            files,
        } => {
            let mut body = Map::new();
            body.insert("name".into(), name.into());
            body.insert("items".into(), entries(&items, &files)?.into());
            put(&mut body, "cluster", cluster);
            put(&mut body, "namespace", namespace);
            let path = format!("{}/config-items", env_path(&project, &env));
            show(&client.post(&path, &body).await?);
        }
        ConfigItemCommand::Get { name, project, env } => {
            let item: Value = client
                .get(&format!("{}/config-items/{name}", env_path(&project, &env)))
                .await?;
            if remote.json {
                show(&item);
            } else {
                println!(
                    "{name} in {}/{} ({})",
                    item["cluster"].as_str().unwrap_or(""),
                    item["namespace"].as_str().unwrap_or(""),
                    item["clusterState"].as_str().unwrap_or("")
                );
                table(
                    remote,
                    &item,
                    &[
                        ("KEY", "name"),
                        ("VALUE", "value"),
                        ("STORAGE PATH", "storagePath"),
                    ],
                );
            }
        }
        ConfigItemCommand::Update {
            name,
            project,
            env,
            items,
            files,
        } => {
            let body = json!({"items": entries(&items, &files)?});
            let path = format!("{}/config-items/{name}", env_path(&project, &env));
            show(&client.put(&path, &body).await?);
        }
        ConfigItemCommand::Delete { name, project, env } => {
            client
                .delete(&format!("{}/config-items/{name}", env_path(&project, &env)))
                .await?;
            println!("deleted config item {name}");
        }
    }
    Ok(())
}
