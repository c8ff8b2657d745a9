//! Field-level complaints about a template, each naming the JSON path of the field,
//! collected rather than stopping at the first.

use serde::Serialize;

/// One complaint: `field` is a JSON path such as `apps[1].port_map_list[0].container_port`
/// (empty for the document itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub field: String,
    pub message: String,
}

impl Violation {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Violation {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Every violation found in one template, in document order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe(.0))]
pub struct Violations(pub Vec<Violation>);

impl Violations {
    /// A single violation.
    pub fn one(field: impl Into<String>, message: impl Into<String>) -> Self {
        Violations(vec![Violation::new(field, message)])
    }

    /// The same violations with every path put under `prefix`: `template` turns `apps[0]`
    /// into `template.apps[0]` and the document itself into `template`, for a template
    /// that arrived inside another JSON document (a store's answer).
    pub fn prefixed(self, prefix: &str) -> Self {
        Violations(
            self.0
                .into_iter()
                .map(|v| Violation {
                    field: join(prefix, &v.field),
                    message: v.message,
                })
                .collect(),
        )
    }
}

fn describe(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// `base.key`, or `key` at the top level.
pub(crate) fn join(base: &str, key: &str) -> String {
    match (base.is_empty(), key.is_empty()) {
        (true, _) => key.to_string(),
        (false, true) => base.to_string(),
        (false, false) if key.starts_with('[') => format!("{base}{key}"),
        (false, false) => format!("{base}.{key}"),
    }
}

/// `base[index]`.
pub(crate) fn index(base: &str, index: usize) -> String {
    format!("{base}[{index}]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixing_puts_every_path_under_the_prefix() {
        let v = Violations(vec![
            Violation::new("", "is not JSON"),
            Violation::new("apps[0].image", "is required"),
        ])
        .prefixed("template");
        let fields: Vec<&str> = v.0.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["template", "template.apps[0].image"]);
        assert_eq!(
            v.to_string(),
            "template: is not JSON; template.apps[0].image: is required"
        );
    }
}
