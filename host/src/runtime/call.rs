//! The one path every plugin call takes.
//!
//! 1. take the plugin's current [`ActivePlugin`] (an upgrade never affects a call that
//!    already started) and a pool slot of the call's [`Lane`]: authorizer decisions have
//!    slots of their own, so plugin calls can never starve authorization. The deadline
//!    starts before the wait: a call that gets no slot in time fails on its own;
//! 2. build a fresh `Store` with the memory limiter, fuel, and an epoch callback that
//!    yields to the executor every tick and traps at the deadline;
//! 3. run the caller's closure under a `tokio` timeout at the same deadline, which also
//!    bounds time spent in host awaits such as outbound HTTP;
//! 4. account: latency, peak memory, fuel, traps, output size; move captured stdio into
//!    the log ring; commit kv writes. A plugin that traps too often is disabled, except an
//!    authorizer: switching off the one that serves would deny every request, so its
//!    failures fail their own calls closed and are reported (log, metric, audit record,
//!    at most once per trap window) for an admin to act on. The artifact policy is not
//!    switched off either: with none serving, every push would be allowed.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use wasmtime::{Store, Trap, UpdateDeadline};

use crate::audit::{Actor, Entry, Outcome};

use super::manifest::World;
use super::state::{PluginContext, PluginState};
use super::{ActivePlugin, Runtime, WorldPre};

/// Which pool of slots a call takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Plugin calls: console invocations, steps, routers, install-time inspection.
    General,
    /// Decisions and policy administration of the serving authorizer.
    Authorization,
}

/// The future a call closure returns: the result and its size in bytes.
pub type CallFuture<'a, R> =
    Pin<Box<dyn Future<Output = wasmtime::Result<(R, usize)>> + Send + 'a>>;

/// Why a plugin call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    #[error("plugin `{0}` is not enabled")]
    NotEnabled(String),
    #[error("plugin `{id}` ran past its deadline of {timeout_ms} ms and was stopped")]
    Timeout { id: String, timeout_ms: u64 },
    #[error("plugin `{id}` trapped: {reason}")]
    Trap { id: String, reason: String },
    #[error("plugin `{id}` returned {size} bytes, over its output limit of {limit} bytes")]
    OutputTooLarge { id: String, size: usize, limit: u64 },
    #[error("plugin `{id}` failed: {reason}")]
    Host { id: String, reason: String },
}

/// What one call cost, for callers that account for it (pipeline steps).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metering {
    /// `id@version` of the plugin that ran.
    pub plugin: String,
    pub fuel: u64,
    pub peak_memory_bytes: u64,
    pub duration_us: u64,
}

/// Grace beyond the deadline for the epoch trap to land before the timeout fires.
const TIMEOUT_GRACE: Duration = Duration::from_millis(20);

impl Runtime {
    /// Calls into the enabled version of plugin `id`.
    pub async fn call<R, F>(&self, id: &str, f: F) -> Result<R, CallError>
    where
        R: Send,
        F: for<'a> FnOnce(&'a mut Store<PluginState>, &'a WorldPre) -> CallFuture<'a, R> + Send,
    {
        let plugin = self
            .active(id)
            .ok_or_else(|| CallError::NotEnabled(id.to_owned()))?;
        self.call_version(&plugin, f).await
    }

    /// Calls into a specific version (used for install-time inspection too).
    pub async fn call_version<R, F>(&self, plugin: &Arc<ActivePlugin>, f: F) -> Result<R, CallError>
    where
        R: Send,
        F: for<'a> FnOnce(&'a mut Store<PluginState>, &'a WorldPre) -> CallFuture<'a, R> + Send,
    {
        self.call_in(Lane::General, plugin, f).await
    }

    /// Calls into a specific version with a slot of `lane`.
    pub(super) async fn call_in<R, F>(
        &self,
        lane: Lane,
        plugin: &Arc<ActivePlugin>,
        f: F,
    ) -> Result<R, CallError>
    where
        R: Send,
        F: for<'a> FnOnce(&'a mut Store<PluginState>, &'a WorldPre) -> CallFuture<'a, R> + Send,
    {
        self.call_metered(lane, plugin, f).await.0
    }

