//! `pipelines`: 100 concurrent runs of a 5-step pipeline of trivial steps.
//!
//! Starts `wharf serve`, defines one pipeline whose steps alternate the host's native
//! `echo` and the bundled `hello` plugin (echo, hello, echo, hello, echo), starts
//! `CONCURRENT` runs at once over REST and waits for all to succeed. Prints:
//! - runs per second, from the first start request to the last run's end;
//! - step scheduling latency: from the end of a step (or the run's start) to the start of
//!   the next one, p50 and p99 over every step of every run;
//! - per-step cost as the engine measured it, plugin step vs native step, in the same
//!   runs (each execution's `durationUs`), and the ratio;
//! - the server's peak RSS.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::deploys::{Server, project_with_env};
use crate::plugins::{TempDir, percentile};

const PROJECT: &str = "bench";
const APP: &str = "pipe";

fn parse_time(v: &Value) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(v.as_str()?, &Rfc3339).ok()
}

fn since(later: OffsetDateTime, earlier: OffsetDateTime) -> Duration {
    Duration::try_from(later - earlier).unwrap_or_default()
}

pub async fn run(concurrent: usize) -> anyhow::Result<()> {
    let dir = TempDir::new("pipelines")?;
    let server = Arc::new(Server::start(&dir.0, 3).await?);
    project_with_env(&server, PROJECT, "test", "Test", "bench-pipe").await?;
    server
        .call(
            "POST",
            &format!("/api/v1/projects/{PROJECT}/apps"),
            Some(json!({"name": APP, "category": "MICRO_SERVICE"})),
        )
        .await?;
    let step = |i: usize| {
        if i % 2 == 0 {
            json!({"id": format!("s{i}"), "type": "echo", "params": {"n": i}})
        } else {
            json!({"id": format!("s{i}"), "type": "hello", "params": {"name": format!("step {i}")}})
        }
    };
    let pipeline = server
        .call(
            "POST",
            &format!("/api/v1/projects/{PROJECT}/apps/{APP}/pipelines"),
            Some(json!({"name": "trivial", "stages": [
                {"name": "one", "steps": [step(0), step(1)]},
                {"name": "two", "steps": [step(2), step(3), step(4)]},
            ]})),
        )
        .await?;
    let id = pipeline["id"].as_str().context("pipeline id")?.to_owned();
    let runs_path = format!("/api/v1/projects/{PROJECT}/apps/{APP}/pipelines/{id}/runs");

    let mut starts = Vec::with_capacity(concurrent);
    for _ in 0..concurrent {
        let server = server.clone();
        let path = runs_path.clone();
        starts.push(tokio::spawn(async move {
            server
                .call("POST", &path, Some(json!({"branch": "main"})))
                .await
        }));
    }
    let mut ids = Vec::with_capacity(concurrent);
    for start in starts {
        let run = start.await??;
        ids.push(run["id"].as_str().context("run id")?.to_owned());
    }

    let mut finished: Vec<Value> = Vec::with_capacity(concurrent);
    let mut pending = ids.clone();
    let mut looks = 0;
    while !pending.is_empty() {
        looks += 1;
        if looks > 1200 {
            bail!("{} runs still going after 10 minutes", pending.len());
        }
        let mut still = Vec::new();
        for run in pending {
            let body = server
                .call("GET", &format!("{runs_path}/{run}"), None)
                .await?;
            match body["status"].as_str() {
                Some("Succeeded") => finished.push(body),
                Some("Failed" | "Aborted") => {
                    bail!("run {run} ended {}: {}", body["status"], body["message"])
                }
                _ => still.push(run),
            }
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let last_end = finished
        .iter()
        .filter_map(|r| parse_time(&r["finishedAt"]))
        .max()
        .context("finish times")?;
    let first_start = finished
        .iter()
        .filter_map(|r| parse_time(&r["createdAt"]))
        .min()
        .context("start times")?;
    let wall = since(last_end, first_start).max(Duration::from_millis(1));

    let mut scheduling = Vec::new();
    let mut plugin_cost = Vec::new();
    let mut native_cost = Vec::new();
    for run in &finished {
        let mut previous_end = parse_time(&run["startedAt"]);
        for step in run["steps"].as_array().into_iter().flatten() {
            if let (Some(end), Some(start)) = (previous_end, parse_time(&step["startedAt"])) {
                scheduling.push(since(start, end));
            }
            previous_end = parse_time(&step["finishedAt"]);
            for execution in step["executions"].as_array().into_iter().flatten() {
                let cost = Duration::from_micros(execution["durationUs"].as_u64().unwrap_or(0));
                if execution["plugin"] == "host" {
                    native_cost.push(cost);
                } else {
                    plugin_cost.push(cost);
                }
            }
        }
    }
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let plugin_p50 = percentile(&mut plugin_cost, 0.5);
    let native_p50 = percentile(&mut native_cost, 0.5);
    println!("pipelines: {concurrent} concurrent runs of 5 steps (echo, hello, echo, hello, echo)");
    println!(
        "  runs/s                         {:8.1}   ({} runs in {:.2} s)",
        concurrent as f64 / wall.as_secs_f64(),
        concurrent,
        wall.as_secs_f64()
    );
    println!(
        "  step scheduling latency p50    {:8.1} ms",
        us(percentile(&mut scheduling, 0.5)) / 1000.0
    );
    println!(
        "  step scheduling latency p99    {:8.1} ms",
        us(percentile(&mut scheduling, 0.99)) / 1000.0
    );
    println!("  plugin step (hello) p50        {:8.1} µs", us(plugin_p50));
    println!("  native step (echo) p50         {:8.1} µs", us(native_p50));
    // The engine meters in whole microseconds: a native step under 1 µs reads 0, and a
    // ratio to it would mean nothing.
    let ratio = if us(native_p50) >= 1.0 {
        format!("{:.0}× the native step", us(plugin_p50) / us(native_p50))
    } else {
        "the native step takes under 1 µs".to_owned()
    };
    println!(
        "  plugin step overhead           {:8.1} µs   ({ratio})",
        us(plugin_p50) - us(native_p50),
    );
    println!(
        "  server peak RSS                {:8.1} MiB",
        server.memory_kib("VmHWM:") as f64 / 1024.0
    );
    Ok(())
}
