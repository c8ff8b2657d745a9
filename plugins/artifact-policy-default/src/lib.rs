//! `artifact-policy-default`: Wharf's bundled artifact policy. It decides from its
//! settings (see [`rules`]) what the registry accepts and what retention deletes; the host
//! executes and records. Without settings it accepts everything and deletes nothing.

mod clock;
mod glob;
pub mod rules;

use wharf_sdk::artifact_policy::{
    Artifact, ArtifactPolicy, Meta, PluginInfo, PolicyError, Usage, Verdict,
};

use rules::{Settings, Tag};

pub struct DefaultPolicy;

pub fn info() -> PluginInfo {
    PluginInfo {
        id: "artifact-policy-default".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        description:
            "Naming rules, immutable tags, retention rules and project quotas, from its settings."
                .to_string(),
        world: "artifact-policy".to_string(),
    }
}

impl Meta for DefaultPolicy {
    fn info() -> PluginInfo {
        info()
    }
}

fn settings() -> Result<Settings, PolicyError> {
    Settings::parse(wharf_sdk::config::get_all()).map_err(PolicyError::Unavailable)
}

fn tag(artifact: &Artifact) -> Tag<'_> {
    Tag {
        repository: &artifact.repository,
        tag: &artifact.reference,
        digest: &artifact.digest,
        size: artifact.size,
        pushed_at: &artifact.created_at,
    }
}

fn verdict(refusal: Option<String>) -> Verdict {
    match refusal {
        Some(reason) => Verdict::Reject(reason),
        None => Verdict::Accept,
    }
}

impl ArtifactPolicy for DefaultPolicy {
    fn check_push(
        candidate: Artifact,
        existing: Option<Artifact>,
        usage: Usage,
    ) -> Result<Verdict, PolicyError> {
        let settings = settings()?;
        let existing = existing.as_ref().map(tag);
        Ok(verdict(settings.refuse_push(
            &tag(&candidate),
            existing.as_ref(),
            &usage.project,
            usage.bytes,
            usage.tags,
        )))
    }

    fn check_delete(target: Artifact) -> Result<Verdict, PolicyError> {
        Ok(verdict(settings()?.refuse_delete(&tag(&target))))
    }

    fn select_for_deletion(
        repository: String,
        artifacts: Vec<Artifact>,
        now: String,
    ) -> Result<Vec<String>, PolicyError> {
        let tags: Vec<Tag> = artifacts.iter().map(tag).collect();
        settings()?
            .expired(&repository, &tags, &now)
            .map_err(PolicyError::InvalidRequest)
    }
}

wharf_sdk::export_artifact_policy!(DefaultPolicy);

#[cfg(test)]
mod tests {
    use serde_json::json;
    use wharf_sdk::harness::Host;

    use super::*;

    fn artifact(reference: &str, digest: &str) -> Artifact {
        Artifact {
            repository: "shop/web".into(),
            reference: reference.into(),
            digest: digest.into(),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            size: 100,
            created_at: "2026-12-01T00:00:00Z".into(),
        }
    }

    fn usage() -> Usage {
        Usage {
            project: "shop".into(),
            bytes: 0,
            tags: 0,
        }
    }

    #[test]
    fn without_settings_everything_is_accepted_and_kept() {
        let host = Host::new();
        host.run(|| {
            let pushed = DefaultPolicy::check_push(
                artifact("v1", "sha256:b"),
                Some(artifact("v1", "sha256:a")),
                usage(),
            );
            assert_eq!(pushed, Ok(Verdict::Accept));
            assert_eq!(
                DefaultPolicy::check_delete(artifact("v1", "sha256:a")),
                Ok(Verdict::Accept)
            );
            let expired = DefaultPolicy::select_for_deletion(
                "shop/web".into(),
                vec![artifact("v1", "sha256:a")],
                "2026-12-04T00:00:00Z".into(),
            );
            assert_eq!(expired, Ok(Vec::new()));
        });
    }

    #[test]
    fn settings_decide_and_bad_settings_say_where() {
        let host = Host::new().config(json!({
            "immutable": [{"repositories": "shop/*", "tags": "v*"}],
            "retention": [{"repositories": "**", "tags": "dev-*", "keepMostRecent": 1}],
        }));
        host.run(|| {
            let pushed = DefaultPolicy::check_push(
                artifact("v1", "sha256:b"),
                Some(artifact("v1", "sha256:a")),
                usage(),
            );
            assert!(matches!(pushed, Ok(Verdict::Reject(_))));
            let expired = DefaultPolicy::select_for_deletion(
                "shop/web".into(),
                vec![artifact("dev-2", "sha256:2"), artifact("dev-1", "sha256:1")],
                "2026-12-04T00:00:00Z".into(),
            );
            assert_eq!(expired, Ok(vec!["dev-1".to_string()]));
        });
        let broken = Host::new().config(json!({"retention": "weekly"}));
        broken.run(|| {
            let refused = DefaultPolicy::check_delete(artifact("v1", "sha256:a"));
            assert!(matches!(refused, Err(PolicyError::Unavailable(m)) if m.contains("settings")));
        });
    }
}
