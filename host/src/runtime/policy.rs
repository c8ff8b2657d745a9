//! The host side of the artifact-policy world: which plugin serves as the artifact policy
//! (one at a time, like the authorizer), and asking it before a tag is pushed, moved or
//! deleted and which tags a retention run deletes. Every call takes the ordinary plugin
//! path (limits, deadline, accounting).

use std::sync::Arc;

use super::bindings::artifact_policy::exports::wharf::plugin::policy as wit;
use super::call::CallError;
use super::manifest::World;
use super::{ActivePlugin, Runtime, WorldPre};

pub use wit::{Artifact, PolicyError, Usage, Verdict};

/// The most tags one retention call hands the plugin; a repository with more is refused
/// rather than judged on part of its tags.
pub const MAX_RETENTION_TAGS: usize = 10_000;

/// Why the policy gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum PolicyFailure {
    #[error(transparent)]
    Call(#[from] CallError),
    #[error("artifact policy `{id}` refused the request: {message}")]
    Plugin { id: String, message: String },
    #[error("artifact policy `{id}` answered tags that were not asked about: {tags}")]
    Unasked { id: String, tags: String },
}

fn plugin_failure(plugin: &ActivePlugin, error: PolicyError) -> PolicyFailure {
    let message = match error {
        PolicyError::InvalidRequest(m) => format!("invalid request: {m}"),
        PolicyError::Unavailable(m) => format!("unavailable: {m}"),
    };
    PolicyFailure::Plugin {
        id: plugin.id().to_owned(),
        message,
    }
}

fn wrong_world() -> wasmtime::Error {
    wasmtime::format_err!("not an artifact-policy plugin")
}

impl Runtime {
    /// The enabled artifact policy, if any.
    pub fn artifact_policy(&self) -> Option<Arc<ActivePlugin>> {
        self.serving(World::ArtifactPolicy)
    }

    /// Asks `plugin` whether `candidate` may be pushed over `existing`.
    pub async fn check_push(
        &self,
        plugin: &Arc<ActivePlugin>,
        candidate: Artifact,
        existing: Option<Artifact>,
        usage: Usage,
    ) -> Result<Verdict, PolicyFailure> {
        let answer = self
            .call_version(plugin, move |store, pre| {
                Box::pin(async move {
                    let WorldPre::ArtifactPolicy(pre) = pre else {
                        return Err(wrong_world());
                    };
                    let instance = pre.instantiate_async(&mut *store).await?;
                    let result = instance
                        .wharf_plugin_policy()
                        .call_check_push(&mut *store, &candidate, existing.as_ref(), &usage)
                        .await?;
                    Ok((result, 0))
                })
            })
            .await?;
        answer.map_err(|e| plugin_failure(plugin, e))
    }

    /// Asks `plugin` whether the tag `target` may be deleted.
    pub async fn check_delete(
        &self,
        plugin: &Arc<ActivePlugin>,
        target: Artifact,
    ) -> Result<Verdict, PolicyFailure> {
        let answer = self
            .call_version(plugin, move |store, pre| {
                Box::pin(async move {
                    let WorldPre::ArtifactPolicy(pre) = pre else {
                        return Err(wrong_world());
                    };
                    let instance = pre.instantiate_async(&mut *store).await?;
                    let result = instance
                        .wharf_plugin_policy()
                        .call_check_delete(&mut *store, &target)
                        .await?;
                    Ok((result, 0))
                })
            })
            .await?;
        answer.map_err(|e| plugin_failure(plugin, e))
    }

    /// The tags of `repository` (given newest first) that `plugin` has retention delete;
    /// only tags it was asked about.
    pub async fn select_for_deletion(
        &self,
        plugin: &Arc<ActivePlugin>,
        repository: String,
        artifacts: Vec<Artifact>,
        now: String,
    ) -> Result<Vec<String>, PolicyFailure> {
        let asked: std::collections::BTreeSet<String> =
            artifacts.iter().map(|a| a.reference.clone()).collect();
        let answer = self
            .call_version(plugin, move |store, pre| {
                Box::pin(async move {
                    let WorldPre::ArtifactPolicy(pre) = pre else {
                        return Err(wrong_world());
                    };
                    let instance = pre.instantiate_async(&mut *store).await?;
                    let result = instance
                        .wharf_plugin_policy()
                        .call_select_for_deletion(&mut *store, &repository, &artifacts, &now)
                        .await?;
                    let size = result
                        .as_ref()
                        .map(|tags| tags.iter().map(String::len).sum())
                        .unwrap_or(0);
                    Ok((result, size))
                })
            })
            .await?;
        let tags = answer.map_err(|e| plugin_failure(plugin, e))?;
        let unasked: Vec<&str> = tags
            .iter()
            .filter(|t| !asked.contains(*t))
            .map(String::as_str)
            .collect();
        if !unasked.is_empty() {
            return Err(PolicyFailure::Unasked {
                id: plugin.id().to_owned(),
                tags: unasked.join(", "),
            });
        }
        Ok(tags)
    }
}
