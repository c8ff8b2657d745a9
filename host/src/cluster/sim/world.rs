//! The simulator's object store: every object by (resource, namespace, name), one global
//! resourceVersion counter, the ring of recent events that watches replay from, and the
//! write paths (create, update, delete) that give objects Kubernetes' metadata semantics.
//! Kind-specific defaults and validation live in `admission`; persistence mirrors every
//! write into Wharf's store so the cluster survives a restart.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::admission::{self, Allocations};
use super::meta;
use super::resources::{self, RESOURCES, ResourceType, kinds};
use super::status::Status;
use crate::store::Store;

/// Events kept for watches that resume from an older resourceVersion.
const EVENT_RING: usize = 10_000;

/// (resource index, namespace or "", name)
pub type Key = (usize, String, String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change, as watches see it.
#[derive(Debug)]
pub struct Event {
    pub rv: u64,
    pub resource: usize,
    pub kind: EventType,
    pub object: Arc<Value>,
    /// The object before the change (to tell a watch with a selector that it stopped matching).
    pub previous: Option<Arc<Value>>,
}

/// Events to replay, then the live feed.
pub type Subscription = (Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>);

/// What an update is allowed to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateScope {
    /// The object; its status is kept when the kind has a status subresource.
    Object,
    /// Only the status (the `/status` subresource).
    Status,
    /// Everything (the simulator's own controllers).
    Controller,
}

/// How a delete ended.
pub enum Deleted {
    /// Gone now (the last state).
    Gone(Arc<Value>),
    /// Marked for deletion, waiting on finalizers (the current state).
    Pending(Arc<Value>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    Background,
    Foreground,
    Orphan,
}

/// Options of a DELETE; the default is what a bare DELETE asks for.
#[derive(Default)]
pub struct DeleteOptions {
    pub propagation: Option<Propagation>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
}

pub struct World {
    objects: BTreeMap<Key, Arc<Value>>,
    rv: u64,
    ring: VecDeque<Arc<Event>>,
    /// Events with a resourceVersion above this are still in the ring.
    replayable_after: u64,
    events: broadcast::Sender<Arc<Event>>,
    persist: Option<Store>,
    pub allocations: Allocations,
    /// Bumped by every write; the controllers use it to notice work.
    pub writes: u64,
}

fn storage_key(resource: &ResourceType, namespace: &str, name: &str) -> String {
    Store::key(&[
        "kube",
        "objects",
        &resource.group_resource(),
        if namespace.is_empty() { "_" } else { namespace },
        name,
    ])
}

fn rv_key() -> String {
    Store::key(&["kube", "resource-version"])
}

fn rv_of(object: &Value) -> u64 {
    meta::str_at(object, "/metadata/resourceVersion")
        .and_then(|rv| rv.parse().ok())
        .unwrap_or(0)
}

impl World {
    /// An empty world, or the one persisted in `persist`.
    pub fn load(persist: Option<Store>) -> anyhow::Result<Self> {
        let (events, _) = broadcast::channel(65_536);
        let mut world = Self {
            objects: BTreeMap::new(),
            rv: 1,
            ring: VecDeque::new(),
            replayable_after: 1,
            events,
            persist,
            allocations: Allocations::default(),
            writes: 0,
        };
        if let Some(store) = &world.persist {
            let saved: Option<u64> = store.get_json(&rv_key())?;
            let objects: Vec<Value> = store.list_json(&Store::key(&["kube", "objects", ""]))?;
            for object in objects {
                let api_version = meta::str_at(&object, "/apiVersion").unwrap_or("");
                let kind = meta::str_at(&object, "/kind").unwrap_or("");
                let Some(resource) = resources::by_kind(api_version, kind) else {
                    continue;
                };
                world.rv = world.rv.max(rv_of(&object));
                world.allocations.reserve(resource, &object);
                world.objects.insert(
                    (
                        resources::index_of(resource),
                        meta::namespace(&object).to_owned(),
                        meta::name(&object).to_owned(),
                    ),
                    Arc::new(object),
                );
            }
            world.rv = world.rv.max(saved.unwrap_or(0));
            world.replayable_after = world.rv;
        }
        Ok(world)
    }

    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    pub fn get(&self, resource: &ResourceType, namespace: &str, name: &str) -> Option<Arc<Value>> {
        self.objects
            .get(&(
                resources::index_of(resource),
                namespace.to_owned(),
                name.to_owned(),
            ))
            .cloned()
    }

