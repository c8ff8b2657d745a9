//! The policy's settings and what they decide. Settings (all lists optional):
//!
//! ```json
//! {
//!   "naming":     [{"repositories": "shop/**", "tags": "v*"}],
//!   "immutable":  [{"repositories": "**", "tags": "v*"}],
//!   "retention":  [{"repositories": "shop/*", "tags": "**", "keepMostRecent": 3},
//!                  {"repositories": "shop/*", "tags": "**", "keepPushedWithinDays": 7}],
//!   "quotas":     [{"projects": "shop", "maxBytes": 1073741824, "maxTags": 500}]
//! }
//! ```
//!
//! - naming: a push to a repository a rule matches must use a tag its `tags` matches;
//! - immutable: a matching tag, once pushed, is never moved to another digest nor deleted
//!   (retention skips it too);
//! - retention: a tag is deleted when at least one rule for its repository matches it and
//!   none of those rules keeps it (the rules are OR-ed): `keepMostRecent` keeps the N
//!   newest tags the rule matches, `keepPushedWithinDays` those pushed in the last D days;
//!   a tag no rule matches is kept;
//! - quotas: a push that would take a matching project past `maxBytes` (tagged images'
//!   sizes added up) or `maxTags` is refused.
//!
//! Patterns are [`crate::glob`] patterns.

use serde::Deserialize;

