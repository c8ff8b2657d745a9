//! The golden set (feature `golden`): the rules both plugins' golden files are rendered
//! from, and the check of a render against its file. `UPDATE_GOLDEN=1 cargo test`
//! rewrites the files; otherwise they are compared as JSON, not as text.

use std::path::Path;

use serde_json::{Value, json};

use crate::target::{GatewayRef, RenderError, ServicePort, Target};

/// One rule of the golden set, by file name.
pub struct Case {
    pub name: &'static str,
    pub rule: Value,
}

/// PERCENT; header AND query; cookie; OR across rules; OR within a rule; carryData.
pub fn cases() -> Vec<Case> {
    let http_rule = |path: &str, condition: Value| json!({"serviceType": "springCloud", "path": path, "conditions": [condition]});
    vec![
        Case {
            name: "percent",
            rule: json!({"grayType": "PERCENT", "percent": {"rate": 50, "tag": "canary"}}),
        },
        Case {
            name: "header-and-query",
            rule: json!({"grayType": "CONTENT", "content": {"ruleName": "eu testers", "tag": "beta", "rules": [{
                "serviceType": "springCloud", "path": "/api", "condition": "AND",
                "conditions": [
                    {"type": "header", "param": "X-User", "cond": "=", "value": "alice"},
                    {"type": "param", "param": "region", "cond": "in", "value": "eu-west, eu-north"}]}]}}),
        },
        Case {
            name: "cookie",
            rule: json!({"grayType": "CONTENT", "content": {"tag": "beta", "rules": [
                http_rule("/", json!({"type": "cookie", "param": "canary", "cond": "=", "value": "always"}))]}}),
        },
        Case {
            name: "or-across-rules",
            rule: json!({"grayType": "CONTENT", "content": {"tag": "beta", "rules": [
                http_rule("/", json!({"type": "header", "param": "x-user", "cond": "in", "value": "alice,bob"})),
                http_rule("/", json!({"type": "cookie", "param": "beta", "cond": "=", "value": "1"}))]}}),
        },
        Case {
            name: "header-or-cookie",
            rule: json!({"grayType": "CONTENT", "content": {"tag": "beta", "rules": [{
                "serviceType": "springCloud", "path": "/api", "condition": "OR",
                "conditions": [
                    {"type": "header", "param": "x-user", "cond": "in", "value": "alice,bob"},
                    {"type": "cookie", "param": "beta", "cond": "=", "value": "always"}]}]}}),
        },
        Case {
            name: "carry-data",
            rule: json!({"grayType": "CONTENT", "content": {"tag": "v2.1", "carryData": true, "rules": [
                http_rule("/", json!({"type": "header", "param": "x-canary", "cond": "regex", "value": "(?i)yes|on"}))]}}),
        },
    ]
}

/// The target every golden case renders for: step weight 20, unlike the PERCENT rate.
pub fn target() -> Target {
    let pairs = |items: &[(&str, &str)]| {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
    };
    Target {
        namespace: "shop".into(),
        name: "cart-gray".into(),
        hostname: "cart.shop.svc".into(),
        ports: vec![ServicePort {
            name: "http".into(),
            port: 80,
            target_port: 8080,
            protocol: "TCP".into(),
        }],
        stable_selector: pairs(&[("app", "cart"), ("wharf.dev/revision", "3")]),
        canary_selector: pairs(&[("app", "cart"), ("wharf.dev/revision", "4")]),
        canary_weight: 20,
        labels: pairs(&[
            ("app.kubernetes.io/managed-by", "wharf"),
            ("wharf.dev/gray-change", "co-42"),
        ]),
        gateway: Some(GatewayRef {
            name: "wharf".into(),
            namespace: "wharf-system".into(),
        }),
    }
}

/// Compares a render of `case` with `<dir>/<case>.json` (`objects`, or the `unsupported`
/// violations of a refusal), or rewrites the file under `UPDATE_GOLDEN=1`.
pub fn check(dir: &Path, case: &Case, rendered: &Result<Vec<Value>, RenderError>) {
    let outcome = match rendered {
        Ok(objects) => json!({"objects": objects}),
        Err(RenderError::Unsupported(violations)) => json!({"unsupported": violations}),
        Err(other) => panic!("{}: {other}", case.name),
    };
    let mut document = json!({"rule": case.rule, "target": target()});
    document
        .as_object_mut()
        .expect("an object")
        .extend(outcome.as_object().expect("an object").clone());
    let file = dir.join(format!("{}.json", case.name));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        let text = serde_json::to_string_pretty(&document).expect("JSON") + "\n";
        std::fs::write(&file, text).unwrap_or_else(|e| panic!("writing {}: {e}", file.display()));
        return;
    }
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", file.display()));
    let expected: Value = serde_json::from_str(&text).expect("golden files are JSON");
    assert!(
        expected == document,
        "{} differs from the render (UPDATE_GOLDEN=1 rewrites it):\n{}",
        file.display(),
        serde_json::to_string_pretty(&document).expect("JSON")
    );
}
