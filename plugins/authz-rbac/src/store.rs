//! The plugin's kv layout and every read and write of it.
//!
//! - `role/<name>` → [`Role`] (custom roles only; built-ins live in code);
//! - `binding/<id>` → [`Binding`], the record of a grant;
//! - `grant/<subject>|<scope>|<role>|<id>` → empty: an index whose keys carry everything a
//!   decision needs, so `check` costs one `list-prefix` per principal (the user and each of
//!   its groups) instead of one `get` per binding. `|` cannot occur in subjects, scopes or
//!   role names (their syntax is checked on create), so keys split unambiguously;
//! - `next-binding-id` → the last binding id handed out, advanced by compare-and-swap.
//!
//! Writes are ordered so an interrupted invocation fails closed: a binding's record is
//! written before its index key and the index key is deleted first, so a half-done create
//! or delete leaves at most an inert record, never a grant nobody can see or revoke.

use std::collections::BTreeMap;
use std::fmt::Display;

use serde::{Deserialize, Serialize};
use wharf_sdk::authorizer::{AuthorizeError, Subject};
use wharf_sdk::kv;

use crate::policy::{self, BuiltinRole};

const ROLE_PREFIX: &str = "role/";
const BINDING_PREFIX: &str = "binding/";
const GRANT_PREFIX: &str = "grant/";
const COUNTER_KEY: &str = "next-binding-id";
/// `mode/<pipeline scope>`: present when the pipeline's permissions are USER_DEFINED.
const MODE_PREFIX: &str = "mode/";
/// The host caps pages at 1000 keys; asking for that many keeps listings to few calls.
const PAGE: u32 = 1000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Role {
    pub name: String,
    pub description: String,
    pub actions: Vec<String>,
    pub builtin: bool,
}

impl From<&BuiltinRole> for Role {
    fn from(role: &BuiltinRole) -> Self {
        Role {
            name: role.name.to_string(),
            description: role.description.to_string(),
            actions: role.actions.iter().map(|a| a.to_string()).collect(),
            builtin: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Binding {
    pub id: String,
    /// `user:<id>` or `group:<id>`.
    pub subject: String,
    pub role: String,
    pub scope: String,
    /// `user:<id>` of the subject that created it.
    pub created_by: String,
}

/// One grant-index entry, parsed from its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub subject: String,
    pub scope: String,
    pub role: String,
    pub id: String,
}

/// Storage failures (host refusals, corrupt values) are the host's or the store's problem,
/// not the caller's: report them as `unavailable`.
fn unavailable(e: impl Display) -> AuthorizeError {
    AuthorizeError::Unavailable(e.to_string())
}

/// Every key under `prefix`, paging until the listing is done.
fn list_keys(prefix: &str) -> Result<Vec<String>, AuthorizeError> {
    let mut keys = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = kv::list_prefix(prefix, cursor.as_deref(), PAGE).map_err(unavailable)?;
        keys.extend(page.keys);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(keys),
        }
    }
}

fn grant_key(subject: &str, scope: &str, role: &str, id: &str) -> String {
    format!("{GRANT_PREFIX}{subject}|{scope}|{role}|{id}")
}

fn parse_grant(key: &str) -> Option<Grant> {
    let mut parts = key.strip_prefix(GRANT_PREFIX)?.splitn(4, '|');
    Some(Grant {
        subject: parts.next()?.to_string(),
        scope: parts.next()?.to_string(),
        role: parts.next()?.to_string(),
        id: parts.next()?.to_string(),
    })
}

/// Grants of one subject (`user:<id>` / `group:<id>`), or of everyone.
pub fn grants(subject: Option<&str>) -> Result<Vec<Grant>, AuthorizeError> {
    let prefix = match subject {
        Some(subject) => format!("{GRANT_PREFIX}{subject}|"),
        None => GRANT_PREFIX.to_string(),
    };
    Ok(list_keys(&prefix)?
        .iter()
        .filter_map(|k| parse_grant(k))
        .collect())
}

/// Pipeline scopes in USER_DEFINED mode (seed 001): bindings above them do not reach in.
pub fn user_defined_scopes() -> Result<Vec<String>, AuthorizeError> {
    Ok(list_keys(MODE_PREFIX)?
        .into_iter()
        .filter_map(|k| k.strip_prefix(MODE_PREFIX).map(str::to_string))
        .collect())
}

/// Sets a pipeline scope's mode: USER_DEFINED (`true`) or DEFAULT (inherits).
pub fn set_user_defined(scope: &str, user_defined: bool) -> Result<(), AuthorizeError> {
    let key = format!("{MODE_PREFIX}{scope}");
    if user_defined {
        kv::set(&key, b"USER_DEFINED").map_err(unavailable)
    } else {
        kv::delete(&key).map(|_| ()).map_err(unavailable)
    }
}

/// A role by name: built-ins from code, custom roles from kv.
pub fn role(name: &str) -> Result<Option<Role>, AuthorizeError> {
    if let Some(role) = policy::builtin(name) {
        return Ok(Some(role.into()));
    }
    // Role names never contain `/`, but an input name might; such a key simply is absent.
    kv::get_json(&format!("{ROLE_PREFIX}{name}")).map_err(unavailable)
}

/// Built-in roles, then custom roles in name order.
pub fn roles() -> Result<Vec<Role>, AuthorizeError> {
    let mut roles: Vec<Role> = policy::BUILTIN_ROLES.iter().map(Role::from).collect();
    for key in list_keys(ROLE_PREFIX)? {
        if let Some(role) = kv::get_json::<Role>(&key).map_err(unavailable)? {
            roles.push(role);
        }
    }
    Ok(roles)
}

