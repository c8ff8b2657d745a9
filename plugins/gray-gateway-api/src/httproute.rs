//! Rendering a rule for Gateway API: the two Services and one HTTPRoute `<name>`, with
//! weighted backendRefs for PERCENT and one route rule per gray rule for CONTENT (header,
//! query and cookie-header matches), refusing what an HTTPRoute cannot match.

use gray_rules::model::{Combine, Condition, Content, ContentRule, GrayRule, Service, Source};
use gray_rules::pattern::{ValueMatch, cookie_header_pattern, is_token, value_match};
use gray_rules::{Target, Violation};
use serde_json::{Value, json};

/// Gateway API's limits: rules per route, header (or query) matches per match, matches
/// per route.
const MAX_ROUTE_RULES: usize = 16;
const MAX_MATCH_ENTRIES: usize = 16;
const MAX_ROUTE_MATCHES: usize = 128;
/// The request header that carries the tag downstream (`carryData`).
pub const TAG_HEADER: &str = "x-gray-tag";

/// The Services and the HTTPRoute, or what an HTTPRoute cannot express.
pub fn render(rule: &GrayRule, target: &Target) -> Result<Vec<Value>, Vec<Violation>> {
    let rules = match rule {
        GrayRule::Percent(_) => vec![percent_rule(target)],
        GrayRule::Content(content) => content_rules(content, target)?,
    };
    let [stable, canary] = target.services();
    Ok(vec![stable, canary, route(target, rules)])
}

fn route(target: &Target, rules: Vec<Value>) -> Value {
    let mut spec = json!({"hostnames": [target.hostname], "rules": rules});
    if let Some(gateway) = &target.gateway {
        spec["parentRefs"] = json!([{"name": gateway.name, "namespace": gateway.namespace}]);
    }
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": target.metadata(&target.name),
        "spec": spec,
    })
}

fn backend(service: String, target: &Target, weight: u8) -> Value {
    json!({"name": service, "port": target.http_port(), "weight": weight})
}

fn path_prefix(path: &str) -> Value {
    json!({"path": {"type": "PathPrefix", "value": path}})
}

/// The step's weight (not the rule's rate: the host passes the current step's share).
fn percent_rule(target: &Target) -> Value {
    let weight = target.canary_weight;
    json!({
        "matches": [path_prefix("/")],
        "backendRefs": [
            backend(target.stable_service(), target, 100u8.saturating_sub(weight)),
            backend(target.canary_service(), target, weight),
        ],
    })
}

/// One route rule per gray rule to the canary, then `/` to stable.
fn content_rules(content: &Content, target: &Target) -> Result<Vec<Value>, Vec<Violation>> {
    let mut out = Vec::new();
    if content.rules.len() >= MAX_ROUTE_RULES {
        out.push(Violation::new(
            "content.rules",
            format!(
                "an HTTPRoute holds at most {MAX_ROUTE_RULES} rules: {} gray rules and the stable one",
                MAX_ROUTE_RULES - 1
            ),
        ));
    }
    let mut canary = backend(target.canary_service(), target, 1);
    if content.carry_data {
        canary["filters"] = json!([{
            "type": "RequestHeaderModifier",
            "requestHeaderModifier": {"set": [{"name": TAG_HEADER, "value": content.tag}]},
        }]);
    }
    let mut rules = Vec::new();
    let mut match_count = 1;
    for rule in &content.rules {
        if let Some(matches) = rule_matches(rule, &mut out) {
            match_count += matches.len();
            rules.push(json!({"matches": matches, "backendRefs": [canary.clone()]}));
        }
    }
    if match_count > MAX_ROUTE_MATCHES {
        out.push(Violation::new(
            "content.rules",
            format!("an HTTPRoute holds at most {MAX_ROUTE_MATCHES} matches over all its rules"),
        ));
    }
    rules.push(json!({
        "matches": [path_prefix("/")],
        "backendRefs": [backend(target.stable_service(), target, 1)],
    }));
    if out.is_empty() { Ok(rules) } else { Err(out) }
}

/// Where a condition goes in an HTTPRoute match.
#[derive(Clone, Copy, PartialEq, Eq)]
enum List {
    Headers,
    QueryParams,
}

impl List {
    fn key(self) -> &'static str {
        match self {
            List::Headers => "headers",
            List::QueryParams => "queryParams",
        }
    }
}

/// One condition as an entry of a match's `headers` or `queryParams`.
struct Entry<'c> {
    condition: &'c Condition,
    list: List,
    /// The name the match compares (`cookie` for a cookie condition).
    name: String,
    value: Value,
}

