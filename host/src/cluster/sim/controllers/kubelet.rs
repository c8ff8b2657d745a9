//! Simulated nodes and kubelets: pods are scheduled onto the node with the most room
//! (pod count and CPU requests within capacity), then move Pending → Running → Ready
//! after the start delay, unless they simulate a failure (image pull error, crash
//! loop, never ready, slow start). Pods of Jobs run to Succeeded, or Failed when they
//! simulate a crash. Pod logs are synthesized from the same state.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};

use super::{Clock, Failure, Memory, failure_of, record_event, write_if_changed};
use crate::cluster::sim::meta;
use crate::cluster::sim::resources::kinds;
use crate::cluster::sim::status::Status;
use crate::cluster::sim::world::World;

/// Pods each node takes, as the kubelet's default.
const PODS_PER_NODE: usize = 110;
const NODE_CPU_MILLIS: u128 = 8_000;

/// Creates the simulated nodes that are missing.
pub fn ensure_nodes(world: &mut World, count: usize) {
    for index in 1..=count {
        let name = format!("wharf-node-{index}");
        if world.get(kinds::node(), "", &name).is_some() {
            continue;
        }
        let node = json!({
            "metadata": {"name": name, "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "node.kubernetes.io/instance-type": "wharf-sim",
                "topology.kubernetes.io/zone": format!("sim-zone-{}", (index - 1) % 3 + 1),
            }},
            "spec": {"podCIDR": format!("10.244.{index}.0/24")},
            "status": {
                "capacity": {"cpu": "8", "memory": "32Gi", "pods": PODS_PER_NODE.to_string(), "ephemeral-storage": "100Gi"},
                "allocatable": {"cpu": "8", "memory": "32Gi", "pods": PODS_PER_NODE.to_string(), "ephemeral-storage": "100Gi"},
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status"}],
                "addresses": [{"type": "InternalIP", "address": format!("10.0.0.{}", 10 + index)}, {"type": "Hostname", "address": name}],
                "nodeInfo": {"kubeletVersion": "v1.33.0", "containerRuntimeVersion": "wharf-sim://1", "osImage": "Wharf simulated node", "operatingSystem": "linux", "architecture": "amd64"},
            },
        });
        if let Err(status) = world.create(kinds::node(), "", node) {
            tracing::warn!(message = %status.message, "creating a simulated node failed");
        }
    }
}

fn cpu_request(pod: &Value) -> u128 {
    pod.pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|containers| {
            containers
                .iter()
                .filter_map(|c| c.pointer("/resources/requests/cpu").and_then(Value::as_str))
                .filter_map(meta::quantity_millis)
                .sum()
        })
        .unwrap_or(0)
}

fn is_job_pod(pod: &Value) -> bool {
    matches!(
        meta::str_at(pod, "/spec/restartPolicy"),
        Some("Never" | "OnFailure")
    )
}

