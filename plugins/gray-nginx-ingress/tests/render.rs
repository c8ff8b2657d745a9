//! Rendering for ingress-nginx: the golden files of the golden set, the refusals, and the
//! world's functions as the host calls them.

use std::path::Path;

use gray_rules::golden::{self, cases};
use gray_rules::{RenderError, render_with};
use serde_json::{Value, json};
use wharf_plugin_gray_nginx_ingress::{GrayNginxIngress, info, ingress};
use wharf_sdk::gray_router::{GrayRouter, RouteError, ServicePort, Target};

fn render(rule: &Value) -> Result<Vec<Value>, RenderError> {
    render_with(rule, &golden::target(), ingress::render)
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

fn content(rules: Value) -> Value {
    json!({"grayType": "CONTENT", "content": {"tag": "beta", "rules": rules}})
}

fn http_rule(path: &str, condition: &str, conditions: Value) -> Value {
    json!({"serviceType": "springCloud", "path": path, "condition": condition, "conditions": conditions})
}

fn header(param: &str, cond: &str, value: &str) -> Value {
    json!({"type": "header", "param": param, "cond": cond, "value": value})
}

fn cookie(cond: &str, value: &str) -> Value {
    json!({"type": "cookie", "param": "beta", "cond": cond, "value": value})
}

fn canary_annotations(objects: &[Value]) -> &Value {
    &objects[3]["metadata"]["annotations"]
}

#[test]
fn the_golden_set_renders_as_its_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    for case in cases() {
        golden::check(&dir, &case, &render(&case.rule));
    }
}

#[test]
fn percent_sets_the_steps_canary_weight_out_of_100() {
    let objects = render(&cases()[0].rule).expect("renders");
    assert_eq!(
        canary_annotations(&objects),
        &json!({
            "nginx.ingress.kubernetes.io/canary": "true",
            "nginx.ingress.kubernetes.io/canary-weight": "20",
            "nginx.ingress.kubernetes.io/canary-weight-total": "100",
        })
    );
}

#[test]
fn a_header_in_a_list_or_matching_a_regex_becomes_a_header_pattern() {
    let objects = render(&content(json!([http_rule(
        "/",
        "AND",
        json!([header("X-User", "in", "a.b,c")])
    )])))
    .expect("renders");
    assert_eq!(
        canary_annotations(&objects)["nginx.ingress.kubernetes.io/canary-by-header"],
        "x-user"
    );
    assert_eq!(
        canary_annotations(&objects)["nginx.ingress.kubernetes.io/canary-by-header-pattern"],
        r"^(a\.b|c)$"
    );
    let objects = render(&content(json!([http_rule(
        "/",
        "AND",
        json!([header("x-user", "regex", "al.*")])
    )])))
    .expect("renders");
    assert_eq!(
        canary_annotations(&objects)["nginx.ingress.kubernetes.io/canary-by-header-pattern"],
        "^(?:al.*)$"
    );
}

#[test]
fn a_rule_path_other_than_root_is_served_by_both_ingresses() {
    let objects = render(&content(json!([http_rule(
        "/api",
        "AND",
        json!([header("x-user", "=", "a")])
    )])))
    .expect("renders");
    let paths = |object: &Value| -> Vec<String> {
        object["spec"]["rules"][0]["http"]["paths"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                format!(
                    "{} -> {}",
                    p["path"].as_str().unwrap_or("?"),
                    p["backend"]["service"]["name"].as_str().unwrap_or("?")
                )
            })
            .collect()
    };
    assert_eq!(
        paths(&objects[2]),
        ["/ -> cart-gray-stable", "/api -> cart-gray-stable"]
    );
    assert_eq!(paths(&objects[3]), ["/api -> cart-gray-canary"]);
}

#[test]
fn ingress_nginx_refuses_an_and_of_two_conditions() {
    let rule = content(json!([http_rule(
        "/",
        "AND",
        json!([header("x-user", "=", "a"), cookie("=", "always")])
    )]));
    let refused = refusals(rule);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].0, "content.rules[0].condition");
    assert!(refused[0].1.contains("not AND"), "{refused:?}");
    // The same two conditions OR-ed are exactly what the annotations express.
    let or = content(json!([http_rule(
        "/",
        "OR",
        json!([header("x-user", "=", "a"), cookie("=", "always")])
    )]));
    let objects = render(&or).expect("renders");
    assert_eq!(
        canary_annotations(&objects)["nginx.ingress.kubernetes.io/canary-by-header-value"],
        "a"
    );
    assert_eq!(
        canary_annotations(&objects)["nginx.ingress.kubernetes.io/canary-by-cookie"],
        "beta"
    );
}