    /// [`Self::call_in`], also answering what the call cost.
    pub(super) async fn call_metered<R, F>(
        &self,
        lane: Lane,
        plugin: &Arc<ActivePlugin>,
        f: F,
    ) -> (Result<R, CallError>, Metering)
    where
        R: Send,
        F: for<'a> FnOnce(&'a mut Store<PluginState>, &'a WorldPre) -> CallFuture<'a, R> + Send,
    {
        let ctx = plugin.context.clone();
        let mut metering = Metering {
            plugin: format!("{}@{}", ctx.id, ctx.version),
            ..Metering::default()
        };
        let started = Instant::now();
        let timeout = Duration::from_millis(ctx.limits.timeout_ms);
        let deadline = started + timeout;
        let slots = match lane {
            Lane::General => &self.inner.slots,
            Lane::Authorization => &self.inner.authorizer_slots,
        };
        let _slot = match tokio::time::timeout_at(deadline.into(), slots.acquire()).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_closed)) => {
                let error = CallError::Host {
                    id: ctx.id.clone(),
                    reason: "runtime is shutting down".into(),
                };
                return (Err(error), metering);
            }
            Err(_waited_too_long) => {
                ctx.stats.errors.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("wharf_plugin_calls_total", "plugin" => ctx.id.clone(), "outcome" => "no-slot")
                    .increment(1);
                let error = CallError::Host {
                    id: ctx.id.clone(),
                    reason: format!(
                        "every call slot stayed busy for its whole deadline of {} ms",
                        ctx.limits.timeout_ms
                    ),
                };
                return (Err(error), metering);
            }
        };

        let mut store = Store::new(&self.inner.engine, PluginState::new(ctx.clone()));
        store.limiter(|state| &mut state.limiter);
        let fuel_budget = ctx.limits.fuel.unwrap_or(u64::MAX);
        if let Err(e) = store.set_fuel(fuel_budget) {
            let error = CallError::Host {
                id: ctx.id.clone(),
                reason: e.to_string(),
            };
            return (Err(error), metering);
        }
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Err(Trap::Interrupt.into())
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });

        let outcome = tokio::time::timeout_at(
            (deadline + TIMEOUT_GRACE).into(),
            f(&mut store, &plugin.pre),
        )
        .await;
        let elapsed = started.elapsed();

        let stats = &ctx.stats;
        stats.calls.fetch_add(1, Ordering::Relaxed);
        stats.record_latency(elapsed);
        stats.record_memory(store.data().limiter.peak as u64);
        metering.peak_memory_bytes = store.data().limiter.peak as u64;
        metering.duration_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        if let Ok(left) = store.get_fuel() {
            metering.fuel = fuel_budget - left;
            stats
                .fuel_used
                .fetch_add(fuel_budget - left, Ordering::Relaxed);
        }
        metrics::histogram!("wharf_plugin_call_seconds", "plugin" => ctx.id.clone())
            .record(elapsed.as_secs_f64());

        let result = match outcome {
            Ok(Ok((value, size))) if (size as u64) <= ctx.limits.max_output_bytes => Ok(value),
            Ok(Ok((_, size))) => Err(CallError::OutputTooLarge {
                id: ctx.id.clone(),
                size,
                limit: ctx.limits.max_output_bytes,
            }),
            Ok(Err(error)) if error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) => {
                Err(CallError::Timeout {
                    id: ctx.id.clone(),
                    timeout_ms: ctx.limits.timeout_ms,
                })
            }
            Ok(Err(error)) => Err(CallError::Trap {
                id: ctx.id.clone(),
                reason: trap_reason(&error),
            }),
            Err(_elapsed) => Err(CallError::Timeout {
                id: ctx.id.clone(),
                timeout_ms: ctx.limits.timeout_ms,
            }),
        };

        store.data().flush_captured_output();
        let wrote_kv = store.data().budget.wrote_kv;
        drop(store);
        if wrote_kv && let Err(e) = self.inner.store.commit().await {
            tracing::error!(plugin = %ctx.id, error = %e, "committing plugin kv writes failed");
        }

        let outcome_label = match &result {
            Ok(_) => "ok",
            Err(CallError::Timeout { .. }) => "timeout",
            Err(CallError::Trap { .. }) => "trap",
            Err(_) => "error",
        };
        metrics::counter!("wharf_plugin_calls_total", "plugin" => ctx.id.clone(), "outcome" => outcome_label)
            .increment(1);
        if let Err(error) = &result {
            stats.errors.fetch_add(1, Ordering::Relaxed);
            ctx.ring.host_line("error", &ctx.version, error.to_string());
            if matches!(error, CallError::Timeout { .. } | CallError::Trap { .. }) {
                if matches!(error, CallError::Timeout { .. }) {
                    stats.timeouts.fetch_add(1, Ordering::Relaxed);
                }
                let recent = stats.record_trap(self.inner.limits.trap_window);
                if plugin.world() == World::Authorizer {
                    metrics::counter!("wharf_authorizer_failures_total", "plugin" => ctx.id.clone())
                        .increment(1);
                    if recent >= self.inner.limits.trap_limit {
                        self.report_failing_authorizer(&ctx, recent, error).await;
                    }
                } else if plugin.world() == World::ArtifactPolicy {
                    // Disabling a failing policy would let everything through (an immutable
                    // tag moved because its policy trapped): its calls fail closed instead.
                    metrics::counter!("wharf_artifact_policy_failures_total", "plugin" => ctx.id.clone())
                        .increment(1);
                } else if recent >= self.inner.limits.trap_limit {
                    self.auto_disable(&ctx.id, &ctx.version, recent, error)
                        .await;
                }
            }
        }
        (result, metering)
    }
}

impl Runtime {
    /// Reports an authorizer that keeps failing, at most once per trap window.
    async fn report_failing_authorizer(&self, ctx: &PluginContext, recent: u32, last: &CallError) {
        let window = self.inner.limits.trap_window;
        if !ctx.stats.claim_failure_report(window) {
            return;
        }
        let summary = format!(
            "{recent} failed decisions within {} s (last: {last}); each failed closed, the authorizer keeps serving",
            window.as_secs()
        );
        tracing::warn!(plugin = %ctx.id, version = %ctx.version, "authorizer failing: {summary}");
        ctx.ring.host_line("warn", &ctx.version, summary.clone());
        let entry = Entry::new(
            Actor::system(),
            "plugin.authorizer-failing",
            &format!("plugin:{}", ctx.id),
            Outcome::Error,
        );
        self.inner
            .audit
            .record(Entry {
                plugin: Some(format!("{}@{}", ctx.id, ctx.version)),
                after: Some(serde_json::json!({
                    "failures": recent,
                    "windowSecs": window.as_secs(),
                    "last": last.to_string(),
                })),
                ..entry
            })
            .await;
    }
}

/// What made the guest stop: the host's own error when there is one (e.g. the memory
/// limit), else the trap code; the wasm backtrace is left to the debug log.
fn trap_reason(error: &wasmtime::Error) -> String {
    tracing::debug!(error = format!("{error:?}"), "plugin trap");
    let root = error.root_cause().to_string();
    match error.downcast_ref::<Trap>() {
        Some(trap) if root != trap.to_string() => format!("{trap}: {root}"),
        Some(trap) => trap.to_string(),
        None => root,
    }
}
