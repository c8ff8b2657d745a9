//! `wharf deploy-config …`: an app's reusable deploy configs per environment (seed 001
//! §5.5) — list, create (from flags or `--file`), show, update, delete, and replace the
//! env vars or the pod resources.

use clap::Subcommand;
use serde_json::{Map, Value, json};

use super::Remote;
use super::cluster::{encode, put, show, table};

/// Which app.
#[derive(clap::Args, Clone)]
pub struct AppArgs {
    #[arg(long)]
    project: String,
    #[arg(long)]
    app: String,
}

impl AppArgs {
    fn path(&self) -> String {
        format!(
            "/api/v1/projects/{}/apps/{}/deploy-configs",
            encode(&self.project),
            encode(&self.app)
        )
    }
}

/// Environment variables from flags.
#[derive(clap::Args, Clone, Default)]
pub struct VarArgs {
    /// A plain variable, NAME=VALUE (repeatable).
    #[arg(long = "var")]
    vars: Vec<String>,
    /// A variable from a config item of the environment, NAME=ITEM/KEY (repeatable).
    #[arg(long = "config-var")]
    config_vars: Vec<String>,
    /// A variable from a Secret in the namespace, NAME=SECRET/KEY (repeatable).
    #[arg(long = "secret-var")]
    secret_vars: Vec<String>,
}

impl VarArgs {
    fn given(&self) -> bool {
        !(self.vars.is_empty() && self.config_vars.is_empty() && self.secret_vars.is_empty())
    }

    /// The seed's `envVariableList`.
    fn list(&self) -> anyhow::Result<Vec<Value>> {
        let mut list = Vec::new();
        for var in &self.vars {
            let (name, value) = var
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("`--var {var}`: write NAME=VALUE"))?;
            list.push(json!({"name": name, "type": "CUSTOM", "value": value}));
        }
        for (flag, kind, source, vars) in [
            (
                "--config-var",
                "CONFIG_ITEM",
                "configItem",
                &self.config_vars,
            ),
            ("--secret-var", "SECRET", "secret", &self.secret_vars),
        ] {
            for var in vars {
                let parsed = var
                    .split_once('=')
                    .and_then(|(name, from)| from.split_once('/').map(|(s, k)| (name, s, k)));
                let (name, from, key) = parsed
                    .ok_or_else(|| anyhow::anyhow!("`{flag} {var}`: write NAME=SOURCE/KEY"))?;
                list.push(json!({"name": name, "type": kind, source: from, "key": key}));
            }
        }
        Ok(list)
    }
}

/// Pod resources: CPU in millicores, memory in MiB.
#[derive(clap::Args, Clone, Default)]
pub struct ResourceArgs {
    /// Millicores, e.g. 250.
    #[arg(long)]
    cpu_request: Option<u32>,
    /// Millicores.
    #[arg(long)]
    cpu_limit: Option<u32>,
    /// MiB, e.g. 256.
    #[arg(long)]
    memory_request: Option<u32>,
    /// MiB.
    #[arg(long)]
    memory_limit: Option<u32>,
}

impl ResourceArgs {
    /// The seed's `podResourceSpec` when any flag is given (the server names what is missing).
    fn spec(&self) -> Option<Value> {
        let mut spec = Map::new();
        put(&mut spec, "cpuRequest", self.cpu_request);
        put(&mut spec, "cpuLimit", self.cpu_limit);
        put(&mut spec, "memoryRequest", self.memory_request);
        put(&mut spec, "memoryLimit", self.memory_limit);
        (!spec.is_empty()).then_some(Value::Object(spec))
    }
}

#[derive(Subcommand)]
pub enum DeployConfigCommand {
    /// The app's deploy configs.
    List {
        #[command(flatten)]
        app: AppArgs,
        /// Only those of this environment.
        #[arg(long)]
        env: Option<String>,
    },
    /// Creates a deploy config for the app in an environment.
    Create {
        /// 1-50 characters, unique per app and environment.
        name: String,
        #[command(flatten)]
        app: AppArgs,
        /// The environment's code.
        #[arg(long)]
        env: String,
        #[command(flatten)]
        vars: VarArgs,
        #[command(flatten)]
        resources: ResourceArgs,
        /// Start command (split on whitespace).
        #[arg(long)]
        command: Option<String>,
        /// Start argument (repeatable).
        #[arg(long = "arg", allow_hyphen_values = true)]
        args: Vec<String>,
        /// The config as JSON (seed 001 5.5.1 fields); flags override it.
        #[arg(long)]
        file: Option<std::path::PathBuf>,
    },
    /// Shows a deploy config (by id, or by name when only one config has it).
    Get {
        config: String,
        #[command(flatten)]
        app: AppArgs,
    },
    /// Changes a deploy config; what is not given stays.
    Update {
        config: String,
        #[command(flatten)]
        app: AppArgs,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        command: Option<String>,
        #[arg(long = "arg", allow_hyphen_values = true)]
        args: Vec<String>,
        /// The changes as JSON (`null` clears a section); flags override it.
        #[arg(long)]
        file: Option<std::path::PathBuf>,
    },
    Delete {
        config: String,
        #[command(flatten)]
        app: AppArgs,
    },
    /// Replaces all env vars of a deploy config (none given: removes them all).
    SetEnv {
        config: String,
        #[command(flatten)]
        app: AppArgs,
        #[command(flatten)]
        vars: VarArgs,
    },
    /// Replaces the pod resources of a deploy config (all four values).
    SetResources {
        config: String,
        #[command(flatten)]
        app: AppArgs,
        #[command(flatten)]
        resources: ResourceArgs,
    },
}

