//! The plugin's kv layout and every read and write of it.
//!
//! - `role/<name>` → [`Role`] (custom roles only; built-ins live in code);
//! - `binding/<id>` → [`Binding`], the record of a grant;
//! - `grant/<subject>|<scope>|<role>|<id>` → empty: an index whose keys carry everything a
//!   decision needs, so `check` costs one `list-prefix` per principal (the user and each of
//!   its groups) instead of one `get` per binding. `|` cannot occur in subjects, scopes or
//!   role names (their syntax is checked on create), so keys split unambiguously;
//! - `holders/<scope>|<role>` → [`Holder`]s: the bindings of one role at exactly one scope,
//!   changed only by compare-and-swap. It is what makes "remove this binding unless it is
//!   the last user holding the role there" one atomic step: two removals racing on the
//!   last two owners swap the same record, so the second sees the first's result. It never
//!   names a grant that is not live (a holder is added after its index key is written and
//!   removed before that key is deleted), so it can only undercount, which refuses more,
//!   never less. Scopes bound before this record existed have none: an absent record is
//!   derived from the grant index;
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
const HOLDERS_PREFIX: &str = "holders/";
/// Compare-and-swap attempts on one record before answering `unavailable`: enough for a
/// burst of concurrent member changes on one project, each attempt being two kv calls.
const CAS_ATTEMPTS: usize = 64;
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

/// One binding in a `holders/<scope>|<role>` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub id: String,
    pub subject: String,
}

/// What a guarded removal did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    Removed,
    /// Refused: it was the last user binding of the role to keep at its scope.
    LastHolder,
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

/// Stores a new binding: record, index key, then its place among the role's holders.
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
    let record = format!("{BINDING_PREFIX}{}", binding.id);
    let index = grant_key(subject, scope, role, &binding.id);
    kv::set_json(&record, &binding).map_err(unavailable)?;
    kv::set(&index, &[]).map_err(unavailable)?;
    if let Err(error) = count_holder(&binding) {
        // Undo rather than leave a grant its holders record does not count. Should the undo
        // fail too, the grant stays live but uncounted, which only makes guarded removals
        // at its scope refuse more; the caller is told the create failed either way.
        if kv::delete(&index).is_ok() {
            let _ = kv::delete(&record);
        }
        return Err(error);
    }
    Ok(binding)
}

/// Makes sure `binding` is among its role's holders at its scope (it is live already).
pub fn count_holder(binding: &Binding) -> Result<(), AuthorizeError> {
    edit_holders(&binding.scope, &binding.role, |holders| {
        if holders.iter().any(|h| h.id == binding.id) {
            return Edit::Unchanged;
        }
        holders.push(Holder {
            id: binding.id.clone(),
            subject: binding.subject.clone(),
        });
        Edit::Changed
    })
    .map(|_| ())
}

fn is_user(subject: &str) -> bool {
    subject.starts_with("user:")
}

/// Removes a binding: from its role's holders, then its index key, then its record.
///
/// With `keep_role`, a user's binding of that role is removed only if another user still
/// holds the role at the same scope, decided and applied by one compare-and-swap of the
/// holders record, so concurrent removals cannot all pass the check.
pub fn delete_binding(
    binding: &Binding,
    keep_role: Option<&str>,
) -> Result<Removal, AuthorizeError> {
    let b = binding;
    let guarded = keep_role == Some(b.role.as_str()) && is_user(&b.subject);
    let edit = edit_holders(&b.scope, &b.role, |holders| {
        if guarded && !holders.iter().any(|h| h.id != b.id && is_user(&h.subject)) {
            return Edit::Refused;
        }
        let before = holders.len();
        holders.retain(|h| h.id != b.id);
        if holders.len() == before {
            Edit::Unchanged
        } else {
            Edit::Changed
        }
    })?;
    if edit == Edit::Refused {
        return Ok(Removal::LastHolder);
    }
    kv::delete(&grant_key(&b.subject, &b.scope, &b.role, &b.id)).map_err(unavailable)?;
    kv::delete(&format!("{BINDING_PREFIX}{}", b.id)).map_err(unavailable)?;
    Ok(Removal::Removed)
}

