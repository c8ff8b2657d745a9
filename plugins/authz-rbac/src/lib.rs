//! `authz-rbac`: Wharf's role-based access control authorizer.
//!
//! Roles are sets of action patterns (`*`, `app.*`, `*.read`, `app.deploy`); bindings give
//! a role to a user or group at a scope (`system`, `project:<code>`, `…/app:<name>`,
//! `…/app:<name>/env:<code>`, `project:<code>/pipeline:<id>`) and cover everything below
//! it. This file owns the exports (`meta`, `check`, `manage`); the rules are in
//! [`policy`], the kv layout in [`store`], administration in [`manage`].

pub mod manage;
pub mod policy;
pub mod store;

use wharf_sdk::authorizer::{
    AuthorizeError, Authorizer, Decision, Meta, PluginInfo, Request, Subject,
};

use store::{Holdings, RoleCache};

const DESCRIPTION: &str = "Role-based access control: built-in and custom roles bound to users and groups at system, project, app, env and pipeline scopes.";

/// The plugin. Stateless: roles and bindings live in kv.
pub struct AuthzRbac;

/// What `meta.info()` returns; must match `wharf-plugin.toml`.
pub fn info() -> PluginInfo {
    PluginInfo {
        id: "authz-rbac".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        description: DESCRIPTION.to_string(),
        world: "authorizer".to_string(),
    }
}

impl Meta for AuthzRbac {
    fn info() -> PluginInfo {
        info()
    }
}

impl Authorizer for AuthzRbac {
    fn check(subject: Subject, requests: Vec<Request>) -> Result<Vec<Decision>, AuthorizeError> {
        // The host's bootstrap admin must always be able to repair the policy.
        if subject.is_admin {
            return Ok(vec![Decision::Allow; requests.len()]);
        }
        // Self-service-only batches (login, `me`, token management) need no kv at all.
        let holdings = if requests.iter().all(|r| policy::is_self_service(&r.action)) {
            None
        } else {
            Some(Holdings::of(&subject, &mut RoleCache::default())?)
        };
        Ok(requests
            .iter()
            .map(|r| {
                let allowed = policy::is_self_service(&r.action)
                    || holdings
                        .as_ref()
                        .is_some_and(|h| h.allows(&r.action, &r.resource));
                if allowed {
                    Decision::Allow
                } else {
                    Decision::deny(format!("no role grants `{}` on `{}`", r.action, r.resource))
                }
            })
            .collect())
    }

    fn manage(
        subject: Subject,
        operation: String,
        input_json: String,
    ) -> Result<String, AuthorizeError> {
        manage::manage(&subject, &operation, &input_json)
    }
}

wharf_sdk::export_authorizer!(AuthzRbac);

#[cfg(test)]
mod tests;