/// A JSON object from `--file`, or an empty one.
fn from_file(file: Option<&std::path::Path>) -> anyhow::Result<Map<String, Value>> {
    let Some(path) = file else {
        return Ok(Map::new());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    match serde_json::from_str(&text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => anyhow::bail!("{}: expected a JSON object", path.display()),
        Err(e) => anyhow::bail!("{}: {e}", path.display()),
    }
}

/// Puts `startCommand` from `--command`/`--arg` over what the body has.
fn start_command(body: &mut Map<String, Value>, command: Option<String>, args: Vec<String>) {
    if command.is_none() && args.is_empty() {
        return;
    }
    let mut start = match body.remove("startCommand") {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    };
    put(&mut start, "command", command);
    if !args.is_empty() {
        start.insert("args".into(), args.into());
    }
    body.insert("startCommand".into(), Value::Object(start));
}

pub async fn run(command: DeployConfigCommand, remote: &Remote) -> anyhow::Result<()> {
    let client = remote.client()?;
    let one = |app: &AppArgs, config: &str| format!("{}/{}", app.path(), encode(config));
    match command {
        DeployConfigCommand::List { app, env } => {
            let filter = env
                .map(|e| format!("&env={}", encode(&e)))
                .unwrap_or_default();
            let mut page: Value = client
                .get(&format!("{}?pageSize=500{filter}", app.path()))
                .await?;
            if let Some(items) = page["items"].as_array_mut() {
                for item in items {
                    let names: Vec<Value> = item["envVariableList"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|v| v["name"].clone())
                        .collect();
                    item["vars"] = names.into();
                }
            }
            table(
                remote,
                &page,
                &[
                    ("ID", "id"),
                    ("NAME", "name"),
                    ("ENV", "env"),
                    ("VARS", "vars"),
                    ("RESOURCES", "podResourceSpec"),
                    ("UPDATED", "updatedAt"),
                ],
            );
        }
        DeployConfigCommand::Create {
            name,
            app,
            env,
            vars,
            resources,
            command,
            args,
            file,
        } => {
            let mut body = from_file(file.as_deref())?;
            body.insert("name".into(), name.into());
            body.insert("env".into(), env.into());
            if vars.given() {
                body.insert("envVariableList".into(), vars.list()?.into());
            }
            put(&mut body, "podResourceSpec", resources.spec());
            start_command(&mut body, command, args);
            show(&client.post(&app.path(), &body).await?);
        }
        DeployConfigCommand::Get { config, app } => show(&client.get(&one(&app, &config)).await?),
        DeployConfigCommand::Update {
            config,
            app,
            name,
            command,
            args,
            file,
        } => {
            let mut body = from_file(file.as_deref())?;
            put(&mut body, "name", name);
            start_command(&mut body, command, args);
            let answer = client
                .send(reqwest::Method::PATCH, &one(&app, &config), Some(&body))
                .await?;
            show(&answer.unwrap_or_default());
        }
        DeployConfigCommand::Delete { config, app } => {
            client.delete(&one(&app, &config)).await?;
            println!("deleted deploy config {config}");
        }
        DeployConfigCommand::SetEnv { config, app, vars } => {
            let body = json!({"envVariableList": vars.list()?});
            let path = format!("{}/env-vars", one(&app, &config));
            show(&client.put(&path, &body).await?);
        }
        DeployConfigCommand::SetResources {
            config,
            app,
            resources,
        } => {
            let body = resources.spec().unwrap_or_else(|| json!({}));
            let path = format!("{}/pod-resources", one(&app, &config));
            show(&client.put(&path, &body).await?);
        }
    }
    Ok(())
}
