//! Rendering a rule for ingress-nginx: the two Services, a main Ingress `<name>` to stable
//! and a canary Ingress `<name>-canary` whose annotations (canary-weight, canary-by-header
//! with a value or pattern, canary-by-cookie) select the canary, refusing what they
//! cannot express.

use gray_rules::model::{Combine, Condition, Content, GrayRule, Service, Source, Test};
use gray_rules::pattern::{ValueMatch, is_token, value_match};
use gray_rules::{Target, Violation};
use serde_json::{Map, Value, json};

const ANNOTATION_PREFIX: &str = "nginx.ingress.kubernetes.io/";
/// ingress-nginx sends a request to the canary by cookie only when the cookie has this value.
const COOKIE_ALWAYS: &str = "always";

/// The Services and both Ingresses, or what the canary annotations cannot express.
pub fn render(rule: &GrayRule, target: &Target) -> Result<Vec<Value>, Vec<Violation>> {
    let (path, mut annotations) = match rule {
        GrayRule::Percent(_) => ("/", percent_annotations(target)),
        GrayRule::Content(content) => content_annotations(content)?,
    };
    annotations.insert(annotation("canary"), json!("true"));
    let mut main_paths = vec!["/"];
    if path != "/" {
        main_paths.push(path);
    }
    let [stable, canary] = target.services();
    Ok(vec![
        stable,
        canary,
        ingress(
            target,
            &target.name,
            &main_paths,
            target.stable_service(),
            None,
        ),
        ingress(
            target,
            &target.canary_service(),
            &[path],
            target.canary_service(),
            Some(annotations),
        ),
    ])
}

fn annotation(key: &str) -> String {
    format!("{ANNOTATION_PREFIX}{key}")
}

fn ingress(
    target: &Target,
    name: &str,
    paths: &[&str],
    service: String,
    annotations: Option<Map<String, Value>>,
) -> Value {
    let paths: Vec<Value> = paths
        .iter()
        .map(|path| {
            json!({
                "path": path,
                "pathType": "Prefix",
                "backend": {"service": {"name": service, "port": {"number": target.http_port()}}},
            })
        })
        .collect();
    let mut metadata = target.metadata(name);
    if let Some(annotations) = annotations {
        metadata["annotations"] = Value::Object(annotations);
    }
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata,
        "spec": {
            "ingressClassName": "nginx",
            "rules": [{"host": target.hostname, "http": {"paths": paths}}],
        },
    })
}

/// The step's weight out of 100 (not the rule's rate: the host passes the step's share).
fn percent_annotations(target: &Target) -> Map<String, Value> {
    Map::from_iter([
        (
            annotation("canary-weight"),
            json!(target.canary_weight.to_string()),
        ),
        (annotation("canary-weight-total"), json!("100")),
    ])
}

/// ingress-nginx tries the canary header, then the cookie, then the weight: an OR of at
/// most one header and one cookie condition, on one path.
fn content_annotations(content: &Content) -> Result<(&str, Map<String, Value>), Vec<Violation>> {
    let mut out = Vec::new();
    let mut annotations = Map::new();
    if content.carry_data {
        out.push(Violation::new(
            "content.carryData",
            "ingress-nginx canary annotations cannot add a request header carrying the tag",
        ));
    }
    let mut shared_path: Option<(&str, &str)> = None;
    let mut header: Option<&str> = None;
    let mut cookie: Option<&str> = None;
    for rule in &content.rules {
        let Service::SpringCloud { path } = &rule.service else {
            out.push(Violation::new(
                format!("{}.serviceType", rule.path),
                "ingress-nginx cannot route Dubbo calls",
            ));
            continue;
        };
        match shared_path {
            None => shared_path = Some((path, &rule.path)),
            Some((first, first_rule)) if first != path => out.push(Violation::new(
                format!("{}.path", rule.path),
                format!(
                    "a canary Ingress has one path: every rule needs {first_rule}'s path {first}"
                ),
            )),
            Some(_) => {}
        }
        if rule.conditions.len() > 1 && rule.combine == Combine::And {
            out.push(Violation::new(
                format!("{}.condition", rule.path),
                "ingress-nginx tries the canary header, then the cookie, then the weight: it can OR conditions but not AND them",
            ));
        }
        for condition in &rule.conditions {
            let field = |key: &str| format!("{}.{key}", condition.path);
            match &condition.source {
                Source::Header(name) => match header {
                    Some(first) => out.push(Violation::new(
                        field("type"),
                        format!("ingress-nginx routes by at most one header ({first} is it)"),
                    )),
                    None => {
                        header = Some(&condition.path);
                        header_annotations(condition, name, &mut annotations, &mut out);
                    }
                },
                Source::Cookie(name) => match cookie {
                    Some(first) => out.push(Violation::new(
                        field("type"),
                        format!("ingress-nginx routes by at most one cookie ({first} is it)"),
                    )),
                    None => {
                        cookie = Some(&condition.path);
                        cookie_annotation(condition, name, &mut annotations, &mut out);
                    }
                },
                Source::Param(_) | Source::Body(_) | Source::Argument { .. } => {
                    let what = match condition.source {
                        Source::Param(_) => "a query parameter",
                        Source::Body(_) => "a request body",
                        _ => "a Dubbo argument",
                    };
                    out.push(Violation::new(
                        field("type"),
                        format!("ingress-nginx canary annotations cannot match {what}"),
                    ));
                }
            }
        }
    }
    match shared_path {
        Some((path, _)) if out.is_empty() => Ok((path, annotations)),
        _ => Err(out),
    }
}

fn header_annotations(
    condition: &Condition,
    name: &str,
    annotations: &mut Map<String, Value>,
    out: &mut Vec<Violation>,
) {
    if !is_token(name) {
        out.push(Violation::new(
            format!("{}.param", condition.path),
            format!("{name:?} is not a valid HTTP header name"),
        ));
        return;
    }
    let (key, value) = match value_match(&condition.test) {
        Some(ValueMatch::Exact(value)) => ("canary-by-header-value", value),
        Some(ValueMatch::FullRegex(pattern)) => ("canary-by-header-pattern", pattern),
        None => {
            out.push(Violation::new(
                format!("{}.cond", condition.path),
                format!(
                    "ingress-nginx matches a header only by =, in or regex, not {}",
                    condition.test.cond()
                ),
            ));
            return;
        }
    };
    annotations.insert(
        annotation("canary-by-header"),
        json!(name.to_ascii_lowercase()),
    );
    annotations.insert(annotation(key), json!(value));
}

fn cookie_annotation(
    condition: &Condition,
    name: &str,
    annotations: &mut Map<String, Value>,
    out: &mut Vec<Violation>,
) {
    let (key, message) = match &condition.test {
        Test::Equals(value) if value == COOKIE_ALWAYS => {
            annotations.insert(annotation("canary-by-cookie"), json!(name));
            return;
        }
        Test::Equals(_) => (
            "value",
            format!(
                "ingress-nginx routes by cookie only on the value {COOKIE_ALWAYS:?}: use cond = with value {COOKIE_ALWAYS}"
            ),
        ),
        other => (
            "cond",
            format!(
                "ingress-nginx routes by cookie only when it equals {COOKIE_ALWAYS:?}, not by {}",
                other.cond()
            ),
        ),
    };
    out.push(Violation::new(format!("{}.{key}", condition.path), message));
}
