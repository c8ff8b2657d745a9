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
    /// Lists records, newest first, following the server's cursors.
    List {
        #[command(flatten)]
        filters: Filters,
        /// At most this many records (0: all of them).
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Start after this record (`nextCursor`, printed when more records match).
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Prints the matching records as JSON lines, as the server streams them.
    Export {
        #[command(flatten)]
        filters: Filters,
    },
}

/// Largest page the server hands out.
const MAX_PAGE: usize = 500;

pub async fn run(command: AuditCommand, remote: &Remote) -> anyhow::Result<()> {
    let client = remote.client()?;
    match command {
        AuditCommand::List {
            filters,
            limit,
            cursor,
        } => {
            let (mut records, mut cursor) = (Vec::new(), cursor);
            loop {
                let wanted = if limit == 0 {
                    MAX_PAGE
                } else {
                    (limit - records.len()).min(MAX_PAGE)
                };
                let mut path = format!("/api/v1/audit?pageSize={wanted}&{}", filters.query());
                if let Some(cursor) = &cursor {
                    path.push_str("&cursor=");
                    path.push_str(
                        &url::form_urlencoded::byte_serialize(cursor.as_bytes())
                            .collect::<String>(),
                    );
                }
                let page: Value = client.get(&path).await?;
                records.extend(page["items"].as_array().cloned().unwrap_or_default());
                cursor = page["nextCursor"].as_str().map(str::to_owned);
                if cursor.is_none() || (limit != 0 && records.len() >= limit) {
                    break;
                }
            }
            if remote.json {
                println!("{:#}", Value::Array(records));
                return Ok(());
            }
            let mut table = Table::new();
            table.load_style(UTF8_BORDERS_ONLY);
            table.set_header(["TIME", "ACTOR", "ACTION", "TARGET", "OUTCOME", "PLUGIN"]);
            for r in &records {
                let mut outcome = r["outcome"].as_str().unwrap_or_default().to_owned();
                if let Some(code) = r["errorCode"].as_str() {
                    outcome.push_str(&format!(" ({code})"));
                }
                if let Some(count) = r["count"].as_u64() {
                    outcome.push_str(&format!(" ×{count}"));
                }
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
            match cursor {
                Some(next) => eprintln!(
                    "{} records shown; more match: --cursor {next}",
                    records.len()
                ),
                None => eprintln!("{} records", records.len()),
            }
        }
        AuditCommand::Export { filters } => {
            use std::io::Write as _;
            let mut response = client
                .open_stream(&format!("/api/v1/audit/export?{}", filters.query()))
                .await?;
            let mut out = std::io::stdout().lock();
            while let Some(chunk) = response.chunk().await? {
                out.write_all(&chunk)?;
            }
            out.flush()?;
        }
    }
    Ok(())
}
