//! Validating a rule document: the seed's shape (`grayType`, `percent`, `content`, its rules)
//! and every conditional requirement, all violations collected, building the typed
//! [`GrayRule`] on the way. Single conditions are read in [`crate::condition`].

use serde_json::Value;

use crate::condition::read_condition;
use crate::fields::{Object, child, item};
use crate::model::{Combine, Content, ContentRule, DubboTarget, GrayRule, Percent, Service};
use crate::violation::{Violation, Violations};

const ROOT_FIELDS: &[&str] = &["grayType", "percent", "content"];
const PERCENT_FIELDS: &[&str] = &["rate", "tag"];
const CONTENT_FIELDS: &[&str] = &["ruleName", "tag", "carryData", "rules"];
const RULE_FIELDS: &[&str] = &["serviceType", "path", "condition", "conditions"];
const MAX_RULES: usize = 20;
const MAX_CONDITIONS: usize = 20;
const MAX_RULE_NAME: usize = 64;
const MAX_TAG: usize = 63;

/// Which framework a rule's conditions are for, once `serviceType` is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framework {
    SpringCloud,
    Dubbo,
}

/// Parses and validates rule text: not JSON is a violation on the document (`""`).
pub fn parse(rule_json: &str) -> Result<GrayRule, Violations> {
    let value: Value = serde_json::from_str(rule_json)
        .map_err(|e| Violations(vec![Violation::new("", format!("is not valid JSON: {e}"))]))?;
    validate(&value)
}

/// Checks a rule document against the seed's shape and conditional requirements,
/// returning the typed rule or every violation found.
pub fn validate(rule: &Value) -> Result<GrayRule, Violations> {
    let mut out = Vec::new();
    let parsed = read_gray_rule(rule, &mut out);
    match parsed {
        Some(rule) if out.is_empty() => Ok(rule),
        _ => Err(Violations(out)),
    }
}

fn read_gray_rule(value: &Value, out: &mut Vec<Violation>) -> Option<GrayRule> {
    let root = Object::open(value, "", ROOT_FIELDS, out)?;
    let gray_type = match root.required_string("grayType", out) {
        Some(t @ ("PERCENT" | "CONTENT")) => Some(t),
        Some(_) => {
            out.push(Violation::new("grayType", "must be PERCENT or CONTENT"));
            None
        }
        None => None,
    };
    // With grayType unknown, whatever is present is still checked, so one pass finds all.
    let percent = match gray_type {
        Some("CONTENT") => {
            root.forbid(&["percent"], "only used with grayType PERCENT", out);
            None
        }
        Some(_) => root
            .require("percent", out)
            .and_then(|v| read_percent(v, out)),
        None => root.get("percent").and_then(|v| read_percent(v, out)),
    };
    let content = match gray_type {
        Some("PERCENT") => {
            root.forbid(&["content"], "only used with grayType CONTENT", out);
            None
        }
        Some(_) => root
            .require("content", out)
            .and_then(|v| read_content(v, out)),
        None => root.get("content").and_then(|v| read_content(v, out)),
    };
    match gray_type? {
        "PERCENT" => percent.map(GrayRule::Percent),
        _ => content.map(GrayRule::Content),
    }
}

/// `percent`: an object, or (as the seed's table has it) an array of exactly one.
fn read_percent(value: &Value, out: &mut Vec<Violation>) -> Option<Percent> {
    let (value, path) = match value {
        Value::Array(items) if items.len() == 1 => (&items[0], item("percent", 0)),
        Value::Array(_) => {
            out.push(Violation::new(
                "percent",
                "must be an object or an array of exactly one object",
            ));
            return None;
        }
        other => (other, "percent".to_owned()),
    };
    let percent = Object::open(value, &path, PERCENT_FIELDS, out)?;
    let rate = percent.required_integer("rate", out).and_then(|rate| {
        let rate = u8::try_from(rate).ok().filter(|r| *r <= 100);
        if rate.is_none() {
            out.push(Violation::new(
                percent.path_of("rate"),
                "must be an integer from 0 to 100",
            ));
        }
        rate
    });
    let tag = read_tag(&percent, out);
    Some(Percent {
        rate: rate?,
        tag: tag?,
    })
}

