//! `manage`: policy administration (roles, bindings) and the two permission queries
//! (who can do an action on a resource; what a subject can do on it).
//!
//! Inputs and outputs are JSON objects with camelCase fields. Role definitions are public;
//! who holds what is not: binding lists show only the caller's own bindings and those at
//! scopes where it may administer permissions, and the two queries answer only there (or,
//! for what-can, about the caller itself). Creating and deleting roles
//! needs `role.manage` on `system`, and creating or deleting a binding needs
//! `<kind>.manage-permissions` at its scope plus, to create, every pattern of the role
//! ("never grant more than you hold").
//!
//! `binding.delete` may be told `keepRole`: then removing a user's binding of that role
//! is refused (`{"deleted": false}`) when no other user would hold it at that scope, which
//! is how the host keeps a project's last owner. `binding.delete-under` removes every
//! binding at or below a scope, for the host to call when what the scope names is deleted.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};
use wharf_sdk::authorizer::{AuthorizeError, Subject, Violation};

use crate::policy;
use crate::store::{self, Holdings, Removal, Role, RoleCache};

/// Most action patterns a custom role may have.
const MAX_ACTIONS: usize = 64;
const MAX_DESCRIPTION: usize = 500;
/// Resources in queries are scope paths or object names; anything longer is not one.
const MAX_RESOURCE: usize = 512;

pub fn manage(subject: &Subject, operation: &str, input: &str) -> Result<String, AuthorizeError> {
    let output = match operation {
        "role.list" => role_list(input)?,
        "role.create" => role_create(subject, input)?,
        "role.delete" => role_delete(subject, input)?,
        "binding.list" => binding_list(subject, input)?,
        "binding.create" => binding_create(subject, input)?,
        "binding.delete" => binding_delete(subject, input)?,
        "binding.delete-under" => binding_delete_under(subject, input)?,
        "query.who-can" => who_can(subject, input)?,
        "pipeline.get-mode" => pipeline_get_mode(input)?,
        "pipeline.set-mode" => pipeline_set_mode(subject, input)?,
        "query.what-can" => what_can(subject, input)?,
        other => {
            return Err(AuthorizeError::Unsupported(format!(
                "operation `{other}` is not offered by authz-rbac"
            )));
        }
    };
    Ok(output.to_string())
}

/// An operation's input object, collecting every field complaint before reporting them.
struct Input {
    fields: Map<String, Value>,
    violations: Vec<Violation>,
}

impl Input {
    /// Parses `json` (empty means `{}`), rejecting fields outside `known`.
    fn parse(json: &str, known: &[&str]) -> Result<Self, AuthorizeError> {
        let value = if json.trim().is_empty() {
            Value::Object(Map::new())
        } else {
            serde_json::from_str(json)
                .map_err(|e| AuthorizeError::invalid("input", format!("is not valid JSON: {e}")))?
        };
        let Value::Object(fields) = value else {
            return Err(AuthorizeError::invalid("input", "must be a JSON object"));
        };
        let violations = fields
            .keys()
            .filter(|k| !known.contains(&k.as_str()))
            .map(|k| Violation::new(k.clone(), "is not a known field"))
            .collect();
        Ok(Input { fields, violations })
    }

    fn violate(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.violations.push(Violation::new(field, message));
    }

    /// Whether `field` already has a complaint (then further checks of it would only add
    /// noise: a missing value is not also malformed).
    fn has(&self, field: &str) -> bool {
        self.violations.iter().any(|v| v.field == field)
    }

    /// Applies a syntax check to a field that was read without complaint.
    fn validate(&mut self, field: &str, value: &str, check: fn(&str) -> Result<(), String>) {
        if !self.has(field)
            && let Err(message) = check(value)
        {
            self.violate(field, message);
        }
    }

    fn optional_string(&mut self, name: &str) -> Option<String> {
        match self.fields.remove(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(_) => {
                self.violate(name, "must be a string");
                None
            }
        }
    }

