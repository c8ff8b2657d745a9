//! The host side of the authorizer world: which plugin decides, asking it for decisions,
//! and routing policy administration to it.
//!
//! Exactly one authorizer serves at a time (enabling another swaps them). The call path is
//! the ordinary plugin call path, so an authorizer is limited, timed and counted like any
//! plugin, but on slots of its own; a trap or timeout is reported to the caller, who must
//! fail closed. It is never switched off for failing (see [`super::call`]). Batches are
//! split into calls of at most [`MAX_CHECK_BATCH`] requests, each with its own deadline.
//!
//! Per-request decisions are cached: a plugin call costs far more than the request it
//! guards. The cache stays exact because everything a decision depends on is either in the
//! key (authorizer id@version, subject id, groups, admin flag, action, resource) or can only
//! change through the host, which then drops every entry: a policy `manage` call (also
//! from the plugin console) or any change of the serving plugins. Entries also expire after
//! [`DECISION_TTL`] as a second line of defence.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::bindings::authorizer::exports::wharf::plugin::authorize;
use super::call::{CallError, Lane};
use super::limits::MAX_CHECK_BATCH;
use super::manifest::World;
use super::{ActivePlugin, Runtime, WorldPre};

pub use authorize::{AuthorizeError, Decision, Request, Subject};

/// How long a cached decision may be reused at most.
pub const DECISION_TTL: Duration = Duration::from_secs(30);
/// Entries kept before the cache starts over.
const DECISION_CAPACITY: usize = 50_000;

#[derive(Clone, PartialEq, Eq, Hash)]
struct DecisionKey {
    authorizer: String,
    subject: String,
    groups: Vec<String>,
    is_admin: bool,
    action: String,
    resource: String,
}

/// Cached single decisions (see the module comment for why it stays exact).
#[derive(Default)]
pub struct DecisionCache {
    generation: AtomicU64,
    entries: Mutex<HashMap<DecisionKey, (u64, Instant, bool, String)>>,
}

impl DecisionCache {
    /// Drops every cached decision.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    fn get(&self, key: &DecisionKey) -> Option<Decision> {
        let generation = self.generation.load(Ordering::Acquire);
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let (stored_generation, at, allow, reason) = entries.get(key)?;
        if *stored_generation != generation || at.elapsed() > DECISION_TTL {
            return None;
        }
        Some(if *allow {
            Decision::Allow
        } else {
            Decision::Deny(reason.clone())
        })
    }

    /// Stores a decision made under `generation` (a decision that raced an invalidation
    /// is dropped instead of outliving it).
    fn put(&self, key: DecisionKey, generation: u64, decision: &Decision) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if generation != self.generation.load(Ordering::Acquire) {
            return;
        }
        if entries.len() >= DECISION_CAPACITY {
            entries.clear();
        }
        let (allow, reason) = match decision {
            Decision::Allow => (true, String::new()),
            Decision::Deny(reason) => (false, reason.clone()),
        };
        entries.insert(key, (generation, Instant::now(), allow, reason));
    }
}

impl Runtime {
    /// One decision for one request, from the cache when it can be.
    pub async fn decide(
        &self,
        plugin: &Arc<ActivePlugin>,
        subject: Subject,
        request: Request,
    ) -> Result<Result<Decision, AuthorizeError>, CallError> {
        let cache = &self.inner.decisions;
        let key = DecisionKey {
            authorizer: format!("{}@{}", plugin.id(), plugin.version()),
            subject: subject.id.clone(),
            groups: subject.groups.clone(),
            is_admin: subject.is_admin,
            action: request.action.clone(),
            resource: request.resource.clone(),
        };
        if let Some(decision) = cache.get(&key) {
            return Ok(Ok(decision));
        }
        let generation = cache.generation.load(Ordering::Acquire);
        let decisions = match self.check(plugin, subject, vec![request]).await? {
            Ok(decisions) => decisions,
            Err(error) => return Ok(Err(error)),
        };
        let Some(decision) = decisions.into_iter().next() else {
            return Ok(Err(AuthorizeError::Unavailable(
                "the authorizer returned no decision".into(),
            )));
        };
        cache.put(key, generation, &decision);
        Ok(Ok(decision))
    }

