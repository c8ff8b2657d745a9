//! The `wharf:host/cluster` interface: Kubernetes objects as JSON, limited to the kinds and
//! namespaces the plugin was granted.
//!
//! A plugin's grant (`cluster = { kinds = ["ConfigMap"], namespaces = ["team-a"] }`) is
//! parsed into a [`ClusterScope`] when the plugin is enabled; every call checks its kind
//! and namespace against that scope inside the host, before anything reaches the cluster.
//! A refused call comes back as `access-denied` naming what was refused, is written to the
//! plugin's log, counted in its stats (`clusterDenied`) and recorded in the audit log.
//! Calls go through the runtime's one `kube::Client` ([`ClusterHandle`], set by `serve`);
//! no client means `unavailable`.
//!
//! | limit | value | why |
//! | --- | --- | --- |
//! | kinds | [`KINDS`] | namespaced kinds Wharf deploys; nothing cluster-scoped |
//! | object size | [`MAX_OBJECT_BYTES`] | Kubernetes stores ~1.5 MiB per object |
//! | list length | [`MAX_LIST`], [`MAX_LIST_BYTES`] | bounds the copy into guest memory |
//! | field manager | `wharf-plugin-<id>[-<suffix>]` | plugins never act as each other |
//!
//! `apply` and `delete` are recorded in the audit log (outcome ok or error) with the
//! plugin's `id@version`; object contents never are (they may be Secrets).

use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};

use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, TypeMeta,
};
use serde_json::{Value, json};

use crate::audit::{Actor, AuditLog, Entry, Outcome};

use super::bindings::HostError;
use super::bindings::host::wharf::host::cluster::{ClusterError, Host};
use super::journal::{Journal, journaled};
use super::log::LogRing;
use super::manifest::ClusterGrant;
use super::state::CallBudget;
use super::stats::PluginStats;

/// Largest object `apply` accepts, in bytes of JSON.
pub const MAX_OBJECT_BYTES: usize = 1024 * 1024;
/// Most objects one `list` returns; a larger match is `limit-exceeded`.
pub const MAX_LIST: u32 = 500;
/// Most bytes of JSON one `list` returns.
pub const MAX_LIST_BYTES: usize = 16 * 1024 * 1024;
const MAX_SELECTOR_BYTES: usize = 1024;
const MAX_FIELD_MANAGER_SUFFIX: usize = 48;

/// A kind plugins can be granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    pub kind: &'static str,
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
}

/// Every kind a plugin can be granted: the namespaced kinds Wharf itself deploys.
pub const KINDS: &[Kind] = &[
    Kind::new("Deployment", "apps", "v1", "deployments"),
    Kind::new("ReplicaSet", "apps", "v1", "replicasets"),
    Kind::new("Pod", "", "v1", "pods"),
    Kind::new("Service", "", "v1", "services"),
    Kind::new("Endpoints", "", "v1", "endpoints"),
    Kind::new("ConfigMap", "", "v1", "configmaps"),
    Kind::new("Secret", "", "v1", "secrets"),
    Kind::new("Event", "", "v1", "events"),
    Kind::new("Job", "batch", "v1", "jobs"),
    Kind::new("Ingress", "networking.k8s.io", "v1", "ingresses"),
    Kind::new("HTTPRoute", "gateway.networking.k8s.io", "v1", "httproutes"),
];

impl Kind {
    const fn new(
        kind: &'static str,
        group: &'static str,
        version: &'static str,
        plural: &'static str,
    ) -> Kind {
        Kind {
            kind,
            group,
            version,
            plural,
        }
    }

    /// The kind named `name` (case-sensitive, as in `kind:` of an object).
    pub fn find(name: &str) -> Option<&'static Kind> {
        KINDS.iter().find(|k| k.kind == name)
    }

    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    fn resource(&self) -> ApiResource {
        ApiResource {
            group: self.group.to_owned(),
            version: self.version.to_owned(),
            api_version: self.api_version(),
            kind: self.kind.to_owned(),
            plural: self.plural.to_owned(),
        }
    }
}