    /// Objects of a kind, in one namespace or all, ordered by (namespace, name).
    pub fn list<'a>(
        &'a self,
        resource: &ResourceType,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Arc<Value>> + 'a {
        let index = resources::index_of(resource);
        let start = (index, namespace.unwrap_or("").to_owned(), String::new());
        let end = (index + 1, String::new(), String::new());
        self.objects
            .range(start..end)
            .take_while(move |((_, ns, _), _)| namespace.is_none_or(|want| ns == want))
            .map(|(_, object)| object)
    }

    /// Every object in `namespace`, of every namespaced kind.
    pub fn keys_in_namespace(&self, namespace: &str) -> Vec<Key> {
        self.objects
            .keys()
            .filter(|(_, ns, _)| ns == namespace)
            .cloned()
            .collect()
    }

    pub fn all(&self) -> impl Iterator<Item = (&Key, &Arc<Value>)> {
        self.objects.iter()
    }

    /// A receiver of future events, plus the ring's events after `after`, or `None` when
    /// those are no longer kept (the watch must answer 410 Expired).
    pub fn subscribe(&self, after: u64) -> Option<Subscription> {
        if after < self.replayable_after {
            return None;
        }
        let replay = self
            .ring
            .iter()
            .filter(|event| event.rv > after)
            .cloned()
            .collect();
        Some((replay, self.events.subscribe()))
    }

