//! What a router's rendered objects may be, and writing them to the cluster. A plugin's
//! output is untrusted: each object must be one of the target's own (Services
//! `<name>-stable` / `<name>-canary`, HTTPRoute `<name>`, Ingresses `<name>` /
//! `<name>-canary`) in the target's namespace, routing only the target's host name to
//! those two Services, Services selecting exactly the target's pods; nothing else
//! (another Service, an external IP, a snippet, another Gateway) gets through. The host
//! stamps the gray labels on it and applies it server-side, never over an object that is
//! not a gray object of the same workload. Removal finds objects by label, so it needs
//! neither the plugin nor the record of what was applied.

use kube::Client;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use serde_json::Value;

use super::release::{GRAY_CHANGE_LABEL, ObjectRef};
use crate::domain::deployments::NAME_LABEL;
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
        let allowed = names_for(&types.kind, &target.name);
        if !allowed.contains(&name) {
            return Err(RefusedObject(format!(
                "{} `{name}` is not one of the target's: {}",
                types.kind,
                allowed.join(", ")
            )));
        }
        check_metadata(&types.kind, &name, &object.metadata)?;
        check_spec(&types.kind, &name, &object.data, target)?;
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

/// The names a router may give objects of `kind` for target `prefix`.
fn names_for(kind: &str, prefix: &str) -> Vec<String> {
    let suffixes: &[&str] = match kind {
        "Service" => &["-stable", "-canary"],
        "HTTPRoute" => &[""],
        "Ingress" => &["", "-canary"],
        _ => &[],
    };
    suffixes.iter().map(|s| format!("{prefix}{s}")).collect()
}

fn refuse(kind: &str, name: &str, why: impl std::fmt::Display) -> RefusedObject {
    RefusedObject(format!("{kind} `{name}` {why}"))
}

/// Metadata a router may set: labels, and annotations other than controller snippets.
fn check_metadata(
    kind: &str,
    name: &str,
    meta: &kube::api::ObjectMeta,
) -> Result<(), RefusedObject> {
    if meta.finalizers.as_ref().is_some_and(|f| !f.is_empty())
        || meta
            .owner_references
            .as_ref()
            .is_some_and(|o| !o.is_empty())
    {
        return Err(refuse(kind, name, "sets finalizers or owner references"));
    }
    for key in meta.annotations.iter().flat_map(|a| a.keys()) {
        let nginx_not_canary = key
            .strip_prefix("nginx.ingress.kubernetes.io/")
            .is_some_and(|k| !k.starts_with("canary"));
        if key.contains("snippet") || nginx_not_canary {
            return Err(refuse(kind, name, format!("sets annotation `{key}`")));
        }
    }
    Ok(())
}

fn str_at<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

