//! Label and field selectors: the query-string forms (`app=web,tier in (a,b),!canary`,
//! `metadata.name=web`) and the `LabelSelector` objects workloads carry.

use serde_json::Value;

use super::resources::ResourceType;
use super::status::Status;

#[derive(Debug, Clone, PartialEq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

/// A parsed label selector; empty matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector(Vec<Requirement>);

impl LabelSelector {
    /// Parses the query-string syntax; bad syntax is a 400.
    pub fn parse(text: &str) -> Result<Self, Status> {
        let mut requirements = Vec::new();
        for term in split_top_level(text) {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            requirements.push(parse_term(term).ok_or_else(|| {
                Status::bad_request(format!("unable to parse requirement: {term:?}"))
            })?);
        }
        Ok(Self(requirements))
    }

    /// The `{matchLabels, matchExpressions}` object form; `None` when malformed.
    pub fn from_object(selector: &Value) -> Option<Self> {
        let mut requirements = Vec::new();
        if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
            for (key, value) in labels {
                requirements.push(Requirement::Equals(key.clone(), value.as_str()?.to_owned()));
            }
        }
        if let Some(expressions) = selector.get("matchExpressions").and_then(Value::as_array) {
            for expression in expressions {
                let key = expression.get("key")?.as_str()?.to_owned();
                let values = || -> Option<Vec<String>> {
                    expression
                        .get("values")?
                        .as_array()?
                        .iter()
                        .map(|v| v.as_str().map(str::to_owned))
                        .collect()
                };
                requirements.push(match expression.get("operator")?.as_str()? {
                    "In" => Requirement::In(key, values()?),
                    "NotIn" => Requirement::NotIn(key, values()?),
                    "Exists" => Requirement::Exists(key),
                    "DoesNotExist" => Requirement::DoesNotExist(key),
                    _ => return None,
                });
            }
        }
        Some(Self(requirements))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn matches_object(&self, object: &Value) -> bool {
        let labels = object.pointer("/metadata/labels");
        self.matches(|key| labels.and_then(|l| l.get(key)).and_then(Value::as_str))
    }

    pub fn matches<'a>(&self, label: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.0.iter().all(|requirement| match requirement {
            Requirement::Equals(k, v) => label(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => label(k) != Some(v.as_str()),
            Requirement::In(k, vs) => label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Requirement::NotIn(k, vs) => !label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Requirement::Exists(k) => label(k).is_some(),
            Requirement::DoesNotExist(k) => label(k).is_none(),
        })
    }

    /// The query-string form (`kubectl describe` and `logs deploy/x` send it back to us).
    pub fn to_query(&self) -> String {
        self.0
            .iter()
            .map(|r| match r {
                Requirement::Equals(k, v) => format!("{k}={v}"),
                Requirement::NotEquals(k, v) => format!("{k}!={v}"),
                Requirement::In(k, vs) => format!("{k} in ({})", vs.join(",")),
                Requirement::NotIn(k, vs) => format!("{k} notin ({})", vs.join(",")),
                Requirement::Exists(k) => k.clone(),
                Requirement::DoesNotExist(k) => format!("!{k}"),
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Splits on commas outside parentheses.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 253
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

fn valid_value(value: &str) -> bool {
    value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn parse_term(term: &str) -> Option<Requirement> {
    if let Some(key) = term.strip_prefix('!') {
        let key = key.trim();
        return valid_key(key).then(|| Requirement::DoesNotExist(key.to_owned()));
    }
    for (operator, set_op) in [(" notin ", false), (" in ", true)] {
        if let Some(at) = term.find(operator) {
            let key = term[..at].trim();
            let rest = term[at + operator.len()..].trim();
            let inner = rest.strip_prefix('(')?.strip_suffix(')')?;
            let values: Vec<String> = inner.split(',').map(|v| v.trim().to_owned()).collect();
            if !valid_key(key) || values.iter().any(|v| !valid_value(v)) {
                return None;
            }
            return Some(if set_op {
                Requirement::In(key.to_owned(), values)
            } else {
                Requirement::NotIn(key.to_owned(), values)
            });
        }
    }
    for (operator, negate) in [("!=", true), ("==", false), ("=", false)] {
        if let Some((key, value)) = term.split_once(operator) {
            let (key, value) = (key.trim(), value.trim());
            if !valid_key(key) || !valid_value(value) {
                return None;
            }
            return Some(if negate {
                Requirement::NotEquals(key.to_owned(), value.to_owned())
            } else {
                Requirement::Equals(key.to_owned(), value.to_owned())
            });
        }
    }
    valid_key(term).then(|| Requirement::Exists(term.to_owned()))
}

/// A parsed field selector: `field=value` / `field!=value` terms, ANDed.
#[derive(Debug, Clone, Default)]
pub struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    /// Parses and checks each field is one this kind supports (anything else is a 400,
    /// as the apiserver answers).
    pub fn parse(text: &str, resource: &ResourceType) -> Result<Self, Status> {
        let mut terms = Vec::new();
        for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (field, equal, value) = if let Some((f, v)) = term.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = term.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = term.split_once('=') {
                (f, true, v)
            } else {
                return Err(Status::bad_request(format!(
                    "invalid selector: '{term}'; can't understand '{term}'"
                )));
            };
            let field = field.trim();
            if !supported_field(resource, field) {
                return Err(Status::bad_request(format!(
                    "field label not supported: {field}"
                )));
            }
            terms.push((field.to_owned(), equal, value.trim().to_owned()));
        }
        Ok(Self(terms))
    }

    pub fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|(field, equal, value)| {
            let pointer = format!("/{}", field.replace('.', "/"));
            let actual = object
                .pointer(&pointer)
                .and_then(Value::as_str)
                .unwrap_or("");
            (actual == value) == *equal
        })
    }
}

