//! The Deployment controller, after kubernetes' `pkg/controller/deployment`: one
//! ReplicaSet per distinct pod template (named by a hash of it), revisions in the
//! `deployment.kubernetes.io/revision` annotation, rolling updates bounded by maxSurge
//! and maxUnavailable, Recreate, history trimmed to revisionHistoryLimit, and the status
//! counters and conditions `kubectl rollout status` reads.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::{Clock, by_controller, condition, find_condition, record_event, write_if_changed};
use crate::cluster::sim::meta;
use crate::cluster::sim::resources::kinds;
use crate::cluster::sim::world::{DeleteOptions, World};

const REVISION: &str = "deployment.kubernetes.io/revision";
const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
const HASH_LABEL: &str = "pod-template-hash";

/// Drops nulls and empty objects, which clients built on Go types add freely
/// (`creationTimestamp: null`, `resources: {}` in what `kubectl rollout undo` sends).
fn without_empties(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for child in map.values_mut() {
                without_empties(child);
            }
            map.retain(|_, v| !v.is_null() && !v.as_object().is_some_and(|o| o.is_empty()));
        }
        Value::Array(items) => items.iter_mut().for_each(without_empties),
        _ => {}
    }
}

/// The template without the hash label (what "the same template" compares).
fn bare_template(template: Option<&Value>) -> Value {
    let mut template = template.cloned().unwrap_or(json!({}));
    without_empties(&mut template);
    if let Some(Value::Object(labels)) = template.pointer_mut("/metadata/labels") {
        labels.remove(HASH_LABEL);
        if labels.is_empty()
            && let Some(Value::Object(metadata)) = template.get_mut("metadata")
        {
            metadata.remove("labels");
        }
    }
    template
}

/// FNV-1a of the template's canonical JSON, written in the alphabet Kubernetes uses for
/// generated names (no vowels, so no words).
pub fn template_hash(template: &Value) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in serde_json::to_vec(template).unwrap_or_default() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut text = String::new();
    let mut value = hash;
    loop {
        text.push(ALPHABET[(value % ALPHABET.len() as u32) as usize] as char);
        value /= ALPHABET.len() as u32;
        if value == 0 {
            break;
        }
    }
    text
}