/// Stores a new custom role; `false` if the name was taken meanwhile.
pub fn create_role(role: &Role) -> Result<bool, AuthorizeError> {
    let value = serde_json::to_vec(role).map_err(unavailable)?;
    kv::compare_and_swap(&format!("{ROLE_PREFIX}{}", role.name), None, Some(&value))
        .map_err(unavailable)
}

pub fn delete_role(name: &str) -> Result<bool, AuthorizeError> {
    kv::delete(&format!("{ROLE_PREFIX}{name}")).map_err(unavailable)
}

pub fn binding(id: &str) -> Result<Option<Binding>, AuthorizeError> {
    if id.is_empty() || id.contains('|') {
        return Ok(None);
    }
    kv::get_json(&format!("{BINDING_PREFIX}{id}")).map_err(unavailable)
}

/// The existing binding of `role` to `subject` at `scope`, if any.
pub fn find_binding(
    subject: &str,
    scope: &str,
    role: &str,
) -> Result<Option<Binding>, AuthorizeError> {
    let prefix = format!("{GRANT_PREFIX}{subject}|{scope}|{role}|");
    match list_keys(&prefix)?.first().and_then(|k| parse_grant(k)) {
        Some(grant) => binding(&grant.id),
        None => Ok(None),
    }
}

/// Takes the next binding id. Compare-and-swap so concurrent creates never share an id.
fn next_binding_id() -> Result<u64, AuthorizeError> {
    for _ in 0..8 {
        let current = kv::get(COUNTER_KEY).map_err(unavailable)?;
        let last: u64 = match &current {
            Some(bytes) => serde_json::from_slice(bytes).map_err(unavailable)?,
            None => 0,
        };
        let next = last + 1;
        let replacement = next.to_string().into_bytes();
        if kv::compare_and_swap(COUNTER_KEY, current.as_deref(), Some(&replacement))
            .map_err(unavailable)?
        {
            return Ok(next);
        }
    }
    Err(AuthorizeError::Unavailable(
        "binding ids are contended; retry".to_string(),
    ))
}

/// Stores a new binding (record first, then its index key).
pub fn create_binding(
    subject: &str,
    role: &str,
    scope: &str,
    created_by: &str,
) -> Result<Binding, AuthorizeError> {
    let binding = Binding {
        id: next_binding_id()?.to_string(),
        subject: subject.to_string(),
        role: role.to_string(),
        scope: scope.to_string(),
        created_by: created_by.to_string(),
    };
    kv::set_json(&format!("{BINDING_PREFIX}{}", binding.id), &binding).map_err(unavailable)?;
    kv::set(&grant_key(subject, scope, role, &binding.id), &[]).map_err(unavailable)?;
    Ok(binding)
}

/// Removes a binding (index key first, then the record).
pub fn delete_binding(binding: &Binding) -> Result<(), AuthorizeError> {
    let b = binding;
    kv::delete(&grant_key(&b.subject, &b.scope, &b.role, &b.id)).map_err(unavailable)?;
    kv::delete(&format!("{BINDING_PREFIX}{}", b.id)).map_err(unavailable)?;
    Ok(())
}

/// Role name → its action patterns, each role read at most once per invocation.
/// `None`: the role no longer exists, so its bindings grant nothing.
#[derive(Default)]
pub struct RoleCache(BTreeMap<String, Option<Vec<String>>>);

impl RoleCache {
    pub fn actions(&mut self, name: &str) -> Result<&[String], AuthorizeError> {
        if !self.0.contains_key(name) {
            let actions = role(name)?.map(|r| r.actions);
            self.0.insert(name.to_string(), actions);
        }
        Ok(self.0.get(name).and_then(|a| a.as_deref()).unwrap_or(&[]))
    }
}

/// What one subject holds: its bindings' scopes with their roles' patterns, and the
/// USER_DEFINED pipeline scopes that cut inheritance.
pub struct Holdings {
    held: Vec<(String, Vec<String>)>,
    isolated: Vec<String>,
}

impl Holdings {
    /// The bindings of `principals` (e.g. `user:<id>` and its `group:<id>`s).
    pub fn load(principals: &[String], roles: &mut RoleCache) -> Result<Self, AuthorizeError> {
        let mut held = Vec::new();
        for principal in principals {
            for grant in grants(Some(principal))? {
                let actions = roles.actions(&grant.role)?.to_vec();
                held.push((grant.scope, actions));
            }
        }
        Ok(Holdings {
            held,
            isolated: user_defined_scopes()?,
        })
    }

    /// The caller's own holdings: its user and every group it belongs to.
    pub fn of(subject: &Subject, roles: &mut RoleCache) -> Result<Self, AuthorizeError> {
        // Ids that could never be bound are skipped rather than listed: one containing `|`
        // would otherwise turn its key prefix into a prefix of someone else's grants.
        let principals: Vec<String> = std::iter::once(format!("user:{}", subject.id))
            .chain(subject.groups.iter().map(|g| format!("group:{g}")))
            .filter(|p| policy::check_subject(p).is_ok())
            .collect();
        Holdings::load(&principals, roles)
    }

    /// Patterns held by bindings whose scope covers `resource`.
    pub fn at<'a>(&'a self, resource: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.held
            .iter()
            .filter(move |(scope, _)| policy::reaches(scope, resource, &self.isolated))
            .flat_map(|(_, actions)| actions.iter().map(String::as_str))
    }

    pub fn allows(&self, action: &str, resource: &str) -> bool {
        self.at(resource).any(|p| policy::covers(p, action))
    }
}