/// A granted list of names, or `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Names {
    Any,
    Only(Vec<String>),
}

impl Names {
    fn permits(&self, name: &str) -> bool {
        match self {
            Names::Any => true,
            Names::Only(names) => names.iter().any(|n| n == name),
        }
    }
}

/// What one plugin may touch: parsed from its approved [`ClusterGrant`] at enable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterScope {
    kinds: Names,
    namespaces: Names,
}

impl Default for ClusterScope {
    /// Nothing at all (a plugin without the grant).
    fn default() -> Self {
        ClusterScope {
            kinds: Names::Only(Vec::new()),
            namespaces: Names::Only(Vec::new()),
        }
    }
}

impl ClusterScope {
    /// Checks a grant; an error is `(field, message)` with the field relative to the grant,
    /// e.g. `kinds[1]`.
    pub fn parse(grant: &ClusterGrant) -> Result<ClusterScope, (String, String)> {
        fn names(
            list: &[String],
            what: &str,
            check: fn(&str) -> Result<(), String>,
        ) -> Result<Names, (String, String)> {
            for (i, name) in list.iter().enumerate().filter(|(_, n)| *n != "*") {
                check(name).map_err(|m| (format!("{what}[{i}]"), m))?;
            }
            if list.iter().any(|n| n == "*") {
                Ok(Names::Any)
            } else {
                Ok(Names::Only(list.to_vec()))
            }
        }
        Ok(ClusterScope {
            kinds: names(&grant.kinds, "kinds", |k| match Kind::find(k) {
                Some(_) => Ok(()),
                None => Err(format!(
                    "`{k}` is not a kind plugins can be granted; use one of {} or *",
                    KINDS.iter().map(|k| k.kind).collect::<Vec<_>>().join(", ")
                )),
            })?,
            namespaces: names(&grant.namespaces, "namespaces", |n| {
                check_dns_label(n).map_err(|m| format!("`{n}` {m}"))
            })?,
        })
    }
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters (a namespace).
fn check_dns_label(name: &str) -> Result<(), String> {
    let chars_ok = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if (1..=63).contains(&name.len()) && chars_ok && !name.starts_with('-') && !name.ends_with('-')
    {
        Ok(())
    } else {
        Err(
            "is not a namespace name: 1-63 of a-z, 0-9 and -, starting and ending alphanumeric"
                .into(),
        )
    }
}

/// `[a-z0-9]([-a-z0-9.]*[a-z0-9])?`, at most 253 characters (an object name).
fn check_object_name(name: &str) -> Result<(), String> {
    let chars_ok = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if (1..=253).contains(&name.len())
        && chars_ok
        && edge(name.chars().next())
        && edge(name.chars().last())
    {
        Ok(())
    } else {
        Err(format!(
            "name: `{name}` is not an object name: 1-253 of a-z, 0-9, - and ., starting and ending alphanumeric"
        ))
    }
}

/// The runtime's cluster client, shared by every plugin; set once `serve` has one.
#[derive(Clone, Default)]
pub struct ClusterHandle(Arc<RwLock<Option<kube::Client>>>);

impl ClusterHandle {
    pub fn set(&self, client: kube::Client) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Some(client);
    }

    fn client(&self) -> Option<kube::Client> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// One plugin version's cluster access, resolved at enable.
#[derive(Clone)]
pub struct ClusterAccess {
    pub handle: ClusterHandle,
    pub scope: ClusterScope,
    pub audit: AuditLog,
    /// `wharf-plugin-<id>`.
    pub field_manager: String,
}

impl ClusterAccess {
    pub fn new(handle: ClusterHandle, scope: ClusterScope, audit: AuditLog, id: &str) -> Self {
        ClusterAccess {
            handle,
            scope,
            audit,
            field_manager: format!("wharf-plugin-{id}"),
        }
    }
}

/// What a call's `cluster` import sees.
pub struct ClusterView<'a> {
    pub access: &'a ClusterAccess,
    pub id: &'a str,
    pub version: &'a str,
    pub ring: &'a LogRing,
    pub stats: &'a PluginStats,
    pub budget: &'a mut CallBudget,
    pub journal: Option<&'a Journal>,
}