    fn string(&mut self, name: &str) -> String {
        let value = self.optional_string(name);
        if value.is_none() && !self.has(name) {
            self.violate(name, "is required");
        }
        value.unwrap_or_default()
    }

    fn strings(&mut self, name: &str) -> Vec<String> {
        match self.fields.remove(name) {
            Some(Value::Array(items)) => {
                let mut out = Vec::new();
                for (i, item) in items.into_iter().enumerate() {
                    match item {
                        Value::String(s) => out.push(s),
                        _ => self.violate(format!("{name}[{i}]"), "must be a string"),
                    }
                }
                out
            }
            None | Some(Value::Null) => {
                self.violate(name, "is required");
                Vec::new()
            }
            Some(_) => {
                self.violate(name, "must be an array of strings");
                Vec::new()
            }
        }
    }

    fn finish(self) -> Result<(), AuthorizeError> {
        if self.violations.is_empty() {
            Ok(())
        } else {
            Err(AuthorizeError::InvalidRequest(self.violations))
        }
    }
}

fn caller(subject: &Subject) -> String {
    format!("user:{}", subject.id)
}

/// Whether `subject` may do `action` on `resource` by its bindings (or as admin).
fn holds(subject: &Subject, action: &str, resource: &str) -> Result<bool, AuthorizeError> {
    Ok(subject.is_admin
        || Holdings::of(subject, &mut RoleCache::default())?.allows(action, resource))
}

fn require_role_manager(subject: &Subject) -> Result<(), AuthorizeError> {
    if holds(subject, "role.manage", "system")? {
        Ok(())
    } else {
        Err(AuthorizeError::Forbidden(
            "not allowed to manage roles: no role grants `role.manage` on `system`".to_string(),
        ))
    }
}

fn role_list(input: &str) -> Result<Value, AuthorizeError> {
    Input::parse(input, &[])?.finish()?;
    Ok(json!({ "items": store::roles()? }))
}

fn role_create(subject: &Subject, input: &str) -> Result<Value, AuthorizeError> {
    let mut input = Input::parse(input, &["name", "description", "actions"])?;
    require_role_manager(subject)?;
    let name = input.string("name");
    let description = input.optional_string("description").unwrap_or_default();
    let requested = input.strings("actions");

    if !input.has("name") {
        match policy::check_role_name(&name) {
            Err(message) => input.violate("name", message),
            Ok(()) if store::role(&name)?.is_some() => {
                input.violate("name", format!("role `{name}` already exists"))
            }
            Ok(()) => {}
        }
    }
    if description.chars().count() > MAX_DESCRIPTION {
        input.violate(
            "description",
            format!("must be at most {MAX_DESCRIPTION} characters"),
        );
    }
    if requested.is_empty() && !input.has("actions") {
        input.violate("actions", "must name at least one action pattern");
    }
    if requested.len() > MAX_ACTIONS {
        input.violate(
            "actions",
            format!("must have at most {MAX_ACTIONS} patterns"),
        );
    }
    let mut actions: Vec<String> = Vec::new();
    for (i, pattern) in requested.into_iter().enumerate() {
        match policy::check_pattern(&pattern) {
            Err(message) => input.violate(format!("actions[{i}]"), message),
            Ok(()) if !actions.contains(&pattern) => actions.push(pattern),
            Ok(()) => {}
        }
    }
    input.finish()?;
    // Well-formed but naming a resource nobody acts on: almost certainly a typo, and a
    // role that silently grants nothing would be worse than an error.
    if let Some(unknown) = actions.iter().find(|p| {
        policy::pattern_resource(p).is_some_and(|r| !policy::KNOWN_RESOURCES.contains(&r))
    }) {
        return Err(AuthorizeError::UnknownPermission(unknown.clone()));
    }

    let role = Role {
        name,
        description,
        actions,
        builtin: false,
    };
    if !store::create_role(&role)? {
        return Err(AuthorizeError::invalid(
            "name",
            format!("role `{}` already exists", role.name),
        ));
    }
    wharf_sdk::info!("role `{}` created by {}", role.name, caller(subject));
    Ok(json!(role))
}

