//! Rendering for Gateway API: the golden files of the golden set, the refusals, and the
//! world's functions as the host calls them.

use std::path::Path;

use gray_rules::golden::{self, cases};
use gray_rules::{RenderError, render_with};
use serde_json::{Value, json};
use wharf_plugin_gray_gateway_api::{GrayGatewayApi, httproute, info};
use wharf_sdk::gray_router::{
    GatewayRef, GrayRouter, RouteError, SampleRequest, ServicePort, Target, Violation,
};

fn render(rule: &Value) -> Result<Vec<Value>, RenderError> {
    render_with(rule, &golden::target(), httproute::render)
}

fn refusals(rule: Value) -> Vec<(String, String)> {
    match render(&rule) {
        Err(RenderError::Unsupported(violations)) => violations
            .into_iter()
            .map(|v| (v.field, v.message))
            .collect(),
        other => panic!("expected unsupported, got {other:?}"),
    }
}

fn refused_fields(rule: Value) -> Vec<String> {
    refusals(rule).into_iter().map(|(field, _)| field).collect()
}

fn http(condition: &str, conditions: Value) -> Value {
    json!({"grayType": "CONTENT", "content": {"tag": "beta", "rules": [
        {"serviceType": "springCloud", "path": "/", "condition": condition, "conditions": conditions}]}})
}

fn header(cond: &str, value: &str) -> Value {
    json!({"type": "header", "param": "x-user", "cond": cond, "value": value})
}

#[test]
fn the_golden_set_renders_as_its_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    for case in cases() {
        golden::check(&dir, &case, &render(&case.rule));
    }
}

#[test]
fn percent_weights_follow_the_steps_canary_weight() {
    let objects = render(&cases()[0].rule).expect("renders");
    let refs = &objects[2]["spec"]["rules"][0]["backendRefs"];
    assert_eq!(refs[0]["weight"], 80);
    assert_eq!(refs[1]["weight"], 20);
}

#[test]
fn an_httproute_refuses_a_body_condition() {
    let rule = http(
        "AND",
        json!([{"type": "body", "param": "user.id", "cond": "=", "value": "7"}]),
    );
    assert_eq!(
        refusals(rule),
        [(
            "content.rules[0].conditions[0].type".to_owned(),
            "an HTTPRoute cannot match a request body".to_owned()
        )]
    );
}

#[test]
fn an_httproute_refuses_conds_it_cannot_match() {
    for cond in ["!=", ">", "<", ">=", "<=", "%"] {
        let rule = http("AND", json!([header(cond, "5")]));
        let refused = refusals(rule);
        assert_eq!(
            refused[0].0, "content.rules[0].conditions[0].cond",
            "{cond}"
        );
        assert!(refused[0].1.contains(cond), "{refused:?}");
    }
    let modulo = http(
        "AND",
        json!([{"type": "param", "param": "uid", "cond": "mod", "operator": "=", "value": "1"}]),
    );
    assert_eq!(
        refused_fields(modulo),
        ["content.rules[0].conditions[0].cond"]
    );
    let cookie = http(
        "AND",
        json!([{"type": "cookie", "param": "beta", "cond": "!=", "value": "1"}]),
    );
    assert_eq!(
        refused_fields(cookie),
        ["content.rules[0].conditions[0].cond"]
    );
}

#[test]
fn an_httproute_refuses_dubbo_rules() {
    let rule = json!({"grayType": "CONTENT", "content": {"tag": "beta", "rules": [
        {"serviceType": "springCloud", "path": "/", "conditions": [header("=", "a")]},
        {"serviceType": "Dubbo", "conditions": [{"index": 0, "expr": "$", "cond": "=", "value": "1"}]}]}});
    assert_eq!(
        refusals(rule),
        [(
            "content.rules[1].serviceType".to_owned(),
            "an HTTPRoute cannot match Dubbo calls".to_owned()
        )]
    );
}

#[test]
fn every_refusal_of_a_rule_is_reported_at_once() {
    let rule = http(
        "OR",
        json!([
        {"type": "body", "param": "a", "cond": "=", "value": "1"},
        header("!=", "a"),
        {"type": "header", "param": "bad name", "cond": "=", "value": "1"}]),
    );
    assert_eq!(
        refused_fields(rule),
        [
            "content.rules[0].conditions[0].type",
            "content.rules[0].conditions[1].cond",
            "content.rules[0].conditions[2].param",
        ]
    );
}