    /// The oldest resourceVersion a watch may still resume from.
    pub fn oldest_replayable(&self) -> u64 {
        self.replayable_after
    }

    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.writes += 1;
        self.rv
    }

    fn record(
        &mut self,
        resource: &ResourceType,
        kind: EventType,
        object: Arc<Value>,
        previous: Option<Arc<Value>>,
    ) {
        let rv = rv_of(&object);
        if let Some(store) = &self.persist {
            let key = storage_key(resource, meta::namespace(&object), meta::name(&object));
            let written = match kind {
                EventType::Deleted => store.delete(&key).map(|_| ()),
                _ => store.put_json(&key, object.as_ref()),
            };
            if let Err(error) = written.and_then(|()| store.put_json(&rv_key(), &rv)) {
                tracing::error!(%error, "persisting an embedded-cluster object failed");
            }
        }
        let event = Arc::new(Event {
            rv,
            resource: resources::index_of(resource),
            kind,
            object,
            previous,
        });
        if self.ring.len() == EVENT_RING
            && let Some(dropped) = self.ring.pop_front()
        {
            self.replayable_after = dropped.rv;
        }
        self.ring.push_back(event.clone());
        let _ = self.events.send(event);
    }

    /// Makes everything durable that was written so far.
    pub async fn commit(store: &Option<Store>) {
        if let Some(store) = store
            && let Err(error) = store.commit().await
        {
            tracing::error!(%error, "flushing the embedded cluster failed");
        }
    }

    pub fn store(&self) -> Option<Store> {
        self.persist.clone()
    }

    /// Creates `object` in `namespace` (empty for cluster-scoped kinds).
    pub fn create(
        &mut self,
        resource: &'static ResourceType,
        namespace: &str,
        mut object: Value,
    ) -> Result<Arc<Value>, Status> {
        if !object.is_object() {
            return Err(Status::bad_request(
                "the request body must be a JSON object",
            ));
        }
        object["apiVersion"] = json!(resource.api_version());
        object["kind"] = json!(resource.kind);
        let metadata = meta::metadata_mut(&mut object);
        let mut name = metadata
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        if name.is_empty() {
            match metadata.get("generateName").and_then(Value::as_str) {
                Some(prefix) if !prefix.is_empty() => name = meta::generate_name(prefix),
                _ => {
                    return Err(Status::invalid(
                        resource,
                        "",
                        &[(
                            "metadata.name",
                            "Required value: name or generateName is required".into(),
                        )],
                    ));
                }
            }
        }
        let body_namespace = metadata
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or("");
        if resource.namespaced {
            if !body_namespace.is_empty() && body_namespace != namespace {
                return Err(Status::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            metadata.insert("namespace".into(), json!(namespace));
        } else {
            metadata.remove("namespace");
        }
        metadata.insert("name".into(), json!(name));
        metadata.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        metadata.insert("creationTimestamp".into(), json!(meta::now_rfc3339()));
        metadata.insert("generation".into(), json!(1));
        metadata.remove("deletionTimestamp");
        metadata.remove("resourceVersion");
        metadata.remove("managedFields");
        let namespace = if resource.namespaced { namespace } else { "" };
        if resource.namespaced {
            self.check_namespace_accepts(namespace)?;
        }
        let key = (
            resources::index_of(resource),
            namespace.to_owned(),
            name.clone(),
        );
        if self.objects.contains_key(&key) {
            return Err(Status::already_exists(resource, &name));
        }
        admission::admit(resource, None, &mut object, &mut self.allocations)?;
        let rv = self.next_rv();
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        let object = Arc::new(object);
        self.objects.insert(key, object.clone());
        self.record(resource, EventType::Added, object.clone(), None);
        Ok(object)
    }

    fn check_namespace_accepts(&self, namespace: &str) -> Result<(), Status> {
        match self.get(kinds::namespace(), "", namespace) {
            None => Err(Status::namespace_not_found(namespace)),
            Some(ns) if meta::is_deleting(&ns) => Err(Status::forbidden(format!(
                "unable to create new content in namespace {namespace} because it is being terminated"
            ))),
            Some(_) => Ok(()),
        }
    }

    /// Replaces the object at (namespace, name) with `object`. A `resourceVersion` in the
    /// new object must match the stored one (409 otherwise); none means unconditional.
    pub fn update(
        &mut self,
        resource: &'static ResourceType,
        namespace: &str,
        name: &str,
        mut object: Value,
        scope: UpdateScope,
    ) -> Result<Arc<Value>, Status> {
        let namespace = if resource.namespaced { namespace } else { "" };
        let key = (
            resources::index_of(resource),
            namespace.to_owned(),
            name.to_owned(),
        );
        let Some(old) = self.objects.get(&key).cloned() else {
            return Err(Status::not_found(resource, name));
        };
        if !object.is_object() {
            return Err(Status::bad_request(
                "the request body must be a JSON object",
            ));
        }
        let body_name = meta::name(&object);
        if !body_name.is_empty() && body_name != name {
            return Err(Status::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let body_rv = meta::str_at(&object, "/metadata/resourceVersion").unwrap_or("");
        if !body_rv.is_empty()
            && body_rv != meta::str_at(&old, "/metadata/resourceVersion").unwrap_or("")
        {
            return Err(Status::stale(resource, name));
        }
        if scope == UpdateScope::Status {
            let status = object.get("status").cloned().unwrap_or(Value::Null);
            object = old.as_ref().clone();
            object["status"] = status;
        } else if scope == UpdateScope::Object && resource.has_status() {
            match old.get("status") {
                Some(status) => object["status"] = status.clone(),
                None => {
                    if let Some(map) = object.as_object_mut() {
                        map.remove("status");
                    }
                }
            }
        }
        object["apiVersion"] = json!(resource.api_version());
        object["kind"] = json!(resource.kind);
        {
            let metadata = meta::metadata_mut(&mut object);
            // Clients cannot change identity or deletion state; the controllers can.
            if scope != UpdateScope::Controller {
                for preserved in [
                    "uid",
                    "creationTimestamp",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                    "generation",
                ] {
                    match old["metadata"].get(preserved) {
                        Some(value) => metadata.insert(preserved.into(), value.clone()),
                        None => metadata.remove(preserved),
                    };
                }
            }
            metadata.insert("name".into(), json!(name));
            if resource.namespaced {
                metadata.insert("namespace".into(), json!(namespace));
            } else {
                metadata.remove("namespace");
            }
            metadata.remove("managedFields");
        }
        if meta::is_deleting(&old) {
            let before = meta::finalizers(&old);
            if let Some(added) = meta::finalizers(&object)
                .iter()
                .find(|f| !before.contains(f))
            {
                return Err(Status::invalid(
                    resource,
                    name,
                    &[(
                        "metadata.finalizers",
                        format!(
                            "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers [\"{added}\"]"
                        ),
                    )],
                ));
            }
        }
        admission::admit(resource, Some(&old), &mut object, &mut self.allocations)?;
        if spec_changed(&old, &object) {
            let generation = old["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
            object["metadata"]["generation"] = json!(generation);
        }
        object["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        if object == *old {
            return Ok(old);
        }
        let rv = self.next_rv();
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        if meta::is_deleting(&object)
            && !meta::finalizers(&old).is_empty()
            && meta::finalizers(&object).is_empty()
        {
            self.objects.remove(&key);
            self.allocations.release(resource, &object);
            let object = Arc::new(object);
            self.record(resource, EventType::Deleted, object.clone(), Some(old));
            return Ok(object);
        }
        let object = Arc::new(object);
        self.objects.insert(key, object.clone());
        self.record(resource, EventType::Modified, object.clone(), Some(old));
        Ok(object)
    }

    /// Deletes, or marks for deletion when finalizers (or foreground propagation) hold
    /// the object. Dependents are handled by the garbage collector.
    pub fn delete(
        &mut self,
        resource: &'static ResourceType,
        namespace: &str,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<Deleted, Status> {
        let namespace = if resource.namespaced { namespace } else { "" };
        let key = (
            resources::index_of(resource),
            namespace.to_owned(),
            name.to_owned(),
        );
        let Some(old) = self.objects.get(&key).cloned() else {
            return Err(Status::not_found(resource, name));
        };
        if let Some(uid) = &options.precondition_uid
            && uid != meta::uid(&old)
        {
            return Err(Status::conflict(
                resource,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta::uid(&old)
                ),
            ));
        }
        if let Some(rv) = &options.precondition_rv
            && Some(rv.as_str()) != meta::str_at(&old, "/metadata/resourceVersion")
        {
            return Err(Status::stale(resource, name));
        }
        if resource.is("", "Namespace") {
            if matches!(name, "default" | "kube-system" | "kube-public") {
                return Err(Status::forbidden(format!(
                    "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
                )));
            }
            if meta::is_deleting(&old) {
                return Ok(Deleted::Pending(old));
            }
            let mut terminating = old.as_ref().clone();
            terminating["metadata"]["deletionTimestamp"] = json!(meta::now_rfc3339());
            terminating["status"] = json!({"phase": "Terminating"});
            return self
                .update(resource, "", name, terminating, UpdateScope::Controller)
                .map(Deleted::Pending);
        }
        let propagation = options
            .propagation
            .unwrap_or(if resource.is("batch", "Job") {
                Propagation::Orphan
            } else {
                Propagation::Background
            });
        if propagation == Propagation::Orphan {
            self.orphan_dependents(meta::uid(&old));
        }
        let mut finalizers = meta::finalizers(&old);
        if propagation == Propagation::Foreground
            && !finalizers.iter().any(|f| f == "foregroundDeletion")
        {
            finalizers.push("foregroundDeletion".into());
        }
        if finalizers.is_empty() {
            self.objects.remove(&key);
            self.allocations.release(resource, &old);
            let rv = self.next_rv();
            let mut last = old.as_ref().clone();
            last["metadata"]["resourceVersion"] = json!(rv.to_string());
            let last = Arc::new(last);
            self.record(resource, EventType::Deleted, last.clone(), Some(old));
            return Ok(Deleted::Gone(last));
        }
        if meta::is_deleting(&old) {
            return Ok(Deleted::Pending(old));
        }
        let mut marked = old.as_ref().clone();
        marked["metadata"]["deletionTimestamp"] = json!(meta::now_rfc3339());
        marked["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        marked["metadata"]["finalizers"] = json!(finalizers);
        let rv = self.next_rv();
        marked["metadata"]["resourceVersion"] = json!(rv.to_string());
        let marked = Arc::new(marked);
        self.objects.insert(key, marked.clone());
        self.record(resource, EventType::Modified, marked.clone(), Some(old));
        Ok(Deleted::Pending(marked))
    }

    /// Removes an object outright (a terminated namespace once it is empty).
    pub fn remove(&mut self, resource: &'static ResourceType, namespace: &str, name: &str) {
        let key = (
            resources::index_of(resource),
            namespace.to_owned(),
            name.to_owned(),
        );
        let Some(old) = self.objects.remove(&key) else {
            return;
        };
        self.allocations.release(resource, &old);
        let rv = self.next_rv();
        let mut last = old.as_ref().clone();
        last["metadata"]["resourceVersion"] = json!(rv.to_string());
        self.record(resource, EventType::Deleted, Arc::new(last), Some(old));
    }

    /// Removes owner references to `owner_uid` from every object (orphan propagation).
    fn orphan_dependents(&mut self, owner_uid: &str) {
        let dependents: Vec<Key> = self
            .objects
            .iter()
            .filter(|(_, object)| meta::owner_uids(object).contains(&owner_uid))
            .map(|(key, _)| key.clone())
            .collect();
        for (index, namespace, name) in dependents {
            let Some(object) = self.objects.get(&(index, namespace.clone(), name.clone())) else {
                continue;
            };
            let mut orphan = object.as_ref().clone();
            if let Some(refs) = orphan
                .pointer_mut("/metadata/ownerReferences")
                .and_then(Value::as_array_mut)
            {
                refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(owner_uid));
            }
            let _ = self.update(
                &RESOURCES[index],
                &namespace,
                &name,
                orphan,
                UpdateScope::Controller,
            );
        }
    }
}

/// Whether anything outside metadata and status changed (what bumps `generation`).
fn spec_changed(old: &Value, new: &Value) -> bool {
    let strip = |value: &Value| {
        let mut value = value.clone();
        if let Some(map) = value.as_object_mut() {
            map.remove("metadata");
            map.remove("status");
        }
        value
    };
    strip(old) != strip(new)
}
