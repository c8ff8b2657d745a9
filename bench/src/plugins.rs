//! `plugins`: the plugin runtime's costs.
//!
//! 1. instantiate + call of a trivial plugin (`fixture-noop`, `meta.info`) through the
//!    runtime's public call path, vs a bare wasmtime `InstancePre` instantiate + call of
//!    the same component on the same engine, vs the same function called natively;
//! 2. a call with one kv round trip (`hello`'s `step.run`: get + set + durable commit);
//! 3. cold start of `wharf serve` to the first 200 from `/readyz`, with a warm `.cwasm`
//!    cache vs without one;
//! 4. 100 upgrades of a plugin while concurrent callers keep calling it, counting failures.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use wasmtime::Store;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wharf_host::artifacts::{BUNDLED, FIXTURES};
use wharf_host::runtime::authorizer::Subject;
use wharf_host::runtime::bindings::step::PipelineStepPre;
use wharf_host::runtime::lifecycle::UpgradeTarget;
use wharf_host::runtime::worlds::meta_info;
use wharf_host::runtime::{HostLimits, PackageUpload, Runtime};
use wharf_host::store::Store as HostStore;

const CALLS: usize = 3000;
const WARMUP: usize = 300;
const COLD_START_ROUNDS: usize = 5;
const UPGRADES: usize = 100;
const CONCURRENT_CALLERS: usize = 4;

