//! `cluster`: the embedded Kubernetes API simulator under load.
//!
//! 1. Rollout: 1,000 Deployments × 3 replicas (10 namespaces) created through kube-rs
//!    in-process with 16 requests in flight, at time scale 0; a `watcher` on Deployments
//!    times how long until every one reports `availableReplicas == 3`. The resourceVersion
//!    is sampled meanwhile (writes/s of API + controllers), and the final state is checked
//!    (statuses, conditions, pods per node).
//! 2. API stalls: GETs back to back with no writes, on the loaded simulator and on one
//!    holding a single Deployment (run first, alone). The controllers hold the world's
//!    lock for a whole pass over every object, every 100 ms tick and after every write.
//! 3. Watch event latency: a merge patch of a unique annotation, one object at a time, on
//!    Deployments and on Pods, timed from the write's acknowledgement (and from sending
//!    it) to the `watcher` receiving the MODIFIED event; the one-Deployment simulator is
//!    the baseline. In-process the event can arrive before the acknowledgement: those
//!    count as 0 and are counted.
//! 4. Peak RSS: VmRSS before, VmHWM after the rollout and at the end.
//! 5. `kubectl get pods -A` (and `-o json`) against the simulator served on loopback
//!    HTTPS, median of a few runs after a warm-up, side by side with the same list through
//!    kube-rs over the same HTTPS endpoint and in-process; one more run with `-v=6`
//!    splits kubectl's time into the server's answers and kubectl's own work.
//!
//! `cargo run --release -p wharf-bench -- cluster [DEPLOYMENTS]` (default 1000). kubectl
//! is `$WHARF_TEST_KUBECTL`, else `kubectl` on PATH; without one that part is skipped.
//! `WHARF_BENCH_DEBUG=1` adds profiling output on stderr: the rollout's progress every
//! 250 ms, and whether a write starts a controller pass at once.
//!
//! Correctness is checked on the way and printed as `WRONG …` lines, not asserted: the
//! settled Deployments' status and conditions, Progressing=False seen during the rollout,
//! and a second watcher that lists in pages of 50 mid-rollout and must end up agreeing.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Event as CoreEvent, Namespace, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use serde_json::json;
use tokio::sync::mpsc;
use wharf_host::cluster::{SimConfig, Simulator, loopback};

use crate::plugins::{TempDir, micros, percentile};

const REPLICAS: i32 = 3;
const NAMESPACES: usize = 10;
const IN_FLIGHT: usize = 16;
/// Each simulated node takes 110 pods.
const PODS_PER_NODE: usize = 110;
/// Give up waiting for the rollout after this long (and report how far it got).
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// Sequential writes timed through the watch, per kind.
const PROBES: usize = 150;
const KUBECTL_RUNS: usize = 5;
const PROBE_ANNOTATION: &str = "wharf.dev/bench-probe";
const STALL_SPAN: Duration = Duration::from_millis(1500);

fn proc_status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time (user + system) this process has used.
fn cpu_time() -> Duration {
    let ticks = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|text| {
            // Fields after the command name, which is in parentheses.
            let rest = text
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .collect::<Vec<_>>();
            Some(rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0);
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}

/// The share of one core this process uses while doing nothing for `span`.
async fn idle_cpu(span: Duration) -> f64 {
    let (cpu, wall) = (cpu_time(), Instant::now());
    tokio::time::sleep(span).await;
    (cpu_time() - cpu).as_secs_f64() / wall.elapsed().as_secs_f64()
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(samples: &mut [Duration]) -> Duration {
    percentile(samples, 0.5)
}

fn namespace_of(i: usize) -> String {
    format!("bench-{}", i % NAMESPACES)
}

fn deployment(i: usize) -> anyhow::Result<Deployment> {
    let app = format!("app-{i:04}");
    Ok(serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": app, "labels": {"app": app, "wharf.dev/bench": "cluster"}},
        "spec": {
            "replicas": REPLICAS,
            "selector": {"matchLabels": {"app": app}},
            "template": {
                "metadata": {"labels": {"app": app}},
                "spec": {"containers": [{
                    "name": "web",
                    "image": "registry.example/web:1.0",
                    "ports": [{"containerPort": 8080}],
                }]},
            },
        },
    }))?)
}

fn available(d: &Deployment) -> i32 {
    d.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

fn key(meta: &kube::api::ObjectMeta) -> String {
    format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or(""),
        meta.name.as_deref().unwrap_or("")
    )
}

/// What the rollout phase measured.
struct Rollout {
    deployments: usize,
    create_elapsed: Duration,
    create_latencies: Vec<Duration>,
    ready_at: Option<Duration>,
    half_ready_at: Option<Duration>,
    ready_count: usize,
    rv_growth: u64,
    watch_events: usize,
    lists: usize,
    deadline_exceeded: usize,
    late_complete: bool,
    late_ready: usize,
    late_lists: usize,
    samples: Vec<(Duration, u64, usize)>,
}

