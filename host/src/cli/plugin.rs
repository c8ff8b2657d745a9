//! `wharf plugin …`: the plugin lifecycle from a terminal.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use clap::Subcommand;
use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use ed25519_dalek::SigningKey;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use super::Remote;
use crate::runtime::trust::sign_package;

#[derive(Subcommand)]
pub enum PluginCommand {
    /// Lists installed plugins.
    List {
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        world: Option<String>,
    },
    /// Shows one plugin: versions, grants, limits, stats, events.
    Show { id: String },
    /// Installs a package (manifest + component).
    Install(PackageArgs),
    /// Enables a plugin, approving the grants it requests (or those given).
    Enable {
        id: String,
        /// A JSON or TOML file with the approved grants (default: what the plugin requests).
        #[arg(long)]
        grants_file: Option<PathBuf>,
        /// Add an outbound HTTP pattern (scheme://host:port) to the approved grants.
        #[arg(long = "allow-http")]
        allow_http: Vec<String>,
    },
    /// Disables a plugin; calls in flight finish.
    Disable { id: String },
    /// Upgrades to a new package, or switches to an installed `--version`.
    Upgrade {
        id: String,
        #[arg(long, conflicts_with_all = ["manifest", "component"])]
        version: Option<String>,
        #[command(flatten)]
        package: OptionalPackageArgs,
    },
    /// Returns to the previously active version.
    Rollback { id: String },
    /// Removes a plugin with its versions and data.
    Uninstall { id: String },
    /// Prints a plugin's newest log lines.
    Logs {
        id: String,
        #[arg(long, default_value_t = 200)]
        limit: u32,
    },
    /// Replaces a plugin's settings with a JSON object from a file.
    Config { id: String, file: PathBuf },
    /// Calls one function of an enabled plugin, e.g. `step.run`.
    Invoke {
        id: String,
        function: String,
        /// JSON input.
        #[arg(long, default_value = "{}")]
        input: String,
    },
    /// Manages the keys trusted to sign plugins.
    Trust {
        #[command(subcommand)]
        command: TrustCommand,
    },
    /// Creates an ed25519 signing key: writes the secret to FILE (a new file, mode 0600),
    /// prints the public key.
    Keygen { file: PathBuf },
    /// Signs a package with a key from `keygen`; prints the signature.
    Sign {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        manifest: PathBuf,
        #[arg(long)]
        component: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum TrustCommand {
    List,
    Add {
        id: String,
        public_key: String,
    },
    Remove {
        id: String,
    },
    /// Whether unsigned packages may be installed.
    AllowUnsigned {
        #[arg(action = clap::ArgAction::Set)]
        allow: bool,
    },
}

#[derive(clap::Args)]
pub struct PackageArgs {
    #[arg(long)]
    manifest: PathBuf,
    #[arg(long)]
    component: PathBuf,
    #[command(flatten)]
    signing: SigningArgs,
}

#[derive(clap::Args)]
pub struct OptionalPackageArgs {
    #[arg(long, requires = "component")]
    manifest: Option<PathBuf>,
    #[arg(long, requires = "manifest")]
    component: Option<PathBuf>,
    #[command(flatten)]
    signing: SigningArgs,
}

#[derive(clap::Args)]
pub struct SigningArgs {
    /// Sign with this key file (from `keygen`) under this key id.
    #[arg(long, requires = "key_id")]
    sign_with: Option<PathBuf>,
    /// The id the server trusts the key under.
    #[arg(long)]
    key_id: Option<String>,
    /// Pin the component's sha256; the upload fails if it differs.
    #[arg(long)]
    sha256: Option<String>,
}

fn package_body(manifest: &Path, component: &Path, signing: &SigningArgs) -> anyhow::Result<Value> {
    let manifest_text = std::fs::read_to_string(manifest)
        .with_context(|| format!("reading {}", manifest.display()))?;
    let bytes =
        std::fs::read(component).with_context(|| format!("reading {}", component.display()))?;
    let mut body = json!({"manifest": manifest_text, "component": B64.encode(&bytes)});
    if let (Some(key_file), Some(key_id)) = (&signing.sign_with, &signing.key_id) {
        let key = read_key(key_file)?;
        body["signature"] =
            json!({"keyId": key_id, "signature": sign_package(&key, &bytes, &manifest_text)});
    }
    if let Some(sha) = &signing.sha256 {
        body["sha256"] = json!(sha);
    }
    Ok(body)
}

fn read_key(path: &Path) -> anyhow::Result<SigningKey> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let bytes: [u8; 32] = B64
        .decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .with_context(|| {
            format!(
                "{} is not a key written by `wharf plugin keygen`",
                path.display()
            )
        })?;
    Ok(SigningKey::from_bytes(&bytes))
}

fn spinner(message: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(message.to_owned());
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

fn print_plugin(remote: &Remote, plugin: &Value) {
    if remote.json {
        println!("{plugin:#}");
        return;
    }
    let mut table = Table::new();
    table.load_style(UTF8_BORDERS_ONLY);
    let row = |k: &str, v: String| vec![k.to_owned(), v];
    table.add_row(row("id", plugin["id"].as_str().unwrap_or_default().into()));
    table.add_row(row(
        "status",
        plugin["status"].as_str().unwrap_or_default().into(),
    ));
    table.add_row(row(
        "world",
        plugin["world"].as_str().unwrap_or_default().into(),
    ));
    table.add_row(row(
        "active version",
        plugin["activeVersion"].as_str().unwrap_or_default().into(),
    ));
    table.add_row(row(
        "description",
        plugin["description"].as_str().unwrap_or_default().into(),
    ));
    table.add_row(row(
        "requested grants",
        plugin["grants"]["requested"].to_string(),
    ));
    table.add_row(row(
        "approved grants",
        plugin["grants"]["approved"].to_string(),
    ));
    table.add_row(row("limits", plugin["limits"].to_string()));
    let usage = &plugin["kvUsage"];
    if usage.is_object() {
        let limits = &plugin["limits"];
        table.add_row(row(
            "kv usage",
            format!(
                "{} of {} bytes, {} of {} keys",
                usage["bytes"], limits["kvMaxBytes"], usage["keys"], limits["kvMaxKeys"]
            ),
        ));
    }
    table.add_row(row("stats", plugin["stats"].to_string()));
    if let Some(reason) = plugin["disabledReason"].as_str() {
        table.add_row(row("disabled because", reason.into()));
    }
    let versions: Vec<String> = plugin["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| {
            format!(
                "{}{} {} ({})",
                if v["active"].as_bool() == Some(true) {
                    "* "
                } else {
                    "  "
                },
                v["version"].as_str().unwrap_or_default(),
                &v["sha256"]
                    .as_str()
                    .unwrap_or_default()
                    .chars()
                    .take(12)
                    .collect::<String>(),
                v["source"].as_str().unwrap_or_default()
            )
        })
        .collect();
    table.add_row(row("versions", versions.join("\n")));
    let events: Vec<String> = plugin["events"]
        .as_array()
        .into_iter()
        .flatten()
        .rev()
        .take(5)
        .map(|e| {
            format!(
                "{} {}: {}",
                e["time"].as_str().unwrap_or_default(),
                e["kind"].as_str().unwrap_or_default(),
                e["message"].as_str().unwrap_or_default()
            )
        })
        .collect();
    table.add_row(row("recent events", events.join("\n")));
    println!("{table}");
}

pub async fn run(command: PluginCommand, remote: &Remote) -> anyhow::Result<()> {
    let client = remote.client()?;
    match command {
        PluginCommand::List { status, world } => {
            let mut query = vec!["pageSize=500".to_owned()];
            if let Some(s) = status {
                query.push(format!("status={s}"));
            }
            if let Some(w) = world {
                query.push(format!("world={w}"));
            }
            let page: Value = client
                .get(&format!("/api/v1/plugins?{}", query.join("&")))
                .await?;
            if remote.json {
                println!("{page:#}");
                return Ok(());
            }
            let mut table = Table::new();
            table.load_style(UTF8_BORDERS_ONLY);
            table.set_header([
                "ID",
                "VERSION",
                "WORLD",
                "STATUS",
                "CALLS",
                "TRAPS",
                "DESCRIPTION",
            ]);
            for p in page["items"].as_array().into_iter().flatten() {
                table.add_row([
                    p["id"].as_str().unwrap_or_default().to_owned(),
                    p["activeVersion"].as_str().unwrap_or_default().to_owned(),
                    p["world"].as_str().unwrap_or_default().to_owned(),
                    p["status"].as_str().unwrap_or_default().to_owned(),
                    p["stats"]["calls"].to_string(),
                    p["stats"]["traps"].to_string(),
                    p["description"].as_str().unwrap_or_default().to_owned(),
                ]);
            }
            println!("{table}");
        }
        PluginCommand::Show { id } => {
            let plugin: Value = client.get(&format!("/api/v1/plugins/{id}")).await?;
            print_plugin(remote, &plugin);
        }
        PluginCommand::Install(args) => {
            let body = package_body(&args.manifest, &args.component, &args.signing)?;
            let bar = spinner("uploading, verifying and compiling");
            let result = client.post("/api/v1/plugins", &body).await;
            bar.finish_and_clear();
            print_plugin(remote, &result?);
        }
        PluginCommand::Enable {
            id,
            grants_file,
            allow_http,
        } => {
            let mut body = json!({});
            let mut grants = match grants_file {
                Some(path) => Some(read_grants(&path)?),
                None => None,
            };
            if !allow_http.is_empty() {
                let mut extended = match grants.take() {
                    Some(g) => g,
                    None => {
                        let plugin: Value = client.get(&format!("/api/v1/plugins/{id}")).await?;
                        plugin["grants"]["requested"].clone()
                    }
                };
                let mut allow = extended["http"]["allow"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                allow.extend(allow_http.into_iter().map(Value::String));
                extended["http"] = json!({ "allow": allow });
                grants = Some(extended);
            }
            if let Some(g) = grants {
                body["grants"] = g;
            }
            let plugin = client
                .post(&format!("/api/v1/plugins/{id}/enable"), &body)
                .await?;
            print_plugin(remote, &plugin);
        }
        PluginCommand::Disable { id } => {
            let plugin = client
                .post(&format!("/api/v1/plugins/{id}/disable"), &json!({}))
                .await?;
            print_plugin(remote, &plugin);
        }
        PluginCommand::Upgrade {
            id,
            version,
            package,
        } => {
            let body = match (version, &package.manifest, &package.component) {
                (Some(v), _, _) => json!({"version": v}),
                (None, Some(m), Some(c)) => package_body(m, c, &package.signing)?,
                _ => anyhow::bail!("give --version, or --manifest and --component"),
            };
            let bar = spinner("upgrading");
            let result = client
                .post(&format!("/api/v1/plugins/{id}/upgrade"), &body)
                .await;
            bar.finish_and_clear();
            print_plugin(remote, &result?);
        }
        PluginCommand::Rollback { id } => {
            let plugin = client
                .post(&format!("/api/v1/plugins/{id}/rollback"), &json!({}))
                .await?;
            print_plugin(remote, &plugin);
        }
        PluginCommand::Uninstall { id } => {
            client.delete(&format!("/api/v1/plugins/{id}")).await?;
            println!("uninstalled {id}");
        }
        PluginCommand::Logs { id, limit } => {
            let logs: Value = client
                .get(&format!("/api/v1/plugins/{id}/logs?limit={limit}"))
                .await?;
            if remote.json {
                println!("{logs:#}");
            } else {
                for line in logs["items"].as_array().into_iter().flatten() {
                    println!(
                        "{} {:5} [{}] {}",
                        line["time"].as_str().unwrap_or_default(),
                        line["level"].as_str().unwrap_or_default(),
                        line["version"].as_str().unwrap_or_default(),
                        line["message"].as_str().unwrap_or_default()
                    );
                }
            }
        }
        PluginCommand::Config { id, file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let settings: Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", file.display()))?;
            let plugin = client
                .put(&format!("/api/v1/plugins/{id}/config"), &settings)
                .await?;
            print_plugin(remote, &plugin);
        }
        PluginCommand::Invoke {
            id,
            function,
            input,
        } => {
            let input: Value = serde_json::from_str(&input).context("--input is not JSON")?;
            let result = client
                .post(
                    &format!("/api/v1/plugins/{id}/invoke"),
                    &json!({"function": function, "input": input}),
                )
                .await?;
            println!("{:#}", result["output"]);
        }
        PluginCommand::Trust { command } => trust(command, remote, &client).await?,
        PluginCommand::Keygen { file } => {
            let mut secret = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rng(), &mut secret);
            let key = SigningKey::from_bytes(&secret);
            write_secret_key(&file, &B64.encode(secret))?;
            println!("{}", B64.encode(key.verifying_key().to_bytes()));
            eprintln!(
                "secret key written to {}; trust the public key above with `wharf plugin trust add ID KEY`",
                file.display()
            );
        }
        PluginCommand::Sign {
            key,
            manifest,
            component,
        } => {
            let key = read_key(&key)?;
            let manifest = std::fs::read_to_string(&manifest)
                .with_context(|| format!("reading {}", manifest.display()))?;
            let bytes = std::fs::read(&component)
                .with_context(|| format!("reading {}", component.display()))?;
            println!("{}", sign_package(&key, &bytes, &manifest));
        }
    }
    Ok(())
}

/// Writes a new secret key readable by its owner only; an existing file is never replaced
/// (it may be the key a server already trusts).
fn write_secret_key(path: &Path, encoded: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow::anyhow!(
                "{} already exists; keygen never overwrites a key",
                path.display()
            )
        } else {
            anyhow::Error::new(e).context(format!("creating {}", path.display()))
        }
    })?;
    file.write_all(encoded.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

fn read_grants(path: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    if text.trim_start().starts_with('{') {
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
    } else {
        let value: toml::Value =
            toml::from_str(&text).with_context(|| format!("{} is not TOML", path.display()))?;
        Ok(serde_json::to_value(value)?)
    }
}

async fn trust(
    command: TrustCommand,
    remote: &Remote,
    client: &super::Client,
) -> anyhow::Result<()> {
    match command {
        TrustCommand::List => {
            let keys: Value = client.get("/api/v1/plugin-trust/keys").await?;
            if remote.json {
                println!("{keys:#}");
                return Ok(());
            }
            let mut table = Table::new();
            table.load_style(UTF8_BORDERS_ONLY);
            table.set_header(["ID", "PUBLIC KEY", "ADDED", "BY"]);
            for k in keys["items"].as_array().into_iter().flatten() {
                table.add_row([
                    k["id"].as_str().unwrap_or_default(),
                    k["publicKey"].as_str().unwrap_or_default(),
                    k["addedAt"].as_str().unwrap_or_default(),
                    k["addedBy"].as_str().unwrap_or_default(),
                ]);
            }
            println!("{table}");
        }
        TrustCommand::Add { id, public_key } => {
            client
                .post(
                    "/api/v1/plugin-trust/keys",
                    &json!({"id": id, "publicKey": public_key}),
                )
                .await?;
            println!("trusted key {id}");
        }
        TrustCommand::Remove { id } => {
            client
                .delete(&format!("/api/v1/plugin-trust/keys/{id}"))
                .await?;
            println!("removed key {id}");
        }
        TrustCommand::AllowUnsigned { allow } => {
            client
                .put(
                    "/api/v1/plugin-trust/settings",
                    &json!({"allowUnsigned": allow}),
                )
                .await?;
            println!(
                "unsigned packages are now {}",
                if allow { "allowed" } else { "refused" }
            );
        }
    }
    Ok(())
}
