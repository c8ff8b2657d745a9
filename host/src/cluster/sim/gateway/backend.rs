//! What stands behind a Service: its ready pods (same namespace, matching its selector,
//! not being deleted), and the answer a simulated pod gives to a request.

use std::sync::Arc;

use serde_json::{Value, json};

use super::ServiceRef;
use super::request::Incoming;
use crate::cluster::sim::controllers::replicaset::is_ready;
use crate::cluster::sim::meta;
use crate::cluster::sim::resources::kinds;
use crate::cluster::sim::world::World;

/// The ready pods selected by `service` (none when it does not exist or selects nothing).
pub fn ready_pods(world: &World, service: &ServiceRef) -> Vec<Arc<Value>> {
    let Some(selector) = world
        .get(kinds::service(), &service.namespace, &service.name)
        .filter(|s| !meta::is_deleting(s))
        .and_then(|s| {
            s.pointer("/spec/selector")
                .and_then(Value::as_object)
                .cloned()
        })
        .filter(|s| !s.is_empty())
    else {
        return Vec::new();
    };
    world
        .list(kinds::pod(), Some(&service.namespace))
        .filter(|pod| {
            !meta::is_deleting(pod)
                && is_ready(pod)
                && selector
                    .iter()
                    .all(|(key, value)| meta::label(pod, key) == value.as_str())
        })
        .cloned()
        .collect()
}

/// A simulated pod's reply: who it is, and the request as it arrived.
pub fn pod_answer(pod: &Value, request: &Incoming) -> Value {
    json!({
        "pod": meta::name(pod),
        "namespace": meta::namespace(pod),
        "node": meta::str_at(pod, "/spec/nodeName").unwrap_or(""),
        "image": meta::str_at(pod, "/spec/containers/0/image").unwrap_or(""),
        "labels": pod.pointer("/metadata/labels").cloned().unwrap_or_else(|| json!({})),
        "request": {
            "method": request.method,
            "path": request.path,
            "headers": request.headers_json(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::super::request::sample;
    use super::*;
    use crate::cluster::sim::world::UpdateScope;

    fn pod(world: &mut World, name: &str, app: &str, ready: bool) {
        let created = world
            .create(
                kinds::pod(),
                "shop",
                json!({
                    "metadata": {"name": name, "labels": {"app": app}},
                    "spec": {"nodeName": "wharf-node-0", "containers": [{"name": "app", "image": format!("{app}:1")}]},
                }),
            )
            .expect("a pod");
        let mut running = created.as_ref().clone();
        running["status"] = json!({"phase": "Running", "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]});
        world
            .update(kinds::pod(), "shop", name, running, UpdateScope::Status)
            .expect("pod status");
    }

    #[test]
    fn only_ready_selected_pods_of_the_namespace_are_endpoints() {
        let mut world = World::load(None).expect("a world");
        world
            .create(
                kinds::namespace(),
                "",
                json!({"metadata": {"name": "shop"}}),
            )
            .expect("a namespace");
        world
            .create(
                kinds::service(),
                "shop",
                json!({"metadata": {"name": "cart"}, "spec": {"selector": {"app": "cart"}, "ports": [{"port": 80}]}}),
            )
            .expect("a service");
        pod(&mut world, "cart-1", "cart", true);
        pod(&mut world, "cart-2", "cart", false);
        pod(&mut world, "web-1", "web", true);
        let cart = ServiceRef {
            namespace: "shop".into(),
            name: "cart".into(),
        };
        let pods = ready_pods(&world, &cart);
        assert_eq!(
            pods.iter().map(|p| meta::name(p)).collect::<Vec<_>>(),
            ["cart-1"]
        );
        let missing = ServiceRef {
            namespace: "shop".into(),
            name: "nope".into(),
        };
        assert!(ready_pods(&world, &missing).is_empty());

        let answer = pod_answer(
            &pods[0],
            &sample("GET", "h", "/x?y=1", &[("x-user", "bob")]),
        );
        assert_eq!(answer["pod"], "cart-1");
        assert_eq!(answer["namespace"], "shop");
        assert_eq!(answer["node"], "wharf-node-0");
        assert_eq!(answer["image"], "cart:1");
        assert_eq!(answer["labels"]["app"], "cart");
        assert_eq!(answer["request"]["path"], "/x");
        assert_eq!(answer["request"]["headers"]["x-user"], "bob");
    }
}
