//! The ReplicaSet controller: keeps `spec.replicas` pods alive from the template (not
//! ready and newest pods go first on scale-down) and reports replicas, ready and
//! available counts.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{by_controller, record_event, write_if_changed};
use crate::cluster::sim::meta;
use crate::cluster::sim::resources::kinds;
use crate::cluster::sim::world::{DeleteOptions, World};

pub fn is_ready(pod: &Value) -> bool {
    super::find_condition(pod, "Ready").is_some_and(|c| c["status"] == "True")
}

fn is_active(pod: &Value) -> bool {
    !meta::is_deleting(pod)
        && !matches!(
            meta::str_at(pod, "/status/phase"),
            Some("Succeeded" | "Failed")
        )
}

/// A pod for `owner` from its template.
pub fn pod_from_template(owner: &Value, name_prefix: &str) -> Value {
    let template = owner
        .pointer("/spec/template")
        .cloned()
        .unwrap_or(json!({}));
    let mut metadata = template.get("metadata").cloned().unwrap_or(json!({}));
    metadata["name"] = json!(meta::generate_name(name_prefix));
    metadata["ownerReferences"] = json!([meta::controller_ref(owner)]);
    json!({
        "metadata": metadata,
        "spec": template.get("spec").cloned().unwrap_or(json!({})),
    })
}

pub fn sync(world: &mut World) {
    let pods = by_controller(world, kinds::pod());
    let sets: Vec<Arc<Value>> = world.list(kinds::replica_set(), None).cloned().collect();
    for set in sets {
        if meta::is_deleting(&set) {
            continue;
        }
        let mut owned: Vec<Arc<Value>> = pods
            .get(meta::uid(&set))
            .map(|p| p.iter().filter(|p| is_active(p)).cloned().collect())
            .unwrap_or_default();
        let desired = set
            .pointer("/spec/replicas")
            .and_then(Value::as_u64)
            .unwrap_or(1) as usize;
        let namespace = meta::namespace(&set).to_owned();
        if owned.len() < desired {
            for _ in owned.len()..desired {
                let pod = pod_from_template(&set, &format!("{}-", meta::name(&set)));
                match world.create(kinds::pod(), &namespace, pod) {
                    Ok(created) => {
                        record_event(
                            world,
                            &set,
                            "Normal",
                            "SuccessfulCreate",
                            format!("Created pod: {}", meta::name(&created)),
                        );
                        owned.push(created);
                    }
                    Err(status) => {
                        record_event(
                            world,
                            &set,
                            "Warning",
                            "FailedCreate",
                            status.message.clone(),
                        );
                        break;
                    }
                }
            }
        } else if owned.len() > desired {
            // Not ready first, then the newest.
            owned.sort_by(|a, b| {
                is_ready(a)
                    .cmp(&is_ready(b))
                    .then_with(|| {
                        meta::str_at(b, "/metadata/creationTimestamp")
                            .cmp(&meta::str_at(a, "/metadata/creationTimestamp"))
                    })
                    .then_with(|| meta::name(b).cmp(meta::name(a)))
            });
            let surplus: Vec<Arc<Value>> = owned.drain(..owned.len() - desired).collect();
            for pod in surplus {
                let options = DeleteOptions::default();
                if world
                    .delete(kinds::pod(), &namespace, meta::name(&pod), &options)
                    .is_ok()
                {
                    record_event(
                        world,
                        &set,
                        "Normal",
                        "SuccessfulDelete",
                        format!("Deleted pod: {}", meta::name(&pod)),
                    );
                }
            }
        }
        let ready = owned.iter().filter(|p| is_ready(p)).count();
        let Some(current) = world.get(kinds::replica_set(), &namespace, meta::name(&set)) else {
            continue;
        };
        let mut next = current.as_ref().clone();
        next["status"] = json!({
            "replicas": owned.len(),
            "fullyLabeledReplicas": owned.len(),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "observedGeneration": current.pointer("/metadata/generation").cloned().unwrap_or(json!(1)),
        });
        write_if_changed(world, kinds::replica_set(), &current, next);
    }
}
