//! The four patch flavours: JSON merge patch (RFC 7386), JSON patch (RFC 6902), strategic
//! merge patch for built-in kinds (lists merged by their merge key, `$patch` directives)
//! and server-side apply, simplified to a strategic merge of the applied configuration
//! (no per-manager field ownership).

use serde_json::{Map, Value};

/// A patch as the request's `Content-Type` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    Merge,
    Json,
    Strategic,
    Apply,
}

impl PatchKind {
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let media = content_type.split(';').next().unwrap_or("").trim();
        match media {
            "application/merge-patch+json" => Some(Self::Merge),
            "application/json-patch+json" => Some(Self::Json),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => Some(Self::Apply),
            _ => None,
        }
    }
}

/// Why a patch could not be applied (a 422 or 400 for the caller).
#[derive(Debug)]
pub struct PatchError(pub String);

/// Applies `patch` of `kind` to `target` in place.
pub fn apply(kind: PatchKind, target: &mut Value, patch: &Value) -> Result<(), PatchError> {
    match kind {
        PatchKind::Merge => {
            if !patch.is_object() {
                return Err(PatchError("a merge patch must be a JSON object".into()));
            }
            json_patch::merge(target, patch);
            Ok(())
        }
        PatchKind::Json => {
            let operations: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| PatchError(format!("invalid JSON patch: {e}")))?;
            json_patch::patch(target, &operations).map_err(|e| PatchError(e.to_string()))
        }
        PatchKind::Strategic | PatchKind::Apply => {
            if !patch.is_object() {
                return Err(PatchError(
                    "a strategic merge patch must be a JSON object".into(),
                ));
            }
            strategic_merge(target, patch, "");
            Ok(())
        }
    }
}

/// The key that identifies list items at `path` (a dotted path of field names from the
/// object root, with list positions left out), as the built-in types declare it.
fn merge_key(path: &str) -> Option<&'static str> {
    let field = path.rsplit('.').next().unwrap_or(path);
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "hostAliases"
        | "readinessGates" => match field {
            "hostAliases" => Some("ip"),
            "readinessGates" => Some("conditionType"),
            _ => Some("name"),
        },
        "volumeMounts" => Some("mountPath"),
        "volumeDevices" => Some("devicePath"),
        "ownerReferences" => Some("uid"),
        "conditions" => Some("type"),
        "ports" if path.ends_with("containers.ports") || path.ends_with("Containers.ports") => {
            Some("containerPort")
        }
        "ports" => Some("port"),
        _ => None,
    }
}

/// Lists of scalars whose patch strategy is `merge` (a set union), not replace.
fn merges_scalars(path: &str) -> bool {
    path == "metadata.finalizers"
}

fn strategic_merge(target: &mut Value, patch: &Value, path: &str) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if patch_map.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut replacement = patch_map.clone();
        replacement.remove("$patch");
        *target = Value::Object(replacement);
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(target_map) = target else {
        return;
    };
    if let Some(keep) = patch_map.get("$retainKeys").and_then(Value::as_array) {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        target_map.retain(|key, _| keep.contains(&key.as_str()));
    }
    for (key, value) in patch_map {
        if key.starts_with('$') {
            continue;
        }
        let child_path = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        match value {
            Value::Null => {
                target_map.remove(key);
            }
            Value::Object(_) => {
                let slot = target_map.entry(key.clone()).or_insert(Value::Null);
                strategic_merge(slot, value, &child_path);
            }
            Value::Array(items) => {
                let slot = target_map.entry(key.clone()).or_insert(Value::Null);
                merge_list(slot, items, &child_path);
            }
            _ => {
                target_map.insert(key.clone(), value.clone());
            }
        }
    }
}

fn merge_list(target: &mut Value, items: &[Value], path: &str) {
    if let Some(key) = merge_key(path)
        && let Value::Array(existing) = target
    {
        for item in items {
            let directive = item.get("$patch").and_then(Value::as_str);
            let Some(id) = item.get(key) else {
                existing.push(item.clone());
                continue;
            };
            let position = existing.iter().position(|e| e.get(key) == Some(id));
            match (directive, position) {
                (Some("delete"), Some(at)) => {
                    existing.remove(at);
                }
                (Some("delete"), None) => {}
                (_, Some(at)) => strategic_merge(&mut existing[at], item, path),
                (_, None) => {
                    let mut fresh = Value::Null;
                    strategic_merge(&mut fresh, item, path);
                    existing.push(fresh);
                }
            }
        }
        return;
    }
    if merges_scalars(path)
        && let Value::Array(existing) = target
    {
        for item in items {
            if !existing.contains(item) {
                existing.push(item.clone());
            }
        }
        return;
    }
    *target = Value::Array(items.to_vec());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merge_merges_containers_by_name_and_env_by_name() {
        let mut deployment = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "web", "image": "nginx:1", "env": [{"name": "A", "value": "1"}]},
            {"name": "sidecar", "image": "envoy"}
        ]}}}});
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "web", "image": "nginx:2", "env": [{"name": "B", "value": "2"}]}
        ]}}}});
        apply(PatchKind::Strategic, &mut deployment, &patch).unwrap();
        let containers = &deployment["spec"]["template"]["spec"]["containers"];
        assert_eq!(containers.as_array().unwrap().len(), 2);
        assert_eq!(containers[0]["image"], "nginx:2");
        assert_eq!(containers[0]["env"].as_array().unwrap().len(), 2);
        assert_eq!(containers[1]["name"], "sidecar");
    }

    #[test]
    fn strategic_directives_delete_items_and_null_removes_keys() {
        let mut service = json!({"metadata": {"labels": {"a": "1", "b": "2"}},
            "spec": {"ports": [{"port": 80}, {"port": 443}]}});
        let patch = json!({"metadata": {"labels": {"a": null}},
            "spec": {"ports": [{"port": 443, "$patch": "delete"}]}});
        apply(PatchKind::Strategic, &mut service, &patch).unwrap();
        assert_eq!(service["metadata"]["labels"], json!({"b": "2"}));
        assert_eq!(service["spec"]["ports"], json!([{"port": 80}]));
    }

    #[test]
    fn merge_patch_replaces_lists_and_json_patch_follows_rfc_6902() {
        let mut object = json!({"spec": {"items": [1, 2]}});
        apply(
            PatchKind::Merge,
            &mut object,
            &json!({"spec": {"items": [3]}}),
        )
        .unwrap();
        assert_eq!(object["spec"]["items"], json!([3]));
        apply(
            PatchKind::Json,
            &mut object,
            &json!([{"op": "replace", "path": "/spec/items/0", "value": 4}]),
        )
        .unwrap();
        assert_eq!(object["spec"]["items"], json!([4]));
        assert!(
            apply(
                PatchKind::Json,
                &mut object,
                &json!([{"op": "remove", "path": "/nope"}])
            )
            .is_err()
        );
    }
}
