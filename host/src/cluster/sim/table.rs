//! Server-side `meta.k8s.io/v1` Tables, so `kubectl get` prints the standard columns
//! (READY, STATUS, RESTARTS, CLUSTER-IP, …) rather than only NAME and AGE.

use std::sync::Arc;

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::meta;
use super::resources::ResourceType;

/// A column: name, type, and whether it shows only with `-o wide`.
type Column = (&'static str, &'static str, u8);

fn columns(resource: &ResourceType) -> &'static [Column] {
    match (resource.group, resource.kind) {
        ("", "Pod") => &[
            ("Name", "string", 0),
            ("Ready", "string", 0),
            ("Status", "string", 0),
            ("Restarts", "integer", 0),
            ("Age", "string", 0),
            ("IP", "string", 1),
            ("Node", "string", 1),
        ],
        ("apps", "Deployment") => &[
            ("Name", "string", 0),
            ("Ready", "string", 0),
            ("Up-to-date", "integer", 0),
            ("Available", "integer", 0),
            ("Age", "string", 0),
            ("Containers", "string", 1),
            ("Images", "string", 1),
            ("Selector", "string", 1),
        ],
        ("apps", "ReplicaSet") => &[
            ("Name", "string", 0),
            ("Desired", "integer", 0),
            ("Current", "integer", 0),
            ("Ready", "integer", 0),
            ("Age", "string", 0),
            ("Containers", "string", 1),
            ("Images", "string", 1),
            ("Selector", "string", 1),
        ],
        ("", "Service") => &[
            ("Name", "string", 0),
            ("Type", "string", 0),
            ("Cluster-IP", "string", 0),
            ("External-IP", "string", 0),
            ("Port(s)", "string", 0),
            ("Age", "string", 0),
            ("Selector", "string", 1),
        ],
        ("", "ConfigMap") => &[
            ("Name", "string", 0),
            ("Data", "integer", 0),
            ("Age", "string", 0),
        ],
        ("", "Secret") => &[
            ("Name", "string", 0),
            ("Type", "string", 0),
            ("Data", "integer", 0),
            ("Age", "string", 0),
        ],
        ("", "Namespace") => &[
            ("Name", "string", 0),
            ("Status", "string", 0),
            ("Age", "string", 0),
        ],
        ("", "Node") => &[
            ("Name", "string", 0),
            ("Status", "string", 0),
            ("Roles", "string", 0),
            ("Age", "string", 0),
            ("Version", "string", 0),
            ("Internal-IP", "string", 1),
        ],
        ("batch", "Job") => &[
            ("Name", "string", 0),
            ("Status", "string", 0),
            ("Completions", "string", 0),
            ("Duration", "string", 0),
            ("Age", "string", 0),
        ],
        ("", "Endpoints") => &[
            ("Name", "string", 0),
            ("Endpoints", "string", 0),
            ("Age", "string", 0),
        ],
        ("", "Event") => &[
            ("Last Seen", "string", 0),
            ("Type", "string", 0),
            ("Reason", "string", 0),
            ("Object", "string", 0),
            ("Message", "string", 0),
        ],
        ("networking.k8s.io", "Ingress") => &[
            ("Name", "string", 0),
            ("Class", "string", 0),
            ("Hosts", "string", 0),
            ("Address", "string", 0),
            ("Ports", "string", 0),
            ("Age", "string", 0),
        ],
        _ => &[("Name", "string", 0), ("Age", "string", 0)],
    }
}

/// A Table of `objects`.
pub fn table(
    resource: &ResourceType,
    objects: &[Arc<Value>],
    rv: &str,
    continue_token: Option<&str>,
) -> Value {
    let definitions: Vec<Value> = columns(resource)
        .iter()
        .map(|(name, kind, priority)| {
            json!({"name": name, "type": kind, "format": if *name == "Name" { "name" } else { "" }, "description": "", "priority": priority})
        })
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| {
            json!({
                "cells": cells(resource, object),
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": object.get("metadata").cloned().unwrap_or(json!({})),
                },
            })
        })
        .collect();
    let mut metadata = json!({"resourceVersion": rv});
    if let Some(token) = continue_token {
        metadata["continue"] = json!(token);
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": definitions,
        "rows": rows,
    })
}