fn role_delete(subject: &Subject, input: &str) -> Result<Value, AuthorizeError> {
    let mut input = Input::parse(input, &["name"])?;
    require_role_manager(subject)?;
    let name = input.string("name");
    input.finish()?;
    if policy::builtin(&name).is_some() {
        return Err(AuthorizeError::Forbidden(
            "built-in roles cannot be deleted".to_string(),
        ));
    }
    if store::role(&name)?.is_none() {
        return Err(AuthorizeError::NotFound(format!(
            "role `{name}` does not exist"
        )));
    }
    let uses = store::grants(None)?
        .iter()
        .filter(|g| g.role == name)
        .count();
    if uses > 0 {
        let noun = if uses == 1 { "binding" } else { "bindings" };
        return Err(AuthorizeError::Forbidden(format!(
            "role `{name}` is used by {uses} {noun}"
        )));
    }
    store::delete_role(&name)?;
    wharf_sdk::info!("role `{name}` deleted by {}", caller(subject));
    Ok(json!({}))
}

/// Whether `principal` (`user:<id>` or `group:<id>`) is the caller or one of its groups.
fn is_own(subject: &Subject, principal: &str) -> bool {
    principal == caller(subject)
        || subject
            .groups
            .iter()
            .any(|g| principal == format!("group:{g}"))
}

/// Whether the caller may see who holds what at `scope`: an admin, or whoever may
/// administer permissions there.
fn may_inspect(subject: &Subject, holdings: &Holdings, scope: &str) -> bool {
    subject.is_admin || manage_permissions_refusal(holdings, scope).is_none()
}

fn binding_list(caller_subject: &Subject, input: &str) -> Result<Value, AuthorizeError> {
    let mut input = Input::parse(input, &["subject", "scope"])?;
    let subject = input.optional_string("subject");
    let scope = input.optional_string("scope");
    input.finish()?;
    let grants = match &subject {
        // A subject that could never be bound has no bindings; listing its key prefix
        // could match another subject's.
        Some(s) if policy::check_subject(s).is_err() => Vec::new(),
        Some(s) => store::grants(Some(s))?,
        None => store::grants(None)?,
    };
    let holdings = Holdings::of(caller_subject, &mut RoleCache::default())?;
    let mut items = Vec::new();
    for grant in grants {
        if scope.as_ref().is_some_and(|s| *s != grant.scope) {
            continue;
        }
        if !is_own(caller_subject, &grant.subject)
            && !may_inspect(caller_subject, &holdings, &grant.scope)
        {
            continue;
        }
        // Records are written before and deleted after their index key, so a key without
        // a record should not exist; skip one rather than fail the whole listing.
        if let Some(binding) = store::binding(&grant.id)? {
            items.push(binding);
        }
    }
    items.sort_by_key(|b| (b.id.parse::<u64>().unwrap_or(u64::MAX), b.id.clone()));
    Ok(json!({ "items": items }))
}

/// Why someone holding `holdings` may not administer bindings at `scope`, if they may not.
fn manage_permissions_refusal(holdings: &Holdings, scope: &str) -> Option<String> {
    let action = format!("{}.manage-permissions", policy::scope_kind(scope));
    (!holdings.allows(&action, scope)).then(|| format!("no role grants `{action}` there"))
}

