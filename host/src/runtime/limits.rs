//! Resource limits for plugin calls: host-wide defaults, ceilings, and what one plugin gets.
//!
//! | limit                  | default  | ceiling  | why it exists                                         |
//! |------------------------|----------|----------|-------------------------------------------------------|
//! | linear memory          | 32 MiB   | 128 MiB  | a memory bomb traps instead of starving the host      |
//! | wall-clock per call    | 2 s      | 30 s     | an infinite loop or a hung upstream cannot pin a call |
//! | fuel per call          | none     | 10^10    | deterministic CPU budgets when a plugin asks for one  |
//! | output size            | 1 MiB    | 16 MiB   | a huge result cannot be forced on the caller          |
//! | log bytes per call     | 64 KiB   | 1 MiB    | a chatty plugin cannot flood the log ring             |
//! | host calls per call    | 10 000   | —        | a host-call flood ends with `limit-exceeded`          |
//!
//! A manifest may ask for less or more than the default; anything above the ceiling is
//! clamped to the ceiling. The memory ceiling also sizes the pooling allocator's slots, so
//! it bounds the virtual address space the host reserves.

use std::time::Duration;

use serde::Serialize;
use utoipa::ToSchema;

use super::manifest::RequestedLimits;

const MIB: u64 = 1024 * 1024;

/// Host-wide defaults and ceilings (set from `wharf serve` flags).
#[derive(Debug, Clone)]
pub struct HostLimits {
    pub default_memory_bytes: u64,
    pub max_memory_bytes: u64,
    pub default_timeout: Duration,
    pub max_timeout: Duration,
    pub max_fuel: u64,
    pub default_output_bytes: u64,
    pub max_output_bytes: u64,
    pub default_log_bytes_per_call: u64,
    pub max_log_bytes_per_call: u64,
    pub host_calls_per_call: u64,
    /// Concurrent plugin instances (pool slots); calls beyond this wait for a slot.
    pub instance_slots: u32,
    /// A plugin that traps this many times within `trap_window` is disabled.
    pub trap_limit: u32,
    pub trap_window: Duration,
}

impl Default for HostLimits {
    fn default() -> Self {
        Self {
            default_memory_bytes: 32 * MIB,
            max_memory_bytes: 128 * MIB,
            default_timeout: Duration::from_secs(2),
            max_timeout: Duration::from_secs(30),
            max_fuel: 10_000_000_000,
            default_output_bytes: MIB,
            max_output_bytes: 16 * MIB,
            default_log_bytes_per_call: 64 * 1024,
            max_log_bytes_per_call: MIB,
            host_calls_per_call: 10_000,
            instance_slots: 64,
            trap_limit: 5,
            trap_window: Duration::from_secs(60),
        }
    }
}

/// The limits one plugin version runs under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EffectiveLimits {
    pub memory_bytes: u64,
    pub timeout_ms: u64,
    /// `None`: no fuel budget (the call is bounded by its deadline only).
    pub fuel: Option<u64>,
    pub max_output_bytes: u64,
    pub max_log_bytes_per_call: u64,
    pub host_calls_per_call: u64,
}

impl HostLimits {
    /// Applies defaults and ceilings to what a manifest asked for.
    pub fn resolve(&self, requested: &RequestedLimits) -> EffectiveLimits {
        let clamp = |asked: Option<u64>, default: u64, max: u64| asked.unwrap_or(default).min(max);
        EffectiveLimits {
            memory_bytes: clamp(
                requested.memory_mib.map(|m| m.saturating_mul(MIB)),
                self.default_memory_bytes,
                self.max_memory_bytes,
            ),
            timeout_ms: clamp(
                requested.timeout_ms,
                self.default_timeout.as_millis() as u64,
                self.max_timeout.as_millis() as u64,
            )
            .max(1),
            fuel: requested
                .fuel
                .filter(|f| *f > 0)
                .map(|f| f.min(self.max_fuel)),
            max_output_bytes: clamp(
                requested.max_output_bytes,
                self.default_output_bytes,
                self.max_output_bytes,
            ),
            max_log_bytes_per_call: clamp(
                requested.max_log_bytes_per_call,
                self.default_log_bytes_per_call,
                self.max_log_bytes_per_call,
            ),
            host_calls_per_call: self.host_calls_per_call,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_above_the_ceiling_are_clamped() {
        let host = HostLimits::default();
        let limits = host.resolve(&RequestedLimits {
            memory_mib: Some(100_000),
            timeout_ms: Some(10_000_000),
            fuel: Some(u64::MAX),
            ..Default::default()
        });
        assert_eq!(limits.memory_bytes, host.max_memory_bytes);
        assert_eq!(limits.timeout_ms, 30_000);
        assert_eq!(limits.fuel, Some(host.max_fuel));
        assert_eq!(limits.max_output_bytes, host.default_output_bytes);
    }
}
