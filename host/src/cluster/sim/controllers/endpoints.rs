//! The Endpoints controller: each Service with a selector gets an Endpoints object
//! listing its ready pods (and the not-ready ones apart).

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};

use super::write_if_changed;
use crate::cluster::sim::meta;
use crate::cluster::sim::resources::kinds;
use crate::cluster::sim::world::World;

pub fn sync(world: &mut World) {
    let services: Vec<Arc<Value>> = world.list(kinds::service(), None).cloned().collect();
    if services.is_empty() {
        return;
    }
    let mut pods_by_namespace: HashMap<String, Vec<Arc<Value>>> = HashMap::new();
    for pod in world.list(kinds::pod(), None) {
        pods_by_namespace
            .entry(meta::namespace(pod).to_owned())
            .or_default()
            .push(pod.clone());
    }
    for service in services {
        let Some(selector) = service
            .pointer("/spec/selector")
            .and_then(Value::as_object)
            .filter(|s| !s.is_empty())
        else {
            continue;
        };
        if meta::is_deleting(&service) {
            continue;
        }
        let namespace = meta::namespace(&service).to_owned();
        let mut ready = Vec::new();
        let mut not_ready = Vec::new();
        for pod in pods_by_namespace.get(&namespace).into_iter().flatten() {
            let matches = selector
                .iter()
                .all(|(k, v)| meta::label(pod, k) == v.as_str());
            let Some(ip) =
                meta::str_at(pod, "/status/podIP").filter(|_| matches && !meta::is_deleting(pod))
            else {
                continue;
            };
            let address = json!({
                "ip": ip,
                "nodeName": pod.pointer("/spec/nodeName"),
                "targetRef": {"kind": "Pod", "namespace": namespace, "name": meta::name(pod), "uid": meta::uid(pod)},
            });
            if super::replicaset::is_ready(pod) {
                ready.push(address);
            } else {
                not_ready.push(address);
            }
        }
        let ports: Vec<Value> = service
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|p| {
                let port = p.get("targetPort").filter(|t| t.is_number()).or_else(|| p.get("port")).cloned().unwrap_or(json!(0));
                let mut entry = json!({"port": port, "protocol": p.get("protocol").cloned().unwrap_or(json!("TCP"))});
                if let Some(name) = p.get("name") {
                    entry["name"] = name.clone();
                }
                entry
            })
            .collect();
        let subsets = if ready.is_empty() && not_ready.is_empty() {
            json!([])
        } else {
            let mut subset = json!({"ports": ports});
            if !ready.is_empty() {
                subset["addresses"] = json!(ready);
            }
            if !not_ready.is_empty() {
                subset["notReadyAddresses"] = json!(not_ready);
            }
            json!([subset])
        };
        let name = meta::name(&service).to_owned();
        match world.get(kinds::endpoints(), &namespace, &name) {
            Some(current) => {
                let mut next = current.as_ref().clone();
                next["subsets"] = subsets;
                write_if_changed(world, kinds::endpoints(), &current, next);
            }
            None => {
                let endpoints = json!({
                    "metadata": {"name": name, "labels": service.pointer("/metadata/labels").cloned().unwrap_or(json!({})), "ownerReferences": [meta::controller_ref(&service)]},
                    "subsets": subsets,
                });
                let _ = world.create(kinds::endpoints(), &namespace, endpoints);
            }
        }
    }
}
