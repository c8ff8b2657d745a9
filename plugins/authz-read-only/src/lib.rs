//! `authz-read-only`: an authorizer where administrators may do anything and everyone else
//! may only read (and look after their own session, tokens and password).
//!
//! Decisions are pure functions of the action, so the plugin needs no storage; it offers no
//! policy administration (`manage` is unsupported).

use wharf_sdk::authorizer::{
    AuthorizeError, Authorizer, Decision, Meta, PluginInfo, Request, Subject,
};

const DESCRIPTION: &str =
    "A read-only policy: administrators may do anything, everyone else may only read.";

/// Actions any authenticated subject may take: the same list as `authz-rbac`, so swapping
/// authorizers never locks users out of their own session, tokens or password.
const SELF_SERVICE: &[&str] = &[
    "session.*",
    "token.*",
    "user.change-own-password",
    "permission.read",
    "permission.grant",
    "authz.check",
    "pipeline.find",
    "artifact.find",
];

/// Verbs that only observe.
const READ_VERBS: &[&str] = &["read", "list", "view-log", "view-monitor"];

pub struct AuthzReadOnly;

/// What `meta.info()` returns; must match `wharf-plugin.toml`.
pub fn info() -> PluginInfo {
    PluginInfo {
        id: "authz-read-only".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        description: DESCRIPTION.to_string(),
        world: "authorizer".to_string(),
    }
}

/// Whether a non-admin may take `action` (`resource.verb`).
pub fn allowed(action: &str) -> bool {
    let Some((resource, verb)) = action.split_once('.') else {
        return false;
    };
    READ_VERBS.contains(&verb)
        || SELF_SERVICE.iter().any(|p| match p.split_once('.') {
            Some((r, "*")) => r == resource,
            _ => *p == action,
        })
}

impl Meta for AuthzReadOnly {
    fn info() -> PluginInfo {
        info()
    }
}

impl Authorizer for AuthzReadOnly {
    fn check(subject: Subject, requests: Vec<Request>) -> Result<Vec<Decision>, AuthorizeError> {
        Ok(requests
            .iter()
            .map(|r| {
                if subject.is_admin || allowed(&r.action) {
                    Decision::Allow
                } else {
                    Decision::deny(format!(
                        "read-only policy: `{}` is reserved to administrators",
                        r.action
                    ))
                }
            })
            .collect())
    }

    fn manage(
        _subject: Subject,
        operation: String,
        _input_json: String,
    ) -> Result<String, AuthorizeError> {
        Err(AuthorizeError::Unsupported(format!(
            "operation `{operation}` is not offered by authz-read-only: its policy is fixed"
        )))
    }
}

wharf_sdk::export_authorizer!(AuthzReadOnly);

#[cfg(test)]
mod tests {
    use wharf_sdk::harness::{self, Host};

    use super::*;

    fn check(subject: Subject, actions: &[&str]) -> Vec<Decision> {
        let requests = actions
            .iter()
            .map(|a| Request::new(*a, "project:shop/app:cart"))
            .collect();
        // No kv, config or log: the harness host only proves no host call is made.
        Host::new()
            .run(|| AuthzReadOnly::check(subject, requests))
            .expect("check never fails")
    }

    #[test]
    fn everyone_reads() {
        let decisions = check(
            Subject::user("u", &[]),
            &[
                "app.read",
                "project.list",
                "app.view-log",
                "app.view-monitor",
            ],
        );
        assert!(decisions.iter().all(Decision::is_allow), "{decisions:?}");
    }

    #[test]
    fn only_admins_write() {
        let actions = [
            "app.deploy",
            "plugin.enable",
            "user.delete",
            "read.deploy",
            "app",
        ];
        let denied = check(Subject::user("u", &[]), &actions);
        assert_eq!(
            denied[0],
            Decision::Deny("read-only policy: `app.deploy` is reserved to administrators".into())
        );
        assert!(denied.iter().all(|d| !d.is_allow()), "{denied:?}");
        let admin = Subject {
            is_admin: true,
            ..Subject::user("admin", &[])
        };
        assert!(check(admin, &actions).iter().all(Decision::is_allow));
    }

    #[test]
    fn self_service_is_allowed() {
        let decisions = check(
            Subject::user("u", &[]),
            &[
                "session.delete",
                "token.create",
                "user.change-own-password",
                "permission.grant",
                "authz.check",
            ],
        );
        assert!(decisions.iter().all(Decision::is_allow), "{decisions:?}");
        assert!(!allowed("user.change-password"));
        assert!(!allowed("permission.revoke"));
    }

    #[test]
    fn manage_is_unsupported() {
        let result =
            AuthzReadOnly::manage(Subject::user("u", &[]), "role.list".into(), "{}".into());
        assert_eq!(
            result,
            Err(AuthorizeError::Unsupported(
                "operation `role.list` is not offered by authz-read-only: its policy is fixed"
                    .into()
            ))
        );
    }

    #[test]
    fn manifest_matches_info() {
        let manifest = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/wharf-plugin.toml"));
        harness::assert_manifest_matches(manifest, &info());
    }
}
