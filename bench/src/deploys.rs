//! `deploys`: change orders at scale, through the REST API of a real `wharf serve`.
//!
//! Starts `wharf serve` (this binary's `wharf` mode) on loopback with the embedded cluster
//! at time scale 0, creates 1,000 apps and deploys each once (one change order per app),
//! then runs 100 concurrent redeploys in two AUTO batches to completion. Prints change
//! orders per second for both phases, p50/p99 of `GET` on a deployment and of a page of
//! the 1,000-app list (500 per page, the largest page) measured side by side, and the
//! server's resident memory (now and peak, from /proc).
//!
//! `cargo run --release -p wharf-bench -- deploys [APPS] [CONCURRENT]`

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::plugins::{TempDir, percentile};

const PASSWORD: &str = "bench-admin-password";
const PROJECT: &str = "bench";
const ENV: &str = "load";
const NAMESPACE: &str = "bench-load";
/// Requests in flight while setting up.
const SETUP_CONCURRENCY: usize = 16;
const SAMPLES: usize = 400;

pub(crate) struct Server {
    child: Child,
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    pub(crate) async fn start(data: &std::path::Path, nodes: usize) -> anyhow::Result<Server> {
        let exe = std::env::current_exe()?;
        let mut child = Command::new(exe)
            .args([
                "wharf",
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--kube-listen",
                "127.0.0.1:0",
                "--kube-gateway-listen",
                "off",
            ])
            .args(["--kube-time-scale", "0", "--kube-nodes", &nodes.to_string()])
            .arg("--data-dir")
            .arg(data)
            .env("WHARF_ADMIN_PASSWORD", PASSWORD)
            .env("WHARF_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting wharf serve")?;
        let stdout = child.stdout.take().context("stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(address) = line.strip_prefix("wharf listening on ") {
                    let _ = tx.send(address.trim().to_owned());
                }
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(120))
            .context("wharf serve did not print its address")?;
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .timeout(Duration::from_secs(60))
            .build()?;
        let mut server = Server {
            child,
            base,
            token: String::new(),
            http,
        };
        for _ in 0..1200 {
            if let Ok(r) = server
                .http
                .get(format!("{}/readyz", server.base))
                .send()
                .await
                && r.status().is_success()
            {
                let login = server
                    .call(
                        "POST",
                        "/api/v1/auth/login",
                        Some(json!({"username": "admin", "password": PASSWORD})),
                    )
                    .await?;
                server.token = login["token"].as_str().context("token")?.to_owned();
                return Ok(server);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("wharf serve did not become ready")
    }

    pub(crate) async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let method = reqwest::Method::from_bytes(method.as_bytes())?;
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if !self.token.is_empty() {
            request = request.bearer_auth(&self.token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("{method} {path} answered {status}: {text}");
        }
        Ok(if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)?
        })
    }

    pub(crate) fn memory_kib(&self, field: &str) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|text| {
                text.lines()
                    .find(|l| l.starts_with(field))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(0)
    }
}

/// Creates project `project` with a TEST environment `env` bound to `namespace` of the
/// embedded cluster.
pub(crate) async fn project_with_env(
    server: &Server,
    project: &str,
    env: &str,
    env_name: &str,
    namespace: &str,
) -> anyhow::Result<()> {
    server
        .call(
            "POST",
            "/api/v1/projects",
            Some(json!({"code": project, "name": "Benchmark"})),
        )
        .await?;
    server
        .call(
            "POST",
            &format!("/api/v1/projects/{project}/environments"),
            Some(json!({"envCode": env, "envName": env_name, "envType": "TEST"})),
        )
        .await?;
    server
        .call(
            "POST",
            &format!("/api/v1/projects/{project}/environments/{env}/bindings"),
            Some(json!({"cluster": "embedded", "namespace": namespace, "createNamespace": true})),
        )
        .await?;
    Ok(())
}

fn app_name(i: usize) -> String {
    format!("app{i:05}")
}

/// Runs `work(i)` for `0..n` with at most `limit` in flight.
async fn fan_out<F, Fut>(n: usize, limit: usize, work: F) -> anyhow::Result<()>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(limit));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let permit = permits.clone().acquire_owned().await?;
        let future = work(i);
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            future.await
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