fn items<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// What the object does: which pods a Service selects, where a route sends traffic.
fn check_spec(
    kind: &str,
    name: &str,
    object: &Value,
    target: &Target,
) -> Result<(), RefusedObject> {
    let spec = object.get("spec").cloned().unwrap_or(Value::Null);
    let backends = [
        format!("{}-stable", target.name),
        format!("{}-canary", target.name),
    ];
    let backend_ok =
        |service: Option<&str>| service.is_some_and(|s| backends.iter().any(|b| b == s));
    match kind {
        "Service" => {
            if str_at(&spec, "type").is_some_and(|t| t != "ClusterIP") {
                return Err(refuse(kind, name, "is not a ClusterIP Service"));
            }
            for field in [
                "externalIPs",
                "externalName",
                "loadBalancerIP",
                "clusterIP",
                "clusterIPs",
            ] {
                if spec.get(field).is_some_and(|v| !v.is_null()) {
                    return Err(refuse(kind, name, format!("sets `{field}`")));
                }
            }
            let wanted = if name.ends_with("-canary") {
                &target.canary_selector
            } else {
                &target.stable_selector
            };
            let wanted: serde_json::Map<String, Value> = wanted
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            if spec.get("selector") != Some(&Value::Object(wanted)) {
                return Err(refuse(
                    kind,
                    name,
                    "does not select exactly the target's pods",
                ));
            }
        }
        "HTTPRoute" => {
            if items(&spec, "hostnames")
                .iter()
                .any(|h| h.as_str() != Some(target.hostname.as_str()))
            {
                return Err(refuse(
                    kind,
                    name,
                    format!("routes a host other than `{}`", target.hostname),
                ));
            }
            for parent in items(&spec, "parentRefs") {
                let same = target.gateway.as_ref().is_some_and(|g| {
                    str_at(parent, "name") == Some(g.name.as_str())
                        && str_at(parent, "namespace").is_none_or(|ns| ns == g.namespace)
                });
                if !same {
                    return Err(refuse(
                        kind,
                        name,
                        "attaches to a Gateway the environment does not name",
                    ));
                }
            }
            for rule in items(&spec, "rules") {
                check_filters(kind, name, items(rule, "filters"))?;
                for backend in items(rule, "backendRefs") {
                    let foreign = str_at(backend, "namespace")
                        .is_some_and(|ns| ns != target.namespace)
                        || str_at(backend, "kind").is_some_and(|k| k != "Service")
                        || str_at(backend, "group").is_some_and(|g| !g.is_empty());
                    if foreign || !backend_ok(str_at(backend, "name")) {
                        return Err(refuse(
                            kind,
                            name,
                            "routes to a backend other than the target's two Services",
                        ));
                    }
                    check_filters(kind, name, items(backend, "filters"))?;
                }
            }
        }
        "Ingress" => {
            if spec.get("defaultBackend").is_some_and(|v| !v.is_null())
                || spec.get("tls").is_some_and(|v| !v.is_null())
            {
                return Err(refuse(kind, name, "sets a default backend or TLS"));
            }
            for rule in items(&spec, "rules") {
                if str_at(rule, "host") != Some(target.hostname.as_str()) {
                    return Err(refuse(
                        kind,
                        name,
                        format!("routes a host other than `{}`", target.hostname),
                    ));
                }
                let paths = rule
                    .get("http")
                    .map_or(&[][..], |http| items(http, "paths"));
                for path in paths {
                    let service = path.get("backend").and_then(|b| b.get("service"));
                    if !backend_ok(service.and_then(|s| str_at(s, "name"))) {
                        return Err(refuse(
                            kind,
                            name,
                            "routes to a backend other than the target's two Services",
                        ));
                    }
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// Filters that change headers only (a mirror or redirect would send traffic elsewhere).
fn check_filters(kind: &str, name: &str, filters: &[Value]) -> Result<(), RefusedObject> {
    for filter in filters {
        let kind_of = str_at(filter, "type").unwrap_or_default();
        if !matches!(kind_of, "RequestHeaderModifier" | "ResponseHeaderModifier") {
            return Err(refuse(kind, name, format!("uses a `{kind_of}` filter")));
        }
    }
    Ok(())
}

/// Why an apply was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Refused(#[from] RefusedObject),
    #[error(transparent)]
    Cluster(#[from] kube::Error),
}

/// Applies checked objects server-side (absolute: re-applying a step changes nothing),
/// never over an object that is not a gray object of the same workload.
pub async fn apply(
    client: &Client,
    namespace: &str,
    objects: &[Checked],
    workload: &str,
) -> Result<(), ApplyError> {
    for checked in objects {
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), namespace, &checked.resource);
        if let Some(existing) = api.get_opt(&checked.reference.name).await? {
            let labels = existing.metadata.labels.unwrap_or_default();
            let ours = labels.get(NAME_LABEL).map(String::as_str) == Some(workload)
                && labels.contains_key(GRAY_CHANGE_LABEL);
            if !ours {
                return Err(refuse(
                    &checked.reference.kind,
                    &checked.reference.name,
                    "already exists and is not a gray object of this app; rename or remove it",
                )
                .into());
            }
        }
        api.patch(
            &checked.reference.name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&checked.object),
        )
        .await?;
    }
    Ok(())
}

/// Deletes every gray object of `workload` in `namespace` (whichever change order
/// rendered it); the routing objects first, so traffic leaves the canary before its
/// Services go. A kind the cluster does not serve (no Gateway API installed) has none.
pub async fn remove(client: &Client, namespace: &str, workload: &str) -> Result<(), kube::Error> {
    let selector =
        ListParams::default().labels(&format!("{NAME_LABEL}={workload},{GRAY_CHANGE_LABEL}"));
    for (api_version, kind, _, _) in KINDS.iter().rev() {
        let Some(resource) = resource(api_version, kind) else {
            continue;
        };
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
        let listed = match api.list(&selector).await {
            Ok(list) => list.items,
            Err(kube::Error::Api(status)) if status.code == 404 => continue,
            Err(e) => return Err(e),
        };
        for object in listed {
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
            "metadata": {"name": name}, "spec": {"hostnames": ["preview.default.svc"],
            "rules": [{"backendRefs": [{"name": "preview-gray-canary", "port": 80}]}]}});
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
        // The prefix alone is not enough: only the target's own names.
        assert!(check(vec![route("preview-grayscale", None)], &target).is_err());
    }

    #[test]
    fn objects_that_would_route_or_select_beyond_the_target_are_refused() {
        let target = preview_target();
        let mut elsewhere = route("preview-gray", None);
        elsewhere["spec"]["rules"][0]["backendRefs"][0]["name"] = json!("payments");
        let mut other_host = route("preview-gray", None);
        other_host["spec"]["hostnames"] = json!(["shop.example.com"]);
        let mut gateway = route("preview-gray", None);
        gateway["spec"]["parentRefs"] = json!([{"name": "public", "namespace": "infra"}]);
        let mut mirror = route("preview-gray", None);
        mirror["spec"]["rules"][0]["filters"] = json!([{"type": "RequestMirror"}]);
        let service = |selector: Value, extra: Value| {
            let mut s = json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "preview-gray-canary"},
                "spec": {"selector": selector, "ports": [{"port": 80}]}});
            if let (Some(spec), Value::Object(extra)) = (s["spec"].as_object_mut(), extra) {
                spec.extend(extra);
            }
            s
        };
        let canary = json!({"wharf.dev/revision": "2"});
        assert!(check(vec![service(canary.clone(), json!({}))], &target).is_ok());
        let hijack = service(json!({"app": "payments"}), json!({}));
        let external = service(canary.clone(), json!({"externalIPs": ["10.0.0.1"]}));
        let exposed = service(canary, json!({"type": "LoadBalancer"}));
        let mut snippet = route("preview-gray", None);
        snippet["metadata"]["annotations"] =
            json!({"nginx.ingress.kubernetes.io/configuration-snippet": "x"});
        for bad in [
            elsewhere, other_host, gateway, mirror, hijack, external, exposed, snippet,
        ] {
            assert!(check(vec![bad.clone()], &target).is_err(), "{bad}");
        }
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