/// Removes every binding at or below `pattern` (see [`policy::pattern_covers`]), the
/// holders records there and the permission modes of pipelines there; returns how many
/// bindings went. Every failure is returned, and running it again finishes the job.
pub fn delete_under(pattern: &str) -> Result<usize, AuthorizeError> {
    // Holders records go first, so one interrupted run leaves them absent (then derived
    // from the index, which is always right) rather than naming removed grants; and again
    // last, for any a concurrent call re-derived from grants this run then removed.
    delete_holders_under(pattern)?;
    let mut removed = 0;
    for grant in grants(None)? {
        if policy::pattern_covers(pattern, &grant.scope) {
            let g = &grant;
            kv::delete(&grant_key(&g.subject, &g.scope, &g.role, &g.id)).map_err(unavailable)?;
            kv::delete(&format!("{BINDING_PREFIX}{}", g.id)).map_err(unavailable)?;
            removed += 1;
        }
    }
    delete_holders_under(pattern)?;
    for scope in user_defined_scopes()? {
        if policy::pattern_covers(pattern, &scope) {
            set_user_defined(&scope, false)?;
        }
    }
    Ok(removed)
}

fn delete_holders_under(pattern: &str) -> Result<(), AuthorizeError> {
    for key in list_keys(&format!(
        "{HOLDERS_PREFIX}{}",
        policy::pattern_base(pattern)
    ))? {
        let scope = key
            .strip_prefix(HOLDERS_PREFIX)
            .and_then(|rest| rest.rsplit_once('|'))
            .map(|(scope, _role)| scope);
        if scope.is_some_and(|s| policy::pattern_covers(pattern, s)) {
            kv::delete(&key).map_err(unavailable)?;
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Edit {
    Unchanged,
    Changed,
    Refused,
}

/// Applies `edit` to the holders of `role` at `scope` by compare-and-swap, retrying on
/// contention. Writes what it changed, and a record derived from the index unless the
/// edit was refused, so the next call reads one key instead of the whole index.
fn edit_holders(
    scope: &str,
    role: &str,
    mut edit: impl FnMut(&mut Vec<Holder>) -> Edit,
) -> Result<Edit, AuthorizeError> {
    let key = format!("{HOLDERS_PREFIX}{scope}|{role}");
    for _ in 0..CAS_ATTEMPTS {
        let current = kv::get(&key).map_err(unavailable)?;
        let mut holders: Vec<Holder> = match &current {
            Some(bytes) => serde_json::from_slice(bytes).map_err(unavailable)?,
            None => grants(None)?
                .into_iter()
                .filter(|g| g.scope == scope && g.role == role)
                .map(|g| Holder {
                    id: g.id,
                    subject: g.subject,
                })
                .collect(),
        };
        let outcome = edit(&mut holders);
        let write = match outcome {
            Edit::Changed => true,
            Edit::Unchanged => current.is_none(),
            Edit::Refused => false,
        };
        if !write {
            return Ok(outcome);
        }
        let replacement = serde_json::to_vec(&holders).map_err(unavailable)?;
        if kv::compare_and_swap(&key, current.as_deref(), Some(&replacement))
            .map_err(unavailable)?
        {
            return Ok(outcome);
        }
    }
    Err(AuthorizeError::Unavailable(format!(
        "bindings of `{role}` at `{scope}` are contended; retry"
    )))
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

    /// Patterns held by bindings that reach `resource` (USER_DEFINED pipelines cut off
    /// bindings above them).
    pub fn at<'a>(&'a self, resource: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.held
            .iter()
            .filter(move |(scope, _)| policy::reaches(scope, resource, &self.isolated))
            .flat_map(|(_, actions)| actions.iter().map(String::as_str))
    }

    /// Patterns held by bindings whose scope covers `scope`, whatever its mode: what the
    /// caller may grant there once it may administer its permissions (see
    /// [`policy::isolation_applies`]).
    pub fn grantable_at<'a>(&'a self, scope: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.held
            .iter()
            .filter(move |(held_at, _)| policy::scope_covers(held_at, scope))
            .flat_map(|(_, actions)| actions.iter().map(String::as_str))
    }

    pub fn allows(&self, action: &str, resource: &str) -> bool {
        let isolated: &[String] = if policy::isolation_applies(action) {
            &self.isolated
        } else {
            &[]
        };
        self.held
            .iter()
            .filter(|(scope, _)| policy::reaches(scope, resource, isolated))
            .any(|(_, actions)| actions.iter().any(|p| policy::covers(p, action)))
    }
}