pub async fn run(deployments: usize) -> anyhow::Result<()> {
    let rss_before = proc_status_kib("VmRSS:");
    let nodes = (deployments * REPLICAS as usize).div_ceil(PODS_PER_NODE) * 4 / 3 + 3;
    println!(
        "# cluster benchmark ({deployments} Deployments × {REPLICAS} replicas in {NAMESPACES} namespaces, \
         {nodes} simulated nodes, time scale 0, ephemeral)"
    );
    let started = Instant::now();
    // The baseline first, while nothing else runs in this process: a simulator holding
    // one Deployment (its controllers keep ticking for the rest of the run; there is no
    // way to stop a Simulator).
    let small = Simulator::start(SimConfig {
        store: None,
        time_scale: 0.0,
        nodes: 3,
        ..Default::default()
    })?;
    let small_client = small.client();
    create_namespaces(&small_client).await?;
    Api::<Deployment>::namespaced(small_client.clone(), &namespace_of(0))
        .create(&PostParams::default(), &deployment(0)?)
        .await?;
    wait_ready(&small_client, 1, Duration::from_secs(10)).await?;
    let empty_deploy = probe::<Deployment>(&small_client, PROBES, 1).await?;
    let empty_pod = probe::<Pod>(&small_client, PROBES, REPLICAS as usize).await?;
    let empty_stalls = stalls(&small_client, STALL_SPAN).await?;
    let empty_cpu = idle_cpu(STALL_SPAN).await;
    drop((small, small_client));

    let sim = Simulator::start(SimConfig {
        store: None,
        time_scale: 0.0,
        nodes,
        ..Default::default()
    })?;
    let client = sim.client();
    let rollout = rollout(&sim, &client, deployments).await?;
    let rss_after_rollout = proc_status_kib("VmRSS:");
    let hwm_after_rollout = proc_status_kib("VmHWM:");
    print_rollout(&rollout);
    check_state(&client, deployments).await?;

    println!(
        "API stalls with no writes (GET of a Namespace back to back for {:.1} s; controller passes hold the world lock):",
        STALL_SPAN.as_secs_f64()
    );
    let loaded_stalls = stalls(&client, STALL_SPAN).await?;
    let loaded_cpu = idle_cpu(STALL_SPAN).await;
    print_stalls(
        &format!(
            "{} Deployments, {} Pods",
            deployments,
            deployments * REPLICAS as usize
        ),
        &loaded_stalls,
    );
    print_stalls("1 Deployment, 3 Pods (run first, alone)", &empty_stalls);
    println!(
        "  CPU of this process with no requests at all: {:.0}% of a core with the loaded simulator, {:.0}% with only the 1-Deployment one",
        loaded_cpu * 100.0,
        empty_cpu * 100.0
    );
    if std::env::var_os("WHARF_BENCH_DEBUG").is_some() {
        write_wakes_pass(&client).await?;
    }

    println!(
        "watch event latency (merge patch of an annotation, one object at a time; {PROBES} per kind; the 1-object figures ran first, alone):"
    );
    let loaded_deploy = probe::<Deployment>(&client, PROBES, deployments).await?;
    let loaded_pod = probe::<Pod>(&client, PROBES, deployments * REPLICAS as usize).await?;
    let mut latency_rows = Vec::new();
    for (label, loaded, empty) in [
        ("Deployment", loaded_deploy, empty_deploy),
        ("Pod", loaded_pod, empty_pod),
    ] {
        let row = print_probe(label, loaded, empty);
        latency_rows.push((label, row));
    }

    let kubectl = kubectl_part(&sim, &client).await?;
    let hwm_end = proc_status_kib("VmHWM:");
    let rss_end = proc_status_kib("VmRSS:");
    println!("memory (this process):");
    println!(
        "  RSS before the simulator       {:8.1} MiB",
        mib(rss_before)
    );
    println!(
        "  RSS after the rollout          {:8.1} MiB   (peak so far, VmHWM {:.1} MiB)",
        mib(rss_after_rollout),
        mib(hwm_after_rollout)
    );
    println!(
        "  RSS at the end                 {:8.1} MiB   (peak, VmHWM {:.1} MiB, includes serving the lists)",
        mib(rss_end),
        mib(hwm_end)
    );

    println!();
    println!(
        "## summary ({:.0} s in all)",
        started.elapsed().as_secs_f64()
    );
    println!(
        "  create {} Deployments ({IN_FLIGHT} in flight)   {:8.0} creates/s",
        rollout.deployments,
        rollout.deployments as f64 / rollout.create_elapsed.as_secs_f64()
    );
    match rollout.ready_at {
        Some(at) => println!(
            "  time to all {} available             {:8.2} s (from the first create)",
            rollout.deployments,
            at.as_secs_f64()
        ),
        None => println!(
            "  time to all available                  NOT reached in {:.0} s ({} of {} available)",
            READY_TIMEOUT.as_secs_f64(),
            rollout.ready_count,
            rollout.deployments
        ),
    }
    for (label, row) in &latency_rows {
        println!(
            "  watch latency {label:<10}               ack→event p50 {:.1} µs, p99 {:.1} µs ({} of {} before the ack); write→event p50 {:.1} ms, p99 {:.1} ms ({:.0}x the 1-object p99)",
            row.ack_p50,
            row.ack_p99,
            row.early,
            row.probes,
            row.send_p50 / 1e3,
            row.send_p99 / 1e3,
            row.ratio
        );
    }
    println!(
        "  idle API stall (controller pass)       max {:.0} ms, blocked {:.0}% of the time, {:.0}% of a core (1 Deployment: max {:.1} ms, {:.1}%, {:.0}%)",
        millis(loaded_stalls.max),
        loaded_stalls.stalled_share * 100.0,
        loaded_cpu * 100.0,
        millis(empty_stalls.max),
        empty_stalls.stalled_share * 100.0,
        empty_cpu * 100.0
    );
    println!(
        "  peak RSS                               {:8.1} MiB after rollout, {:.1} MiB at end (from {:.1} MiB)",
        mib(hwm_after_rollout),
        mib(hwm_end),
        mib(rss_before)
    );
    match kubectl {
        Some(k) => {
            println!(
                "  kubectl get pods -A ({} pods)       {:8.1} ms median  (-o json {:.1} ms; kube-rs https {:.1} ms, in-process {:.1} ms)",
                k.pods,
                millis(k.table),
                millis(k.json),
                millis(k.kube_https),
                millis(k.kube_inprocess)
            );
            println!(
                "  kubectl table / kube-rs in-process list = {:.1}x; kubectl -o json / kube-rs https = {:.1}x",
                k.table.as_secs_f64() / k.kube_inprocess.as_secs_f64(),
                k.json.as_secs_f64() / k.kube_https.as_secs_f64()
            );
        }
        None => println!("  kubectl get pods -A                    skipped (no kubectl)"),
    }
    Ok(())
}