fn revision(object: &Value) -> i64 {
    meta::annotation(object, REVISION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn spec_replicas(object: &Value) -> i64 {
    object
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

fn status_count(object: &Value, field: &str) -> i64 {
    object
        .pointer(&format!("/status/{field}"))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// An int-or-percent against `total`, rounded up (surge) or down (unavailable).
fn resolve(value: Option<&Value>, total: i64, round_up: bool) -> i64 {
    match value {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(text)) => {
            match text.strip_suffix('%').and_then(|p| p.parse::<f64>().ok()) {
                Some(percent) => {
                    let exact = percent * total as f64 / 100.0;
                    (if round_up {
                        exact.ceil()
                    } else {
                        exact.floor()
                    }) as i64
                }
                None => text.parse().unwrap_or(0),
            }
        }
        _ => 0,
    }
}

/// (maxSurge, maxUnavailable) for a deployment, after kubernetes' ResolveFenceposts.
pub fn fenceposts(deployment: &Value) -> (i64, i64) {
    let replicas = spec_replicas(deployment);
    let rolling = deployment.pointer("/spec/strategy/rollingUpdate");
    let surge = resolve(rolling.and_then(|r| r.get("maxSurge")), replicas, true);
    let unavailable = resolve(
        rolling.and_then(|r| r.get("maxUnavailable")),
        replicas,
        false,
    );
    if surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable)
    }
}

/// One pass; true while some rollout is unfinished (its progress deadline runs).
pub fn sync(world: &mut World, clock: &Clock) -> bool {
    let mut pending = false;
    let owned = by_controller(world, kinds::replica_set());
    let deployments: Vec<Arc<Value>> = world.list(kinds::deployment(), None).cloned().collect();
    for deployment in deployments {
        if meta::is_deleting(&deployment) {
            continue;
        }
        let sets = owned
            .get(meta::uid(&deployment))
            .cloned()
            .unwrap_or_default();
        pending |= sync_one(world, clock, &deployment, sets);
    }
    pending
}

fn set_replicas(world: &mut World, set: &Value, replicas: i64) -> bool {
    if spec_replicas(set) == replicas {
        return false;
    }
    let Some(current) = world.get(kinds::replica_set(), meta::namespace(set), meta::name(set))
    else {
        return false;
    };
    let mut next = current.as_ref().clone();
    next["spec"]["replicas"] = json!(replicas);
    write_if_changed(world, kinds::replica_set(), &current, next);
    true
}

/// Syncs one deployment; true while its rollout is unfinished.
fn sync_one(
    world: &mut World,
    clock: &Clock,
    deployment: &Value,
    mut sets: Vec<Arc<Value>>,
) -> bool {
    let namespace = meta::namespace(deployment).to_owned();
    let name = meta::name(deployment).to_owned();
    let template = bare_template(deployment.pointer("/spec/template"));
    let replicas = spec_replicas(deployment);
    let paused = deployment.pointer("/spec/paused").and_then(Value::as_bool) == Some(true);
    let recreate = meta::str_at(deployment, "/spec/strategy/type") == Some("Recreate");
    let (surge, max_unavailable) = if recreate {
        (0, 0)
    } else {
        fenceposts(deployment)
    };
    let max_revision = sets.iter().map(|s| revision(s)).max().unwrap_or(0);
    let mut progressed = false;
    let mut created_new = false;

    let mut new_set = sets
        .iter()
        .find(|s| bare_template(s.pointer("/spec/template")) == template)
        .cloned();
    if !paused {
        match &new_set {
            None => {
                let hash = template_hash(&template);
                let total: i64 = sets.iter().map(|s| spec_replicas(s)).sum();
                let initial = if recreate && total > 0 {
                    0
                } else if sets.is_empty() {
                    replicas
                } else {
                    (replicas + surge - total).clamp(0, replicas)
                };
                let mut pod_template = template.clone();
                pod_template["metadata"]["labels"][HASH_LABEL] = json!(hash);
                let mut selector = deployment
                    .pointer("/spec/selector")
                    .cloned()
                    .unwrap_or(json!({}));
                selector["matchLabels"][HASH_LABEL] = json!(hash);
                let mut annotations = deployment
                    .pointer("/metadata/annotations")
                    .cloned()
                    .unwrap_or(json!({}));
                if let Value::Object(map) = &mut annotations {
                    map.retain(|k, _| {
                        k != "kubectl.kubernetes.io/last-applied-configuration"
                            && !k.starts_with("deployment.kubernetes.io/")
                    });
                    map.insert(REVISION.into(), json!((max_revision + 1).to_string()));
                    map.insert(
                        "deployment.kubernetes.io/desired-replicas".into(),
                        json!(replicas.to_string()),
                    );
                    map.insert(
                        "deployment.kubernetes.io/max-replicas".into(),
                        json!((replicas + surge).to_string()),
                    );
                }
                let mut labels = template
                    .pointer("/metadata/labels")
                    .cloned()
                    .unwrap_or(json!({}));
                labels[HASH_LABEL] = json!(hash);
                let set = json!({
                    "metadata": {
                        "name": format!("{name}-{hash}"),
                        "labels": labels,
                        "annotations": annotations,
                        "ownerReferences": [meta::controller_ref(deployment)],
                    },
                    "spec": {
                        "replicas": initial,
                        "minReadySeconds": deployment.pointer("/spec/minReadySeconds").cloned().unwrap_or(json!(0)),
                        "selector": selector,
                        "template": pod_template,
                    },
                });
                match world.create(kinds::replica_set(), &namespace, set) {
                    Ok(created) => {
                        record_event(
                            world,
                            deployment,
                            "Normal",
                            "ScalingReplicaSet",
                            format!(
                                "Scaled up replica set {} to {initial}",
                                meta::name(&created)
                            ),
                        );
                        sets.push(created.clone());
                        new_set = Some(created);
                        progressed = true;
                        created_new = true;
                    }
                    Err(status) => {
                        tracing::debug!(message = %status.message, "creating a replica set failed");
                        return true;
                    }
                }
            }
            Some(set) if revision(set) < max_revision => {
                // A rollback to an older template: it becomes the newest revision.
                let mut next = set.as_ref().clone();
                let old_revision = revision(set);
                let history = match meta::annotation(set, REVISION_HISTORY) {
                    Some(previous) if !previous.is_empty() => format!("{previous},{old_revision}"),
                    _ => old_revision.to_string(),
                };
                next["metadata"]["annotations"][REVISION] = json!((max_revision + 1).to_string());
                next["metadata"]["annotations"][REVISION_HISTORY] = json!(history);
                write_if_changed(world, kinds::replica_set(), set, next);
                progressed = true;
            }
            Some(_) => {}
        }
    }
    // Re-read what the steps above wrote.
    let refresh = |world: &World, set: &Arc<Value>| {
        world
            .get(kinds::replica_set(), &namespace, meta::name(set))
            .unwrap_or_else(|| set.clone())
    };
    let sets: Vec<Arc<Value>> = sets.iter().map(|s| refresh(world, s)).collect();
    let new_set = new_set.map(|s| refresh(world, &s));
    let new_uid = new_set
        .as_ref()
        .map(|s| meta::uid(s).to_owned())
        .unwrap_or_default();
    let mut old_sets: Vec<Arc<Value>> = sets
        .iter()
        .filter(|s| meta::uid(s) != new_uid)
        .cloned()
        .collect();
    old_sets.sort_by_key(|s| revision(s));

    if !paused && let Some(new_set) = &new_set {
        if recreate {
            let mut old_running = 0;
            for old in &old_sets {
                progressed |= set_replicas(world, old, 0);
                old_running += status_count(old, "replicas");
            }
            if old_running == 0 {
                progressed |= set_replicas(world, new_set, replicas);
            }
        } else {
            let total: i64 = sets.iter().map(|s| spec_replicas(s)).sum();
            let new_replicas = spec_replicas(new_set);
            // Scale the new set up within the surge budget (or down to the target).
            let target = if new_replicas > replicas {
                replicas
            } else {
                let room = (replicas + surge - total).max(0);
                new_replicas + room.min(replicas - new_replicas)
            };
            if set_replicas(world, new_set, target) {
                progressed = true;
                if !created_new && target > new_replicas {
                    record_event(
                        world,
                        deployment,
                        "Normal",
                        "ScalingReplicaSet",
                        format!("Scaled up replica set {} to {target}", meta::name(new_set)),
                    );
                }
            }
            // Scale old sets down while enough pods stay available.
            let min_available = replicas - max_unavailable;
            let all_pods: i64 =
                sets.iter().map(|s| spec_replicas(s)).sum::<i64>() - new_replicas + target;
            let new_unavailable = (target - status_count(new_set, "availableReplicas")).max(0);
            let mut budget = (all_pods - min_available - new_unavailable).max(0);
            // Unhealthy old replicas first: removing them costs no availability.
            for old in &old_sets {
                if budget == 0 {
                    break;
                }
                let unhealthy = spec_replicas(old) - status_count(old, "availableReplicas");
                if unhealthy > 0 {
                    let cut = unhealthy.min(budget);
                    budget -= cut;
                    progressed |= set_replicas(world, old, spec_replicas(old) - cut);
                }
            }
            let old_sets: Vec<Arc<Value>> = old_sets.iter().map(|s| refresh(world, s)).collect();
            let available: i64 = old_sets
                .iter()
                .map(|s| status_count(s, "availableReplicas"))
                .sum::<i64>()
                + status_count(new_set, "availableReplicas");
            let mut allowed = (available - min_available).max(0);
            for old in &old_sets {
                if allowed == 0 {
                    break;
                }
                let cut = spec_replicas(old).min(allowed);
                if cut > 0 {
                    allowed -= cut;
                    let to = spec_replicas(old) - cut;
                    if set_replicas(world, old, to) {
                        progressed = true;
                        record_event(
                            world,
                            deployment,
                            "Normal",
                            "ScalingReplicaSet",
                            format!("Scaled down replica set {} to {to}", meta::name(old)),
                        );
                    }
                }
            }
        }
    }

    trim_history(world, deployment, &old_sets);
    let sets: Vec<Arc<Value>> = sets
        .iter()
        .filter_map(|s| world.get(kinds::replica_set(), &namespace, meta::name(s)))
        .collect();
    let new_set = new_set.and_then(|s| world.get(kinds::replica_set(), &namespace, meta::name(&s)));
    write_status(
        world,
        clock,
        deployment,
        &sets,
        new_set.as_deref(),
        progressed,
        created_new,
        paused,
        max_unavailable,
    )
}

fn trim_history(world: &mut World, deployment: &Value, old_sets: &[Arc<Value>]) {
    let limit = deployment
        .pointer("/spec/revisionHistoryLimit")
        .and_then(Value::as_i64)
        .unwrap_or(10)
        .max(0) as usize;
    let idle: Vec<&Arc<Value>> = old_sets
        .iter()
        .filter(|s| {
            spec_replicas(s) == 0 && status_count(s, "replicas") == 0 && !meta::is_deleting(s)
        })
        .collect();
    if idle.len() <= limit {
        return;
    }
    for set in &idle[..idle.len() - limit] {
        let options = DeleteOptions::default();
        let _ = world.delete(
            kinds::replica_set(),
            meta::namespace(set),
            meta::name(set),
            &options,
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn write_status(
    world: &mut World,
    clock: &Clock,
    deployment: &Value,
    sets: &[Arc<Value>],
    new_set: Option<&Value>,
    progressed: bool,
    created_new: bool,
    paused: bool,
    max_unavailable: i64,
) -> bool {
    let Some(current) = world.get(
        kinds::deployment(),
        meta::namespace(deployment),
        meta::name(deployment),
    ) else {
        return false;
    };
    let replicas = spec_replicas(&current);
    let sum = |field: &str| sets.iter().map(|s| status_count(s, field)).sum::<i64>();
    let total_spec: i64 = sets.iter().map(|s| spec_replicas(s)).sum();
    let available = sum("availableReplicas");
    let updated = new_set.map_or(0, |s| status_count(s, "replicas"));
    let status_replicas = sum("replicas");
    let complete = new_set.is_some()
        && updated == replicas
        && status_replicas == updated
        && available == updated;
    let previous_progressing = find_condition(&current, "Progressing");
    let (progress_status, progress_reason, message) = if paused {
        (
            "Unknown",
            "DeploymentPaused",
            "Deployment is paused".to_owned(),
        )
    } else if complete {
        (
            "True",
            "NewReplicaSetAvailable",
            format!(
                "ReplicaSet \"{}\" has successfully progressed.",
                new_set.map(meta::name).unwrap_or("")
            ),
        )
    } else if created_new {
        (
            "True",
            "NewReplicaSetCreated",
            format!(
                "Created new replica set \"{}\"",
                new_set.map(meta::name).unwrap_or("")
            ),
        )
    } else {
        let deadline = current
            .pointer("/spec/progressDeadlineSeconds")
            .and_then(Value::as_u64)
            .unwrap_or(600);
        let last_progress = previous_progressing
            .and_then(|c| meta::str_at(c, "/lastUpdateTime"))
            .and_then(meta::parse_timestamp);
        // At time scale 0 simulated time stands still between passes, so no deadline
        // can pass; a busy controller must not read as a stalled rollout.
        let stalled = !progressed
            && clock.time_scale > 0.0
            && last_progress.is_some_and(|at| {
                let elapsed = (time::OffsetDateTime::now_utc() - at)
                    .whole_milliseconds()
                    .max(0) as u64;
                Duration::from_millis(elapsed)
                    > clock
                        .scaled(Duration::from_secs(deadline))
                        .max(Duration::from_secs(1))
            });
        if stalled
            || previous_progressing.is_some_and(|c| c["reason"] == "ProgressDeadlineExceeded")
                && !progressed
        {
            (
                "False",
                "ProgressDeadlineExceeded",
                format!(
                    "ReplicaSet \"{}\" has timed out progressing.",
                    new_set.map(meta::name).unwrap_or("")
                ),
            )
        } else {
            (
                "True",
                "ReplicaSetUpdated",
                format!(
                    "ReplicaSet \"{}\" is progressing.",
                    new_set.map(meta::name).unwrap_or("")
                ),
            )
        }
    };
    let available_ok = available >= replicas - max_unavailable;
    let conditions = json!([
        condition(
            find_condition(&current, "Available"),
            "Available",
            if available_ok { "True" } else { "False" },
            if available_ok {
                "MinimumReplicasAvailable"
            } else {
                "MinimumReplicasUnavailable"
            },
            if available_ok {
                "Deployment has minimum availability."
            } else {
                "Deployment does not have minimum availability."
            },
            false,
        ),
        condition(
            previous_progressing,
            "Progressing",
            progress_status,
            progress_reason,
            &message,
            progressed
        ),
    ]);
    let mut next = current.as_ref().clone();
    next["status"] = json!({
        "observedGeneration": current.pointer("/metadata/generation").cloned().unwrap_or(json!(1)),
        "replicas": status_replicas,
        "updatedReplicas": updated,
        "readyReplicas": sum("readyReplicas"),
        "availableReplicas": available,
        "unavailableReplicas": (total_spec.max(replicas) - available).max(0),
        "conditions": conditions,
    });
    if let Some(new_set) = new_set {
        next["metadata"]["annotations"][REVISION] = json!(revision(new_set).to_string());
    }
    write_if_changed(world, kinds::deployment(), &current, next);
    !complete && !paused
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fenceposts_round_surge_up_and_unavailable_down() {
        let deployment = json!({"spec": {"replicas": 10, "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}}});
        assert_eq!(fenceposts(&deployment), (3, 2));
        let both_zero = json!({"spec": {"replicas": 3, "strategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}}});
        assert_eq!(fenceposts(&both_zero), (0, 1));
    }

    #[test]
    fn templates_differing_only_in_go_zero_values_are_the_same() {
        let ours = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx:1"}]}});
        let kubectls = json!({"metadata": {"creationTimestamp": null, "labels": {"app": "web", "pod-template-hash": "abc"}}, "spec": {"containers": [{"name": "web", "image": "nginx:1", "resources": {}}]}});
        assert_eq!(bare_template(Some(&ours)), bare_template(Some(&kubectls)));
    }

    #[test]
    fn template_hash_ignores_the_hash_label() {
        let a = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx:1"}]}});
        let mut b = a.clone();
        b["metadata"]["labels"][HASH_LABEL] = json!("xyz");
        assert_eq!(
            template_hash(&bare_template(Some(&a))),
            template_hash(&bare_template(Some(&b)))
        );
        let mut c = a.clone();
        c["spec"]["containers"][0]["image"] = json!("nginx:2");
        assert_ne!(template_hash(&a), template_hash(&c));
    }
}