#[test]
fn ingress_nginx_refuses_a_cookie_that_is_not_always() {
    let refused = refusals(content(json!([http_rule(
        "/",
        "AND",
        json!([cookie("=", "1")])
    )])));
    assert_eq!(refused[0].0, "content.rules[0].conditions[0].value");
    assert!(
        refused[0].1.contains("only on the value \"always\""),
        "{refused:?}"
    );
    for cond in ["in", "regex", "!="] {
        assert_eq!(
            refused_fields(content(json!([http_rule(
                "/",
                "AND",
                json!([cookie(cond, "always")])
            )]))),
            ["content.rules[0].conditions[0].cond"],
            "{cond}"
        );
    }
}

#[test]
fn ingress_nginx_refuses_more_than_one_header_or_cookie() {
    let two_headers = content(json!([
        http_rule("/", "AND", json!([header("x-user", "=", "a")])),
        http_rule("/", "AND", json!([header("x-team", "=", "b")]))
    ]));
    assert_eq!(
        refused_fields(two_headers),
        ["content.rules[1].conditions[0].type"]
    );
    let two_cookies = content(json!([http_rule(
        "/",
        "OR",
        json!([cookie("=", "always"), {"type": "cookie", "param": "b", "cond": "=", "value": "always"}])
    )]));
    assert_eq!(
        refused_fields(two_cookies),
        ["content.rules[0].conditions[1].type"]
    );
}

#[test]
fn ingress_nginx_refuses_query_body_other_conds_and_split_paths() {
    let rule = content(json!([
        http_rule(
            "/",
            "OR",
            json!([
            {"type": "param", "param": "region", "cond": "=", "value": "eu"},
            {"type": "body", "param": "user.id", "cond": "=", "value": "7"},
            header("x-user", "!=", "a")])
        ),
        http_rule("/api", "AND", json!([cookie("=", "always")]))
    ]));
    assert_eq!(
        refused_fields(rule),
        [
            "content.rules[0].conditions[0].type",
            "content.rules[0].conditions[1].type",
            "content.rules[0].conditions[2].cond",
            "content.rules[1].path",
        ]
    );
}

#[test]
fn ingress_nginx_refuses_dubbo_and_carry_data() {
    let dubbo = content(
        json!([{"serviceType": "Dubbo", "conditions": [{"index": 0, "expr": "$", "cond": "=", "value": "1"}]}]),
    );
    assert_eq!(refused_fields(dubbo), ["content.rules[0].serviceType"]);
    let carry = json!({"grayType": "CONTENT", "content": {"tag": "beta", "carryData": true,
        "rules": [http_rule("/", "AND", json!([header("x-user", "=", "a")]))]}});
    assert_eq!(refused_fields(carry), ["content.carryData"]);
}

#[test]
fn the_world_renders_and_refuses_through_route_errors() {
    let target = Target {
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
        canary_weight: 30,
        labels: vec![],
        gateway: None,
    };
    let objects =
        GrayNginxIngress::render(cases()[0].rule.to_string(), target.clone()).expect("renders");
    let kinds: Vec<String> = objects
        .iter()
        .map(|o| {
            serde_json::from_str::<Value>(o).expect("JSON")["kind"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(kinds, ["Service", "Service", "Ingress", "Ingress"]);
    let and = content(json!([http_rule(
        "/",
        "AND",
        json!([header("x-user", "=", "a"), cookie("=", "always")])
    )]))
    .to_string();
    assert!(
        matches!(GrayNginxIngress::render(and, target), Err(RouteError::Unsupported(v)) if v[0].field == "content.rules[0].condition")
    );
    assert!(matches!(
        GrayNginxIngress::validate("[]".into()),
        Err(RouteError::InvalidRule(_))
    ));
}

#[test]
fn manifest_matches_info() {
    let manifest = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/wharf-plugin.toml"));
    wharf_sdk::harness::assert_manifest_matches(manifest, &info());
}