fn int(object: &Value, pointer: &str) -> i64 {
    object.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn text<'a>(object: &'a Value, pointer: &str) -> &'a str {
    meta::str_at(object, pointer).unwrap_or("")
}

fn or_none(value: String) -> String {
    if value.is_empty() {
        "<none>".into()
    } else {
        value
    }
}

/// `kubectl`'s short durations: 45s, 12m, 5h, 3d.
pub fn age(timestamp: &str) -> String {
    let Some(then) = meta::parse_timestamp(timestamp) else {
        return "<unknown>".into();
    };
    short_duration((OffsetDateTime::now_utc() - then).whole_seconds().max(0))
}

fn short_duration(seconds: i64) -> String {
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 3600 * 3 => format!("{}m", s / 60),
        s if s < 86_400 * 2 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

fn containers(template_spec: Option<&Value>) -> (String, String) {
    let list = template_spec
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let names: Vec<&str> = list
        .iter()
        .filter_map(|c| c.get("name").and_then(Value::as_str))
        .collect();
    let images: Vec<&str> = list
        .iter()
        .filter_map(|c| c.get("image").and_then(Value::as_str))
        .collect();
    (names.join(","), images.join(","))
}

fn selector_text(object: &Value) -> String {
    object
        .pointer("/spec/selector")
        .and_then(super::selector::LabelSelector::from_object)
        .map(|s| s.to_query())
        .unwrap_or_default()
}

fn cells(resource: &ResourceType, object: &Value) -> Vec<Value> {
    let name = json!(meta::name(object));
    let created = json!(age(text(object, "/metadata/creationTimestamp")));
    match (resource.group, resource.kind) {
        ("", "Pod") => {
            let statuses = object
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let total = object
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let ready = statuses
                .iter()
                .filter(|s| s.get("ready").and_then(Value::as_bool) == Some(true))
                .count();
            let restarts: i64 = statuses
                .iter()
                .map(|s| s.get("restartCount").and_then(Value::as_i64).unwrap_or(0))
                .sum();
            let waiting = statuses
                .iter()
                .find_map(|s| meta::str_at(s, "/state/waiting/reason"));
            let phase = if meta::is_deleting(object) {
                "Terminating"
            } else {
                waiting.unwrap_or(text(object, "/status/phase"))
            };
            vec![
                name,
                json!(format!("{ready}/{total}")),
                json!(phase),
                json!(restarts),
                created.clone(),
                json!(or_none(text(object, "/status/podIP").into())),
                json!(or_none(text(object, "/spec/nodeName").into())),
            ]
        }
        ("apps", "Deployment") => {
            let (names, images) = containers(object.pointer("/spec/template/spec"));
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    int(object, "/status/readyReplicas"),
                    int(object, "/spec/replicas")
                )),
                json!(int(object, "/status/updatedReplicas")),
                json!(int(object, "/status/availableReplicas")),
                created.clone(),
                json!(names),
                json!(images),
                json!(selector_text(object)),
            ]
        }
        ("apps", "ReplicaSet") => {
            let (names, images) = containers(object.pointer("/spec/template/spec"));
            vec![
                name,
                json!(int(object, "/spec/replicas")),
                json!(int(object, "/status/replicas")),
                json!(int(object, "/status/readyReplicas")),
                created.clone(),
                json!(names),
                json!(images),
                json!(selector_text(object)),
            ]
        }
        ("", "Service") => {
            let ports: Vec<String> = object
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|p| {
                    let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
                    let protocol = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
                    match p.get("nodePort").and_then(Value::as_i64) {
                        Some(node_port) => format!("{port}:{node_port}/{protocol}"),
                        None => format!("{port}/{protocol}"),
                    }
                })
                .collect();
            let external = match text(object, "/spec/type") {
                "LoadBalancer" => "<pending>".to_owned(),
                _ => "<none>".to_owned(),
            };
            let selector = object
                .pointer("/spec/selector")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            vec![
                name,
                json!(text(object, "/spec/type")),
                json!(or_none(text(object, "/spec/clusterIP").into())),
                json!(external),
                json!(or_none(ports.join(","))),
                created.clone(),
                json!(or_none(selector)),
            ]
        }
        ("", "ConfigMap") => {
            let count = ["data", "binaryData"]
                .iter()
                .filter_map(|f| object.get(*f).and_then(Value::as_object))
                .map(|m| m.len())
                .sum::<usize>();
            vec![name, json!(count), created]
        }
        ("", "Secret") => {
            let count = object
                .get("data")
                .and_then(Value::as_object)
                .map_or(0, |m| m.len());
            vec![name, json!(text(object, "/type")), json!(count), created]
        }
        ("", "Namespace") => vec![name, json!(text(object, "/status/phase")), created],
        ("", "Node") => {
            let ready = object
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
                .is_some_and(|c| c["status"] == "True");
            let roles = object
                .pointer("/metadata/labels")
                .and_then(Value::as_object)
                .map(|labels| {
                    labels
                        .keys()
                        .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/"))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            let ip = object
                .pointer("/status/addresses")
                .and_then(Value::as_array)
                .and_then(|a| a.iter().find(|a| a["type"] == "InternalIP"))
                .and_then(|a| a.get("address"))
                .and_then(Value::as_str)
                .unwrap_or("");
            vec![
                name,
                json!(if ready { "Ready" } else { "NotReady" }),
                json!(or_none(roles)),
                created.clone(),
                json!(text(object, "/status/nodeInfo/kubeletVersion")),
                json!(ip),
            ]
        }
        ("batch", "Job") => {
            let conditions = object
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let holds = |kind: &str| {
                conditions
                    .iter()
                    .any(|c| c["type"] == kind && c["status"] == "True")
            };
            let status = if holds("Complete") {
                "Complete"
            } else if holds("Failed") {
                "Failed"
            } else {
                "Running"
            };
            let duration = match (
                meta::str_at(object, "/status/startTime").and_then(meta::parse_timestamp),
                meta::str_at(object, "/status/completionTime").and_then(meta::parse_timestamp),
            ) {
                (Some(start), Some(end)) => short_duration((end - start).whole_seconds().max(0)),
                (Some(start), None) => {
                    short_duration((OffsetDateTime::now_utc() - start).whole_seconds().max(0))
                }
                _ => String::new(),
            };
            vec![
                name,
                json!(status),
                json!(format!(
                    "{}/{}",
                    int(object, "/status/succeeded"),
                    int(object, "/spec/completions")
                )),
                json!(duration),
                created,
            ]
        }
        ("", "Endpoints") => {
            let mut addresses = Vec::new();
            for subset in object
                .get("subsets")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
            {
                let ports: Vec<i64> = subset
                    .get("ports")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|p| p.get("port").and_then(Value::as_i64))
                    .collect();
                for address in subset
                    .get("addresses")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
                {
                    let ip = address
                        .get("ip")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned();
                    for port in &ports {
                        addresses.push(format!("{ip}:{port}"));
                    }
                }
            }
            vec![name, json!(or_none(addresses.join(","))), created]
        }
        ("", "Event") => vec![
            json!(age(meta::str_at(object, "/lastTimestamp")
                .unwrap_or(text(object, "/metadata/creationTimestamp")))),
            json!(text(object, "/type")),
            json!(text(object, "/reason")),
            json!(format!(
                "{}/{}",
                text(object, "/involvedObject/kind").to_lowercase(),
                text(object, "/involvedObject/name")
            )),
            json!(text(object, "/message")),
        ],
        ("networking.k8s.io", "Ingress") => {
            let hosts: Vec<&str> = object
                .pointer("/spec/rules")
                .and_then(Value::as_array)
                .map(|rules| {
                    rules
                        .iter()
                        .filter_map(|r| r.get("host").and_then(Value::as_str))
                        .collect()
                })
                .unwrap_or_default();
            let hosts = if hosts.is_empty() {
                "*".to_owned()
            } else {
                hosts.join(",")
            };
            vec![
                name,
                json!(or_none(text(object, "/spec/ingressClassName").into())),
                json!(hosts),
                json!(""),
                json!(if object.pointer("/spec/tls").is_some() {
                    "80, 443"
                } else {
                    "80"
                }),
                created,
            ]
        }
        _ => vec![name, created],
    }
}