    /// Drops cached decisions (the policy or the serving plugins changed).
    pub fn invalidate_decisions(&self) {
        self.inner.decisions.invalidate();
    }

    /// The enabled authorizer, if any.
    pub fn authorizer(&self) -> Option<Arc<ActivePlugin>> {
        self.serving(World::Authorizer)
    }

    /// The enabled plugin of a world one plugin serves at a time, if any.
    pub fn serving(&self, world: World) -> Option<Arc<ActivePlugin>> {
        self.inner
            .active
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .find(|p| p.world() == world)
            .cloned()
    }

    /// Asks `plugin` for one decision per request, [`MAX_CHECK_BATCH`] requests per call.
    pub async fn check(
        &self,
        plugin: &Arc<ActivePlugin>,
        subject: Subject,
        requests: Vec<Request>,
    ) -> Result<Result<Vec<Decision>, AuthorizeError>, CallError> {
        let mut decisions = Vec::with_capacity(requests.len());
        let mut requests = requests.into_iter().peekable();
        while requests.peek().is_some() {
            let chunk: Vec<Request> = requests.by_ref().take(MAX_CHECK_BATCH).collect();
            let asked = chunk.len();
            match self.check_once(plugin, subject.clone(), chunk).await? {
                Ok(answered) if answered.len() == asked => decisions.extend(answered),
                Ok(answered) => {
                    return Ok(Err(AuthorizeError::Unavailable(format!(
                        "the authorizer returned {} decisions for {asked} requests",
                        answered.len()
                    ))));
                }
                Err(error) => return Ok(Err(error)),
            }
        }
        Ok(Ok(decisions))
    }

    async fn check_once(
        &self,
        plugin: &Arc<ActivePlugin>,
        subject: Subject,
        requests: Vec<Request>,
    ) -> Result<Result<Vec<Decision>, AuthorizeError>, CallError> {
        self.call_in(Lane::Authorization, plugin, move |store, pre| {
            Box::pin(async move {
                let WorldPre::Authorizer(pre) = pre else {
                    return Err(wasmtime::format_err!("not an authorizer"));
                };
                let instance = pre.instantiate_async(&mut *store).await?;
                let result = instance
                    .wharf_plugin_authorize()
                    .call_check(&mut *store, &subject, &requests)
                    .await?;
                let size = match &result {
                    Ok(decisions) => decisions
                        .iter()
                        .map(|d| match d {
                            Decision::Allow => 1,
                            Decision::Deny(reason) => reason.len() + 1,
                        })
                        .sum(),
                    Err(_) => 0,
                };
                Ok((result, size))
            })
        })
        .await
    }

    /// Runs a policy-administration operation on `plugin` for `subject`.
    pub async fn manage(
        &self,
        plugin: &Arc<ActivePlugin>,
        subject: Subject,
        operation: String,
        input_json: String,
    ) -> Result<Result<String, AuthorizeError>, CallError> {
        // Any operation may change the policy; reads are rare enough not to tell apart.
        let _invalidate_after = InvalidateOnDrop(self);
        self.call_in(Lane::Authorization, plugin, move |store, pre| {
            Box::pin(async move {
                let WorldPre::Authorizer(pre) = pre else {
                    return Err(wasmtime::format_err!("not an authorizer"));
                };
                let instance = pre.instantiate_async(&mut *store).await?;
                let result = instance
                    .wharf_plugin_authorize()
                    .call_manage(&mut *store, &subject, &operation, &input_json)
                    .await?;
                let size = result.as_ref().map(String::len).unwrap_or(0);
                Ok((result, size))
            })
        })
        .await
    }
}

/// Drops cached decisions when it goes out of scope, i.e. after the operation finished
/// (invalidating before would let a concurrent check cache a pre-change decision).
struct InvalidateOnDrop<'a>(&'a Runtime);

impl Drop for InvalidateOnDrop<'_> {
    fn drop(&mut self) {
        self.0.invalidate_decisions();
    }
}