pub struct TempDir(pub PathBuf);
impl TempDir {
    pub fn new(label: &str) -> anyhow::Result<Self> {
        let path = std::env::temp_dir().join(format!("wharf-bench-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)?;
        Ok(Self(path))
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let rank = ((samples.len() as f64) * p).ceil() as usize;
    samples[rank.clamp(1, samples.len()) - 1]
}

pub fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Who the benchmark's console calls run as (only authorizer functions look).
fn bench_caller() -> Subject {
    Subject {
        id: "bench".into(),
        username: "bench".into(),
        groups: Vec::new(),
        is_admin: true,
    }
}

fn package(name: &str) -> anyhow::Result<PackageUpload> {
    let fixture = FIXTURES
        .iter()
        .find(|f| f.name == name)
        .with_context(|| format!("fixture {name}"))?;
    Ok(PackageUpload {
        manifest_text: std::fs::read_to_string(fixture.manifest_path)?,
        component: std::fs::read(fixture.component_path)?,
        signature: None,
        expected_sha256: None,
    })
}

/// The smallest store state wasmtime needs for the same component.
struct Bare {
    wasi: WasiCtx,
    table: ResourceTable,
}
impl WasiView for Bare {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

pub async fn run() -> anyhow::Result<()> {
    let dir = TempDir::new("plugins")?;
    let store = HostStore::open_sled(&dir.0.join("db"))?;
    let runtime = Runtime::new(store, HostLimits::default(), dir.0.join("cache"))?;
    runtime
        .trust()
        .set_settings(&wharf_host::runtime::trust::TrustSettings {
            allow_unsigned: true,
        })
        .await?;
    let hello = BUNDLED
        .iter()
        .find(|b| b.name == "hello")
        .context("bundled hello")?;
    runtime
        .install_bundled(hello.manifest, hello.component)
        .await?;
    runtime.install(package("noop")?, "bench").await?;
    runtime.enable("fixture-noop", None, "bench").await?;

    println!("# plugins benchmark ({CALLS} calls after {WARMUP} warm-up; p50 / p99)");
    trivial_call(&runtime).await?;
    kv_round_trip(&runtime).await?;
    cold_start()?;
    upgrades_under_load(&runtime).await?;
    Ok(())
}

async fn call_noop(runtime: &Runtime) -> anyhow::Result<()> {
    runtime
        .call("fixture-noop", |store, pre| {
            Box::pin(async move {
                let info = meta_info(store, pre).await?;
                Ok((info, 0))
            })
        })
        .await?;
    Ok(())
}

async fn trivial_call(runtime: &Runtime) -> anyhow::Result<()> {
    // Through Wharf's call path.
    for _ in 0..WARMUP {
        call_noop(runtime).await?;
    }
    let mut wharf = Vec::with_capacity(CALLS);
    // Bare wasmtime on the same engine and component.
    let engine = runtime.engine().clone();
    let noop = FIXTURES
        .iter()
        .find(|f| f.name == "noop")
        .context("noop fixture")?;
    let component = Component::new(&engine, std::fs::read(noop.component_path)?)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut linker: Linker<Bare> = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| anyhow::anyhow!("{e}"))?;
    linker
        .instance("wharf:plugin/types@0.1.0")
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let pre = PipelineStepPre::new(
        linker
            .instantiate_pre(&component)
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let bare_call = || async {
        let mut store = Store::new(
            &engine,
            Bare {
                wasi: WasiCtx::builder().build(),
                table: ResourceTable::new(),
            },
        );
        store
            .set_fuel(u64::MAX)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        store.set_epoch_deadline(u64::MAX / 2);
        let instance = pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let info = instance
            .wharf_plugin_meta()
            .call_info(&mut store)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        anyhow::Ok(black_box(info))
    };
    for _ in 0..WARMUP {
        bare_call().await?;
    }
    let mut bare = Vec::with_capacity(CALLS);
    // Interleave the two so drift in machine load hits both alike.
    for _ in 0..CALLS {
        let t = Instant::now();
        call_noop(runtime).await?;
        wharf.push(t.elapsed());
        let t = Instant::now();
        bare_call().await?;
        bare.push(t.elapsed());
    }
    let mut native = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let t = Instant::now();
        black_box(wharf_fixture_noop::info());
        native.push(t.elapsed());
    }
    let (w50, w99) = (percentile(&mut wharf, 0.5), percentile(&mut wharf, 0.99));
    let (b50, b99) = (percentile(&mut bare, 0.5), percentile(&mut bare, 0.99));
    let n50 = percentile(&mut native, 0.5);
    println!("instantiate+call, trivial plugin (meta.info of fixture-noop):");
    println!(
        "  wharf call path      p50 {:8.1} µs   p99 {:8.1} µs",
        micros(w50),
        micros(w99)
    );
    println!(
        "  bare wasmtime        p50 {:8.1} µs   p99 {:8.1} µs",
        micros(b50),
        micros(b99)
    );
    println!("  native function      p50 {:8.3} µs", micros(n50));
    println!(
        "  wharf / bare = {:.2}x (target ≤ 1.5x); wharf p50 target ≤ 50 µs: {}",
        micros(w50) / micros(b50),
        if micros(w50) <= 50.0 {
            "met"
        } else {
            "NOT met"
        }
    );
    println!(
        "  wharf / native = {:.0}x",
        micros(w50) / micros(n50).max(0.001)
    );
    Ok(())
}

async fn kv_round_trip(runtime: &Runtime) -> anyhow::Result<()> {
    let input = serde_json::json!({"params": {"name": "bench"}});
    let mut samples = Vec::with_capacity(CALLS);
    for i in 0..WARMUP + CALLS {
        let t = Instant::now();
        runtime
            .invoke("hello", "step.run", &input, bench_caller())
            .await?;
        if i >= WARMUP {
            samples.push(t.elapsed());
        }
    }
    let mut meta = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let t = Instant::now();
        runtime
            .invoke("hello", "meta.info", &serde_json::json!({}), bench_caller())
            .await?;
        meta.push(t.elapsed());
    }
    let (p50, p99) = (
        percentile(&mut samples, 0.5),
        percentile(&mut samples, 0.99),
    );
    let m50 = percentile(&mut meta, 0.5);
    println!("call with one kv round trip (hello step.run: kv get + set + durable commit):");
    println!(
        "  step.run             p50 {:8.1} µs   p99 {:8.1} µs",
        micros(p50),
        micros(p99)
    );
    println!(
        "  meta.info (no kv)    p50 {:8.1} µs   → kv round trip + commit adds {:.1} µs",
        micros(m50),
        micros(p50) - micros(m50)
    );
    Ok(())
}

fn spawn_wharf(data: &Path, port: u16) -> anyhow::Result<Child> {
    let exe = std::env::current_exe()?;
    Ok(Command::new(exe)
        .args([
            "wharf",
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(data)
        .env("WHARF_ADMIN_PASSWORD", "bench-password")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?)
}

fn ready(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /readyz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && &head[9..12] == b"200"
}

/// Time from spawn to the first 200 from `/readyz` (bounded wait).
fn time_to_ready(data: &Path, port: u16) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut child = spawn_wharf(data, port)?;
    let result = loop {
        if ready(port) {
            break Ok(started.elapsed());
        }
        if started.elapsed() > Duration::from_secs(60) {
            break Err(anyhow::anyhow!("wharf did not become ready within 60 s"));
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let _ = child.kill();
    let _ = child.wait();
    result
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn cold_start() -> anyhow::Result<()> {
    let dir = TempDir::new("cold-start")?;
    let data = dir.0.join("data");
    // First start: creates the admin, installs and compiles the bundled plugins.
    let first = time_to_ready(&data, free_port()?)?;
    let cache = data.join("cache");
    let mut warm = Vec::new();
    let mut cold = Vec::new();
    for _ in 0..COLD_START_ROUNDS {
        warm.push(time_to_ready(&data, free_port()?)?);
        std::fs::remove_dir_all(&cache).context("clearing the cache")?;
        cold.push(time_to_ready(&data, free_port()?)?);
    }
    let (w, c) = (percentile(&mut warm, 0.5), percentile(&mut cold, 0.5));
    println!(
        "cold start of `wharf serve` to first 200 on /readyz (median of {COLD_START_ROUNDS}; {} bundled plugins):",
        BUNDLED.len()
    );
    println!(
        "  first start (setup)  {:8.1} ms",
        first.as_secs_f64() * 1e3
    );
    println!(
        "  warm .cwasm cache    {:8.1} ms (target ≤ 300 ms: {})",
        w.as_secs_f64() * 1e3,
        if w <= Duration::from_millis(300) {
            "met"
        } else {
            "NOT met"
        }
    );
    println!("  no cache (compile)   {:8.1} ms", c.as_secs_f64() * 1e3);
    println!("  warm / cold = {:.2}x", w.as_secs_f64() / c.as_secs_f64());
    Ok(())
}

async fn upgrades_under_load(runtime: &Runtime) -> anyhow::Result<()> {
    runtime
        .upgrade(
            "hello",
            UpgradeTarget::Package(package("hello-v2")?),
            "bench",
        )
        .await?;
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let mut callers = Vec::new();
    for _ in 0..CONCURRENT_CALLERS {
        let (runtime, stop, calls, failures) = (
            runtime.clone(),
            stop.clone(),
            calls.clone(),
            failures.clone(),
        );
        callers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let outcome = runtime
                    .invoke("hello", "meta.info", &serde_json::json!({}), bench_caller())
                    .await;
                calls.fetch_add(1, Ordering::Relaxed);
                if let Err(error) = outcome {
                    failures.fetch_add(1, Ordering::Relaxed);
                    eprintln!("call failed during upgrade: {error}");
                }
            }
        }));
    }
    let mut swaps = Vec::with_capacity(UPGRADES);
    for i in 0..UPGRADES {
        let version = if i % 2 == 0 { "0.1.0" } else { "0.2.0" };
        let t = Instant::now();
        runtime
            .upgrade("hello", UpgradeTarget::Version(version.to_owned()), "bench")
            .await?;
        swaps.push(t.elapsed());
    }
    stop.store(true, Ordering::Relaxed);
    for caller in callers {
        caller.await?;
    }
    let failed = failures.load(Ordering::Relaxed);
    let p50 = percentile(&mut swaps, 0.5);
    println!(
        "{UPGRADES} upgrades while {CONCURRENT_CALLERS} callers keep calling (runtime call path):"
    );
    println!("  calls made           {:8}", calls.load(Ordering::Relaxed));
    println!(
        "  failed calls         {:8} (target 0: {})",
        failed,
        if failed == 0 { "met" } else { "NOT met" }
    );
    println!(
        "  upgrade (swap) p50   {:8.1} ms (durable record write included)",
        p50.as_secs_f64() * 1e3
    );
    if failed > 0 {
        bail!("{failed} calls failed during upgrades");
    }
    Ok(())
}
