//! The process-wide wasmtime `Engine` and its epoch ticker.
//!
//! One engine serves every plugin: pooling allocator with one slot per concurrent
//! instance, slots sized to the host's memory ceiling so the virtual-memory reservation
//! stays near `slots × (ceiling + guard)` ((64 + 16) × 130 MiB ≈ 10 GiB by default) rather than
//! wasmtime's 4 GiB-per-memory default. Epoch interruption drives deadlines: a ticker
//! thread bumps the epoch every [`EPOCH_TICK`], and each call yields to the executor on
//! every tick, so a spinning plugin never pins a runtime thread. Fuel is always metered so
//! that a plugin may opt into a deterministic budget and its consumption shows in stats.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::limits::HostLimits;

/// Epoch granularity: the resolution of call deadlines and of cooperative yields.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

const GUARD_BYTES: u64 = 2 * 1024 * 1024;

/// Builds the engine for the host's limits.
pub fn build_engine(limits: &HostLimits) -> wasmtime::Result<Engine> {
    // Authorizer decisions have slots of their own on top of the plugin calls' slots.
    let slots = limits.instance_slots.max(1) + limits.authorizer_slots.max(1);
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(slots)
        .total_core_instances(slots * 16)
        .total_memories(slots)
        .total_tables(slots * 16)
        .total_stacks(slots)
        .max_memory_size(usize::try_from(limits.max_memory_bytes).unwrap_or(usize::MAX));

    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .concurrency_support(false)
        .epoch_interruption(true)
        .consume_fuel(true)
        .memory_reservation(limits.max_memory_bytes)
        .memory_guard_size(GUARD_BYTES)
        .memory_reservation_for_growth(0)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config)
}

/// Advances the engine's epoch until dropped.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    pub fn start(engine: Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("wharf-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .ok();
        Self { stop, thread }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