/// A checked `(kind, namespace)` pair: the object type to call and where.
struct Target {
    kind: &'static Kind,
    namespace: String,
}

impl Target {
    /// `<namespace>/<kind>[/<name>]`, as logs and audit targets name it.
    fn describe(&self, name: Option<&str>) -> String {
        describe(&self.namespace, self.kind.kind, name)
    }
}

fn describe(namespace: &str, kind: &str, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("{namespace}/{kind}/{name}"),
        None => format!("{namespace}/{kind}"),
    }
}

impl ClusterView<'_> {
    fn charge(&mut self) -> Result<(), ClusterError> {
        self.budget.take_host_call().map_err(|e| match e {
            HostError::LimitExceeded(m) => ClusterError::LimitExceeded(m),
            other => ClusterError::Unavailable(format!("{other:?}")),
        })
    }

    fn client(&self) -> Result<kube::Client, ClusterError> {
        self.access
            .handle
            .client()
            .ok_or_else(|| ClusterError::Unavailable("no cluster is connected to Wharf".into()))
    }

    fn plugin(&self) -> String {
        format!("{}@{}", self.id, self.version)
    }

    /// Resolves and checks `kind` in `namespace` against the grant; a refusal is audited.
    /// Names are checked first, so what a refusal records is well-formed and bounded.
    async fn target(
        &mut self,
        verb: &str,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: Option<&str>,
    ) -> Result<Target, ClusterError> {
        check_dns_label(namespace)
            .map_err(|m| ClusterError::Invalid(format!("namespace: `{namespace}` {m}")))?;
        if let Some(name) = name {
            check_object_name(name).map_err(ClusterError::Invalid)?;
        }
        let Some(known) = Kind::find(kind) else {
            let kind: String = kind.chars().filter(|c| !c.is_control()).take(64).collect();
            let why = format!("kind `{kind}` is not one plugins can use");
            return Err(self
                .deny(verb, &describe(namespace, &kind, name), why)
                .await);
        };
        if known.api_version() != api_version {
            return Err(ClusterError::Invalid(format!(
                "apiVersion: {kind} is `{}`, not `{api_version}`",
                known.api_version()
            )));
        }
        let target = Target {
            kind: known,
            namespace: namespace.to_owned(),
        };
        let refusal = if !self.access.scope.kinds.permits(kind) {
            Some(format!("kind `{kind}` was not granted to this plugin"))
        } else if !self.access.scope.namespaces.permits(namespace) {
            Some(format!(
                "namespace `{namespace}` was not granted to this plugin"
            ))
        } else {
            None
        };
        match refusal {
            Some(why) => Err(self.deny(verb, &target.describe(name), why).await),
            None => Ok(target),
        }
    }

    /// Records a refusal everywhere it must show and returns the error for the guest.
    async fn deny(&mut self, verb: &str, what: &str, why: String) -> ClusterError {
        self.stats.cluster_denied.fetch_add(1, Ordering::Relaxed);
        self.ring.host_line(
            "warn",
            self.version,
            format!("cluster {verb} of {what} denied: {why}"),
        );
        let entry = Entry::new(
            Actor::system(),
            &format!("plugin.cluster.{verb}"),
            &format!("cluster-object:{what}"),
            Outcome::Denied,
        );
        self.access
            .audit
            .record(Entry {
                error_code: Some("access-denied".into()),
                plugin: Some(self.plugin()),
                ..entry
            })
            .await;
        ClusterError::AccessDenied(why)
    }

    /// Records a mutation (apply, delete) and passes its result through.
    async fn audited<T>(
        &self,
        verb: &str,
        what: &str,
        result: Result<T, ClusterError>,
    ) -> Result<T, ClusterError> {
        let (outcome, error_code) = match &result {
            Ok(_) => (Outcome::Ok, None),
            Err(e) => (Outcome::Error, Some(error_code(e).to_owned())),
        };
        let entry = Entry::new(
            Actor::system(),
            &format!("plugin.cluster.{verb}"),
            &format!("cluster-object:{what}"),
            outcome,
        );
        self.access
            .audit
            .record(Entry {
                error_code,
                plugin: Some(self.plugin()),
                ..entry
            })
            .await;
        result
    }

    fn api(&self, target: &Target) -> Result<Api<DynamicObject>, ClusterError> {
        Ok(Api::namespaced_with(
            self.client()?,
            &target.namespace,
            &target.kind.resource(),
        ))
    }

    fn field_manager(&self, suffix: Option<&str>) -> Result<String, ClusterError> {
        let base = &self.access.field_manager;
        let Some(suffix) = suffix else {
            return Ok(base.clone());
        };
        let ok = (1..=MAX_FIELD_MANAGER_SUFFIX).contains(&suffix.len())
            && suffix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
        if ok {
            Ok(format!("{base}-{suffix}"))
        } else {
            Err(ClusterError::Invalid(format!(
                "field-manager: use 1-{MAX_FIELD_MANAGER_SUFFIX} of A-Z, a-z, 0-9, -, . and _"
            )))
        }
    }
}

