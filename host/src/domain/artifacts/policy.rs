//! The artifact policy as the registry consults it: before a tag is pushed, moved or
//! deleted, the serving artifact-policy plugin is asked with the tag, what it points to
//! now and the project's usage; it decides, the registry executes. Without an enabled
//! policy everything is allowed. A policy that fails to answer refuses the change (an
//! immutable tag must not move because its policy trapped).

use std::future::Future;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::RegistryError;
use super::registry::{Registry, TaggedImage};
use crate::runtime::Runtime;
use crate::runtime::policy::{Artifact, Usage, Verdict};

/// A tag about to point to a manifest.
#[derive(Debug, Clone)]
pub struct PushCandidate {
    pub repository: String,
    pub tag: String,
    pub digest: String,
    pub media_type: String,
    /// The manifest and the blobs it lists, in bytes.
    pub size: u64,
    /// What the tag points to now.
    pub existing: Option<TaggedImage>,
}

/// What decides whether a tag may change.
pub trait Gate: Send + Sync {
    fn allow_push(
        &self,
        candidate: &PushCandidate,
    ) -> impl Future<Output = Result<(), RegistryError>> + Send;
    fn allow_delete(
        &self,
        target: &TaggedImage,
    ) -> impl Future<Output = Result<(), RegistryError>> + Send;
}

/// The serving artifact-policy plugin as the registry's gate.
#[derive(Clone)]
pub struct PolicyGate {
    pub runtime: Runtime,
    pub registry: Registry,
}

pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// A tag as the policy world describes it.
pub fn artifact(image: &TaggedImage) -> Artifact {
    Artifact {
        repository: image.repository.clone(),
        reference: image.tag.clone(),
        digest: image.manifest.digest.clone(),
        media_type: image.manifest.media_type.clone(),
        size: image.size,
        created_at: rfc3339(image.tagged_at),
    }
}

fn decided(verdict: Verdict) -> Result<(), RegistryError> {
    match verdict {
        Verdict::Accept => Ok(()),
        Verdict::Reject(reason) => Err(RegistryError::Denied(format!(
            "the artifact policy refuses: {reason}"
        ))),
    }
}

fn unavailable(error: impl std::fmt::Display) -> RegistryError {
    RegistryError::PolicyUnavailable(format!(
        "the artifact policy could not decide, so nothing was changed: {error}"
    ))
}

impl Gate for PolicyGate {
    async fn allow_push(&self, candidate: &PushCandidate) -> Result<(), RegistryError> {
        let Some(plugin) = self.runtime.artifact_policy() else {
            return Ok(());
        };
        let project = candidate
            .repository
            .split('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let images = self.registry.tagged_images(&project)?;
        let usage = Usage {
            project,
            bytes: images.iter().map(|i| i.size).sum(),
            tags: u32::try_from(images.len()).unwrap_or(u32::MAX),
        };
        let asked = Artifact {
            repository: candidate.repository.clone(),
            reference: candidate.tag.clone(),
            digest: candidate.digest.clone(),
            media_type: candidate.media_type.clone(),
            size: candidate.size,
            created_at: rfc3339(OffsetDateTime::now_utc()),
        };
        let existing = candidate.existing.as_ref().map(artifact);
        let verdict = self
            .runtime
            .check_push(&plugin, asked, existing, usage)
            .await
            .map_err(unavailable)?;
        decided(verdict)
    }

    async fn allow_delete(&self, target: &TaggedImage) -> Result<(), RegistryError> {
        let Some(plugin) = self.runtime.artifact_policy() else {
            return Ok(());
        };
        let verdict = self
            .runtime
            .check_delete(&plugin, artifact(target))
            .await
            .map_err(unavailable)?;
        decided(verdict)
    }
}

/// Allows everything (the registry's own tests).
#[cfg(test)]
pub struct OpenGate;

#[cfg(test)]
impl Gate for OpenGate {
    async fn allow_push(&self, _: &PushCandidate) -> Result<(), RegistryError> {
        Ok(())
    }

    async fn allow_delete(&self, _: &TaggedImage) -> Result<(), RegistryError> {
        Ok(())
    }
}