fn binding_create(subject: &Subject, input: &str) -> Result<Value, AuthorizeError> {
    let mut input = Input::parse(input, &["subject", "role", "scope"])?;
    let target = input.string("subject");
    let role_name = input.string("role");
    let scope = input.string("scope");
    input.validate("subject", &target, policy::check_subject);
    input.validate("scope", &scope, policy::check_scope);
    input.finish()?;
    let Some(role) = store::role(&role_name)? else {
        return Err(AuthorizeError::NotFound(format!(
            "role `{role_name}` does not exist"
        )));
    };

    if !subject.is_admin {
        let holdings = Holdings::of(subject, &mut RoleCache::default())?;
        let refusal = manage_permissions_refusal(&holdings, &scope).or_else(|| {
            // Never grant more than you hold: each of the role's patterns must be covered
            // by something the caller holds at that scope.
            let held: Vec<&str> = holdings.grantable_at(&scope).collect();
            role.actions
                .iter()
                .find(|p| !held.iter().any(|h| policy::covers(h, p)))
                .map(|p| format!("it includes `{p}`, which you do not hold there"))
        });
        if let Some(reason) = refusal {
            return Err(AuthorizeError::Forbidden(format!(
                "not allowed to grant role `{role_name}` at `{scope}`: {reason}"
            )));
        }
    }

    // Granting what is already granted changes nothing: answer with the existing binding
    // (counting it among its role's holders, should an interrupted create have missed that).
    if let Some(existing) = store::find_binding(&target, &scope, &role_name)? {
        store::count_holder(&existing)?;
        return Ok(json!(existing));
    }
    let binding = store::create_binding(&target, &role_name, &scope, &caller(subject))?;
    wharf_sdk::info!(
        "binding {}: role `{role_name}` to {target} at `{scope}`, by {}",
        binding.id,
        caller(subject)
    );
    Ok(json!(binding))
}

fn binding_delete(subject: &Subject, input: &str) -> Result<Value, AuthorizeError> {
    let mut input = Input::parse(input, &["id", "keepRole"])?;
    let id = input.string("id");
    let keep_role = input.optional_string("keepRole");
    input.finish()?;
    let Some(binding) = store::binding(&id)? else {
        return Err(AuthorizeError::NotFound(format!(
            "binding `{id}` does not exist"
        )));
    };
    if !subject.is_admin {
        let holdings = Holdings::of(subject, &mut RoleCache::default())?;
        if let Some(reason) = manage_permissions_refusal(&holdings, &binding.scope) {
            return Err(AuthorizeError::Forbidden(format!(
                "not allowed to revoke binding `{id}` at `{}`: {reason}",
                binding.scope
            )));
        }
    }
    if store::delete_binding(&binding, keep_role.as_deref())? == Removal::LastHolder {
        return Ok(json!({
            "deleted": false,
            "reason": format!(
                "{} is the last user holding `{}` at `{}`",
                binding.subject, binding.role, binding.scope
            ),
        }));
    }
    wharf_sdk::info!(
        "binding {id} (role `{}` to {} at `{}`) deleted by {}",
        binding.role,
        binding.subject,
        binding.scope,
        caller(subject)
    );
    Ok(json!({ "deleted": true }))
}

/// Removes every binding at or below `scope` (whole segments; `app:*` for every app), with
/// the pipeline modes there. Needs `<kind>.manage-permissions` where the pattern is fixed.
fn binding_delete_under(subject: &Subject, input: &str) -> Result<Value, AuthorizeError> {
    let mut input = Input::parse(input, &["scope"])?;
    let scope = input.string("scope");
    input.validate("scope", &scope, policy::check_scope_pattern);
    input.finish()?;
    if !subject.is_admin {
        let base = policy::pattern_base(&scope);
        let holdings = Holdings::of(subject, &mut RoleCache::default())?;
        if let Some(reason) = manage_permissions_refusal(&holdings, base) {
            return Err(AuthorizeError::Forbidden(format!(
                "not allowed to remove the bindings under `{scope}`: {reason}"
            )));
        }
    }
    let deleted = store::delete_under(&scope)?;
    wharf_sdk::info!(
        "{deleted} bindings at or below `{scope}` deleted by {}",
        caller(subject)
    );
    Ok(json!({ "deleted": deleted }))
}

/// Reads a query's `resource` field.
fn resource_field(input: &mut Input) -> String {
    let resource = input.string("resource");
    if resource.len() > MAX_RESOURCE {
        input.violate("resource", format!("must be at most {MAX_RESOURCE} bytes"));
    }
    resource
}

