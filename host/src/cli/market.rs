//! `wharf market …`: app markets from a terminal — connect a store (the access key from an
//! environment variable or stdin, never an argument: arguments show in `ps`), browse its
//! apps, versions and templates, publish to a local catalog, and install, upgrade, roll
//! back and uninstall apps in a project. Following an install's components lives in
//! `market_progress`.

use std::io::{BufRead as _, IsTerminal as _};
use std::path::PathBuf;
use std::time::Duration;

use clap::Subcommand;
use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use serde_json::{Map, Value, json};

use super::Remote;
use super::client::{Client, ClientError};
use super::cluster::{encode, put, table};
use super::gray::read_json;
use super::market_progress::{Outcome, follow_install, follow_removal};

#[derive(Subcommand)]
pub enum MarketCommand {
    /// Connects a market: a Rainbond-compatible store (`--type rainstore`, the default), a
    /// local catalog (`--type local`) or any enabled marketplace plugin by its id.
    Add {
        name: String,
        /// Base URL of the store, e.g. https://hub.grapps.cn (none for a local catalog).
        #[arg(long)]
        url: Option<String>,
        /// The store's market domain (Rainbond `marketDomain`).
        #[arg(long)]
        domain: Option<String>,
        #[arg(long = "type")]
        kind: Option<String>,
        /// Read the access key from this environment variable.
        #[arg(long, conflicts_with = "access_key_stdin")]
        access_key_env: Option<String>,
        /// Read the access key from the first line of stdin.
        #[arg(long)]
        access_key_stdin: bool,
    },
    /// The markets Wharf is connected to.
    List,
    /// Apps of a market.
    Apps {
        market: String,
        /// Search term.
        #[arg(long)]
        query: Option<String>,
        /// 1-based.
        #[arg(long, default_value_t = 1)]
        page: u32,
        #[arg(long, default_value_t = 20)]
        page_size: u32,
    },
    /// Versions of an app, newest first.
    Versions { market: String, app: String },
    /// A version's template: its components with image, resources, ports and dependencies.
    Show {
        market: String,
        app: String,
        version: String,
    },
    /// Publishes a version to a local catalog from a Rainbond application-model JSON file.
    Publish { market: String, file: PathBuf },
    /// Removes an app (every version) or one `--version` of it from a local catalog.
    Remove {
        market: String,
        app: String,
        #[arg(long)]
        version: Option<String>,
    },
    /// Installs a version of an app into an app group of a project: one app per component.
    Install {
        market: String,
        app: String,
        version: String,
        #[arg(long)]
        project: String,
        #[arg(long)]
        env: String,
        /// The app group (id or name) the component apps go into.
        #[arg(long)]
        group: String,
        /// Deploy every component (dependencies first) and follow them until they run.
        #[arg(long)]
        deploy: bool,
        #[command(flatten)]
        wait: Wait,
    },
    /// Installs of a project.
    Installs {
        #[arg(long)]
        project: String,
    },
    /// Upgrades an install to another version of its app; `--dry-run` prints the
    /// components added, changed (with the fields) and removed, and changes nothing.
    Upgrade {
        install: String,
        #[arg(long)]
        project: String,
        #[arg(long)]
        to: String,
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        wait: Wait,
    },
    /// Returns an install to the version it had before its last upgrade.
    Rollback {
        install: String,
        #[arg(long)]
        project: String,
        #[command(flatten)]
        wait: Wait,
    },
    /// Removes everything an install created.
    Uninstall {
        install: String,
        #[arg(long)]
        project: String,
        #[command(flatten)]
        wait: Wait,
    },
}

/// How long to follow what a command started.
#[derive(clap::Args, Clone, Copy)]
pub struct Wait {
    /// Return as soon as the server accepted the request.
    #[arg(long)]
    no_wait: bool,
    /// Give up following after this many seconds (the work goes on on the server).
    #[arg(long, default_value_t = 900)]
    timeout: u64,
}

impl Wait {
    fn limit(self) -> Duration {
        Duration::from_secs(self.timeout.max(1))
    }
}

fn market_path(market: &str) -> String {
    format!("/api/v1/markets/{}", encode(market))
}