use crate::clock::unix_seconds;
use crate::glob::matches;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub naming: Vec<TagRule>,
    #[serde(default)]
    pub immutable: Vec<TagRule>,
    #[serde(default)]
    pub retention: Vec<RetentionRule>,
    #[serde(default)]
    pub quotas: Vec<Quota>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TagRule {
    pub repositories: String,
    pub tags: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetentionRule {
    pub repositories: String,
    pub tags: String,
    pub keep_most_recent: Option<u32>,
    pub keep_pushed_within_days: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Quota {
    pub projects: String,
    pub max_bytes: Option<u64>,
    pub max_tags: Option<u32>,
}

/// What the policy needs to know about one tag.
#[derive(Debug, Clone)]
pub struct Tag<'a> {
    pub repository: &'a str,
    pub tag: &'a str,
    pub digest: &'a str,
    pub size: u64,
    /// RFC 3339.
    pub pushed_at: &'a str,
}

impl Settings {
    /// Reads settings, naming the misplaced field.
    pub fn parse(value: serde_json::Value) -> Result<Settings, String> {
        let settings: Settings =
            serde_json::from_value(value).map_err(|e| format!("the policy's settings: {e}"))?;
        for (i, rule) in settings.retention.iter().enumerate() {
            if rule.keep_most_recent.is_none() && rule.keep_pushed_within_days.is_none() {
                return Err(format!(
                    "the policy's settings: retention[{i}] keeps nothing: give keepMostRecent or keepPushedWithinDays"
                ));
            }
        }
        Ok(settings)
    }

    fn is_immutable(&self, repository: &str, tag: &str) -> bool {
        self.immutable
            .iter()
            .any(|r| matches(&r.repositories, repository) && matches(&r.tags, tag))
    }

    /// Why a push is refused, if it is.
    pub fn refuse_push(
        &self,
        candidate: &Tag,
        existing: Option<&Tag>,
        project: &str,
        used_bytes: u64,
        used_tags: u32,
    ) -> Option<String> {
        for rule in self
            .naming
            .iter()
            .filter(|r| matches(&r.repositories, candidate.repository))
        {
            if !matches(&rule.tags, candidate.tag) {
                return Some(format!(
                    "tag `{}` does not follow the naming rule for {}: tags must match `{}`",
                    candidate.tag, rule.repositories, rule.tags
                ));
            }
        }
        if let Some(existing) = existing
            && existing.digest != candidate.digest
            && self.is_immutable(candidate.repository, candidate.tag)
        {
            return Some(format!(
                "tag `{}` of {} is immutable: it points to {} and cannot be pushed again",
                candidate.tag, candidate.repository, existing.digest
            ));
        }
        let moved_from = existing.map_or(0, |e| e.size);
        for quota in self.quotas.iter().filter(|q| matches(&q.projects, project)) {
            let bytes = used_bytes
                .saturating_sub(moved_from)
                .saturating_add(candidate.size);
            if let Some(max) = quota.max_bytes
                && bytes > max
            {
                return Some(format!(
                    "project {project} would store {bytes} bytes, over its quota of {max}"
                ));
            }
            let tags = used_tags.saturating_add(u32::from(existing.is_none()));
            if let Some(max) = quota.max_tags
                && tags > max
            {
                return Some(format!(
                    "project {project} would hold {tags} tags, over its quota of {max}"
                ));
            }
        }
        None
    }

    /// Why deleting a tag is refused, if it is.
    pub fn refuse_delete(&self, target: &Tag) -> Option<String> {
        self.is_immutable(target.repository, target.tag).then(|| {
            format!(
                "tag `{}` of {} is immutable and cannot be deleted",
                target.tag, target.repository
            )
        })
    }

    /// The tags of one repository (newest first) that retention deletes.
    pub fn expired(
        &self,
        repository: &str,
        tags: &[Tag],
        now: &str,
    ) -> Result<Vec<String>, String> {
        let now = unix_seconds(now).ok_or_else(|| format!("now: `{now}` is not RFC 3339"))?;
        let rules: Vec<&RetentionRule> = self
            .retention
            .iter()
            .filter(|r| matches(&r.repositories, repository))
            .collect();
        let mut kept = vec![false; tags.len()];
        let mut matched = vec![false; tags.len()];
        for rule in rules {
            let mut rank = 0u32;
            for (i, tag) in tags.iter().enumerate() {
                if !matches(&rule.tags, tag.tag) {
                    continue;
                }
                matched[i] = true;
                rank += 1;
                let recent = rule.keep_most_recent.is_some_and(|n| rank <= n);
                let young = rule.keep_pushed_within_days.is_some_and(|days| {
                    unix_seconds(tag.pushed_at)
                        .is_none_or(|at| now - at <= i64::from(days) * 86_400)
                });
                kept[i] |= recent || young;
            }
        }
        Ok(tags
            .iter()
            .enumerate()
            .filter(|(i, tag)| matched[*i] && !kept[*i] && !self.is_immutable(repository, tag.tag))
            .map(|(_, tag)| tag.tag.to_owned())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn tag<'a>(tag: &'a str, digest: &'a str, pushed_at: &'a str) -> Tag<'a> {
        Tag {
            repository: "shop/web",
            tag,
            digest,
            size: 10,
            pushed_at,
        }
    }

    #[test]
    fn an_immutable_tag_is_not_moved_or_deleted() {
        let settings =
            Settings::parse(json!({"immutable": [{"repositories": "shop/*", "tags": "v*"}]}))
                .expect("settings");
        let old = tag("v1", "sha256:a", "2026-01-01T00:00:00Z");
        let new = tag("v1", "sha256:b", "2026-01-02T00:00:00Z");
        assert!(
            settings
                .refuse_push(&new, Some(&old), "shop", 0, 0)
                .is_some()
        );
        assert!(
            settings
                .refuse_push(&old, Some(&old), "shop", 0, 0)
                .is_none(),
            "same digest"
        );
        assert!(
            settings.refuse_push(&new, None, "shop", 0, 0).is_none(),
            "first push"
        );
        let latest = tag("latest", "sha256:b", "2026-01-02T00:00:00Z");
        assert!(
            settings
                .refuse_push(&latest, Some(&old), "shop", 0, 0)
                .is_none()
        );
        assert!(settings.refuse_delete(&old).is_some());
        assert!(settings.refuse_delete(&latest).is_none());
    }

    #[test]
    fn naming_and_quotas_refuse_with_a_reason() {
        let settings = Settings::parse(json!({
            "naming": [{"repositories": "shop/**", "tags": "v*"}],
            "quotas": [{"projects": "shop", "maxBytes": 100, "maxTags": 2}],
        }))
        .expect("settings");
        let bad = tag("latest", "sha256:a", "2026-01-01T00:00:00Z");
        let reason = settings
            .refuse_push(&bad, None, "shop", 0, 0)
            .expect("refused");
        assert!(reason.contains("`v*`"), "{reason}");
        let good = tag("v2", "sha256:a", "2026-01-01T00:00:00Z");
        assert!(settings.refuse_push(&good, None, "shop", 50, 1).is_none());
        assert!(
            settings.refuse_push(&good, None, "shop", 95, 1).is_some(),
            "bytes"
        );
        assert!(
            settings.refuse_push(&good, None, "shop", 0, 2).is_some(),
            "tags"
        );
    }

    #[test]
    fn retention_rules_are_or_ed_and_skip_what_no_rule_matches() {
        let settings = Settings::parse(json!({
            "retention": [
                {"repositories": "shop/*", "tags": "dev-*", "keepMostRecent": 1},
                {"repositories": "shop/*", "tags": "dev-*", "keepPushedWithinDays": 7},
            ],
            "immutable": [{"repositories": "**", "tags": "dev-keep"}],
        }))
        .expect("settings");
        let tags = [
            tag("dev-4", "sha256:4", "2026-12-03T00:00:00Z"),
            tag("dev-3", "sha256:3", "2026-12-01T00:00:00Z"),
            tag("v1", "sha256:v", "2026-01-01T00:00:00Z"),
            tag("dev-2", "sha256:2", "2026-10-01T00:00:00Z"),
            tag("dev-keep", "sha256:k", "2026-09-01T00:00:00Z"),
            tag("dev-1", "sha256:1", "2026-09-01T00:00:00Z"),
        ];
        let expired = settings
            .expired("shop/web", &tags, "2026-12-04T00:00:00Z")
            .expect("expired");
        assert_eq!(expired, ["dev-2", "dev-1"]);
        assert!(
            settings
                .expired("other/web", &tags, "2026-12-04T00:00:00Z")
                .expect("x")
                .is_empty()
        );
        assert!(
            Settings::parse(json!({"retention": [{"repositories": "**", "tags": "**"}]})).is_err()
        );
        assert!(Settings::parse(json!({"retention": [], "extra": 1})).is_err());
    }
}
