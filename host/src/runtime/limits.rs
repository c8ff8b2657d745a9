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
//! | kv bytes per namespace | 64 MiB   | 1 GiB    | kv lands in the host's data dir and sled's page cache: |
//! |                        |          |          | one plugin cannot fill the disk or the host's memory  |
//! | kv keys per namespace  | 100 000  | 1 000 000| a namespace of tiny keys costs index and scan time    |
//! |                        |          |          | out of proportion to its bytes                        |
//!
//! A manifest may ask for less or more than the default; anything above the ceiling is
//! clamped to the ceiling. The memory ceiling also sizes the pooling allocator's slots, so
//! it bounds the virtual address space the host reserves. kv sizes count key plus value
//! bytes of every entry; the defaults hold a policy of ~250 000 bindings of ~250 bytes.
//!
//! Capacity: plugin calls share [`HostLimits::instance_slots`] pool slots, and authorizer
//! decisions get [`HostLimits::authorizer_slots`] more of their own, so a burst of console
//! invocations or pipeline steps can never starve authorization. A call's deadline starts
//! before it waits for a slot: waiting too long fails that call alone.
//!
//! | authorization          | value    | why                                                   |
//! |------------------------|----------|-------------------------------------------------------|
//! | reserved slots         | 16       | every request needs a decision; 16 concurrent checks  |
//! |                        |          | keep up with the HTTP server on these machines, and   |
//! |                        |          | cost 16 × (memory ceiling + guard) of address space   |
//! | requests per `check`   | 250      | [`MAX_CHECK_BATCH`]: a list page (up to 500 items)    |
//! |                        |          | is decided in a few calls, each well inside the 2 s   |
//! |                        |          | deadline and the 1 MiB output cap (a deny reason is   |
//! |                        |          | ~100 bytes), so a long list cannot time one call out  |

use std::time::Duration;

use serde::Serialize;
use utoipa::ToSchema;

use super::manifest::RequestedLimits;

const MIB: u64 = 1024 * 1024;

/// Most requests sent to the authorizer in one `check` call; longer batches are split.
pub const MAX_CHECK_BATCH: usize = 250;

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
    /// Further pool slots only authorizer decisions use.
    pub authorizer_slots: u32,
    pub default_kv_bytes: u64,
    pub max_kv_bytes: u64,
    pub default_kv_keys: u64,
    pub max_kv_keys: u64,
    /// A plugin that traps this many times within `trap_window` is disabled (the serving
    /// authorizer is only reported: switching it off would deny every request).
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
            authorizer_slots: 16,
            default_kv_bytes: 64 * MIB,
            max_kv_bytes: 1024 * MIB,
            default_kv_keys: 100_000,
            max_kv_keys: 1_000_000,
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
    pub kv_max_bytes: u64,
    pub kv_max_keys: u64,
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
            kv_max_bytes: clamp(
                requested.kv_max_bytes,
                self.default_kv_bytes,
                self.max_kv_bytes,
            ),
            kv_max_keys: clamp(
                requested.kv_max_keys,
                self.default_kv_keys,
                self.max_kv_keys,
            ),
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
            kv_max_bytes: Some(u64::MAX),
            ..Default::default()
        });
        assert_eq!(limits.kv_max_bytes, host.max_kv_bytes);
        assert_eq!(limits.kv_max_keys, host.default_kv_keys);
        assert_eq!(limits.memory_bytes, host.max_memory_bytes);
        assert_eq!(limits.timeout_ms, 30_000);
        assert_eq!(limits.fuel, Some(host.max_fuel));
        assert_eq!(limits.max_output_bytes, host.default_output_bytes);
    }
}