async fn create_namespaces(client: &kube::Client) -> anyhow::Result<()> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for i in 0..NAMESPACES {
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": namespace_of(i)}}))?;
        namespaces.create(&PostParams::default(), &ns).await?;
    }
    Ok(())
}

/// What a Deployment watcher saw.
#[derive(Default)]
struct Counters {
    /// Deployments with all replicas available now.
    ready: AtomicUsize,
    events: AtomicUsize,
    /// Lists (the first, and one after every watch that ended in an error such as 410).
    lists: AtomicUsize,
    /// Deployments seen at least once with Progressing=False (ProgressDeadlineExceeded).
    deadline_exceeded: AtomicUsize,
}

fn deadline_exceeded(d: &Deployment) -> bool {
    d.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| {
            c.iter().any(|c| {
                c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
            })
        })
}

/// Counts Deployments with all replicas available, as a watcher sees them; sends the
/// instant the count first reaches `want` (and half of it).
fn spawn_ready_tracker(
    client: kube::Client,
    want: usize,
    config: watcher::Config,
    counters: Arc<Counters>,
) -> tokio::sync::oneshot::Receiver<(Option<Instant>, Instant)> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let api: Api<Deployment> = Api::all(client);
        let mut stream = watcher(api, config).boxed();
        let mut state: HashMap<String, bool> = HashMap::new();
        let mut stalled: std::collections::HashSet<String> = Default::default();
        let mut half = None;
        while let Some(event) = stream.next().await {
            let event = match event {
                Ok(event) => event,
                Err(error) => {
                    eprintln!("deployment watcher: {error}");
                    continue;
                }
            };
            counters.events.fetch_add(1, Ordering::Relaxed);
            match event {
                watcher::Event::Apply(d) | watcher::Event::InitApply(d) => {
                    if deadline_exceeded(&d) && stalled.insert(key(&d.metadata)) {
                        counters.deadline_exceeded.fetch_add(1, Ordering::Relaxed);
                    }
                    state.insert(key(&d.metadata), available(&d) == REPLICAS);
                }
                watcher::Event::Delete(d) => {
                    state.remove(&key(&d.metadata));
                }
                watcher::Event::Init => {
                    counters.lists.fetch_add(1, Ordering::Relaxed);
                }
                watcher::Event::InitDone => {}
            }
            let count = state.values().filter(|r| **r).count();
            counters.ready.store(count, Ordering::Relaxed);
            if half.is_none() && count * 2 >= want {
                half = Some(Instant::now());
            }
            if count >= want {
                let _ = tx.send((half, Instant::now()));
                return;
            }
        }
    });
    rx
}

async fn wait_ready(client: &kube::Client, want: usize, timeout: Duration) -> anyhow::Result<()> {
    let rx = spawn_ready_tracker(
        client.clone(),
        want,
        watcher::Config::default(),
        Arc::default(),
    );
    tokio::time::timeout(timeout, rx)
        .await
        .context("waiting for the Deployment to become available")??;
    Ok(())
}

