//! The kinds the simulator serves: one row per resource, read by routing, discovery,
//! validation and the Table printer so they cannot disagree.

/// One served resource type.
#[derive(Debug)]
pub struct ResourceType {
    /// API group; empty for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    /// Subresources besides the object itself (`status`, `scale`, `log`).
    pub subresources: &'static [&'static str],
    /// Built into kubectl and the apiserver, so strategic merge patch applies; custom
    /// resources (HTTPRoute) answer 415 to it.
    pub builtin: bool,
}

impl ResourceType {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `deployments.apps`, or `pods` in the core group (how Kubernetes names it in messages).
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_owned()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// The URL prefix of the group-version: `/api/v1` or `/apis/apps/v1`.
    pub fn base_path(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        }
    }

    /// Whether `status` is a separate subresource (writes to the object keep the old status).
    pub fn has_status(&self) -> bool {
        self.subresources.contains(&"status")
    }

    pub fn is(&self, group: &str, kind: &str) -> bool {
        self.group == group && self.kind == kind
    }
}

// One row of the table below, positionally, so the table stays readable.
#[allow(clippy::too_many_arguments)]
const fn rt(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    subresources: &'static [&'static str],
    builtin: bool,
) -> ResourceType {
    ResourceType {
        group,
        version,
        kind,
        plural,
        singular,
        namespaced,
        short_names,
        subresources,
        builtin,
    }
}

#[rustfmt::skip]
pub static RESOURCES: &[ResourceType] = &[
    rt("", "v1", "Namespace", "namespaces", "namespace", false, &["ns"], &["status"], true),
    rt("", "v1", "Node", "nodes", "node", false, &["no"], &["status"], true),
    rt("", "v1", "Pod", "pods", "pod", true, &["po"], &["status", "log"], true),
    rt("", "v1", "Service", "services", "service", true, &["svc"], &["status"], true),
    rt("", "v1", "Endpoints", "endpoints", "endpoints", true, &["ep"], &[], true),
    rt("", "v1", "ConfigMap", "configmaps", "configmap", true, &["cm"], &[], true),
    rt("", "v1", "Secret", "secrets", "secret", true, &[], &[], true),
    rt("", "v1", "Event", "events", "event", true, &["ev"], &[], true),
    rt("", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", true, &["sa"], &[], true),
    rt("apps", "v1", "Deployment", "deployments", "deployment", true, &["deploy"], &["status", "scale"], true),
    rt("apps", "v1", "ReplicaSet", "replicasets", "replicaset", true, &["rs"], &["status", "scale"], true),
    rt("batch", "v1", "Job", "jobs", "job", true, &[], &["status"], true),
    rt("networking.k8s.io", "v1", "Ingress", "ingresses", "ingress", true, &["ing"], &["status"], true),
    rt("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes", "httproute", true, &[], &["status"], false),
    rt("gateway.networking.k8s.io", "v1", "Gateway", "gateways", "gateway", true, &["gtw"], &["status"], false),
    // Stored and listed only: no controller scales anything (the simulator has no metrics).
    rt("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", "horizontalpodautoscaler", true, &["hpa"], &["status"], true),
];

/// The resource served at `group/version/plural`.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The resource of `apiVersion` + `kind` (as objects name themselves).
pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static ResourceType> {
    RESOURCES
        .iter()
        .find(|r| r.kind == kind && r.api_version() == api_version)
}

/// Index of a resource in [`RESOURCES`] (objects are keyed by it).
pub fn index_of(resource: &ResourceType) -> usize {
    RESOURCES
        .iter()
        .position(|r| std::ptr::eq(r, resource))
        .unwrap_or(0)
}

/// The groups other than core, in discovery order, each with its one version.
pub fn groups() -> Vec<(&'static str, &'static str)> {
    let mut groups: Vec<(&'static str, &'static str)> = Vec::new();
    for r in RESOURCES.iter().filter(|r| !r.group.is_empty()) {
        if !groups.iter().any(|(g, _)| *g == r.group) {
            groups.push((r.group, r.version));
        }
    }
    groups
}

pub mod kinds {
    //! Shorthands for the kinds the controllers manage.
    use super::{RESOURCES, ResourceType};

    fn get(group: &str, kind: &str) -> &'static ResourceType {
        RESOURCES
            .iter()
            .find(|r| r.is(group, kind))
            .expect("kind listed in RESOURCES")
    }
    pub fn namespace() -> &'static ResourceType {
        get("", "Namespace")
    }
    pub fn node() -> &'static ResourceType {
        get("", "Node")
    }
    pub fn pod() -> &'static ResourceType {
        get("", "Pod")
    }
    pub fn service() -> &'static ResourceType {
        get("", "Service")
    }
    pub fn endpoints() -> &'static ResourceType {
        get("", "Endpoints")
    }
    pub fn event() -> &'static ResourceType {
        get("", "Event")
    }
    pub fn deployment() -> &'static ResourceType {
        get("apps", "Deployment")
    }
    pub fn replica_set() -> &'static ResourceType {
        get("apps", "ReplicaSet")
    }
    pub fn job() -> &'static ResourceType {
        get("batch", "Job")
    }
    pub fn ingress() -> &'static ResourceType {
        get("networking.k8s.io", "Ingress")
    }
    pub fn http_route() -> &'static ResourceType {
        get("gateway.networking.k8s.io", "HTTPRoute")
    }
}