#[test]
fn an_and_match_cannot_hold_two_conditions_on_one_header() {
    // Gateway API heeds only the first header match of a name: two cookies are both `cookie`.
    let cookies = http(
        "AND",
        json!([
        {"type": "cookie", "param": "a", "cond": "=", "value": "1"},
        {"type": "cookie", "param": "b", "cond": "=", "value": "2"}]),
    );
    assert_eq!(
        refused_fields(cookies),
        ["content.rules[0].conditions[1].type"]
    );
    let same_header = http(
        "AND",
        json!([header("=", "a"), {"type": "header", "param": "X-User", "cond": "regex", "value": "a.*"}]),
    );
    assert_eq!(
        refused_fields(same_header),
        ["content.rules[0].conditions[1].param"]
    );
    // OR puts each condition in its own match, so the same names are fine there.
    let or = http("OR", json!([header("=", "a"), header("=", "b")]));
    let objects = render(&or).expect("renders");
    assert_eq!(
        objects[2]["spec"]["rules"][0]["matches"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
}

#[test]
fn an_httproute_holds_at_most_fifteen_gray_rules() {
    let rule = json!({"serviceType": "springCloud", "path": "/", "conditions": [header("=", "a")]});
    let with = |n: usize| json!({"grayType": "CONTENT", "content": {"tag": "beta", "rules": vec![rule.clone(); n]}});
    assert!(render(&with(15)).is_ok());
    assert_eq!(refused_fields(with(16)), ["content.rules"]);
}

#[test]
fn an_invalid_rule_is_invalid_before_it_is_unsupported() {
    let rule = http(
        "AND",
        json!([{"type": "body", "param": "a", "cond": "regex", "value": "("}]),
    );
    assert!(
        matches!(render(&rule), Err(RenderError::InvalidRule(v)) if v[0].field == "content.rules[0].conditions[0].value")
    );
}

fn wit_target() -> Target {
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
        stable_selector: vec![("rev".into(), "1".into())],
        canary_selector: vec![("rev".into(), "2".into())],
        canary_weight: 10,
        labels: vec![("wharf.dev/gray-change".into(), "co-1".into())],
        gateway: Some(GatewayRef {
            name: "gw".into(),
            namespace: "infra".into(),
        }),
    }
}

#[test]
fn the_world_renders_json_text_for_the_hosts_target() {
    let rule = cases()[0].rule.to_string();
    let objects = GrayGatewayApi::render(rule, wit_target()).expect("renders");
    let objects: Vec<Value> = objects
        .iter()
        .map(|o| serde_json::from_str(o).expect("JSON"))
        .collect();
    let kinds: Vec<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
    assert_eq!(kinds, ["Service", "Service", "HTTPRoute"]);
    for object in &objects {
        assert_eq!(object["metadata"]["namespace"], "shop");
        assert_eq!(
            object["metadata"]["labels"],
            json!({"wharf.dev/gray-change": "co-1"})
        );
        assert!(
            object["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("cart-gray"))
        );
    }
    assert_eq!(
        objects[2]["spec"]["parentRefs"],
        json!([{"name": "gw", "namespace": "infra"}])
    );
    let mut no_gateway = wit_target();
    no_gateway.gateway = None;
    let route: Value = serde_json::from_str(
        &GrayGatewayApi::render(cases()[0].rule.to_string(), no_gateway).expect("renders")[2],
    )
    .expect("JSON");
    assert_eq!(route["spec"].get("parentRefs"), None);
}

#[test]
fn the_world_maps_each_failure_to_its_route_error() {
    assert_eq!(
        GrayGatewayApi::validate(r#"{"grayType": "BLUE"}"#.into()),
        Err(RouteError::InvalidRule(vec![Violation::new(
            "grayType",
            "must be PERCENT or CONTENT"
        )]))
    );
    let body = http(
        "AND",
        json!([{"type": "body", "param": "a", "cond": "=", "value": "1"}]),
    )
    .to_string();
    assert!(matches!(
        GrayGatewayApi::render(body, wit_target()),
        Err(RouteError::Unsupported(_))
    ));
    let mut portless = wit_target();
    portless.ports.clear();
    assert!(matches!(
        GrayGatewayApi::render(cases()[0].rule.to_string(), portless),
        Err(RouteError::InvalidTarget(message)) if message.contains("ports")
    ));
}

#[test]
fn the_world_evaluates_a_batch_in_order() {
    let rule = cases()[3].rule.to_string(); // x-user in alice,bob OR cookie beta=1
    let request = |headers: &[(&str, &str)]| SampleRequest {
        method: "GET".into(),
        path: "/".into(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        cookies: vec![],
        query: vec![],
        body: String::new(),
        dubbo: None,
    };
    let evaluations = GrayGatewayApi::evaluate(
        rule,
        vec![
            request(&[("x-user", "bob")]),
            request(&[("cookie", "beta=1")]),
            request(&[("x-user", "carol")]),
        ],
    )
    .expect("evaluates");
    let decided: Vec<(u8, &str)> = evaluations
        .iter()
        .map(|e| (e.canary_share, e.decided_by.as_str()))
        .collect();
    assert_eq!(
        decided,
        [
            (100, "content.rules[0].conditions[0]"),
            (100, "content.rules[1].conditions[0]"),
            (0, "")
        ]
    );
}

#[test]
fn manifest_matches_info() {
    let manifest = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/wharf-plugin.toml"));
    wharf_sdk::harness::assert_manifest_matches(manifest, &info());
}
