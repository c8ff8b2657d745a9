//! Discovery as kube-rs `Discovery::run` and kubectl read it: `/api`, `/apis`, each
//! group-version's resource list (with subresources), `/version`, and the empty
//! `/openapi/v2` document that lets `kubectl apply` validate.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::resources::{self, RESOURCES};
use super::status::Status;

/// The Kubernetes version the simulator answers as.
pub const KUBE_VERSION: (&str, &str) = ("1", "33");

pub async fn version() -> Response {
    axum::Json(json!({
        "major": KUBE_VERSION.0,
        "minor": KUBE_VERSION.1,
        "gitVersion": format!("v{}.{}.0-wharf-embedded", KUBE_VERSION.0, KUBE_VERSION.1),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24",
        "compiler": "gc",
        "platform": "linux/amd64",
    }))
    .into_response()
}

pub async fn core_versions() -> Response {
    axum::Json(json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}],
    }))
    .into_response()
}

fn group_json(group: &str, version: &str) -> Value {
    let group_version = json!({"groupVersion": format!("{group}/{version}"), "version": version});
    json!({
        "name": group,
        "versions": [group_version],
        "preferredVersion": group_version,
    })
}

pub async fn groups() -> Response {
    let groups: Vec<Value> = resources::groups()
        .into_iter()
        .map(|(group, version)| group_json(group, version))
        .collect();
    axum::Json(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}))
        .into_response()
}

/// `/apis/{group}`.
pub fn group(group: &str) -> Response {
    match resources::groups().into_iter().find(|(g, _)| *g == group) {
        Some((group, version)) => {
            let mut body = group_json(group, version);
            body["kind"] = json!("APIGroup");
            body["apiVersion"] = json!("v1");
            axum::Json(body).into_response()
        }
        None => Status::path_not_found().into_response(),
    }
}

const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// `/api/v1` or `/apis/{group}/{version}`.
pub fn resource_list(group: &str, version: &str) -> Response {
    let mut entries = Vec::new();
    for resource in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        entries.push(json!({
            "name": resource.plural,
            "singularName": resource.singular,
            "namespaced": resource.namespaced,
            "kind": resource.kind,
            "verbs": ALL_VERBS,
            "shortNames": resource.short_names,
            "categories": if matches!(resource.kind, "Pod" | "Service" | "Deployment" | "ReplicaSet" | "Job") { json!(["all"]) } else { json!([]) },
        }));
        for sub in resource.subresources {
            let (kind, group_of_kind, verbs): (&str, &str, &[&str]) = match *sub {
                "scale" => ("Scale", "autoscaling", &["get", "patch", "update"]),
                "log" => ("Pod", "", &["get"]),
                _ => (resource.kind, resource.group, &["get", "patch", "update"]),
            };
            let mut entry = json!({
                "name": format!("{}/{sub}", resource.plural),
                "singularName": "",
                "namespaced": resource.namespaced,
                "kind": kind,
                "verbs": verbs,
            });
            if *sub == "scale" {
                entry["group"] = json!(group_of_kind);
                entry["version"] = json!("v1");
            }
            entries.push(entry);
        }
    }
    let group_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    axum::Json(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": entries,
    }))
    .into_response()
}

/// An empty protobuf OpenAPI document: kubectl's validator accepts it and skips schema
/// checks. (Echoing the protobuf media type back would break client-go's parser.)
pub async fn openapi_v2() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/octet-stream")],
        Vec::<u8>::new(),
    )
        .into_response()
}
