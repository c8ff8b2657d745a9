//! Garbage collection and namespace termination: dependents whose owners are gone are
//! deleted (background propagation), owners waiting in `foregroundDeletion` lose the
//! finalizer once their dependents are gone, and a terminating namespace is emptied and
//! then removed.

use std::collections::{HashMap, HashSet};

use serde_json::json;

use super::write_if_changed;
use crate::cluster::sim::meta;
use crate::cluster::sim::resources::{RESOURCES, kinds};
use crate::cluster::sim::world::{DeleteOptions, Key, World};

const FOREGROUND: &str = "foregroundDeletion";
/// Events are kept an hour, as the apiserver's default `--event-ttl`.
const EVENT_TTL: time::Duration = time::Duration::hours(1);

pub fn collect(world: &mut World) {
    let mut live: HashSet<String> = HashSet::new();
    // Owners waiting in foreground deletion: uid → where they are.
    let mut foreground: HashMap<String, Key> = HashMap::new();
    let mut dependents_of: HashMap<String, usize> = HashMap::new();
    let mut orphans: Vec<Key> = Vec::new();
    let mut terminating: Vec<String> = Vec::new();
    for (key, object) in world.all() {
        live.insert(meta::uid(object).to_owned());
        if meta::is_deleting(object) && meta::finalizers(object).iter().any(|f| f == FOREGROUND) {
            foreground.insert(meta::uid(object).to_owned(), key.clone());
        }
        if RESOURCES[key.0].is("", "Namespace") && meta::is_deleting(object) {
            terminating.push(meta::name(object).to_owned());
        }
    }
    let expired_before = time::OffsetDateTime::now_utc() - EVENT_TTL;
    let mut expired: Vec<Key> = Vec::new();
    for (key, object) in world.all() {
        if RESOURCES[key.0].is("", "Event")
            && meta::str_at(object, "/lastTimestamp")
                .and_then(meta::parse_timestamp)
                .is_some_and(|at| at < expired_before)
        {
            expired.push(key.clone());
            continue;
        }
        let owners = meta::owner_uids(object);
        if owners.is_empty() {
            continue;
        }
        for owner in &owners {
            *dependents_of.entry((*owner).to_owned()).or_default() += 1;
        }
        let orphaned = owners.iter().all(|o| !live.contains(*o));
        let owner_in_foreground = owners.iter().any(|o| foreground.contains_key(*o));
        if (orphaned || owner_in_foreground) && !meta::is_deleting(object) {
            orphans.push(key.clone());
        }
    }
    for (index, namespace, name) in orphans.into_iter().chain(expired) {
        let _ = world.delete(
            &RESOURCES[index],
            &namespace,
            &name,
            &DeleteOptions::default(),
        );
    }
    for (uid, key) in foreground {
        if dependents_of.get(&uid).copied().unwrap_or(0) > 0 {
            continue;
        }
        let Some(object) = world.get(&RESOURCES[key.0], &key.1, &key.2) else {
            continue;
        };
        let mut next = object.as_ref().clone();
        let remaining: Vec<String> = meta::finalizers(&object)
            .into_iter()
            .filter(|f| f != FOREGROUND)
            .collect();
        next["metadata"]["finalizers"] = json!(remaining);
        write_if_changed(world, &RESOURCES[key.0], &object, next);
    }
    for namespace in terminating {
        let contents = world.keys_in_namespace(&namespace);
        if contents.is_empty() {
            world.remove(kinds::namespace(), "", &namespace);
            continue;
        }
        for (index, ns, name) in contents {
            let pending = world
                .get(&RESOURCES[index], &ns, &name)
                .is_some_and(|o| meta::is_deleting(&o));
            if !pending {
                let _ = world.delete(&RESOURCES[index], &ns, &name, &DeleteOptions::default());
            }
        }
    }
}