fn container_names(pod: &Value) -> Vec<String> {
    pod.pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A pod with nothing left to simulate until someone changes it.
fn settled(pod: &Value, failure: Option<Failure>) -> bool {
    let phase = meta::str_at(pod, "/status/phase").unwrap_or("Pending");
    let has_statuses = pod.pointer("/status/containerStatuses").is_some();
    match failure {
        _ if matches!(phase, "Succeeded" | "Failed") => true,
        Some(Failure::CrashLoop) => false,
        Some(Failure::ImagePull) | Some(Failure::NeverReady) => has_statuses,
        None | Some(Failure::SlowStart) => {
            phase == "Running" && super::replicaset::is_ready(pod) && has_statuses
        }
    }
}

/// One pass; true while some pod waits on a timer (its start delay, a crash-loop restart).
pub fn sync(world: &mut World, memory: &mut Memory, clock: &Clock) -> bool {
    let mut waiting = false;
    let nodes: Vec<Arc<Value>> = world.list(kinds::node(), None).cloned().collect();
    let mut load: HashMap<String, (usize, u128)> = HashMap::new();
    let pods: Vec<Arc<Value>> = world.list(kinds::pod(), None).cloned().collect();
    for pod in &pods {
        if let Some(node) = meta::str_at(pod, "/spec/nodeName")
            && !matches!(
                meta::str_at(pod, "/status/phase"),
                Some("Succeeded" | "Failed")
            )
        {
            let entry = load.entry(node.to_owned()).or_default();
            entry.0 += 1;
            entry.1 += cpu_request(pod);
        }
    }
    let live: std::collections::HashSet<&str> = pods.iter().map(|p| meta::uid(p)).collect();
    memory.seen.retain(|uid, _| live.contains(uid.as_str()));
    let now = Instant::now();
    for pod in pods {
        let failure = failure_of(&pod);
        if meta::is_deleting(&pod) || settled(&pod, failure) {
            continue;
        }
        let mut next = pod.as_ref().clone();
        if meta::str_at(&pod, "/spec/nodeName").is_none() {
            let wanted = cpu_request(&pod);
            let choice = nodes
                .iter()
                .map(|n| meta::name(n).to_owned())
                .filter(|n| {
                    let (count, cpu) = load.get(n).copied().unwrap_or_default();
                    count < PODS_PER_NODE && cpu + wanted <= NODE_CPU_MILLIS
                })
                .min_by_key(|n| load.get(n).copied().unwrap_or_default());
            match choice {
                Some(node) => {
                    let entry = load.entry(node.clone()).or_default();
                    entry.0 += 1;
                    entry.1 += wanted;
                    next["spec"]["nodeName"] = json!(node);
                    next["status"]["conditions"] = json!([{"type": "PodScheduled", "status": "True", "lastTransitionTime": meta::now_rfc3339()}]);
                    let host_ip = nodes
                        .iter()
                        .find(|n| meta::name(n) == node)
                        .and_then(|n| n.pointer("/status/addresses/0/address").cloned());
                    next["status"]["hostIP"] = host_ip.unwrap_or(json!(""));
                    memory.seen.insert(meta::uid(&pod).to_owned(), now);
                    record_event(
                        world,
                        &pod,
                        "Normal",
                        "Scheduled",
                        format!(
                            "Successfully assigned {}/{} to {node}",
                            meta::namespace(&pod),
                            meta::name(&pod)
                        ),
                    );
                }
                None => {
                    let message = format!(
                        "0/{} nodes are available: insufficient capacity",
                        nodes.len()
                    );
                    next["status"]["conditions"] = json!([{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}]);
                }
            }
            write_if_changed(world, kinds::pod(), &pod, next);
            continue;
        }
        let started = *memory.seen.entry(meta::uid(&pod).to_owned()).or_insert(now);
        let delay = match failure {
            Some(Failure::SlowStart) => clock.scaled(clock.pod_start_delay * 10),
            _ => clock.scaled(clock.pod_start_delay),
        };
        if now.duration_since(started) < delay {
            waiting = true;
            continue;
        }
        advance(world, memory, clock, &pod, &mut next, failure, now, started);
        waiting |= failure == Some(Failure::CrashLoop);
        write_if_changed(world, kinds::pod(), &pod, next);
    }
    waiting
}

#[allow(clippy::too_many_arguments)]
fn advance(
    world: &mut World,
    memory: &mut Memory,
    clock: &Clock,
    pod: &Value,
    next: &mut Value,
    failure: Option<Failure>,
    now: Instant,
    started: Instant,
) {
    let phase = meta::str_at(pod, "/status/phase")
        .unwrap_or("Pending")
        .to_owned();
    if matches!(phase.as_str(), "Succeeded" | "Failed") {
        return;
    }
    if next.pointer("/status/podIP").is_none() {
        memory.next_pod_ip += 1;
        let node_index: u32 = meta::str_at(pod, "/spec/nodeName")
            .and_then(|n| n.rsplit('-').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let ip = format!("10.244.{}.{}", node_index, 2 + memory.next_pod_ip % 250);
        next["status"]["podIP"] = json!(ip);
        next["status"]["podIPs"] = json!([{"ip": ip}]);
        next["status"]["startTime"] = json!(meta::now_rfc3339());
    }
    let names = container_names(pod);
    let images: Vec<String> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .map(|c| {
                    c.get("image")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned()
                })
                .collect()
        })
        .unwrap_or_default();
    let started_at = json!(meta::now_rfc3339());
    let statuses =
        |ready: bool, state: Value, restarts: i64, last: Value| -> Value {
            json!(names.iter().zip(images.iter()).map(|(name, image)| json!({
            "name": name, "image": image, "imageID": "", "ready": ready, "started": ready,
            "restartCount": restarts, "state": state, "lastState": last,
        })).collect::<Vec<_>>())
        };
    let conditions = |ready: bool| {
        let flag = if ready { "True" } else { "False" };
        json!([
            {"type": "Initialized", "status": "True"},
            {"type": "Ready", "status": flag},
            {"type": "ContainersReady", "status": flag},
            {"type": "PodScheduled", "status": "True"},
        ])
    };
    if is_job_pod(pod) {
        let (new_phase, exit_code, reason) = match failure {
            Some(Failure::CrashLoop) | Some(Failure::ImagePull) => ("Failed", 1, "Error"),
            _ => ("Succeeded", 0, "Completed"),
        };
        next["status"]["phase"] = json!(new_phase);
        next["status"]["conditions"] = conditions(false);
        next["status"]["containerStatuses"] = statuses(
            false,
            json!({"terminated": {"exitCode": exit_code, "reason": reason, "finishedAt": started_at}}),
            0,
            json!({}),
        );
        return;
    }
    match failure {
        Some(Failure::ImagePull) => {
            if phase == "Pending" && next.pointer("/status/containerStatuses").is_none() {
                record_event(
                    world,
                    pod,
                    "Warning",
                    "Failed",
                    format!(
                        "Failed to pull image \"{}\": simulated image pull error",
                        images.join(",")
                    ),
                );
            }
            next["status"]["phase"] = json!("Pending");
            next["status"]["conditions"] = conditions(false);
            next["status"]["containerStatuses"] = statuses(
                false,
                json!({"waiting": {"reason": "ImagePullBackOff", "message": "simulated image pull error"}}),
                0,
                json!({}),
            );
        }
        Some(Failure::CrashLoop) => {
            let restarts = pod
                .pointer("/status/containerStatuses/0/restartCount")
                .and_then(Value::as_i64);
            let due = now.duration_since(started)
                >= clock.scaled(clock.pod_start_delay) + clock.repeat(clock.pod_start_delay);
            let restarts = match restarts {
                None => 0,
                Some(count) if due => {
                    memory.seen.insert(
                        meta::uid(pod).to_owned(),
                        now - clock.scaled(clock.pod_start_delay),
                    );
                    count + 1
                }
                Some(count) => count,
            };
            if restarts == 0 && pod.pointer("/status/containerStatuses").is_none() {
                record_event(
                    world,
                    pod,
                    "Warning",
                    "BackOff",
                    "Back-off restarting failed container".into(),
                );
            }
            next["status"]["phase"] = json!("Running");
            next["status"]["conditions"] = conditions(false);
            next["status"]["containerStatuses"] = statuses(
                false,
                json!({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off restarting failed container"}}),
                restarts,
                json!({"terminated": {"exitCode": 1, "reason": "Error"}}),
            );
        }
        Some(Failure::NeverReady) => {
            next["status"]["phase"] = json!("Running");
            next["status"]["conditions"] = conditions(false);
            if pod.pointer("/status/containerStatuses").is_none() {
                next["status"]["containerStatuses"] = statuses(
                    false,
                    json!({"running": {"startedAt": started_at}}),
                    0,
                    json!({}),
                );
            }
        }
        None | Some(Failure::SlowStart) => {
            next["status"]["phase"] = json!("Running");
            next["status"]["conditions"] = conditions(true);
            if pod.pointer("/status/containerStatuses/0/ready") != Some(&json!(true)) {
                next["status"]["containerStatuses"] = statuses(
                    true,
                    json!({"running": {"startedAt": started_at}}),
                    0,
                    json!({}),
                );
            }
        }
    }
}

/// The lines `kubectl logs` shows for a container of `pod`.
pub fn log_lines(pod: &Value, container: Option<&str>) -> Result<Vec<String>, Status> {
    let names = container_names(pod);
    let container = match container {
        Some(name) if names.iter().any(|n| n == name) => name.to_owned(),
        Some(name) => {
            return Err(Status::bad_request(format!(
                "container {name} is not valid for pod {}",
                meta::name(pod)
            )));
        }
        None if names.len() == 1 => names[0].clone(),
        None => {
            return Err(Status::bad_request(format!(
                "a container name must be specified for pod {}, choose one of: [{}]",
                meta::name(pod),
                names.join(" ")
            )));
        }
    };
    let image = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .and_then(|l| l.iter().find(|c| c["name"] == container.as_str()))
        .and_then(|c| c.get("image"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let stamp = meta::str_at(pod, "/status/startTime")
        .unwrap_or("")
        .to_owned();
    let phase = meta::str_at(pod, "/status/phase").unwrap_or("Pending");
    if phase == "Pending" {
        return Err(Status::bad_request(format!(
            "container \"{container}\" in pod \"{}\" is waiting to start: {}",
            meta::name(pod),
            meta::str_at(pod, "/status/containerStatuses/0/state/waiting/reason")
                .unwrap_or("ContainerCreating")
        )));
    }
    let mut lines = vec![
        format!("{stamp} [wharf-sim] starting container {container} from image {image}"),
        format!("{stamp} [wharf-sim] listening on :8080"),
    ];
    match failure_of(pod) {
        Some(Failure::CrashLoop) => lines.push(format!(
            "{stamp} [wharf-sim] fatal: simulated crash, exiting with code 1"
        )),
        Some(Failure::NeverReady) => lines.push(format!(
            "{stamp} [wharf-sim] readiness probe failing: simulated"
        )),
        _ if phase == "Succeeded" => lines.push(format!(
            "{stamp} [wharf-sim] work finished, exiting with code 0"
        )),
        _ => lines.push(format!("{stamp} [wharf-sim] ready")),
    }
    Ok(lines)
}