/// Waits until every change order has ended; fails if one did not succeed.
async fn until_done(server: &Arc<Server>, ids: &[String], timeout: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut pending: Vec<String> = ids.to_vec();
    while !pending.is_empty() {
        if started.elapsed() > timeout {
            bail!(
                "{} change orders still running after {timeout:?}",
                pending.len()
            );
        }
        let mut still = Vec::new();
        for id in pending {
            let change = server
                .call("GET", &format!("/api/v1/change-orders/{id}"), None)
                .await?;
            match change["state"].as_str() {
                Some("succeeded") => {}
                Some("failed" | "aborted" | "rejected" | "rolled_back") => {
                    bail!(
                        "change order {id} ended {}: {}",
                        change["state"],
                        change["error"]
                    )
                }
                _ => still.push(id),
            }
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

/// Issues `body` to `POST <deployment>/<verb>` for apps `0..n` at once; returns the ids.
async fn change_all(
    server: &Arc<Server>,
    n: usize,
    limit: usize,
    verb: &str,
    body: Value,
) -> anyhow::Result<Vec<String>> {
    let ids = Arc::new(std::sync::Mutex::new(Vec::with_capacity(n)));
    let verb = verb.to_owned();
    fan_out(n, limit, |i| {
        let (server, ids, body, verb) = (server.clone(), ids.clone(), body.clone(), verb.clone());
        async move {
            let path = format!(
                "/api/v1/projects/{PROJECT}/apps/{}/deployments/{ENV}/{verb}",
                app_name(i)
            );
            let accepted = server.call("POST", &path, Some(body)).await?;
            let id = accepted["changeOrderId"]
                .as_str()
                .context("changeOrderId")?
                .to_owned();
            ids.lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?
                .push(id);
            Ok(())
        }
    })
    .await?;
    let ids = ids.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clone();
    Ok(ids)
}

/// Latencies of `GET path` from 4 workers, SAMPLES in all.
async fn sample(server: &Arc<Server>, path: &str) -> anyhow::Result<Vec<Duration>> {
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (server, path) = (server.clone(), path.to_owned());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(SAMPLES / 4);
            for _ in 0..SAMPLES / 4 {
                let t = Instant::now();
                server.call("GET", &path, None).await?;
                latencies.push(t.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await??);
    }
    Ok(all)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub async fn run(apps: usize, concurrent: usize) -> anyhow::Result<()> {
    let dir = TempDir::new("deploys")?;
    // 110 pods per simulated node; room for every app plus the surge of a rollout.
    let nodes = (apps * 2).div_ceil(110).max(3);
    let server = Arc::new(Server::start(&dir.0, nodes).await?);
    let rss_start = server.memory_kib("VmRSS:");

    project_with_env(&server, PROJECT, ENV, "Load test", NAMESPACE).await?;

    let started = Instant::now();
    fan_out(apps, SETUP_CONCURRENCY, |i| {
        let server = server.clone();
        async move {
            server
                .call(
                    "POST",
                    &format!("/api/v1/projects/{PROJECT}/apps"),
                    Some(json!({"name": app_name(i), "category": "MICRO_SERVICE"})),
                )
                .await
                .map(|_| ())
        }
    })
    .await?;
    let create_apps = started.elapsed();

    let started = Instant::now();
    let first = change_all(
        &server,
        apps,
        concurrent,
        "deploy",
        json!({"image": "nginx:1.24", "replicas": 1}),
    )
    .await?;
    until_done(&server, &first, Duration::from_secs(1800)).await?;
    let first_deploys = started.elapsed();

    // The measured phase: `concurrent` change orders at once, each a 2-batch AUTO rollout.
    let started = Instant::now();
    let body = json!({"image": "nginx:1.25", "replicas": 2,
        "deploymentStrategy": {"batchList": [{"batchSeq": 1, "instNum": 1}, {"batchSeq": 2, "instNum": 1}],
                               "betweenBatchProcessingMode": "AUTO", "batchWaitTime": 0}});
    let rollouts = change_all(&server, concurrent.min(apps), concurrent, "deploy", body).await?;
    until_done(&server, &rollouts, Duration::from_secs(600)).await?;
    let rollout_time = started.elapsed();

    let deployment = format!(
        "/api/v1/projects/{PROJECT}/apps/{}/deployments/{ENV}",
        app_name(apps / 2)
    );
    let list = format!("/api/v1/projects/{PROJECT}/apps?pageSize=500");
    let total = server.call("GET", &list, None).await?["total"]
        .as_u64()
        .unwrap_or(0);
    anyhow::ensure!(
        total as usize == apps,
        "the app list has {total} apps, not {apps}"
    );
    let (mut gets, mut lists) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        gets.extend(sample(&server, &deployment).await?);
        lists.extend(sample(&server, &list).await?);
    }
    let rss_end = server.memory_kib("VmRSS:");
    let rss_peak = server.memory_kib("VmHWM:");

    let rate = |n: usize, d: Duration| n as f64 / d.as_secs_f64();
    println!(
        "# deploys benchmark ({apps} apps, one deployment each, {nodes} simulated nodes, time scale 0)"
    );
    println!(
        "  create {apps} apps (REST, {SETUP_CONCURRENCY} at a time)   {:8.2} s  {:7.1} apps/s",
        create_apps.as_secs_f64(),
        rate(apps, create_apps)
    );
    println!(
        "  first deploy of each app ({concurrent} in flight)  {:8.2} s  {:7.1} change orders/s",
        first_deploys.as_secs_f64(),
        rate(apps, first_deploys)
    );
    println!(
        "  {} concurrent 2-batch AUTO rollouts          {:8.2} s  {:7.1} change orders/s",
        rollouts.len(),
        rollout_time.as_secs_f64(),
        rate(rollouts.len(), rollout_time)
    );
    println!(
        "  GET one deployment            p50 {:6.2} ms  p99 {:6.2} ms  ({} samples, 4 workers)",
        ms(percentile(&mut gets.clone(), 0.5)),
        ms(percentile(&mut gets, 0.99)),
        SAMPLES * 2
    );
    println!(
        "  GET 500 of the {apps} apps       p50 {:6.2} ms  p99 {:6.2} ms  (ratio to one deployment: {:.1}x at p99)",
        ms(percentile(&mut lists.clone(), 0.5)),
        ms(percentile(&mut lists.clone(), 0.99)),
        ms(percentile(&mut lists, 0.99)) / ms(percentile(&mut gets.clone(), 0.99)).max(1e-9)
    );
    println!(
        "  server RSS: {:.0} MiB at start, {:.0} MiB at the end, peak {:.0} MiB",
        rss_start as f64 / 1024.0,
        rss_end as f64 / 1024.0,
        rss_peak as f64 / 1024.0
    );
    Ok(())
}
