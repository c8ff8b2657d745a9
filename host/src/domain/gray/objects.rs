//! What a router's rendered objects may be, and writing them to the cluster. A plugin's
//! output is untrusted: each object must be a Service, HTTPRoute or Ingress in the
//! target's namespace, named with the target's prefix; the host then stamps the gray
//! labels on it and applies it server-side. Removal finds objects by the change order's
//! label, so it needs neither the plugin nor the record of what was applied.

use kube::Client;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use serde_json::Value;

use super::release::{GRAY_CHANGE_LABEL, ObjectRef};
use crate::runtime::router::Target;

const FIELD_MANAGER: &str = "wharf-gray";
/// Objects one render may return.
pub const MAX_OBJECTS: usize = 16;

/// The kinds a router may render.
const KINDS: &[(&str, &str, &str, &str)] = &[
    // (apiVersion, kind, group, plural)
    ("v1", "Service", "", "services"),
    (
        "gateway.networking.k8s.io/v1",
        "HTTPRoute",
        "gateway.networking.k8s.io",
        "httproutes",
    ),
    (
        "networking.k8s.io/v1",
        "Ingress",
        "networking.k8s.io",
        "ingresses",
    ),
];

fn resource(api_version: &str, kind: &str) -> Option<ApiResource> {
    KINDS
        .iter()
        .find(|(v, k, _, _)| *v == api_version && *k == kind)
        .map(|(v, k, group, plural)| ApiResource {
            group: (*group).to_owned(),
            version: v.rsplit('/').next().unwrap_or(v).to_owned(),
            api_version: (*v).to_owned(),
            kind: (*k).to_owned(),
            plural: (*plural).to_owned(),
        })
}

/// Why rendered objects were refused.
#[derive(Debug, thiserror::Error)]
#[error("the traffic provider rendered an object Wharf will not apply: {0}")]
pub struct RefusedObject(pub String);

/// A checked object ready to apply.
pub struct Checked {
    pub reference: ObjectRef,
    resource: ApiResource,
    object: DynamicObject,
}

impl Checked {
    pub fn yaml(&self) -> String {
        crate::domain::render::to_yaml(&self.object)
    }
}

/// Checks each rendered object against `target` and stamps the target's labels on it.
pub fn check(objects: Vec<Value>, target: &Target) -> Result<Vec<Checked>, RefusedObject> {
    if objects.len() > MAX_OBJECTS {
        return Err(RefusedObject(format!(
            "{} objects, at most {MAX_OBJECTS}",
            objects.len()
        )));
    }
    let mut checked = Vec::with_capacity(objects.len());
    for (i, value) in objects.into_iter().enumerate() {
        let mut object: DynamicObject = serde_json::from_value(value)
            .map_err(|e| RefusedObject(format!("object {i} is not a Kubernetes object: {e}")))?;
        let types = object
            .types
            .clone()
            .ok_or_else(|| RefusedObject(format!("object {i} has no apiVersion and kind")))?;
        let resource = resource(&types.api_version, &types.kind).ok_or_else(|| {
            RefusedObject(format!(
                "object {i} is a {} {}; only Services, HTTPRoutes and Ingresses are applied",
                types.api_version, types.kind
            ))
        })?;
        let name = object.metadata.name.clone().unwrap_or_default();
        if !name.starts_with(&target.name) {
            return Err(RefusedObject(format!(
                "{} `{name}` is not named with the prefix `{}`",
                types.kind, target.name
            )));
        }
        match object.metadata.namespace.as_deref() {
            None => object.metadata.namespace = Some(target.namespace.clone()),
            Some(ns) if ns == target.namespace => {}
            Some(ns) => {
                return Err(RefusedObject(format!(
                    "{} `{name}` is in namespace `{ns}`, not `{}`",
                    types.kind, target.namespace
                )));
            }
        }
        let labels = object.metadata.labels.get_or_insert_with(Default::default);
        for (key, value) in &target.labels {
            labels.insert(key.clone(), value.clone());
        }
        checked.push(Checked {
            reference: ObjectRef {
                api_version: types.api_version,
                kind: types.kind,
                name,
            },
            resource,
            object,
        });
    }
    Ok(checked)
}

/// Applies checked objects server-side (absolute: re-applying a step changes nothing).
pub async fn apply(
    client: &Client,
    namespace: &str,
    objects: &[Checked],
) -> Result<(), kube::Error> {
    for checked in objects {
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), namespace, &checked.resource);
        api.patch(
            &checked.reference.name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&checked.object),
        )
        .await?;
    }
    Ok(())
}

/// Deletes every object rendered for change order `change` in `namespace`; the routing
/// objects first, so traffic leaves the canary before its Services go.
pub async fn remove(client: &Client, namespace: &str, change: &str) -> Result<(), kube::Error> {
    let selector = ListParams::default().labels(&format!("{GRAY_CHANGE_LABEL}={change}"));
    for (api_version, kind, _, _) in KINDS.iter().rev() {
        let Some(resource) = resource(api_version, kind) else {
            continue;
        };
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
        for object in api.list(&selector).await?.items {
            let Some(name) = object.metadata.name else {
                continue;
            };
            match api.delete(&name, &DeleteParams::background()).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::gray::release::preview_target;
    use serde_json::json;

    fn route(name: &str, namespace: Option<&str>) -> Value {
        let mut object = json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": name}, "spec": {}});
        if let Some(ns) = namespace {
            object["metadata"]["namespace"] = json!(ns);
        }
        object
    }

    #[test]
    fn objects_outside_the_target_are_refused() {
        let target = preview_target();
        assert!(check(vec![route("preview-gray", None)], &target).is_ok());
        assert!(check(vec![route("preview-gray", Some("kube-system"))], &target).is_err());
        assert!(check(vec![route("someone-else", None)], &target).is_err());
        let secret =
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "preview-gray"}});
        assert!(check(vec![secret], &target).is_err());
        let many = (0..=MAX_OBJECTS)
            .map(|_| route("preview-gray", None))
            .collect();
        assert!(check(many, &target).is_err());
    }

    #[test]
    fn checked_objects_carry_the_target_namespace_and_labels() {
        let mut target = preview_target();
        target.labels = vec![(GRAY_CHANGE_LABEL.into(), "c1".into())];
        let checked = check(vec![route("preview-gray", None)], &target).expect("checked");
        let meta = &checked[0].object.metadata;
        assert_eq!(meta.namespace.as_deref(), Some("default"));
        assert_eq!(
            meta.labels
                .as_ref()
                .and_then(|l| l.get(GRAY_CHANGE_LABEL))
                .map(String::as_str),
            Some("c1")
        );
    }
}