/// AND: one match with every condition; OR: one match per condition; both with the path.
fn rule_matches(rule: &ContentRule, out: &mut Vec<Violation>) -> Option<Vec<Value>> {
    let Service::SpringCloud { path } = &rule.service else {
        out.push(Violation::new(
            format!("{}.serviceType", rule.path),
            "an HTTPRoute cannot match Dubbo calls",
        ));
        return None;
    };
    let entries = rule
        .conditions
        .iter()
        .map(|condition| entry(condition, out))
        .collect::<Vec<_>>()
        .into_iter()
        .collect::<Option<Vec<_>>>()?;
    match rule.combine {
        Combine::Or => Some(
            entries
                .iter()
                .map(|e| http_match(path, std::slice::from_ref(e)))
                .collect(),
        ),
        Combine::And => check_and(rule, &entries, out).then(|| vec![http_match(path, &entries)]),
    }
}

/// An HTTPRoute match heeds only the first entry of a name and holds at most 16 of each
/// list, so an AND must fit that.
fn check_and(rule: &ContentRule, entries: &[Entry], out: &mut Vec<Violation>) -> bool {
    let before = out.len();
    for (j, entry) in entries.iter().enumerate() {
        let same_name = |other: &&Entry| {
            other.list == entry.list
                && match entry.list {
                    List::Headers => other.name.eq_ignore_ascii_case(&entry.name),
                    List::QueryParams => other.name == entry.name,
                }
        };
        if let Some(first) = entries[..j].iter().find(same_name) {
            let field = match entry.condition.source {
                Source::Cookie(_) => "type",
                _ => "param",
            };
            out.push(Violation::new(
                format!("{}.{field}", entry.condition.path),
                format!(
                    "an HTTPRoute match considers only its first condition on the {} {:?} ({} is one)",
                    if entry.list == List::Headers { "header" } else { "query parameter" },
                    entry.name,
                    first.condition.path
                ),
            ));
        }
    }
    for list in [List::Headers, List::QueryParams] {
        if entries.iter().filter(|e| e.list == list).count() > MAX_MATCH_ENTRIES {
            out.push(Violation::new(
                format!("{}.conditions", rule.path),
                format!(
                    "an HTTPRoute match holds at most {MAX_MATCH_ENTRIES} {}",
                    list.key()
                ),
            ));
        }
    }
    out.len() == before
}

fn http_match(path: &str, entries: &[Entry]) -> Value {
    let mut http_match = path_prefix(path);
    for list in [List::Headers, List::QueryParams] {
        let values: Vec<Value> = entries
            .iter()
            .filter(|e| e.list == list)
            .map(|e| e.value.clone())
            .collect();
        if !values.is_empty() {
            http_match[list.key()] = Value::Array(values);
        }
    }
    http_match
}

fn entry<'c>(condition: &'c Condition, out: &mut Vec<Violation>) -> Option<Entry<'c>> {
    let field = |key: &str| format!("{}.{key}", condition.path);
    let mut refuse = |key: &str, message: String| {
        out.push(Violation::new(field(key), message));
        None
    };
    let cond_refusal = || {
        format!(
            "an HTTPRoute cannot match cond {}: only =, in and regex",
            condition.test.cond()
        )
    };
    let (list, name, value_match) = match &condition.source {
        Source::Header(name) | Source::Param(name) if !is_token(name) => {
            return refuse(
                "param",
                format!("{name:?} is not a valid HTTP header or query parameter name"),
            );
        }
        Source::Header(name) => (
            List::Headers,
            name.to_ascii_lowercase(),
            value_match(&condition.test),
        ),
        Source::Param(name) => (
            List::QueryParams,
            name.clone(),
            value_match(&condition.test),
        ),
        Source::Cookie(name) => (
            List::Headers,
            "cookie".to_owned(),
            cookie_header_pattern(name, &condition.test).map(ValueMatch::FullRegex),
        ),
        Source::Body(_) => {
            return refuse("type", "an HTTPRoute cannot match a request body".into());
        }
        Source::Argument { .. } => {
            return refuse("index", "an HTTPRoute cannot match Dubbo arguments".into());
        }
    };
    let Some(value_match) = value_match else {
        return refuse("cond", cond_refusal());
    };
    let (kind, value) = match value_match {
        ValueMatch::Exact(value) => ("Exact", value),
        ValueMatch::FullRegex(pattern) => ("RegularExpression", pattern),
    };
    Some(Entry {
        condition,
        list,
        value: json!({"type": kind, "name": name, "value": value}),
        name,
    })
}