fn installs_path(project: &str) -> String {
    format!("/api/v1/projects/{}/installs", encode(project))
}

fn install_path(project: &str, install: &str) -> String {
    format!("{}/{}", installs_path(project), encode(install))
}

pub async fn run(command: MarketCommand, remote: &Remote) -> anyhow::Result<()> {
    let client = remote.client()?;
    match command {
        MarketCommand::Add {
            name,
            url,
            domain,
            kind,
            access_key_env,
            access_key_stdin,
        } => {
            let mut body = Map::new();
            body.insert("name".into(), json!(name));
            put(&mut body, "url", url);
            put(&mut body, "domain", domain);
            put(&mut body, "type", kind);
            put(
                &mut body,
                "accessKey",
                access_key(access_key_env.as_deref(), access_key_stdin)?,
            );
            let market = client.post("/api/v1/markets", &Value::Object(body)).await?;
            if remote.json {
                println!("{market:#}");
            } else {
                println!(
                    "market {} connected: {} {} through plugin {}{}",
                    text(&market["name"]),
                    text(&market["type"]),
                    text(&market["url"]),
                    text(&market["plugin"]),
                    if market["hasAccessKey"] == true {
                        " (with an access key)"
                    } else {
                        ""
                    }
                );
            }
        }
        MarketCommand::List => {
            let mut markets: Value = client.get("/api/v1/markets").await?;
            for m in markets["items"].as_array_mut().into_iter().flatten() {
                m["key"] = json!(if m["hasAccessKey"] == true {
                    "yes"
                } else {
                    "no"
                });
            }
            table(
                remote,
                &markets,
                &[
                    ("NAME", "name"),
                    ("TYPE", "type"),
                    ("PLUGIN", "plugin"),
                    ("URL", "url"),
                    ("DOMAIN", "domain"),
                    ("ACCESS KEY", "key"),
                ],
            );
        }
        MarketCommand::Apps {
            market,
            query,
            page,
            page_size,
        } => {
            let search = query
                .map(|q| format!("&query={}", encode(&q)))
                .unwrap_or_default();
            let mut apps: Value = client
                .get(&format!(
                    "{}/apps?page={page}&pageSize={page_size}{search}",
                    market_path(&market)
                ))
                .await?;
            for app in apps["items"].as_array_mut().into_iter().flatten() {
                let versions: Vec<String> = app["versions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|v| text(&v["version"]))
                    .collect();
                app["versionList"] = json!(versions.join(", "));
            }
            table(
                remote,
                &apps,
                &[
                    ("ID", "id"),
                    ("NAME", "name"),
                    ("VERSIONS", "versionList"),
                    ("DESCRIPTION", "description"),
                ],
            );
            if !remote.json {
                let shown = apps["items"].as_array().map_or(0, Vec::len);
                println!("{shown} of {} apps (page {page})", apps["total"]);
            }
        }
        MarketCommand::Versions { market, app } => {
            let versions: Value = client
                .get(&format!(
                    "{}/apps/{}/versions",
                    market_path(&market),
                    encode(&app)
                ))
                .await?;
            table(
                remote,
                &versions,
                &[
                    ("VERSION", "version"),
                    ("ALIAS", "alias"),
                    ("UPDATED", "updatedAt"),
                    ("DESCRIPTION", "description"),
                ],
            );
        }
        MarketCommand::Show {
            market,
            app,
            version,
        } => {
            let template: Value = client
                .get(&format!(
                    "{}/apps/{}/versions/{}",
                    market_path(&market),
                    encode(&app),
                    encode(&version)
                ))
                .await?;
            if remote.json {
                println!("{template:#}");
            } else {
                print_template(&template);
            }
        }
        MarketCommand::Publish { market, file } => {
            let model = read_json(&file)?;
            let template = client
                .post(&format!("{}/apps", market_path(&market)), &model)
                .await?;
            if remote.json {
                println!("{template:#}");
            } else {
                println!(
                    "published {} {} to {market} ({} components)",
                    text(&template["appId"]),
                    text(&template["version"]),
                    template["components"].as_array().map_or(0, Vec::len)
                );
            }
        }
        MarketCommand::Remove {
            market,
            app,
            version,
        } => {
            let mut path = format!("{}/apps/{}", market_path(&market), encode(&app));
            if let Some(v) = &version {
                path.push_str(&format!("/versions/{}", encode(v)));
            }
            let answer = client
                .send::<()>(reqwest::Method::DELETE, &path, None)
                .await?
                .unwrap_or(Value::Null);
            if remote.json {
                println!("{answer:#}");
            } else {
                println!("removed {} version(s) of {app}", answer["removed"]);
            }
        }
        MarketCommand::Install {
            market,
            app,
            version,
            project,
            env,
            group,
            deploy,
            wait,
        } => {
            let body = json!({"market": market, "appId": app, "version": version,
                              "group": group, "env": env, "deploy": deploy});
            let install = client.post(&installs_path(&project), &body).await?;
            announce(remote, "installed", &install);
            if deploy && !wait.no_wait {
                follow(&client, remote, &project, &install, wait).await?;
            }
        }
        MarketCommand::Installs { project } => {
            let mut installs: Value = client.get(&installs_path(&project)).await?;
            for install in installs["items"].as_array_mut().into_iter().flatten() {
                let components = install["components"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let running = components
                    .iter()
                    .filter(|c| c["state"] == "Running")
                    .count();
                install["running"] = json!(format!("{running}/{}", components.len()));
            }
            table(
                remote,
                &installs,
                &[
                    ("ID", "id"),
                    ("APP", "appName"),
                    ("VERSION", "version"),
                    ("MARKET", "market"),
                    ("GROUP", "group"),
                    ("ENV", "env"),
                    ("STATE", "state"),
                    ("RUNNING", "running"),
                ],
            );
        }
        MarketCommand::Upgrade {
            install,
            project,
            to,
            dry_run,
            wait,
        } => {
            let path = format!("{}/upgrade", install_path(&project, &install));
            let answer = client
                .post(&path, &json!({"version": to, "dryRun": dry_run}))
                .await?;
            if dry_run {
                if remote.json {
                    println!("{answer:#}");
                } else {
                    print_diff(&answer);
                }
                return Ok(());
            }
            announce(remote, "upgrading", &answer);
            if !wait.no_wait {
                follow(&client, remote, &project, &answer, wait).await?;
            }
        }
        MarketCommand::Rollback {
            install,
            project,
            wait,
        } => {
            let path = format!("{}/rollback", install_path(&project, &install));
            let answer = client.post(&path, &json!({})).await?;
            announce(remote, "rolling back", &answer);
            if !wait.no_wait {
                follow(&client, remote, &project, &answer, wait).await?;
            }
        }
        MarketCommand::Uninstall {
            install,
            project,
            wait,
        } => {
            let path = install_path(&project, &install);
            let answer = client
                .send::<()>(reqwest::Method::DELETE, &path, None)
                .await?
                .unwrap_or(Value::Null);
            announce(remote, "uninstalling", &answer);
            if !wait.no_wait {
                follow_removal(&client, &path, wait.limit()).await?;
                if !remote.json {
                    println!("uninstalled {install}: its apps and deployments are gone");
                }
            }
        }
    }
    Ok(())
}

/// The access key, from the named environment variable or stdin's first line.
fn access_key(from_env: Option<&str>, from_stdin: bool) -> anyhow::Result<Option<String>> {
    let key = if let Some(var) = from_env {
        match std::env::var(var) {
            Ok(value) => value,
            Err(_) => anyhow::bail!("--access-key-env: the environment variable {var} is not set"),
        }
    } else if from_stdin {
        if std::io::stdin().is_terminal() {
            eprintln!("access key (one line):");
        }
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line
    } else {
        return Ok(None);
    };
    let key = key.trim().to_owned();
    if key.is_empty() {
        anyhow::bail!("the access key is empty");
    }
    Ok(Some(key))
}

/// Follows an install's components until they all run or one fails.
async fn follow(
    client: &Client,
    remote: &Remote,
    project: &str,
    install: &Value,
    wait: Wait,
) -> anyhow::Result<()> {
    let id = install["id"]
        .as_str()
        .ok_or_else(|| ClientError::Unexpected(format!("an install without an id: {install}")))?;
    let path = install_path(project, id);
    match follow_install(client, &path, install.clone(), wait.limit()).await? {
        Outcome::Running(last) => {
            if remote.json {
                println!("{last:#}");
            } else {
                println!(
                    "{} {}: all {} components running",
                    text(&last["appName"]),
                    text(&last["version"]),
                    last["components"].as_array().map_or(0, Vec::len)
                );
            }
            Ok(())
        }
        Outcome::Failed { component, message } => {
            anyhow::bail!("component {component} failed: {message}")
        }
    }
}

fn announce(remote: &Remote, verb: &str, install: &Value) {
    if remote.json {
        println!("{install:#}");
        return;
    }
    println!(
        "{verb} {} {} as install {} (group {}, environment {})",
        text(&install["appName"]),
        text(&install["version"]),
        text(&install["id"]),
        text(&install["group"]),
        text(&install["env"])
    );
    let mut table = Table::new();
    table.load_style(UTF8_BORDERS_ONLY);
    table.set_header(["COMPONENT", "NAME", "APP", "IMAGE", "STATE"]);
    for c in install["components"].as_array().into_iter().flatten() {
        table.add_row([
            text(&c["key"]),
            text(&c["name"]),
            text(&c["app"]),
            text(&c["image"]),
            text(&c["state"]),
        ]);
    }
    println!("{table}");
}

pub(super) fn text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn print_template(template: &Value) {
    println!(
        "{} {} ({}) — {}",
        text(&template["appName"]),
        text(&template["version"]),
        text(&template["appId"]),
        text(&template["description"])
    );
    let names: std::collections::BTreeMap<String, String> = template["components"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| (text(&c["key"]), text(&c["name"])))
        .collect();
    let mut table = Table::new();
    table.load_style(UTF8_BORDERS_ONLY);
    table.set_header([
        "KEY",
        "NAME",
        "IMAGE",
        "INSTANCES",
        "CPU",
        "MEMORY",
        "PORTS",
        "DEPENDS ON",
    ]);
    for c in template["components"].as_array().into_iter().flatten() {
        let resources = &c["resources"];
        let ports: Vec<String> = c["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                let reach: Vec<&str> = [("inner", "inner"), ("outer", "outer")]
                    .into_iter()
                    .filter(|(field, _)| p[*field] == true)
                    .map(|(_, label)| label)
                    .collect();
                format!(
                    "{}/{}{}",
                    text(&p["containerPort"]),
                    text(&p["protocol"]),
                    if reach.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", reach.join(", "))
                    }
                )
            })
            .collect();
        let depends: Vec<String> = c["dependsOn"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|key| {
                let key = text(key);
                match names.get(&key) {
                    Some(name) if !name.is_empty() => format!("{key} ({name})"),
                    _ => key,
                }
            })
            .collect();
        table.add_row([
            text(&c["key"]),
            text(&c["name"]),
            text(&c["image"]),
            text(&resources["instances"]),
            format!("{}m", text(&resources["cpuMillicores"])),
            format!("{} MB", text(&resources["memoryMb"])),
            ports.join(", "),
            depends.join(", "),
        ]);
    }
    println!("{table}");
}

fn print_diff(diff: &Value) {
    let entries = |name: &str| diff[name].as_array().cloned().unwrap_or_default();
    let (added, changed, removed) = (entries("added"), entries("changed"), entries("removed"));
    println!(
        "upgrade {} → {} (dry run: nothing changed)",
        text(&diff["from"]),
        text(&diff["to"])
    );
    if added.is_empty() && changed.is_empty() && removed.is_empty() {
        println!("no component changes");
        return;
    }
    for c in &added {
        println!("added    {} ({})", text(&c["key"]), text(&c["name"]));
    }
    for c in &changed {
        println!("changed  {} ({})", text(&c["key"]), text(&c["name"]));
        for f in c["fields"].as_array().into_iter().flatten() {
            println!(
                "           {}: {} → {}",
                text(&f["field"]),
                text(&f["from"]),
                text(&f["to"])
            );
        }
    }
    for c in &removed {
        println!("removed  {} ({})", text(&c["key"]), text(&c["name"]));
    }
    println!(
        "{} added, {} changed, {} removed",
        added.len(),
        changed.len(),
        removed.len()
    );
}