fn who_can(subject: &Subject, input: &str) -> Result<Value, AuthorizeError> {
    let mut input = Input::parse(input, &["action", "resource"])?;
    let action = input.string("action");
    let resource = resource_field(&mut input);
    if !input.has("action") && (action.contains('*') || policy::check_pattern(&action).is_err()) {
        input.violate("action", "must be `<resource>.<verb>` without wildcards");
    }
    input.finish()?;
    let mut roles = RoleCache::default();
    if !may_inspect(subject, &Holdings::of(subject, &mut roles)?, &resource) {
        return Err(AuthorizeError::Forbidden(format!(
            "not allowed to inspect permissions at `{resource}`"
        )));
    }
    let isolated = store::user_defined_scopes()?;
    let mut subjects = BTreeSet::new();
    for grant in store::grants(None)? {
        let cuts: &[String] = if policy::isolation_applies(&action) {
            &isolated
        } else {
            &[]
        };
        if policy::reaches(&grant.scope, &resource, cuts)
            && roles
                .actions(&grant.role)?
                .iter()
                .any(|p| policy::covers(p, &action))
        {
            subjects.insert(grant.subject);
        }
    }
    Ok(json!({ "subjects": subjects }))
}

fn what_can(caller_subject: &Subject, input: &str) -> Result<Value, AuthorizeError> {
    let mut input = Input::parse(input, &["subject", "resource"])?;
    let subject = input.string("subject");
    let resource = resource_field(&mut input);
    input.validate("subject", &subject, policy::check_subject);
    input.finish()?;
    let mut roles = RoleCache::default();
    if !is_own(caller_subject, &subject)
        && !may_inspect(
            caller_subject,
            &Holdings::of(caller_subject, &mut roles)?,
            &resource,
        )
    {
        return Err(AuthorizeError::Forbidden(format!(
            "not allowed to inspect permissions at `{resource}`"
        )));
    }
    let holdings = Holdings::load(&[subject], &mut roles)?;
    let actions: BTreeSet<&str> = holdings.at(&resource).collect();
    Ok(json!({ "actions": actions }))
}

/// Reads a pipeline scope (`project:<code>/pipeline:<id>`) from `scope`.
fn pipeline_scope(input: &mut Input) -> String {
    let scope = input.string("scope");
    input.validate("scope", &scope, policy::check_scope);
    if !input.has("scope") && policy::scope_kind(&scope) != "pipeline" {
        input.violate(
            "scope",
            "must be a pipeline scope: project:<code>/pipeline:<id>",
        );
    }
    scope
}

fn pipeline_get_mode(input: &str) -> Result<Value, AuthorizeError> {
    let mut input = Input::parse(input, &["scope"])?;
    let scope = pipeline_scope(&mut input);
    input.finish()?;
    let user_defined = store::user_defined_scopes()?.contains(&scope);
    Ok(json!({ "scope": scope, "mode": if user_defined { "USER_DEFINED" } else { "DEFAULT" } }))
}

/// Seed 001 pipeline permission modes: DEFAULT inherits the project's bindings,
/// USER_DEFINED only honours bindings at the pipeline itself.
fn pipeline_set_mode(subject: &Subject, input: &str) -> Result<Value, AuthorizeError> {
    let mut input = Input::parse(input, &["scope", "mode"])?;
    let scope = pipeline_scope(&mut input);
    let mode = input.string("mode");
    if !input.has("mode") && mode != "DEFAULT" && mode != "USER_DEFINED" {
        input.violate("mode", "must be DEFAULT or USER_DEFINED");
    }
    input.finish()?;
    if !subject.is_admin {
        let holdings = Holdings::of(subject, &mut RoleCache::default())?;
        if let Some(reason) = manage_permissions_refusal(&holdings, &scope) {
            return Err(AuthorizeError::Forbidden(format!(
                "not allowed to set the permission mode of `{scope}`: {reason}"
            )));
        }
    }
    store::set_user_defined(&scope, mode == "USER_DEFINED")?;
    wharf_sdk::info!("pipeline `{scope}` set to {mode} by {}", caller(subject));
    Ok(json!({ "scope": scope, "mode": mode }))
}
