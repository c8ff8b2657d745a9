//! What one plugin call's `Store` holds: the plugin's grants and nothing else.
//!
//! A fresh [`PluginState`] is built for every call (isolation between callers). It carries
//! the [`PluginContext`] resolved when the plugin version was enabled — kv namespace,
//! settings, allow-list, cluster scope, limits — plus the per-call budgets and WASI state.
//! WASI gets no preopened directories, no environment, no sockets; stdout and stderr are
//! captured into the plugin's log ring (a Rust panic message lands there).

use std::sync::Arc;

use wasmtime::component::{HasData, ResourceTable};
use wasmtime::{ResourceLimiter, format_err};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::bindings::HostError;
use super::cluster::{ClusterAccess, ClusterView};
use super::config::ConfigView;
use super::http::{AllowList, OutboundHooks};
use super::journal::Journal;
use super::kv::{KvNamespace, KvView};
use super::limits::EffectiveLimits;
use super::log::{LogLine, LogRing, LogView};
use super::platform::{PlatformHost, PlatformView};
use super::stats::PluginStats;

/// Bytes of stdout/stderr kept per call.
const STDIO_CAPTURE_BYTES: usize = 16 * 1024;

/// Everything a plugin version was granted, resolved once at enable.
#[derive(Clone)]
pub struct PluginContext {
    pub id: String,
    pub version: String,
    pub kv: KvNamespace,
    pub settings: Arc<serde_json::Value>,
    pub ring: Arc<LogRing>,
    pub stats: Arc<PluginStats>,
    pub allow: Arc<AllowList>,
    pub cluster: Arc<ClusterAccess>,
    pub limits: EffectiveLimits,
}

/// Per-call allowances for host calls and log volume.
#[derive(Debug)]
pub struct CallBudget {
    log_bytes_left: u64,
    host_calls_left: u64,
    pub dropped_log_lines: u64,
    pub refused_host_calls: u64,
    /// Whether the call wrote to kv (the host then commits before answering).
    pub wrote_kv: bool,
}

impl CallBudget {
    pub fn new(log_bytes: u64, host_calls: u64) -> Self {
        Self {
            log_bytes_left: log_bytes,
            host_calls_left: host_calls,
            dropped_log_lines: 0,
            refused_host_calls: 0,
            wrote_kv: false,
        }
    }

    /// Takes `cost` log bytes; false (and one more dropped line) when the budget is spent.
    pub fn take_log_bytes(&mut self, cost: u64) -> bool {
        if cost > self.log_bytes_left {
            self.log_bytes_left = 0;
            self.dropped_log_lines += 1;
            return false;
        }
        self.log_bytes_left -= cost;
        true
    }

    pub fn take_host_call(&mut self) -> Result<(), HostError> {
        if self.host_calls_left == 0 {
            self.refused_host_calls += 1;
            return Err(HostError::LimitExceeded(
                "host calls per invocation: the plugin's budget for this call is spent".into(),
            ));
        }
        self.host_calls_left -= 1;
        Ok(())
    }
}

/// Enforces the plugin's memory limit and remembers the peak.
pub struct MemoryLimiter {
    limit: usize,
    pub peak: usize,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            return Err(format_err!(
                "memory limit exceeded: the plugin asked for {desired} bytes, its limit is {} bytes",
                self.limit
            ));
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// What a pipeline step invocation adds to a call: who carries out platform actions, the
/// journal of host calls, and where the step's own log lines go.
#[derive(Clone, Default)]
pub struct StepCall {
    pub platform: Option<Arc<dyn PlatformHost>>,
    pub journal: Option<Journal>,
    pub logs: Option<Arc<std::sync::Mutex<Vec<LogLine>>>>,
}

/// The `T` of every plugin `Store<T>`.
pub struct PluginState {
    wasi: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    hooks: OutboundHooks,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
    pub limiter: MemoryLimiter,
    pub budget: CallBudget,
    pub plugin: Arc<PluginContext>,
    step: StepCall,
    platform_mutations: u32,
}

impl PluginState {
    pub fn new(plugin: Arc<PluginContext>) -> Self {
        let stdout = MemoryOutputPipe::new(STDIO_CAPTURE_BYTES);
        let stderr = MemoryOutputPipe::new(STDIO_CAPTURE_BYTES);
        let wasi = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let limits = &plugin.limits;
        Self {
            wasi,
            table: ResourceTable::new(),
            http: WasiHttpCtx::new(),
            hooks: OutboundHooks {
                allow: plugin.allow.clone(),
                narrowed: None,
                journal: None,
                ring: plugin.ring.clone(),
                stats: plugin.stats.clone(),
                version: plugin.version.clone(),
            },
            stdout,
            stderr,
            limiter: MemoryLimiter {
                limit: usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX),
                peak: 0,
            },
            budget: CallBudget::new(limits.max_log_bytes_per_call, limits.host_calls_per_call),
            plugin,
            step: StepCall::default(),
            platform_mutations: 0,
        }
    }

