//! Following an install from `wharf market`: polls `GET …/installs/{id}` and shows one
//! progress bar per component (Created → Waiting → Deploying → Running) until every
//! component runs or one fails. When stdout is not a terminal it prints a line per state
//! change instead, so logs and scripts read the same story.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

use super::client::{Client, ClientError};
use super::market::text;

const POLL: Duration = Duration::from_millis(500);

/// How following ended.
pub enum Outcome {
    /// Every component runs; the last state of the install.
    Running(Value),
    Failed {
        component: String,
        message: String,
    },
}

/// Bars (on a terminal) or lines (otherwise), one per component, keyed by component key.
struct Display {
    multi: Option<MultiProgress>,
    bars: BTreeMap<String, ProgressBar>,
    last: BTreeMap<String, String>,
}

/// Where a state stands on the way to running.
fn step(state: &str) -> u64 {
    match state {
        "Waiting" => 1,
        "Deploying" => 2,
        "Running" => 3,
        _ => 0,
    }
}

impl Display {
    fn new() -> Self {
        let multi = std::io::stdout()
            .is_terminal()
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stdout()));
        Self {
            multi,
            bars: BTreeMap::new(),
            last: BTreeMap::new(),
        }
    }

    fn show(&mut self, install: &Value) {
        let style = ProgressStyle::with_template("{prefix:>16} [{bar:24.cyan/blue}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        for component in install["components"].as_array().into_iter().flatten() {
            let key = text(&component["key"]);
            let label = match text(&component["app"]) {
                app if !app.is_empty() => app,
                _ => text(&component["name"]),
            };
            let state = text(&component["state"]);
            let message = text(&component["message"]);
            let line = if message.is_empty() {
                state.clone()
            } else {
                format!("{state}: {message}")
            };
            if self.last.get(&key) == Some(&line) {
                continue;
            }
            self.last.insert(key.clone(), line.clone());
            let Some(multi) = &self.multi else {
                println!("{label}: {line}");
                continue;
            };
            let bar = self.bars.entry(key).or_insert_with(|| {
                let bar = multi.add(ProgressBar::new(3));
                bar.set_style(style.clone());
                bar.set_prefix(label.clone());
                bar
            });
            bar.set_position(step(&state));
            if matches!(state.as_str(), "Running" | "Failed") {
                bar.finish_with_message(line);
            } else {
                bar.set_message(line);
            }
        }
    }
}

/// Polls the install at `path` (already known as `first`) until every component runs or
/// one fails; gives up after `limit` (the install goes on on the server).
pub async fn follow_install(
    client: &Client,
    path: &str,
    first: Value,
    limit: Duration,
) -> anyhow::Result<Outcome> {
    let deadline = Instant::now() + limit;
    let mut display = Display::new();
    let mut install = first;
    loop {
        display.show(&install);
        let components = install["components"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if let Some(failed) = components.iter().find(|c| c["state"] == "Failed") {
            return Ok(Outcome::Failed {
                component: text(&failed["key"]),
                message: text(&failed["message"]),
            });
        }
        // The install's own state says when the engine is done with every component (an
        // upgrade may not yet have touched a component that still runs the old version).
        let settled = matches!(install["state"].as_str(), None | Some("Running"));
        if settled && !components.is_empty() && components.iter().all(|c| c["state"] == "Running") {
            return Ok(Outcome::Running(install));
        }
        if Instant::now() >= deadline {
            anyhow::bail!(
                "install {} is not running after {} s; it goes on: see `wharf market installs`",
                text(&install["id"]),
                limit.as_secs()
            );
        }
        tokio::time::sleep(POLL).await;
        install = client.get(path).await?;
    }
}

/// Polls `path` until it answers 404 (the install and what it created are gone).
pub async fn follow_removal(client: &Client, path: &str, limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        match client.get::<Value>(path).await {
            Err(ClientError::Problem { status: 404, .. }) => return Ok(()),
            Err(other) => return Err(other.into()),
            Ok(install) if Instant::now() >= deadline => anyhow::bail!(
                "install {} is still {} after {} s",
                text(&install["id"]),
                text(&install["state"]),
                limit.as_secs()
            ),
            Ok(_) => tokio::time::sleep(POLL).await,
        }
    }
}
