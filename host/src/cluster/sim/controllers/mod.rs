//! The simulated control plane: level-triggered controllers that run after every write
//! (and on a short tick for timed transitions) over the whole world, each in its own
//! file — kubelet (scheduling and pod phases), ReplicaSets, Deployments (rolling and
//! recreate), Jobs, Endpoints, and garbage collection with namespace termination.
//! Every controller writes only when something changed, so an idle cluster emits no
//! events.

pub mod deployment;
pub mod endpoints;
pub mod gc;
pub mod job;
pub mod kubelet;
pub mod replicaset;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::Shared;
use super::meta;
use super::resources::{ResourceType, kinds};
use super::world::{UpdateScope, World};

/// How often timed transitions are checked while one is pending.
const TICK: Duration = Duration::from_millis(100);
/// How often an idle cluster is looked at (events expire).
const IDLE: Duration = Duration::from_secs(5);
/// Shortest interval between repeated simulated failures (crash-loop restarts), so a
/// time scale of 0 does not spin.
const MIN_REPEAT: Duration = Duration::from_millis(200);

/// The simulated passage of time: real durations multiplied by the time scale.
#[derive(Clone, Copy)]
pub struct Clock {
    pub time_scale: f64,
    pub pod_start_delay: Duration,
}

impl Clock {
    pub fn scaled(&self, real: Duration) -> Duration {
        real.mul_f64(self.time_scale)
    }
    pub fn repeat(&self, real: Duration) -> Duration {
        self.scaled(real).max(MIN_REPEAT)
    }
}

/// What the controllers remember between passes (not persisted: after a restart pods
/// in progress start their timers again).
#[derive(Default)]
pub struct Memory {
    /// When each pod (by uid) was first seen, or last restarted.
    pub seen: HashMap<String, Instant>,
    pub next_pod_ip: u32,
}

/// Runs the controllers until the simulator is dropped: a pass after every write, on a
/// short tick while something waits on a timer, and rarely otherwise (event expiry). A
/// thread of its own, so a pass never stalls the async runtime serving the API.
pub(crate) fn run(shared: std::sync::Weak<Shared>, clock: Clock) {
    let mut memory = Memory::default();
    loop {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let (changed, timed) = {
            let mut world = shared.world();
            let before = world.writes;
            let timed = reconcile(&mut world, &mut memory, &clock);
            (world.writes != before, timed)
        };
        if changed {
            // One step cascades into the next (Deployment → ReplicaSet → Pod); run again
            // soon, letting API requests take the lock in between.
            drop(shared);
            std::thread::sleep(Duration::from_millis(2));
            continue;
        }
        shared.wake.wait(if timed { TICK } else { IDLE });
    }
}

/// One pass of every controller; true when something waits on a timer.
pub fn reconcile(world: &mut World, memory: &mut Memory, clock: &Clock) -> bool {
    gc::collect(world);
    let pods_waiting = kubelet::sync(world, memory, clock);
    replicaset::sync(world);
    let rollouts_pending = deployment::sync(world, clock);
    let jobs_timed = job::sync(world, clock);
    endpoints::sync(world);
    pods_waiting || (clock.time_scale > 0.0 && (rollouts_pending || jobs_timed))
}

/// Writes `object` if it differs from what is stored (controllers own these fields).
pub fn write_if_changed(
    world: &mut World,
    resource: &'static ResourceType,
    before: &Value,
    after: Value,
) {
    if *before == after {
        return;
    }
    let namespace = meta::namespace(&after).to_owned();
    let name = meta::name(&after).to_owned();
    if let Err(status) = world.update(resource, &namespace, &name, after, UpdateScope::Controller) {
        tracing::debug!(message = %status.message, "embedded cluster controller update refused");
    }
}

/// Objects of a kind grouped by their controller's uid.
pub fn by_controller(world: &World, resource: &ResourceType) -> HashMap<String, Vec<Arc<Value>>> {
    let mut owned: HashMap<String, Vec<Arc<Value>>> = HashMap::new();
    for object in world.list(resource, None) {
        if let Some(uid) = meta::controller_uid(object) {
            owned
                .entry(uid.to_owned())
                .or_default()
                .push(object.clone());
        }
    }
    owned
}

/// Records a core/v1 Event about `object` (what `kubectl describe` shows).
pub fn record_event(world: &mut World, object: &Value, kind: &str, reason: &str, message: String) {
    let namespace = match meta::namespace(object) {
        "" => "default",
        namespace => namespace,
    };
    let now = meta::now_rfc3339();
    let event = json!({
        "metadata": {"name": meta::generate_name(&format!("{}.", meta::name(object))), "namespace": namespace},
        "involvedObject": {
            "apiVersion": object.get("apiVersion"),
            "kind": object.get("kind"),
            "name": meta::name(object),
            "namespace": meta::namespace(object),
            "uid": meta::uid(object),
            "resourceVersion": object.pointer("/metadata/resourceVersion"),
        },
        "reason": reason,
        "message": message,
        "type": kind,
        "count": 1,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "source": {"component": "wharf-embedded-cluster"},
        "reportingComponent": "wharf-embedded-cluster",
    });
    let _ = world.create(kinds::event(), namespace, event);
}

/// A condition entry, keeping `lastTransitionTime` when the status did not change.
pub fn condition(
    previous: Option<&Value>,
    kind: &str,
    status: &str,
    reason: &str,
    message: &str,
    touch: bool,
) -> Value {
    let now = meta::now_rfc3339();
    let same_status = previous.is_some_and(|p| p["status"] == status);
    let transition = if same_status {
        previous
            .and_then(|p| p.get("lastTransitionTime"))
            .cloned()
            .unwrap_or(json!(now))
    } else {
        json!(now)
    };
    let update = if same_status && !touch && previous.is_some_and(|p| p["reason"] == reason) {
        previous
            .and_then(|p| p.get("lastUpdateTime"))
            .cloned()
            .unwrap_or(json!(now))
    } else {
        json!(now)
    };
    json!({
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": transition,
        "lastUpdateTime": update,
    })
}

pub fn find_condition<'a>(object: &'a Value, kind: &str) -> Option<&'a Value> {
    object
        .pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c["type"] == kind)
}

/// The failure a pod simulates, chosen by the `wharf.dev/simulate` annotation or by a
/// container image that names it (`nginx:crash-loop`, `registry/app:image-pull-error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    ImagePull,
    CrashLoop,
    NeverReady,
    SlowStart,
}

pub fn failure_of(pod: &Value) -> Option<Failure> {
    let parse = |text: &str| {
        if text.contains("image-pull-error") {
            Some(Failure::ImagePull)
        } else if text.contains("crash-loop") {
            Some(Failure::CrashLoop)
        } else if text.contains("never-ready") {
            Some(Failure::NeverReady)
        } else if text.contains("slow-start") {
            Some(Failure::SlowStart)
        } else {
            None
        }
    };
    if let Some(failure) = meta::annotation(pod, "wharf.dev/simulate").and_then(parse) {
        return Some(failure);
    }
    pod.pointer("/spec/containers")
        .and_then(Value::as_array)?
        .iter()
        .filter_map(|c| c.get("image").and_then(Value::as_str))
        .find_map(parse)
}