    /// Limits this call's outbound HTTP to `allow` on top of the plugin's own grant.
    pub fn narrow_outbound(&mut self, allow: AllowList) {
        self.hooks.narrowed = Some(allow);
    }

    /// Makes this call a pipeline step invocation.
    pub fn attach_step(&mut self, step: StepCall) {
        self.hooks.journal = step.journal.clone();
        self.step = step;
    }

    /// Moves captured stdout/stderr and drop counters into the log ring.
    pub fn flush_captured_output(&self) {
        let ctx = &self.plugin;
        for (pipe, level) in [(&self.stdout, "info"), (&self.stderr, "error")] {
            let bytes = pipe.contents();
            for line in String::from_utf8_lossy(&bytes)
                .lines()
                .filter(|l| !l.trim().is_empty())
            {
                ctx.ring.host_line(level, &ctx.version, line.to_owned());
            }
        }
        if self.budget.dropped_log_lines > 0 {
            ctx.ring.host_line(
                "warn",
                &ctx.version,
                format!(
                    "{} log lines dropped: over the per-call cap of {} bytes",
                    self.budget.dropped_log_lines, ctx.limits.max_log_bytes_per_call
                ),
            );
        }
        if self.budget.refused_host_calls > 0 {
            ctx.ring.host_line(
                "warn",
                &ctx.version,
                format!(
                    "{} host calls refused: over the per-call cap of {}",
                    self.budget.refused_host_calls, ctx.limits.host_calls_per_call
                ),
            );
        }
    }

    pub(super) fn log_view(&mut self) -> LogView<'_> {
        LogView {
            ring: &self.plugin.ring,
            version: &self.plugin.version,
            budget: &mut self.budget,
            capture: self.step.logs.as_deref(),
            replaying: self.step.journal.as_ref().is_some_and(Journal::is_replay),
        }
    }

    pub(super) fn kv_view(&mut self) -> KvView<'_> {
        KvView {
            namespace: &self.plugin.kv,
            budget: &mut self.budget,
            journal: self.step.journal.as_ref(),
        }
    }

    pub(super) fn config_view(&mut self) -> ConfigView<'_> {
        ConfigView {
            settings: &self.plugin.settings,
            journal: self.step.journal.as_ref(),
        }
    }

    pub(super) fn cluster_view(&mut self) -> ClusterView<'_> {
        let plugin = &self.plugin;
        ClusterView {
            access: &plugin.cluster,
            id: &plugin.id,
            version: &plugin.version,
            ring: &plugin.ring,
            stats: &plugin.stats,
            budget: &mut self.budget,
            journal: self.step.journal.as_ref(),
        }
    }

    pub(super) fn platform_view(&mut self) -> PlatformView<'_> {
        PlatformView {
            host: self.step.platform.clone(),
            journal: self.step.journal.as_ref(),
            budget: &mut self.budget,
            mutations: &mut self.platform_mutations,
        }
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for PluginState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// [`HasData`] markers tying each host interface to its view.
pub(super) struct LogData;
impl HasData for LogData {
    type Data<'a> = LogView<'a>;
}
pub(super) struct KvData;
impl HasData for KvData {
    type Data<'a> = KvView<'a>;
}
pub(super) struct ConfigData;
impl HasData for ConfigData {
    type Data<'a> = ConfigView<'a>;
}
pub(super) struct ClusterData;
impl HasData for ClusterData {
    type Data<'a> = ClusterView<'a>;
}
pub(super) struct PlatformData;
impl HasData for PlatformData {
    type Data<'a> = PlatformView<'a>;
}
