//! `wharf gray …`: dry runs of gray rules — validate a rule file with a traffic provider,
//! and evaluate sample requests against a rule (or a change order's) as a table of
//! request → destination and the condition that decided it.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use comfy_table::Table;
use comfy_table::presets::UTF8_BORDERS_ONLY;
use serde_json::{Map, Value, json};

use super::Remote;
use super::cluster::put;

/// Which traffic provider judges: a plugin, or an environment's.
#[derive(clap::Args, Clone)]
pub struct ProviderArgs {
    /// A gray-router plugin id (default: the environment's, else gray-gateway-api).
    #[arg(long)]
    provider: Option<String>,
    /// With --env: use that environment's traffic provider.
    #[arg(long, requires = "env")]
    project: Option<String>,
    #[arg(long, requires = "project")]
    env: Option<String>,
}

impl ProviderArgs {
    fn fill(&self, body: &mut Map<String, Value>) {
        put(body, "provider", self.provider.clone());
        put(body, "project", self.project.clone());
        put(body, "env", self.env.clone());
    }
}

#[derive(Subcommand)]
pub enum GrayCommand {
    /// Checks a rule (seed 001 grayRule, JSON) and whether the provider can render it;
    /// exits 1 when it is invalid or unsupported.
    Validate {
        file: PathBuf,
        #[command(flatten)]
        provider: ProviderArgs,
    },
    /// Where each sample request would go: a JSON array of requests ({method, path,
    /// headers, cookies, query, body, dubbo}) against a rule file or a change order.
    Evaluate {
        /// The rule; leave it out with --change-order.
        #[arg(required_unless_present = "change_order")]
        file: Option<PathBuf>,
        #[arg(long)]
        requests: PathBuf,
        /// Evaluate the rule of this gray change order.
        #[arg(long, conflicts_with = "file")]
        change_order: Option<String>,
        #[command(flatten)]
        provider: ProviderArgs,
    },
}

/// A JSON file's contents.
pub fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{} is not JSON: {e}", path.display()))
}

pub async fn run(command: GrayCommand, remote: &Remote) -> anyhow::Result<()> {
    let client = remote.client()?;
    match command {
        GrayCommand::Validate { file, provider } => {
            let mut body = Map::new();
            body.insert("rule".into(), read_json(&file)?);
            provider.fill(&mut body);
            let report = client
                .post("/api/v1/gray/validate", &Value::Object(body))
                .await?;
            if remote.json {
                println!("{report:#}");
            } else {
                print_report(&report);
            }
            let ok = report["valid"] == json!(true) && report["supported"] == json!(true);
            if !ok {
                anyhow::bail!(
                    "the rule cannot be released with `{}`",
                    report["provider"].as_str().unwrap_or_default()
                );
            }
            Ok(())
        }
        GrayCommand::Evaluate {
            file,
            requests,
            change_order,
            provider,
        } => {
            let samples = match read_json(&requests)? {
                Value::Array(items) => items,
                Value::Object(mut map) => match map.remove("requests") {
                    Some(Value::Array(items)) => items,
                    _ => anyhow::bail!("{} must hold a JSON array of requests", requests.display()),
                },
                _ => anyhow::bail!("{} must hold a JSON array of requests", requests.display()),
            };
            let mut body = Map::new();
            if let Some(file) = &file {
                body.insert("rule".into(), read_json(file)?);
            }
            put(&mut body, "changeOrderId", change_order);
            provider.fill(&mut body);
            body.insert("requests".into(), Value::Array(samples.clone()));
            let result = client
                .post("/api/v1/gray/evaluate", &Value::Object(body))
                .await?;
            if remote.json {
                println!("{result:#}");
                return Ok(());
            }
            print_evaluation(&result, &samples);
            Ok(())
        }
    }
}

fn print_report(report: &Value) {
    let provider = report["provider"].as_str().unwrap_or_default();
    if report["valid"] != json!(true) {
        println!("invalid rule:");
        for v in report["violations"].as_array().into_iter().flatten() {
            println!("  {}: {}", text(&v["field"]), text(&v["message"]));
        }
        return;
    }
    if report["supported"] != json!(true) {
        println!("valid, but `{provider}` cannot express it:");
        for v in report["unsupported"].as_array().into_iter().flatten() {
            println!("  {}: {}", text(&v["field"]), text(&v["message"]));
        }
        return;
    }
    println!("valid; `{provider}` can render it");
}

fn text(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned)
}

/// `GET /path x-user=alice cookie beta=1 ?q=1`: what identifies a sample in the table.
fn describe(sample: &Value) -> String {
    if let Some(dubbo) = sample.get("dubbo").filter(|d| d.is_object()) {
        return format!(
            "dubbo {}.{}({})",
            text(&dubbo["service"]),
            text(&dubbo["method"]),
            dubbo["arguments"]
                .as_array()
                .map(|a| a
                    .iter()
                    .map(Value::to_string)
                    .collect::<Vec<_>>()
                    .join(", "))
                .unwrap_or_default()
        );
    }
    let mut parts = vec![format!(
        "{} {}",
        sample["method"].as_str().unwrap_or("GET"),
        sample["path"].as_str().unwrap_or("/")
    )];
    for (section, prefix) in [("headers", ""), ("cookies", "cookie "), ("query", "?")] {
        for (key, value) in sample[section].as_object().into_iter().flatten() {
            parts.push(format!("{prefix}{key}={}", text(value)));
        }
    }
    if let Some(body) = sample.get("body").filter(|b| !b.is_null()) {
        parts.push(format!("body {}", text(body)));
    }
    parts.join(" ")
}

fn print_evaluation(result: &Value, samples: &[Value]) {
    let mut table = Table::new();
    table.load_style(UTF8_BORDERS_ONLY);
    table.set_header(["#", "REQUEST", "GOES TO", "DECIDED BY", "REASON"]);
    for e in result["evaluations"].as_array().into_iter().flatten() {
        let index = e["index"].as_u64().unwrap_or(0) as usize;
        let share = e["canaryShare"].as_u64().unwrap_or(0);
        let tag = text(&e["tag"]);
        let goes_to = match share {
            100 => format!("canary ({tag})"),
            0 => "stable".to_owned(),
            n => format!("canary ({tag}) {n}% / stable {}%", 100 - n),
        };
        table.add_row([
            (index + 1).to_string(),
            samples.get(index).map(describe).unwrap_or_default(),
            goes_to,
            text(&e["decidedBy"]),
            text(&e["reason"]),
        ]);
    }
    println!("{table}");
    println!(
        "{} of {} requests reach the canary ({})",
        result["toCanary"],
        samples.len(),
        text(&result["provider"])
    );
}