async fn rollout(
    sim: &Simulator,
    client: &kube::Client,
    deployments: usize,
) -> anyhow::Result<Rollout> {
    create_namespaces(client).await?;
    let counters = Arc::new(Counters::default());
    let done = spawn_ready_tracker(
        client.clone(),
        deployments,
        watcher::Config::default(),
        counters.clone(),
    );
    // A second watcher that lists in pages of 50 while the rollout churns (once a tenth
    // is available): it must end up with the same view.
    let late = Arc::new(Counters::default());
    let late_done = {
        let (client, counters, late) = (client.clone(), counters.clone(), late.clone());
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            while counters.ready.load(Ordering::Relaxed) * 10 < deployments {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let done = spawn_ready_tracker(
                client,
                deployments,
                watcher::Config::default().page_size(50),
                late,
            );
            let _ = tx.send(done.await);
        });
        rx
    };
    // Let the watcher list (nothing) and open its watch before the first create.
    tokio::time::sleep(Duration::from_millis(100)).await;

    let rv_start = sim.resource_version();
    let t0 = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (sim, counters, stop) = (sim.clone(), counters.clone(), stop.clone());
        let (late, debug_client) = (late.clone(), client.clone());
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                samples.push((
                    t0.elapsed(),
                    sim.resource_version(),
                    counters.ready.load(Ordering::Relaxed),
                ));
                if std::env::var_os("WHARF_BENCH_DEBUG").is_some() {
                    // What a list says, to tell a slow simulator from a slow watch.
                    let listed = Api::<Deployment>::all(debug_client.clone())
                        .list(&ListParams::default())
                        .await
                        .map(|l| l.items.iter().filter(|d| available(d) == REPLICAS).count())
                        .unwrap_or(0);
                    eprintln!(
                        "debug: {:.2} s rv {} available: watcher {} (events {}), list {listed}, paged watcher {} (events {})",
                        t0.elapsed().as_secs_f64(),
                        sim.resource_version(),
                        counters.ready.load(Ordering::Relaxed),
                        counters.events.load(Ordering::Relaxed),
                        late.ready.load(Ordering::Relaxed),
                        late.events.load(Ordering::Relaxed),
                    );
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            samples.push((
                t0.elapsed(),
                sim.resource_version(),
                counters.ready.load(Ordering::Relaxed),
            ));
            samples
        })
    };
    let create_latencies: Vec<Duration> = futures::stream::iter(0..deployments)
        .map(|i| {
            let api: Api<Deployment> = Api::namespaced(client.clone(), &namespace_of(i));
            async move {
                let object = deployment(i)?;
                let t = Instant::now();
                api.create(&PostParams::default(), &object)
                    .await
                    .with_context(|| format!("creating deployment {i}"))?;
                anyhow::Ok(t.elapsed())
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .try_collect()
        .await?;
    let create_elapsed = t0.elapsed();
    let outcome = tokio::time::timeout(READY_TIMEOUT.saturating_sub(create_elapsed), done).await;
    let (half_ready_at, ready_at) = match outcome {
        Ok(Ok((half, all))) => (half.map(|h| h - t0), Some(all - t0)),
        _ => (None, None),
    };
    stop.store(true, Ordering::Relaxed);
    let samples = sampler.await?;
    let late_complete = matches!(
        tokio::time::timeout(Duration::from_secs(3), late_done).await,
        Ok(Ok(Ok(_)))
    );
    Ok(Rollout {
        deployments,
        create_elapsed,
        create_latencies,
        ready_at,
        half_ready_at,
        ready_count: counters.ready.load(Ordering::Relaxed),
        rv_growth: sim.resource_version() - rv_start,
        watch_events: counters.events.load(Ordering::Relaxed),
        lists: counters.lists.load(Ordering::Relaxed),
        deadline_exceeded: counters.deadline_exceeded.load(Ordering::Relaxed),
        late_complete,
        late_ready: late.ready.load(Ordering::Relaxed),
        late_lists: late.lists.load(Ordering::Relaxed),
        samples,
    })
}

fn print_rollout(r: &Rollout) {
    let mut latencies = r.create_latencies.clone();
    println!("rollout:");
    println!(
        "  creates                {:8.2} s   {:8.0} creates/s   latency p50 {:.2} ms, p99 {:.2} ms",
        r.create_elapsed.as_secs_f64(),
        r.deployments as f64 / r.create_elapsed.as_secs_f64(),
        millis(percentile(&mut latencies, 0.5)),
        millis(percentile(&mut latencies, 0.99))
    );
    if let Some(half) = r.half_ready_at {
        println!("  half available at      {:8.2} s", half.as_secs_f64());
    }
    match r.ready_at {
        Some(at) => println!(
            "  all available at       {:8.2} s   (after the last create: {:.2} s)",
            at.as_secs_f64(),
            (at.saturating_sub(r.create_elapsed)).as_secs_f64()
        ),
        None => println!(
            "  NOT all available after {:.0} s: {} of {}",
            READY_TIMEOUT.as_secs_f64(),
            r.ready_count,
            r.deployments
        ),
    }
    let span = r.samples.last().map_or(Duration::ZERO, |s| s.0);
    println!(
        "  resourceVersion grew by {} ({:.0} writes/s, API + controllers); the Deployment watcher got {} events",
        r.rv_growth,
        r.rv_growth as f64 / span.as_secs_f64().max(1e-9),
        r.watch_events
    );
    if r.lists > 1 {
        println!(
            "  the Deployment watcher listed {} times (a watch ended, e.g. 410 Gone after lagging)",
            r.lists
        );
    }
    if r.deadline_exceeded > 0 {
        println!(
            "  WRONG status: {} Deployments reported Progressing=False/ProgressDeadlineExceeded during the rollout (time scale 0)",
            r.deadline_exceeded
        );
    }
    if r.late_complete {
        println!(
            "  a second watcher that listed in pages of 50 mid-rollout also saw all {} available ({} list(s))",
            r.deployments, r.late_lists
        );
    } else {
        println!(
            "  WRONG: a second watcher that listed in pages of 50 mid-rollout sees only {} of {} available 3 s after the first saw all ({} list(s)); \
             list pages are not one snapshot, so updates between the first and the last page are lost",
            r.late_ready, r.deployments, r.late_lists
        );
    }
    // A coarse profile: about ten evenly spaced samples.
    let step = (r.samples.len() / 10).max(1);
    let mut line = String::from("  progress (s: writes/s, available):");
    let mut previous: Option<&(Duration, u64, usize)> = None;
    for (i, sample) in r.samples.iter().enumerate() {
        if i % step != 0 && i + 1 != r.samples.len() {
            continue;
        }
        if let Some(p) = previous {
            let dt = (sample.0 - p.0).as_secs_f64().max(1e-9);
            line.push_str(&format!(
                " {:.1}: {:.0}, {};",
                sample.0.as_secs_f64(),
                (sample.1 - p.1) as f64 / dt,
                sample.2
            ));
        }
        previous = Some(sample);
    }
    println!("{line}");
}

/// Checks the settled state: every Deployment's status and conditions, pods per node.
async fn check_state(client: &kube::Client, deployments: usize) -> anyhow::Result<()> {
    let t = Instant::now();
    let list = Api::<Deployment>::all(client.clone())
        .list(&ListParams::default())
        .await?;
    let mut odd: BTreeMap<String, usize> = BTreeMap::new();
    let mut example: BTreeMap<String, String> = BTreeMap::new();
    for d in &list.items {
        let status = d.status.clone().unwrap_or_default();
        let condition = |kind: &str| {
            status
                .conditions
                .iter()
                .flatten()
                .find(|c| c.type_ == kind)
                .map(|c| {
                    format!(
                        "{}={}/{}",
                        kind,
                        c.status,
                        c.reason.as_deref().unwrap_or("")
                    )
                })
                .unwrap_or_else(|| format!("{kind}=missing"))
        };
        let mut problems = Vec::new();
        for (field, value) in [
            ("replicas", status.replicas),
            ("updatedReplicas", status.updated_replicas),
            ("readyReplicas", status.ready_replicas),
            ("availableReplicas", status.available_replicas),
        ] {
            if value != Some(REPLICAS) {
                problems.push(format!("{field}={value:?}"));
            }
        }
        if status.unavailable_replicas.unwrap_or(0) != 0 {
            problems.push(format!(
                "unavailableReplicas={:?}",
                status.unavailable_replicas
            ));
        }
        if status.observed_generation != d.metadata.generation {
            problems.push("observedGeneration behind".into());
        }
        let available = condition("Available");
        if available != "Available=True/MinimumReplicasAvailable" {
            problems.push(available);
        }
        let progressing = condition("Progressing");
        if progressing != "Progressing=True/NewReplicaSetAvailable" {
            problems.push(progressing);
        }
        for problem in problems {
            *odd.entry(problem.clone()).or_default() += 1;
            example.entry(problem).or_insert_with(|| key(&d.metadata));
        }
    }
    let pods = Api::<Pod>::all(client.clone())
        .list(&ListParams::default())
        .await?;
    let mut per_node: HashMap<String, usize> = HashMap::new();
    let mut not_ready = 0;
    for pod in &pods.items {
        let spec_node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
        *per_node.entry(spec_node.unwrap_or_default()).or_default() += 1;
        let ready = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        if !ready {
            not_ready += 1;
        }
    }
    let sets = Api::<ReplicaSet>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items
        .len();
    let events = Api::<CoreEvent>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items
        .len();
    println!(
        "  state: {} Deployments, {sets} ReplicaSets, {} Pods ({not_ready} not Ready) on {} nodes (max {} per node), {events} Events; checked in {:.0} ms",
        list.items.len(),
        pods.items.len(),
        per_node.len(),
        per_node.values().max().copied().unwrap_or(0),
        millis(t.elapsed())
    );
    if list.items.len() != deployments {
        println!(
            "  WRONG: {} Deployments listed, {deployments} created",
            list.items.len()
        );
    }
    for (problem, count) in &odd {
        println!(
            "  WRONG status: {count} Deployments with {problem} (e.g. {})",
            example[problem]
        );
    }
    Ok(())
}

/// Sequential writes timed through a watcher: (ack→event, send→event, write round
/// trip, events that arrived before the write was acknowledged).
struct Probe {
    after_send: Vec<Duration>,
    after_ack: Vec<Duration>,
    round_trip: Vec<Duration>,
    early: usize,
    objects: usize,
}

async fn probe<K>(client: &kube::Client, n: usize, objects: usize) -> anyhow::Result<Probe>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
    K::DynamicType: Default,
{
    // The objects to patch, by name.
    let all: Api<K> = Api::all(client.clone());
    let targets: Vec<(String, String)> = all
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .map(|o| {
            (
                o.meta().namespace.clone().unwrap_or_default(),
                o.meta().name.clone().unwrap_or_default(),
            )
        })
        .collect();
    if targets.is_empty() {
        bail!("nothing to patch");
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<(u64, Instant)>();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let watching = tokio::spawn(async move {
        let mut stream = watcher(all, watcher::Config::default()).boxed();
        let mut ready_tx = Some(ready_tx);
        while let Some(event) = stream.next().await {
            match event {
                Ok(watcher::Event::Apply(object)) => {
                    let at = Instant::now();
                    if let Some(seq) = object
                        .meta()
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get(PROBE_ANNOTATION))
                        .and_then(|v| v.parse::<u64>().ok())
                        && tx.send((seq, at)).is_err()
                    {
                        return;
                    }
                }
                Ok(watcher::Event::InitDone) => {
                    if let Some(ready) = ready_tx.take() {
                        let _ = ready.send(());
                    }
                }
                Ok(_) => {}
                Err(error) => eprintln!("probe watcher: {error}"),
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(30), ready_rx)
        .await
        .context("the probe watcher's initial list")??;
    // The watch request goes out right after InitDone; give it a moment to be open.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_micros() as u64
        * 1000;
    let mut result = Probe {
        after_send: Vec::with_capacity(n),
        after_ack: Vec::with_capacity(n),
        round_trip: Vec::with_capacity(n),
        early: 0,
        objects,
    };
    for i in 0..n {
        let (namespace, name) = &targets[i * 7919 % targets.len()];
        let api: Api<K> = Api::namespaced(client.clone(), namespace);
        let seq = base + i as u64;
        let patch = json!({"metadata": {"annotations": {PROBE_ANNOTATION: seq.to_string()}}});
        let sent = Instant::now();
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        let acked = Instant::now();
        let received = loop {
            let (got, at) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .context("the watch event of a patch did not arrive in 10 s")?
                .context("the probe watcher ended")?;
            if got == seq {
                break at;
            }
        };
        if received < acked {
            result.early += 1;
        }
        result.after_send.push(received - sent);
        result
            .after_ack
            .push(received.saturating_duration_since(acked));
        result.round_trip.push(acked - sent);
    }
    watching.abort();
    Ok(result)
}

/// Prints one kind's probe, loaded vs the one-Deployment baseline; returns the loaded
/// figures for the summary.
fn print_probe(label: &str, mut loaded: Probe, mut empty: Probe) -> ProbeRow {
    let line = |which: &str, p: &mut Probe| {
        println!(
            "  {label:<10} {:>5} {which:<7}: ack→event p50 {:7.1} µs p99 {:8.1} µs ({:>3} before the ack) | write→event p50 {:7.1} µs p99 {:8.1} µs | write rtt p50 {:7.1} µs p99 {:8.1} µs",
            p.objects,
            micros(percentile(&mut p.after_ack, 0.5)),
            micros(percentile(&mut p.after_ack, 0.99)),
            p.early,
            micros(percentile(&mut p.after_send, 0.5)),
            micros(percentile(&mut p.after_send, 0.99)),
            micros(percentile(&mut p.round_trip, 0.5)),
            micros(percentile(&mut p.round_trip, 0.99)),
        );
    };
    line("objects", &mut loaded);
    line("object", &mut empty);
    let p50 = micros(percentile(&mut loaded.after_ack, 0.5));
    let p99 = micros(percentile(&mut loaded.after_ack, 0.99));
    let ratio = percentile(&mut loaded.after_send, 0.99).as_secs_f64()
        / percentile(&mut empty.after_send, 0.99)
            .as_secs_f64()
            .max(1e-9);
    println!("  {label:<10} write→event p99, loaded / 1 object = {ratio:.1}x");
    ProbeRow {
        ack_p50: p50,
        ack_p99: p99,
        early: loaded.early,
        probes: loaded.after_ack.len(),
        send_p50: micros(percentile(&mut loaded.after_send, 0.5)),
        send_p99: micros(percentile(&mut loaded.after_send, 0.99)),
        ratio,
    }
}

struct ProbeRow {
    ack_p50: f64,
    ack_p99: f64,
    early: usize,
    probes: usize,
    send_p50: f64,
    send_p99: f64,
    ratio: f64,
}

/// GETs one after another for `span`: (GETs/s, p50, p99, max, share of the time spent in
/// GETs slower than 20 ms). The controllers hold the world's lock for a whole pass.
async fn stalls(client: &kube::Client, span: Duration) -> anyhow::Result<Stalls> {
    let api: Api<Namespace> = Api::all(client.clone());
    let mut latencies = Vec::new();
    let t0 = Instant::now();
    while t0.elapsed() < span {
        let t = Instant::now();
        api.get("default").await?;
        latencies.push(t.elapsed());
    }
    let elapsed = t0.elapsed();
    let stalled: Duration = latencies
        .iter()
        .filter(|d| **d > Duration::from_millis(20))
        .sum();
    let rate = latencies.len() as f64 / elapsed.as_secs_f64();
    Ok(Stalls {
        rate,
        p50: percentile(&mut latencies, 0.5),
        p99: percentile(&mut latencies, 0.99),
        max: latencies.last().copied().unwrap_or_default(),
        stalled_share: stalled.as_secs_f64() / elapsed.as_secs_f64(),
    })
}

/// Profiling aid (`WHARF_BENCH_DEBUG=1`): does a write start a controller pass at once,
/// or only the periodic tick? Waits for a stall to end, writes, then times GETs for 80 ms
/// (less than the tick).
async fn write_wakes_pass(client: &kube::Client) -> anyhow::Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    for round in 0..5 {
        loop {
            let t = Instant::now();
            api.get("default").await?;
            if t.elapsed() > Duration::from_millis(50) {
                break;
            }
        }
        let patch = json!({"metadata": {"annotations": {PROBE_ANNOTATION: round.to_string()}}});
        let written = Instant::now();
        api.patch("bench-0", &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        let mut first_stall = None;
        while written.elapsed() < Duration::from_millis(80) && first_stall.is_none() {
            let t = Instant::now();
            api.get("default").await?;
            if t.elapsed() > Duration::from_millis(20) {
                first_stall = Some((millis(t - written), millis(t.elapsed())));
            }
        }
        eprintln!(
            "debug: after a write at the end of a pass, the next stall (starts ms after the write, lasts ms): {first_stall:?}"
        );
    }
    Ok(())
}

struct Stalls {
    rate: f64,
    p50: Duration,
    p99: Duration,
    max: Duration,
    stalled_share: f64,
}

fn print_stalls(label: &str, s: &Stalls) {
    println!(
        "  {label:<44} {:8.0} GET/s  p50 {:7.1} µs  p99 {:9.1} µs  max {:6.1} ms  blocked {:4.1}% of the time",
        s.rate,
        micros(s.p50),
        micros(s.p99),
        millis(s.max),
        s.stalled_share * 100.0
    );
}

struct KubectlFigures {
    pods: usize,
    table: Duration,
    json: Duration,
    kube_https: Duration,
    kube_inprocess: Duration,
}

fn kubectl_binary() -> Option<PathBuf> {
    let candidate = std::env::var_os("WHARF_TEST_KUBECTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("kubectl"));
    let works = std::process::Command::new(&candidate)
        .args(["version", "--client"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    works.then_some(candidate)
}

async fn kubectl(
    binary: &Path,
    kubeconfig: &Path,
    cache: &Path,
    extra: &[&str],
) -> anyhow::Result<(Duration, Vec<u8>)> {
    let t = Instant::now();
    let output = tokio::process::Command::new(binary)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(cache)
        .args(["get", "pods", "-A"])
        .args(extra)
        .output()
        .await
        .with_context(|| format!("running {}", binary.display()))?;
    let elapsed = t.elapsed();
    if !output.status.success() {
        bail!(
            "kubectl get pods -A {} failed: {}",
            extra.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok((elapsed, output.stdout))
}

/// "v1.32.4" from `kubectl version --client` of any age.
fn client_version(text: &str) -> String {
    if let Some(rest) = text.split("GitVersion:\"").nth(1) {
        return rest.split('"').next().unwrap_or("").to_owned();
    }
    text.lines()
        .next()
        .unwrap_or("")
        .trim_start_matches("Client Version: ")
        .to_owned()
}

/// One `kubectl get pods -A -v=6`: the requests it made and how long the server took
/// for them (kubectl logs "GET … 200 OK in N milliseconds").
async fn kubectl_requests(
    binary: &Path,
    kubeconfig: &Path,
    cache: &Path,
) -> anyhow::Result<(Duration, usize, Duration, Duration)> {
    let t = Instant::now();
    let output = tokio::process::Command::new(binary)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(cache)
        .args(["get", "pods", "-A", "-v=6"])
        .output()
        .await?;
    let elapsed = t.elapsed();
    let mut count = 0;
    let (mut sum, mut max) = (Duration::ZERO, Duration::ZERO);
    for line in String::from_utf8_lossy(&output.stderr).lines() {
        // kubectl ≤ 1.29: `GET https://… 200 OK in 12 milliseconds`;
        // ≥ 1.30: `"Response" verb="GET" url="https://…" status="200 OK" milliseconds=12`.
        let ms = if line.contains("GET https://") {
            line.rsplit_once(" in ")
                .and_then(|(_, tail)| tail.strip_suffix(" milliseconds"))
        } else if line.contains("\"Response\"") && line.contains("verb=\"GET\"") {
            line.rsplit_once("milliseconds=")
                .map(|(_, tail)| tail.split_whitespace().next().unwrap_or(""))
        } else {
            None
        };
        let Some(ms) = ms.and_then(|n| n.trim().parse::<u64>().ok()) else {
            continue;
        };
        count += 1;
        let d = Duration::from_millis(ms);
        sum += d;
        max = max.max(d);
    }
    Ok((elapsed, count, sum, max))
}

async fn kubectl_part(
    sim: &Simulator,
    client: &kube::Client,
) -> anyhow::Result<Option<KubectlFigures>> {
    let Some(binary) = kubectl_binary() else {
        println!(
            "kubectl: NOT FOUND ({} does not run `version --client`; set $WHARF_TEST_KUBECTL or put kubectl on PATH): skipping `kubectl get pods -A`",
            std::env::var("WHARF_TEST_KUBECTL").unwrap_or_else(|_| "`kubectl` from PATH".into())
        );
        return Ok(None);
    };
    let version = std::process::Command::new(&binary)
        .args(["version", "--client"])
        .output()
        .map(|o| client_version(&String::from_utf8_lossy(&o.stdout)))
        .unwrap_or_default();
    let dir = TempDir::new("cluster")?;
    let endpoint =
        loopback::serve(sim.router(), "127.0.0.1:0".parse()?, &dir.0.join("tls")).await?;
    let kubeconfig = dir.0.join("kubeconfig");
    std::fs::write(&kubeconfig, endpoint.kubeconfig())?;
    let cache = dir.0.join("kube-cache");
    let https = {
        let config = kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::from_yaml(&endpoint.kubeconfig())?,
            &kube::config::KubeConfigOptions::default(),
        )
        .await?;
        kube::Client::try_from(config)?
    };
    let in_process: Api<Pod> = Api::all(client.clone());
    let over_https: Api<Pod> = Api::all(https);

    // Warm-up: discovery into the cache dir, TLS, the first list.
    let (warm, table_out) = kubectl(&binary, &kubeconfig, &cache, &[]).await?;
    let (_, json_out) = kubectl(&binary, &kubeconfig, &cache, &["-o", "json"]).await?;
    let rows = String::from_utf8_lossy(&table_out)
        .lines()
        .count()
        .saturating_sub(1);
    let json_items = serde_json::from_slice::<serde_json::Value>(&json_out)
        .ok()
        .and_then(|v| v["items"].as_array().map(Vec::len))
        .unwrap_or(0);
    let listed = in_process.list(&ListParams::default()).await?.items.len();
    over_https.list(&ListParams::default()).await?;
    println!(
        "kubectl get pods -A ({}; {version}; median of {KUBECTL_RUNS} after a warm-up of {:.0} ms):",
        binary.display(),
        millis(warm)
    );
    if rows != listed || json_items != listed {
        println!(
            "  WRONG: kubectl printed {rows} rows and -o json {json_items} items; kube-rs lists {listed} pods"
        );
    }
    let (mut table, mut json_runs, mut https_runs, mut local_runs) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..KUBECTL_RUNS {
        table.push(kubectl(&binary, &kubeconfig, &cache, &[]).await?.0);
        json_runs.push(
            kubectl(&binary, &kubeconfig, &cache, &["-o", "json"])
                .await?
                .0,
        );
        let t = Instant::now();
        over_https.list(&ListParams::default()).await?;
        https_runs.push(t.elapsed());
        let t = Instant::now();
        in_process.list(&ListParams::default()).await?;
        local_runs.push(t.elapsed());
    }
    let (verbose_total, requests, request_sum, request_max) =
        kubectl_requests(&binary, &kubeconfig, &cache).await?;
    let figures = KubectlFigures {
        pods: listed,
        table: median(&mut table),
        json: median(&mut json_runs),
        kube_https: median(&mut https_runs),
        kube_inprocess: median(&mut local_runs),
    };
    println!(
        "  kubectl get pods -A            {:8.1} ms   ({rows} rows; Table pages of 500)",
        millis(figures.table)
    );
    println!(
        "    one run with -v=6: {:.1} ms, of which {requests} requests took {:.0} ms (longest {:.0} ms); the rest is kubectl itself",
        millis(verbose_total),
        millis(request_sum),
        millis(request_max)
    );
    println!(
        "  kubectl get pods -A -o json    {:8.1} ms   ({} KiB)",
        millis(figures.json),
        json_out.len() / 1024
    );
    println!(
        "  kube-rs list, loopback HTTPS   {:8.1} ms   (one request)",
        millis(figures.kube_https)
    );
    println!(
        "  kube-rs list, in-process       {:8.1} ms",
        millis(figures.kube_inprocess)
    );
    println!(
        "  kubectl / kube-rs in-process = {:.1}x; kubectl -o json / kube-rs https = {:.1}x; https / in-process = {:.1}x",
        figures.table.as_secs_f64() / figures.kube_inprocess.as_secs_f64(),
        figures.json.as_secs_f64() / figures.kube_https.as_secs_f64(),
        figures.kube_https.as_secs_f64() / figures.kube_inprocess.as_secs_f64()
    );
    Ok(Some(figures))
}
