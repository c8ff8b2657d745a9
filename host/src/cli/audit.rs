//! `wharf audit …`: read the audit log from a terminal.

use clap::Subcommand;
use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use serde_json::Value;

use super::Remote;

#[derive(clap::Args)]
pub struct Filters {
    /// Actor name or id.
    #[arg(long)]
    actor: Option<String>,
    /// Action prefix, e.g. `plugin.`.
    #[arg(long)]
    action: Option<String>,
    /// Target prefix, e.g. `plugin:hello`.
    #[arg(long)]
    target: Option<String>,
    /// ok, denied or error.
    #[arg(long)]
    outcome: Option<String>,
    /// RFC 3339 lower bound.
    #[arg(long)]
    from: Option<String>,
    /// RFC 3339 upper bound.
    #[arg(long)]
    to: Option<String>,
}

impl Filters {
    fn query(&self) -> String {
        let pairs = [
            ("actor", &self.actor),
            ("action", &self.action),
            ("target", &self.target),
            ("outcome", &self.outcome),
            ("from", &self.from),
            ("to", &self.to),
        ];
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(
                pairs
                    .iter()
                    .filter_map(|(k, v)| v.as_ref().map(|v| (*k, v.as_str()))),
            )
            .finish()
    }
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Lists records, newest first.
    List {
        #[command(flatten)]
        filters: Filters,
        #[arg(long, default_value_t = 1)]
        page: u32,
        #[arg(long, default_value_t = 50)]
        page_size: u32,
    },
    /// Prints the matching records as JSON lines.
    Export {
        #[command(flatten)]
        filters: Filters,
    },
}

pub async fn run(command: AuditCommand, remote: &Remote) -> anyhow::Result<()> {
    let client = remote.client()?;
    match command {
        AuditCommand::List {
            filters,
            page,
            page_size,
        } => {
            let path = format!(
                "/api/v1/audit?page={page}&pageSize={page_size}&{}",
                filters.query()
            );
            let records: Value = client.get(&path).await?;
            if remote.json {
                println!("{records:#}");
                return Ok(());
            }
            let mut table = Table::new();
            table.load_style(UTF8_BORDERS_ONLY);
            table.set_header(["TIME", "ACTOR", "ACTION", "TARGET", "OUTCOME", "PLUGIN"]);
            for r in records["items"].as_array().into_iter().flatten() {
                let outcome = match r["errorCode"].as_str() {
                    Some(code) => format!("{} ({code})", r["outcome"].as_str().unwrap_or_default()),
                    None => r["outcome"].as_str().unwrap_or_default().to_owned(),
                };
                table.add_row([
                    r["time"].as_str().unwrap_or_default().to_owned(),
                    r["actor"]["name"].as_str().unwrap_or_default().to_owned(),
                    r["action"].as_str().unwrap_or_default().to_owned(),
                    r["target"].as_str().unwrap_or_default().to_owned(),
                    outcome,
                    r["plugin"].as_str().unwrap_or_default().to_owned(),
                ]);
            }
            println!("{table}");
            eprintln!("{} records in all", records["total"]);
        }
        AuditCommand::Export { filters } => {
            let text = client
                .get_text(&format!("/api/v1/audit/export?{}", filters.query()))
                .await?;
            print!("{text}");
        }
    }
    Ok(())
}