/// The audit `errorCode` of a failed call.
fn error_code(e: &ClusterError) -> &'static str {
    match e {
        ClusterError::AccessDenied(_) => "access-denied",
        ClusterError::NotFound => "not-found",
        ClusterError::Conflict(_) => "conflict",
        ClusterError::Invalid(_) => "invalid",
        ClusterError::LimitExceeded(_) => "limit-exceeded",
        ClusterError::Unavailable(_) => "unavailable",
    }
}

/// Maps what kube-rs reports to what the plugin may know.
fn from_kube(error: kube::Error) -> ClusterError {
    match error {
        kube::Error::Api(status) if status.is_not_found() => ClusterError::NotFound,
        kube::Error::Api(status) => {
            let message = match (status.message.is_empty(), status.reason.is_empty()) {
                (false, _) => status.message,
                (true, false) => status.reason,
                (true, true) => "no details given".to_owned(),
            };
            match status.code {
                409 => ClusterError::Conflict(message),
                400 | 422 => ClusterError::Invalid(message),
                413 => ClusterError::LimitExceeded(message),
                401 | 403 => ClusterError::Unavailable(format!(
                    "the cluster refused Wharf's own credentials: {message}"
                )),
                code => {
                    ClusterError::Unavailable(format!("the cluster answered {code}: {message}"))
                }
            }
        }
        other => {
            tracing::warn!(error = %other, "plugin cluster call failed");
            ClusterError::Unavailable(format!("the cluster could not be reached: {other}"))
        }
    }
}

/// An object as JSON, with `apiVersion` and `kind` filled in (list items lack them).
fn to_json(mut object: DynamicObject, kind: &Kind) -> Result<String, ClusterError> {
    if object.types.is_none() {
        object.types = Some(TypeMeta {
            api_version: kind.api_version(),
            kind: kind.kind.to_owned(),
        });
    }
    serde_json::to_string(&object).map_err(|e| {
        ClusterError::Unavailable(format!("the cluster sent an unreadable object: {e}"))
    })
}

/// `field` of `object` as a string, or `invalid` naming it.
fn string_field<'v>(object: &'v Value, path: &[&str]) -> Result<&'v str, ClusterError> {
    path.iter()
        .try_fold(object, |value, key| value.get(key))
        .and_then(Value::as_str)
        .ok_or_else(|| ClusterError::Invalid(format!("{}: must be a string", path.join("."))))
}

