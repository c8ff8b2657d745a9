//! Retention runs. For each repository of a project the serving artifact policy picks,
//! from the repository's tags (newest first), the tags to delete; a dry run reports them,
//! a run deletes each one that is still as it was when it was picked (a tag pushed
//! meanwhile is reported as skipped). A repository the policy cannot judge is reported
//! with its error and the run goes on with the next. The manifests and blobs of deleted
//! tags stay in storage (there is no garbage collection yet). The plugin decides; the
//! host executes and records.

use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::RegistryError;
use super::policy::{artifact, rfc3339};
use super::registry::Registry;
use crate::runtime::Runtime;
use crate::runtime::policy::MAX_RETENTION_TAGS;

/// What a retention run did (or, dry, would do).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetentionReport {
    pub project: String,
    pub dry_run: bool,
    /// `id@version` of the policy that decided.
    pub policy: String,
    /// The time the policy judged ages by (RFC 3339).
    pub now: String,
    pub repositories: Vec<RepositoryRetention>,
    /// Tags deleted (or, dry, to delete) in all repositories.
    pub deleted: usize,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryRetention {
    pub repository: String,
    /// Tags the repository had when the run looked.
    pub tags: usize,
    pub deleted: Vec<ExpiredTag>,
    /// Picked tags left alone, with why.
    pub skipped: Vec<SkippedTag>,
    /// Why the repository was not judged, if it was not (nothing in it was deleted).
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExpiredTag {
    pub tag: String,
    pub digest: String,
    pub pushed_at: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SkippedTag {
    pub tag: String,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error("no artifact policy is enabled: enable an artifact-policy plugin to run retention")]
    NoPolicy,
    #[error(
        "repository {repository} has {count} tags, more than the {max} one retention run judges"
    )]
    TooManyTags {
        repository: String,
        count: usize,
        max: usize,
    },
    #[error("the artifact policy could not decide, so nothing was deleted: {0}")]
    Policy(String),
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// Runs retention over the repositories of `project` (dry: deletes nothing).
pub async fn run(
    runtime: &Runtime,
    registry: &Registry,
    project: &str,
    dry_run: bool,
) -> Result<RetentionReport, RetentionError> {
    let plugin = runtime.artifact_policy().ok_or(RetentionError::NoPolicy)?;
    let now = rfc3339(OffsetDateTime::now_utc());
    let mut report = RetentionReport {
        project: project.to_owned(),
        dry_run,
        policy: format!("{}@{}", plugin.id(), plugin.version()),
        now: now.clone(),
        repositories: Vec::new(),
        deleted: 0,
    };
    for repo in registry.project_repositories(project)? {
        let outcome = judge(runtime, registry, &plugin, &repo, &now, dry_run).await?;
        report.deleted += outcome.deleted.len();
        report.repositories.push(outcome);
    }
    Ok(report)
}

/// Retention over one repository; a policy that cannot judge it is its outcome's error.
async fn judge(
    runtime: &Runtime,
    registry: &Registry,
    plugin: &std::sync::Arc<crate::runtime::ActivePlugin>,
    repo: &super::Repository,
    now: &str,
    dry_run: bool,
) -> Result<RepositoryRetention, RetentionError> {
    let mut images = registry.repository_images(repo)?;
    images.sort_by(|a, b| b.tagged_at.cmp(&a.tagged_at).then(a.tag.cmp(&b.tag)));
    let mut outcome = RepositoryRetention {
        repository: repo.to_string(),
        tags: images.len(),
        deleted: Vec::new(),
        skipped: Vec::new(),
        error: None,
    };
    if images.len() > MAX_RETENTION_TAGS {
        outcome.error = Some(format!(
            "{} tags, more than the {MAX_RETENTION_TAGS} one retention run judges",
            images.len()
        ));
        return Ok(outcome);
    }
    let asked = images.iter().map(artifact).collect();
    let picked = match runtime
        .select_for_deletion(plugin, repo.to_string(), asked, now.to_owned())
        .await
    {
        Ok(picked) => picked,
        Err(error) => {
            outcome.error = Some(format!("the artifact policy could not decide: {error}"));
            return Ok(outcome);
        }
    };
    for image in images.iter().filter(|i| picked.contains(&i.tag)) {
        let expired = ExpiredTag {
            tag: image.tag.clone(),
            digest: image.manifest.digest.clone(),
            pushed_at: rfc3339(image.tagged_at),
        };
        if dry_run || registry.untag_if(repo, image)? {
            outcome.deleted.push(expired);
        } else {
            outcome.skipped.push(SkippedTag {
                tag: image.tag.clone(),
                reason: "the tag was pushed again or deleted after the policy picked it".into(),
            });
        }
    }
    Ok(outcome)
}

/// Runs retention over every project every `interval`, recording each run that deleted
/// something (or failed) in the audit log as the system. Retention needs an enabled
/// policy; without one a round does nothing.
pub fn schedule(
    runtime: Runtime,
    registry: Registry,
    projects: crate::domain::projects::Projects,
    audit: crate::audit::AuditLog,
    interval: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    use crate::audit::{Actor, Entry, Outcome};
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            if runtime.artifact_policy().is_none() {
                continue;
            }
            let codes = match projects.list(None) {
                Ok(list) => list.into_iter().map(|p| p.code).collect::<Vec<_>>(),
                Err(error) => {
                    tracing::warn!(%error, "retention: listing projects failed");
                    continue;
                }
            };
            for code in codes {
                let result = run(&runtime, &registry, &code, false).await;
                let (outcome, after) = match &result {
                    Ok(report)
                        if report.deleted == 0
                            && report.repositories.iter().all(|r| r.error.is_none()) =>
                    {
                        continue;
                    }
                    Ok(report) => (Outcome::Ok, serde_json::to_value(report).ok()),
                    Err(error) => (
                        Outcome::Error,
                        Some(serde_json::json!({"error": error.to_string()})),
                    ),
                };
                let entry = Entry::new(
                    Actor::system(),
                    "artifact.retention",
                    &format!("project:{code}"),
                    outcome,
                );
                audit.record(Entry { after, ..entry }).await;
            }
        }
    })
}
