//! Per-plugin call statistics: counts, latency percentiles, peak memory, fuel.
//!
//! Kept in memory since process start; latency percentiles come from the last
//! [`LATENCY_WINDOW`] calls. Traps are also kept as timestamps to drive auto-disable.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use utoipa::ToSchema;

const LATENCY_WINDOW: usize = 1024;

/// Live counters of one plugin (all versions).
#[derive(Debug, Default)]
pub struct PluginStats {
    pub calls: AtomicU64,
    pub errors: AtomicU64,
    pub traps: AtomicU64,
    pub timeouts: AtomicU64,
    pub http_denied: AtomicU64,
    /// Cluster calls refused for a kind or namespace outside the grant.
    pub cluster_denied: AtomicU64,
    pub peak_memory_bytes: AtomicU64,
    pub fuel_used: AtomicU64,
    latencies: Mutex<VecDeque<Duration>>,
    recent_traps: Mutex<VecDeque<Instant>>,
    /// When repeated failures were last reported (see [`PluginStats::claim_failure_report`]).
    last_failure_report: Mutex<Option<Instant>>,
}

/// A snapshot for the API.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatsView {
    pub calls: u64,
    pub errors: u64,
    pub traps: u64,
    pub timeouts: u64,
    pub http_denied: u64,
    pub cluster_denied: u64,
    pub p50_micros: Option<u64>,
    pub p99_micros: Option<u64>,
    pub peak_memory_bytes: u64,
    pub fuel_used: u64,
}

impl PluginStats {
    pub fn record_latency(&self, elapsed: Duration) {
        let mut window = self.latencies.lock().unwrap_or_else(|p| p.into_inner());
        if window.len() == LATENCY_WINDOW {
            window.pop_front();
        }
        window.push_back(elapsed);
    }

    pub fn record_memory(&self, bytes: u64) {
        self.peak_memory_bytes.fetch_max(bytes, Ordering::Relaxed);
    }

    /// Records a trap and returns how many happened within `window` (this one included).
    pub fn record_trap(&self, window: Duration) -> u32 {
        self.traps.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut recent = self.recent_traps.lock().unwrap_or_else(|p| p.into_inner());
        recent.push_back(now);
        while recent
            .front()
            .is_some_and(|t| now.duration_since(*t) > window)
        {
            recent.pop_front();
        }
        recent.len() as u32
    }

    /// Whether the caller should report repeated failures now: true at most once per
    /// `interval`, so a failing plugin on a busy host yields one report, not one per call.
    pub fn claim_failure_report(&self, interval: Duration) -> bool {
        let now = Instant::now();
        let mut last = self
            .last_failure_report
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|at| now.duration_since(at) < interval) {
            return false;
        }
        *last = Some(now);
        true
    }

    /// Forgets recent traps (after the plugin is re-enabled).
    pub fn reset_trap_window(&self) {
        self.recent_traps
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    pub fn view(&self) -> StatsView {
        let mut sorted: Vec<Duration> = self
            .latencies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .copied()
            .collect();
        sorted.sort();
        let percentile = |p: f64| -> Option<u64> {
            if sorted.is_empty() {
                return None;
            }
            let rank = ((sorted.len() as f64) * p).ceil() as usize;
            Some(sorted[rank.clamp(1, sorted.len()) - 1].as_micros() as u64)
        };
        StatsView {
            calls: self.calls.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            traps: self.traps.load(Ordering::Relaxed),
            timeouts: self.timeouts.load(Ordering::Relaxed),
            http_denied: self.http_denied.load(Ordering::Relaxed),
            cluster_denied: self.cluster_denied.load(Ordering::Relaxed),
            p50_micros: percentile(0.50),
            p99_micros: percentile(0.99),
            peak_memory_bytes: self.peak_memory_bytes.load(Ordering::Relaxed),
            fuel_used: self.fuel_used.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_window() {
        let stats = PluginStats::default();
        for micros in 1..=100 {
            stats.record_latency(Duration::from_micros(micros));
        }
        let view = stats.view();
        assert_eq!(view.p50_micros, Some(50));
        assert_eq!(view.p99_micros, Some(99));
    }

    #[test]
    fn traps_outside_the_window_are_forgotten() {
        let stats = PluginStats::default();
        assert_eq!(stats.record_trap(Duration::from_secs(60)), 1);
        assert_eq!(stats.record_trap(Duration::from_secs(60)), 2);
        assert_eq!(stats.record_trap(Duration::ZERO), 1);
    }
}