impl ClusterView<'_> {
    async fn get_now(
        &mut self,
        api_version: String,
        kind: String,
        namespace: String,
        name: String,
    ) -> Result<Option<String>, ClusterError> {
        self.charge()?;
        let target = self
            .target("get", &api_version, &kind, &namespace, Some(&name))
            .await?;
        let api = self.api(&target)?;
        match api.get_opt(&name).await.map_err(from_kube)? {
            Some(object) => Ok(Some(to_json(object, target.kind)?)),
            None => Ok(None),
        }
    }

    async fn list_now(
        &mut self,
        api_version: String,
        kind: String,
        namespace: String,
        label_selector: Option<String>,
    ) -> Result<Vec<String>, ClusterError> {
        self.charge()?;
        let target = self
            .target("list", &api_version, &kind, &namespace, None)
            .await?;
        let mut params = ListParams::default().limit(MAX_LIST);
        if let Some(selector) = label_selector.as_deref().filter(|s| !s.is_empty()) {
            if selector.len() > MAX_SELECTOR_BYTES {
                return Err(ClusterError::LimitExceeded(format!(
                    "label-selector: {} bytes, the limit is {MAX_SELECTOR_BYTES}",
                    selector.len()
                )));
            }
            params = params.labels(selector);
        }
        let api = self.api(&target)?;
        let list = api.list(&params).await.map_err(from_kube)?;
        let more = list
            .metadata
            .continue_
            .as_deref()
            .is_some_and(|c| !c.is_empty());
        if more || list.items.len() > MAX_LIST as usize {
            return Err(ClusterError::LimitExceeded(format!(
                "more than {MAX_LIST} {} objects match in `{namespace}`; narrow the label selector",
                target.kind.kind
            )));
        }
        let mut items = list.items;
        items.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        let objects = items
            .into_iter()
            .map(|object| to_json(object, target.kind))
            .collect::<Result<Vec<_>, _>>()?;
        let bytes: usize = objects.iter().map(String::len).sum();
        if bytes > MAX_LIST_BYTES {
            return Err(ClusterError::LimitExceeded(format!(
                "the matching {} objects are {bytes} bytes, the limit is {MAX_LIST_BYTES}; narrow the label selector",
                target.kind.kind
            )));
        }
        Ok(objects)
    }

    async fn apply_now(
        &mut self,
        object_json: String,
        field_manager: Option<String>,
    ) -> Result<String, ClusterError> {
        self.charge()?;
        if object_json.len() > MAX_OBJECT_BYTES {
            return Err(ClusterError::LimitExceeded(format!(
                "object: {} bytes, the limit is {MAX_OBJECT_BYTES}",
                object_json.len()
            )));
        }
        let object: Value = serde_json::from_str(&object_json)
            .map_err(|e| ClusterError::Invalid(format!("object: not valid JSON: {e}")))?;
        if !object.is_object() {
            return Err(ClusterError::Invalid(
                "object: must be a JSON object".into(),
            ));
        }
        let api_version = string_field(&object, &["apiVersion"])?;
        let kind = string_field(&object, &["kind"])?;
        let namespace = string_field(&object, &["metadata", "namespace"])?;
        let name = string_field(&object, &["metadata", "name"])?;
        let target = self
            .target("apply", api_version, kind, namespace, Some(name))
            .await?;
        let manager = self.field_manager(field_manager.as_deref())?;
        let api = self.api(&target)?;
        let result = api
            .patch(name, &PatchParams::apply(&manager), &Patch::Apply(&object))
            .await
            .map_err(from_kube)
            .and_then(|stored| to_json(stored, target.kind));
        self.audited("apply", &target.describe(Some(name)), result)
            .await
    }

    async fn delete_now(
        &mut self,
        api_version: String,
        kind: String,
        namespace: String,
        name: String,
    ) -> Result<bool, ClusterError> {
        self.charge()?;
        let target = self
            .target("delete", &api_version, &kind, &namespace, Some(&name))
            .await?;
        let api = self.api(&target)?;
        let result = match api.delete(&name, &DeleteParams::background()).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.is_not_found() => Ok(false),
            Err(e) => Err(from_kube(e)),
        };
        self.audited("delete", &target.describe(Some(&name)), result)
            .await
    }
}

