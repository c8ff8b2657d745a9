//! The template document: its size, its identity (`group_key`, `group_name`,
//! `group_version`), the version data Rainbond keeps in `annotations`, and `apps[]` read
//! component by component, then checked across components (unique keys, dependencies).

use serde_json::Value;

use crate::component::{self, Draft};
use crate::dependencies;
use crate::fields::Fields;
use crate::model::Template;
use crate::violation::{Violation, Violations, index};

/// Most components one template may hold.
pub const MAX_COMPONENTS: usize = 100;
/// Largest template text read (the host bounds what a plugin returns, too).
pub const MAX_TEMPLATE_BYTES: usize = 4 * 1024 * 1024;

/// Whether the template must name its app and version itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// Publishing: `group_key`, `group_version` and `group_name` are the catalog's keys.
    Required,
    /// Serving a store's template: the store's answer names the app and version, so the
    /// template's own fields may be missing (they are empty then).
    FromStore,
}

/// Reads template text: JSON, at most [`MAX_TEMPLATE_BYTES`].
pub fn parse(text: &str, identity: Identity) -> Result<Template, Violations> {
    if text.len() > MAX_TEMPLATE_BYTES {
        return Err(Violations::one(
            "",
            format!(
                "the template is {} bytes; at most {MAX_TEMPLATE_BYTES} (4 MiB) are read",
                text.len()
            ),
        ));
    }
    let document: Value = serde_json::from_str(text)
        .map_err(|e| Violations::one("", format!("is not valid JSON: {e}")))?;
    from_value(&document, identity)
}

/// Reads a parsed template document.
pub fn from_value(document: &Value, identity: Identity) -> Result<Template, Violations> {
    let mut violations = Vec::new();
    let template = read(document, identity, &mut violations);
    match template {
        Some(template) if violations.is_empty() => Ok(template),
        _ => Err(Violations(violations)),
    }
}

fn read(document: &Value, identity: Identity, violations: &mut Vec<Violation>) -> Option<Template> {
    let Some(mut top) = Fields::of(document, String::new(), violations) else {
        // Say what kind of object was expected, not just "an object".
        if let Some(last) = violations.last_mut() {
            last.message = "must be a JSON object (a Rainbond application model)".into();
        }
        return None;
    };
    let app_id = identity_field(&mut top, "group_key", identity, false);
    let app_name = identity_field(&mut top, "group_name", identity, false);
    // A hand-written template may say `"group_version": 1.0`.
    let version = identity_field(&mut top, "group_version", identity, true);
    let top_describe = top.string("describe");
    let (version_alias, description, app_describe) = match top.object("annotations") {
        Some(mut notes) => (
            notes.string("version_alias").unwrap_or_default(),
            notes.string("version_info").unwrap_or_default(),
            notes.string("describe").filter(|d| !d.is_empty()),
        ),
        None => (String::new(), String::new(), None),
    };
    let app_description = app_describe.or(top_describe).unwrap_or_default();

    let apps: &[Value] = match top.value("apps") {
        Some(Value::Array(apps)) if apps.is_empty() => {
            top.complain("apps", "must hold at least one component");
            &[]
        }
        Some(Value::Array(apps)) if apps.len() > MAX_COMPONENTS => {
            top.complain(
                "apps",
                format!(
                    "holds {} components; a template may hold at most {MAX_COMPONENTS}",
                    apps.len()
                ),
            );
            &[]
        }
        Some(Value::Array(apps)) => apps,
        Some(_) => {
            top.complain("apps", "must be an array of components");
            &[]
        }
        None => {
            top.complain("apps", "is required: the template has no components");
            &[]
        }
    };
    let mut drafts: Vec<Draft> = apps
        .iter()
        .enumerate()
        .filter_map(|(i, app)| component::read(app, index("apps", i), violations))
        .collect();
    unique(&drafts, violations);
    dependencies::resolve(&mut drafts, violations);
    Some(Template {
        app_id,
        app_name,
        version,
        version_alias,
        description,
        app_description,
        updated_at: String::new(),
        components: drafts.into_iter().map(|d| d.component).collect(),
    })
}

/// `group_key`, `group_name` or `group_version`: required and non-empty when publishing.
fn identity_field(
    top: &mut Fields<'_, '_>,
    key: &str,
    identity: Identity,
    numeric: bool,
) -> String {
    let value = if numeric {
        top.text(key)
    } else {
        top.string(key)
    };
    if identity == Identity::Required {
        match &value {
            Some(v) if v.trim().is_empty() => top.complain(key, "must not be empty"),
            None if top.value(key).is_none() => top.complain(key, "is required"),
            _ => {}
        }
    }
    value.map(|v| v.trim().to_string()).unwrap_or_default()
}

/// Component keys, and the identities dependencies name them by, are unique.
fn unique(drafts: &[Draft], violations: &mut Vec<Violation>) {
    for (i, draft) in drafts.iter().enumerate() {
        let earlier = &drafts[..i];
        if let Some(first) = earlier
            .iter()
            .find(|d| d.component.key == draft.component.key)
        {
            violations.push(Violation::new(
                format!("{}.service_key", draft.path),
                format!(
                    "`{}` is already the key of {}",
                    draft.component.key, first.path
                ),
            ));
        } else if let Some(first) = earlier.iter().find(|d| d.identity == draft.identity) {
            violations.push(Violation::new(
                format!("{}.service_share_uuid", draft.path),
                format!("`{}` already identifies {}", draft.identity, first.path),
            ));
        }
    }
}
