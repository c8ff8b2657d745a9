//! Field-level complaints about a rule (or about what a provider cannot express), each
//! naming the JSON path of the field, collected rather than stopping at the first.

use serde::Serialize;

/// One complaint: `field` is a JSON path such as `content.rules[0].conditions[1].value`
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

/// Every violation found in one rule, in document order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", describe(.0))]
pub struct Violations(pub Vec<Violation>);

fn describe(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.message))
        .collect::<Vec<_>>()
        .join("; ")
}