fn diverged<T>(why: String) -> Result<T, ClusterError> {
    Err(ClusterError::Unavailable(format!("replay diverged: {why}")))
}

impl Host for ClusterView<'_> {
    async fn get(
        &mut self,
        api_version: String,
        kind: String,
        namespace: String,
        name: String,
    ) -> Result<Option<String>, ClusterError> {
        let args = json!([&api_version, &kind, &namespace, &name]);
        journaled!(
            self.journal,
            "cluster.get",
            args,
            diverged,
            self.get_now(api_version, kind, namespace, name).await
        )
    }

    async fn list(
        &mut self,
        api_version: String,
        kind: String,
        namespace: String,
        label_selector: Option<String>,
    ) -> Result<Vec<String>, ClusterError> {
        let args = json!([&api_version, &kind, &namespace, &label_selector]);
        journaled!(
            self.journal,
            "cluster.list",
            args,
            diverged,
            self.list_now(api_version, kind, namespace, label_selector)
                .await
        )
    }

    async fn apply(
        &mut self,
        object_json: String,
        field_manager: Option<String>,
    ) -> Result<String, ClusterError> {
        let args = json!([&object_json, &field_manager]);
        journaled!(
            self.journal,
            "cluster.apply",
            args,
            diverged,
            self.apply_now(object_json, field_manager).await
        )
    }

    async fn delete(
        &mut self,
        api_version: String,
        kind: String,
        namespace: String,
        name: String,
    ) -> Result<bool, ClusterError> {
        let args = json!([&api_version, &kind, &namespace, &name]);
        journaled!(
            self.journal,
            "cluster.delete",
            args,
            diverged,
            self.delete_now(api_version, kind, namespace, name).await
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Query;
    use crate::store::Store;

    fn grant(kinds: &[&str], namespaces: &[&str]) -> ClusterGrant {
        ClusterGrant {
            kinds: kinds.iter().map(|s| s.to_string()).collect(),
            namespaces: namespaces.iter().map(|s| s.to_string()).collect(),
        }
    }

    struct Fixture {
        dir: std::path::PathBuf,
        store: Store,
        access: ClusterAccess,
        ring: LogRing,
        stats: PluginStats,
        budget: CallBudget,
    }

    impl Fixture {
        fn new(grant: &ClusterGrant, client: Option<kube::Client>) -> Fixture {
            let dir = std::env::temp_dir().join(format!("wharf-cluster-{}", uuid::Uuid::new_v4()));
            let store = Store::open_sled(&dir).expect("open store");
            let handle = ClusterHandle::default();
            if let Some(client) = client {
                handle.set(client);
            }
            let scope = ClusterScope::parse(grant).expect("grant");
            Fixture {
                access: ClusterAccess::new(handle, scope, AuditLog::new(store.clone()), "probe"),
                dir,
                store,
                ring: LogRing::default(),
                stats: PluginStats::default(),
                budget: CallBudget::new(0, 100),
            }
        }

        fn view(&mut self) -> ClusterView<'_> {
            ClusterView {
                journal: None,
                access: &self.access,
                id: "probe",
                version: "1.0.0",
                ring: &self.ring,
                stats: &self.stats,
                budget: &mut self.budget,
            }
        }

        fn denied_records(&self) -> Vec<crate::audit::Record> {
            AuditLog::new(self.store.clone())
                .query(&Query {
                    action_prefix: Some("plugin.cluster.".into()),
                    outcome: Some(Outcome::Denied),
                    ..Query::default()
                })
                .expect("query")
        }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[test]
    fn grants_name_known_kinds_and_namespace_names() {
        assert!(ClusterScope::parse(&grant(&["ConfigMap", "Deployment"], &["team-a"])).is_ok());
        assert!(ClusterScope::parse(&grant(&["*"], &["*"])).is_ok());
        assert_eq!(
            ClusterScope::parse(&grant(&["ConfigMap", "Node"], &[]))
                .unwrap_err()
                .0,
            "kinds[1]"
        );
        assert_eq!(
            ClusterScope::parse(&grant(&[], &["ok", "Not_OK"]))
                .unwrap_err()
                .0,
            "namespaces[1]"
        );
        let scope = ClusterScope::parse(&grant(&["ConfigMap"], &["a"])).unwrap();
        assert!(scope.kinds.permits("ConfigMap") && !scope.kinds.permits("Secret"));
        assert!(scope.namespaces.permits("a") && !scope.namespaces.permits("b"));
        assert!(!ClusterScope::default().kinds.permits("ConfigMap"));
    }

    #[tokio::test]
    async fn ungranted_kinds_and_namespaces_are_denied_audited_and_counted() {
        let mut f = Fixture::new(&grant(&["ConfigMap"], &["plugin-space"]), None);
        let mut view = f.view();
        let secret = view
            .get(
                "v1".into(),
                "Secret".into(),
                "plugin-space".into(),
                "s".into(),
            )
            .await;
        assert!(matches!(&secret, Err(ClusterError::AccessDenied(m)) if m.contains("Secret")));
        let elsewhere = view
            .list("v1".into(), "ConfigMap".into(), "kube-system".into(), None)
            .await;
        assert!(
            matches!(&elsewhere, Err(ClusterError::AccessDenied(m)) if m.contains("kube-system"))
        );
        let node = view
            .apply(
                r#"{"apiVersion":"v1","kind":"Node","metadata":{"name":"n","namespace":"plugin-space"}}"#.into(),
                None,
            )
            .await;
        assert!(matches!(&node, Err(ClusterError::AccessDenied(m)) if m.contains("Node")));
        assert_eq!(f.stats.cluster_denied.load(Ordering::Relaxed), 3);
        let records = f.denied_records();
        assert_eq!(records.len(), 3);
        let targets: Vec<&str> = records.iter().map(|r| r.entry.target.as_str()).collect();
        assert!(
            targets.contains(&"cluster-object:plugin-space/Secret/s"),
            "{targets:?}"
        );
        assert!(
            targets.contains(&"cluster-object:kube-system/ConfigMap"),
            "{targets:?}"
        );
        assert!(
            records
                .iter()
                .all(|r| r.entry.plugin.as_deref() == Some("probe@1.0.0")
                    && r.entry.error_code.as_deref() == Some("access-denied"))
        );
        assert_eq!(f.ring.tail(10).len(), 3);
    }

    #[tokio::test]
    async fn bad_arguments_are_invalid_and_no_client_is_unavailable() {
        let mut f = Fixture::new(&grant(&["*"], &["*"]), None);
        let mut view = f.view();
        let wrong_version = view
            .get("apps/v1".into(), "ConfigMap".into(), "a".into(), "x".into())
            .await;
        assert!(
            matches!(wrong_version, Err(ClusterError::Invalid(m)) if m.starts_with("apiVersion"))
        );
        let bad_name = view
            .delete("v1".into(), "ConfigMap".into(), "a".into(), "../x".into())
            .await;
        assert!(matches!(bad_name, Err(ClusterError::Invalid(m)) if m.starts_with("name")));
        let bad_namespace = view
            .list("v1".into(), "ConfigMap".into(), "A B".into(), None)
            .await;
        assert!(
            matches!(bad_namespace, Err(ClusterError::Invalid(m)) if m.starts_with("namespace"))
        );
        let not_json = view.apply("{".into(), None).await;
        assert!(matches!(not_json, Err(ClusterError::Invalid(_))));
        let no_namespace = view
            .apply(
                r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}"#.into(),
                None,
            )
            .await;
        assert!(
            matches!(no_namespace, Err(ClusterError::Invalid(m)) if m.starts_with("metadata.namespace"))
        );
        let huge = view.apply("x".repeat(MAX_OBJECT_BYTES + 1), None).await;
        assert!(matches!(huge, Err(ClusterError::LimitExceeded(_))));
        let unconnected = view
            .get("v1".into(), "ConfigMap".into(), "a".into(), "x".into())
            .await;
        assert!(matches!(unconnected, Err(ClusterError::Unavailable(_))));
        assert!(f.denied_records().is_empty());
    }

    #[test]
    fn field_managers_are_the_plugins_own() {
        let mut f = Fixture::new(&grant(&["*"], &["*"]), None);
        let view = f.view();
        assert_eq!(view.field_manager(None).unwrap(), "wharf-plugin-probe");
        assert_eq!(
            view.field_manager(Some("rollout")).unwrap(),
            "wharf-plugin-probe-rollout"
        );
        for bad in ["", "a b", "x/y", &"m".repeat(MAX_FIELD_MANAGER_SUFFIX + 1)] {
            assert!(
                matches!(view.field_manager(Some(bad)), Err(ClusterError::Invalid(_))),
                "{bad:?}"
            );
        }
    }

    #[tokio::test]
    async fn the_host_call_budget_applies() {
        let mut f = Fixture::new(&grant(&["ConfigMap"], &["a"]), None);
        f.budget = CallBudget::new(0, 1);
        let mut view = f.view();
        let _ = view
            .get("v1".into(), "ConfigMap".into(), "a".into(), "x".into())
            .await;
        let second = view
            .get("v1".into(), "ConfigMap".into(), "a".into(), "x".into())
            .await;
        assert!(matches!(second, Err(ClusterError::LimitExceeded(_))));
    }

    #[tokio::test]
    async fn objects_round_trip_through_the_embedded_cluster() {
        let simulator =
            crate::cluster::Simulator::start(crate::cluster::SimConfig::default()).expect("sim");
        let mut f = Fixture::new(
            &grant(&["ConfigMap"], &["default"]),
            Some(simulator.client()),
        );
        let mut view = f.view();
        let object = serde_json::json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": "default", "labels": {"app": "probe"}},
            "data": {"greeting": "hi"},
        });
        let stored: Value =
            serde_json::from_str(&view.apply(object.to_string(), None).await.expect("apply"))
                .unwrap();
        assert_eq!(stored["data"]["greeting"], "hi");
        assert_eq!(stored["kind"], "ConfigMap");
        let got = view
            .get(
                "v1".into(),
                "ConfigMap".into(),
                "default".into(),
                "settings".into(),
            )
            .await
            .expect("get")
            .expect("exists");
        assert!(got.contains("\"greeting\":\"hi\""), "{got}");
        let listed = view
            .list(
                "v1".into(),
                "ConfigMap".into(),
                "default".into(),
                Some("app=probe".into()),
            )
            .await
            .expect("list");
        assert_eq!(listed.len(), 1);
        assert!(
            view.delete(
                "v1".into(),
                "ConfigMap".into(),
                "default".into(),
                "settings".into()
            )
            .await
            .expect("delete")
        );
        assert!(
            !view
                .delete(
                    "v1".into(),
                    "ConfigMap".into(),
                    "default".into(),
                    "settings".into()
                )
                .await
                .expect("delete again")
        );
        let audit = AuditLog::new(f.store.clone())
            .query(&Query {
                action_prefix: Some("plugin.cluster.".into()),
                ..Query::default()
            })
            .expect("query");
        assert_eq!(audit.len(), 3, "apply and two deletes");
    }
}