fn supported_field(resource: &ResourceType, field: &str) -> bool {
    if matches!(field, "metadata.name" | "metadata.namespace") {
        return true;
    }
    match (resource.group, resource.kind) {
        ("", "Pod") => matches!(
            field,
            "spec.nodeName"
                | "status.phase"
                | "spec.restartPolicy"
                | "spec.serviceAccountName"
                | "status.podIP"
        ),
        ("", "Event") => {
            field.starts_with("involvedObject.")
                || matches!(field, "reason" | "type" | "source" | "reportingComponent")
        }
        ("", "Secret") => field == "type",
        ("", "Namespace") => field == "status.phase",
        ("", "Node") => field == "spec.unschedulable",
        ("batch", "Job") => field == "status.successful",
        ("apps", "ReplicaSet") => field == "status.replicas",
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> Value {
        let map: serde_json::Map<String, Value> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        json!({"metadata": {"labels": map}})
    }

    #[test]
    fn set_based_and_equality_terms_combine_with_and() {
        let selector = LabelSelector::parse("app=web,tier in (fe, frontend),!canary").unwrap();
        assert!(selector.matches_object(&labels(&[("app", "web"), ("tier", "fe")])));
        assert!(!selector.matches_object(&labels(&[("app", "web"), ("tier", "be")])));
        assert!(!selector.matches_object(&labels(&[
            ("app", "web"),
            ("tier", "fe"),
            ("canary", "1")
        ])));
        assert_eq!(selector.to_query(), "app=web,tier in (fe,frontend),!canary");
    }

    #[test]
    fn bad_syntax_is_a_bad_request() {
        assert_eq!(LabelSelector::parse("app in web").unwrap_err().code, 400);
        assert_eq!(LabelSelector::parse("a=b=c").unwrap_err().code, 400);
    }

    #[test]
    fn object_form_matches_labels_and_expressions() {
        let selector = LabelSelector::from_object(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]
        }))
        .unwrap();
        assert!(selector.matches_object(&labels(&[("app", "web")])));
        assert!(!selector.matches_object(&labels(&[("app", "web"), ("tier", "db")])));
    }

    #[test]
    fn unsupported_fields_are_refused() {
        let pods = super::super::resources::kinds::pod();
        assert!(FieldSelector::parse("spec.nodeName=n1,metadata.name!=x", pods).is_ok());
        let error = FieldSelector::parse("spec.containers=x", pods).unwrap_err();
        assert_eq!(error.message, "field label not supported: spec.containers");
    }
}