fn read_content(value: &Value, out: &mut Vec<Violation>) -> Option<Content> {
    let content = Object::open(value, "content", CONTENT_FIELDS, out)?;
    let tag = read_tag(&content, out);
    let rule_name = content.string("ruleName", out).map(str::to_owned);
    if rule_name
        .as_ref()
        .is_some_and(|n| n.chars().count() > MAX_RULE_NAME)
    {
        out.push(Violation::new(
            "content.ruleName",
            format!("must be at most {MAX_RULE_NAME} characters"),
        ));
    }
    let carry_data = content.boolean("carryData", out).unwrap_or(false);
    let rules = content
        .required_array("rules", (1, MAX_RULES), "rules", out)
        .map(|items| {
            items
                .iter()
                .enumerate()
                .map(|(i, rule)| read_content_rule(rule, &item("content.rules", i), out))
                .collect::<Vec<_>>()
        });
    Some(Content {
        rule_name,
        tag: tag?,
        carry_data,
        // Every item was read (and complained about) above; any failure fails the whole.
        rules: rules?.into_iter().collect::<Option<_>>()?,
    })
}

fn read_content_rule(value: &Value, path: &str, out: &mut Vec<Violation>) -> Option<ContentRule> {
    let rule = Object::open(value, path, RULE_FIELDS, out)?;
    let framework = match rule.required_string("serviceType", out) {
        Some(s) if s.eq_ignore_ascii_case("springCloud") => Some(Framework::SpringCloud),
        Some(s) if s.eq_ignore_ascii_case("Dubbo") => Some(Framework::Dubbo),
        Some(_) => {
            out.push(Violation::new(
                rule.path_of("serviceType"),
                "must be springCloud or Dubbo",
            ));
            None
        }
        None => None,
    };
    let service = match framework {
        Some(Framework::SpringCloud) => read_http_path(&rule, out),
        Some(Framework::Dubbo) => read_dubbo_path(&rule, out),
        None => {
            rule.string("path", out);
            None
        }
    };
    let conditions = rule
        .required_array("conditions", (1, MAX_CONDITIONS), "conditions", out)
        .map(|items| {
            let base = child(path, "conditions");
            items
                .iter()
                .enumerate()
                .map(|(j, c)| read_condition(c, &item(&base, j), framework, out))
                .collect::<Vec<_>>()
        });
    let count = conditions.as_ref().map_or(0, Vec::len);
    let combine = match rule.string("condition", out) {
        Some("AND") => Some(Combine::And),
        Some("OR") => Some(Combine::Or),
        Some(_) => {
            out.push(Violation::new(
                rule.path_of("condition"),
                "must be AND or OR",
            ));
            None
        }
        None if count >= 2 => {
            out.push(Violation::new(
                rule.path_of("condition"),
                "is required with 2 or more conditions (AND or OR)",
            ));
            None
        }
        None => Some(Combine::And),
    };
    Some(ContentRule {
        path: path.to_owned(),
        service: service?,
        combine: combine?,
        conditions: conditions?.into_iter().collect::<Option<_>>()?,
    })
}

/// A springCloud rule's `path`: required, absolute, without query or fragment.
fn read_http_path(rule: &Object, out: &mut Vec<Violation>) -> Option<Service> {
    let path = rule.required_string("path", out)?;
    let field = rule.path_of("path");
    if !path.starts_with('/') {
        out.push(Violation::new(field, "must start with /"));
        None
    } else if path.contains(['?', '#']) {
        out.push(Violation::new(field, "must not contain ? or #"));
        None
    } else {
        Some(Service::SpringCloud {
            path: path.to_owned(),
        })
    }
}

/// A Dubbo rule's optional `path`: `service` or `service:method`.
fn read_dubbo_path(rule: &Object, out: &mut Vec<Violation>) -> Option<Service> {
    let Some(path) = rule.string("path", out) else {
        return Some(Service::Dubbo { only: None });
    };
    let (service, method) = match path.split_once(':') {
        Some((service, method)) => (service, Some(method)),
        None => (path, None),
    };
    let well_formed =
        |part: &str| !part.is_empty() && !part.contains(|c: char| c == ':' || c.is_whitespace());
    if !well_formed(service) || !method.is_none_or(well_formed) {
        out.push(Violation::new(
            rule.path_of("path"),
            "must be a Dubbo service interface (com.shop.CartService) or service:method",
        ));
        return None;
    }
    Some(Service::Dubbo {
        only: Some(DubboTarget {
            service: service.to_owned(),
            method: method.map(str::to_owned),
        }),
    })
}

/// `tag`: it becomes a Kubernetes label value on the canary pods.
fn read_tag(object: &Object, out: &mut Vec<Violation>) -> Option<String> {
    let tag = object.required_string("tag", out)?;
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    let edges = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    let valid = tag.len() <= MAX_TAG
        && tag.chars().all(allowed)
        && edges(tag.chars().next())
        && edges(tag.chars().last());
    if !valid {
        out.push(Violation::new(
            object.path_of("tag"),
            format!(
                "must be 1 to {MAX_TAG} letters, digits, '.', '_' or '-', starting and ending with a letter or digit"
            ),
        ));
        return None;
    }
    Some(tag.to_owned())
}
