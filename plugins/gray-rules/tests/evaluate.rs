//! Evaluation: the seed's own rule shapes, every cond, every condition type (body and Dubbo
//! arguments included), and what decided each request, in words.

use gray_rules::{DubboCall, Outcome, Sample, evaluate_json};
use serde_json::{Value, json};

fn evaluate(rule: &Value, samples: &[Sample]) -> Vec<Outcome> {
    evaluate_json(rule, samples).unwrap_or_else(|v| panic!("invalid rule {rule}: {v}"))
}

fn one(rule: &Value, sample: Sample) -> Outcome {
    evaluate(rule, &[sample]).remove(0)
}

fn get(path: &str) -> Sample {
    Sample {
        method: "GET".into(),
        path: path.into(),
        ..Sample::default()
    }
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn with_header(name: &str, value: &str) -> Sample {
    Sample {
        headers: pairs(&[(name, value)]),
        ..get("/")
    }
}

fn with_query(name: &str, value: &str) -> Sample {
    Sample {
        query: pairs(&[(name, value)]),
        ..get("/")
    }
}

fn with_body(body: &str) -> Sample {
    Sample {
        method: "POST".into(),
        body: body.into(),
        ..get("/")
    }
}

fn dubbo(service: &str, method: &str, arguments: &[&str]) -> Sample {
    Sample {
        dubbo: Some(DubboCall {
            service: service.into(),
            method: method.into(),
            arguments: arguments.iter().map(|a| a.to_string()).collect(),
        }),
        ..Sample::default()
    }
}

/// A CONTENT rule with one springCloud rule on `/` holding one condition.
fn single(kind: &str, param: &str, cond: &str, value: &str) -> Value {
    json!({"grayType": "CONTENT", "content": {"tag": "beta", "rules": [{"serviceType": "springCloud", "path": "/",
        "conditions": [{"type": kind, "param": param, "cond": cond, "value": value}]}]}})
}

fn modulo(operator: &str, value: &str) -> Value {
    json!({"grayType": "CONTENT", "content": {"tag": "beta", "rules": [{"serviceType": "springCloud", "path": "/",
        "conditions": [{"type": "param", "param": "uid", "cond": "mod", "operator": operator, "value": value}]}]}})
}

fn canary(outcome: &Outcome) -> bool {
    outcome.canary_share == 100
}

#[test]
fn the_seeds_percent_rule_sends_its_rate_to_its_tag() {
    // Seed 001's `percent` sample shape, filled in, as an object and as the table's array.
    for percent in [
        json!({"tag": "canary", "rate": 10}),
        json!([{"tag": "canary", "rate": 10}]),
    ] {
        let outcome = one(
            &json!({"grayType": "PERCENT", "percent": percent}),
            get("/"),
        );
        assert_eq!(
            outcome,
            Outcome {
                canary_share: 10,
                tag: "canary".into(),
                decided_by: "percent".into(),
                reason: "10% of requests reach canary".into(),
            }
        );
    }
}

#[test]
fn the_seeds_content_rule_shape_routes_matching_requests_to_its_tag() {
    // Seed 001's `content` sample shape with every field it sends; for springCloud without
    // the Dubbo-only `index`, for Dubbo with the HTTP-only fields left empty.
    let rule = json!({"grayType": "CONTENT", "content": {"ruleName": "internal users", "tag": "beta", "carryData": false, "rules": [
        {"serviceType": "springcloud", "path": "/api", "condition": "OR", "conditions": [
            {"expr": "", "type": "header", "param": "x-user", "cond": "in", "value": "alice,bob", "operator": ""}]},
        {"serviceType": "Dubbo", "path": "com.shop.CartService", "condition": "AND", "conditions": [
            {"index": 0, "expr": "user.id", "type": "", "param": "", "cond": "mod", "value": "0", "operator": "="}]}]}});
    let bob = Sample {
        headers: pairs(&[("x-user", "bob")]),
        ..get("/api/cart")
    };
    let outcomes = evaluate(
        &rule,
        &[
            bob,
            Sample {
                headers: pairs(&[("x-user", "carol")]),
                ..get("/api/cart")
            },
            dubbo("com.shop.CartService", "add", &[r#"{"user": {"id": 300}}"#]),
            dubbo("com.shop.CartService", "add", &[r#"{"user": {"id": 301}}"#]),
        ],
    );
    assert_eq!(
        outcomes[0],
        Outcome {
            canary_share: 100,
            tag: "beta".into(),
            decided_by: "content.rules[0].conditions[0]".into(),
            reason: r#"header x-user = "bob" is in [alice, bob]"#.into(),
        }
    );
    assert_eq!(
        outcomes[1],
        Outcome {
            canary_share: 0,
            tag: "beta".into(),
            decided_by: String::new(),
            reason: "no rule matched".into(),
        }
    );
    assert_eq!(outcomes[2].decided_by, "content.rules[1].conditions[0]");
    assert_eq!(
        outcomes[2].reason,
        r#"argument 0 user.id = "300": 300 mod 100 = 0 = 0"#
    );
    assert!(!canary(&outcomes[3]));
}

#[test]
fn equals_and_not_equals_compare_exactly() {
    let rule = single("header", "x-user", "=", "alice");
    assert_eq!(
        one(&rule, with_header("x-user", "alice")).reason,
        r#"header x-user = "alice""#
    );
    assert!(!canary(&one(&rule, with_header("x-user", "Alice"))));
    let rule = single("header", "x-user", "!=", "alice");
    let outcome = one(&rule, with_header("x-user", "bob"));
    assert_eq!(outcome.reason, r#"header x-user = "bob" is not "alice""#);
    assert!(!canary(&one(&rule, with_header("x-user", "alice"))));
}

#[test]
fn a_missing_value_never_matches_not_even_not_equals() {
    for cond in ["!=", "=", "in", "regex"] {
        let rule = single("header", "x-user", cond, "alice");
        assert!(!canary(&one(&rule, get("/"))), "{cond}");
    }
    assert!(!canary(&one(&single("param", "age", "<", "100"), get("/"))));
}

#[test]
fn header_names_compare_in_any_case() {
    let rule = single("header", "X-User", "=", "alice");
    assert!(canary(&one(&rule, with_header("x-user", "alice"))));
    assert!(canary(&one(&rule, with_header("X-USER", "alice"))));
}

#[test]
fn in_matches_one_of_the_trimmed_items() {
    let rule = single("param", "region", "in", " eu , us ");
    assert!(canary(&one(&rule, with_query("region", "us"))));
    assert!(!canary(&one(&rule, with_query("region", " us"))));
    assert!(!canary(&one(&rule, with_query("region", "eu,us"))));
    assert_eq!(
        one(&rule, with_query("region", "eu")).reason,
        r#"param region = "eu" is in [eu, us]"#
    );
}

#[test]
fn comparisons_are_numeric_and_need_numbers_on_both_sides() {
    let cases = [
        (">", "18", "19", true),
        (">", "18", "18", false),
        (">", "9", "10", true), // numbers, not strings
        ("<", "18", "17.5", true),
        ("<", "18", "18", false),
        (">=", "18", "18", true),
        (">=", "18", "17", false),
        ("<=", "-1", "-1", true),
        ("<=", "-1", "0", false),
        (">", "18", "old", false),
        (">", "18", "", false),
    ];
    for (cond, bound, value, expected) in cases {
        let outcome = one(
            &single("param", "age", cond, bound),
            with_query("age", value),
        );
        assert_eq!(canary(&outcome), expected, "{value} {cond} {bound}");
    }
    assert_eq!(
        one(&single("param", "age", ">=", "18"), with_query("age", "21")).reason,
        r#"param age = "21" is at least 18"#
    );
}

#[test]
fn percent_buckets_values_by_fnv1a() {
    // fnv1a32("a") = 0xe40c292c, 3826002220 % 100 = 20; fnv1a32("bob") % 100 = 44.
    assert!(canary(&one(
        &single("header", "x-user", "%", "21"),
        with_header("x-user", "a")
    )));
    assert!(!canary(&one(
        &single("header", "x-user", "%", "20"),
        with_header("x-user", "a")
    )));
    assert!(!canary(&one(
        &single("header", "x-user", "%", "0"),
        with_header("x-user", "a")
    )));
    assert!(canary(&one(
        &single("header", "x-user", "%", "100"),
        with_header("x-user", "anyone")
    )));
    assert_eq!(
        one(
            &single("header", "x-user", "%", "50"),
            with_header("x-user", "bob")
        )
        .reason,
        r#"header x-user = "bob" falls in the first 50% (bucket 44)"#
    );
}

#[test]
fn mod_compares_the_remainder_by_its_operator() {
    let cases = [
        ("=", "23", "123", true),
        ("=", "23", "124", false),
        ("!=", "23", "124", true),
        (">", "50", "251", true),
        ("<", "50", "251", false),
        (">=", "51", "251", true),
        ("<=", "50", "-50", true), // rem_euclid: -50 mod 100 = 50
        ("=", "50", "-50", true),
        ("=", "0", "12.0", false), // not an integer
        ("=", "0", "abc", false),
    ];
    for (operator, remainder, value, expected) in cases {
        let outcome = one(&modulo(operator, remainder), with_query("uid", value));
        assert_eq!(
            canary(&outcome),
            expected,
            "{value} mod 100 {operator} {remainder}"
        );
    }
    assert_eq!(
        one(&modulo(">=", "20"), with_query("uid", "123")).reason,
        r#"param uid = "123": 123 mod 100 = 23 >= 20"#
    );
}

#[test]
fn regex_must_match_the_whole_value() {
    let rule = single("header", "x-user", "regex", "al.*|bob");
    assert!(canary(&one(&rule, with_header("x-user", "alice"))));
    assert!(canary(&one(&rule, with_header("x-user", "bob"))));
    assert!(
        !canary(&one(&rule, with_header("x-user", "bobby"))),
        "anchored at both ends"
    );
    assert!(!canary(&one(&rule, with_header("x-user", "xalice"))));
    assert_eq!(
        one(&rule, with_header("x-user", "bob")).reason,
        r#"header x-user = "bob" matches regex al.*|bob"#
    );
}

#[test]
fn cookies_are_read_from_cookies_or_from_the_cookie_header() {
    let rule = single("cookie", "beta", "=", "1");
    let given = Sample {
        cookies: pairs(&[("beta", "1")]),
        ..get("/")
    };
    assert_eq!(one(&rule, given).reason, r#"cookie beta = "1""#);
    assert!(canary(&one(
        &rule,
        with_header("cookie", "session=x; beta=1; theme=dark")
    )));
    assert!(canary(&one(&rule, with_header("Cookie", "beta=1"))));
    assert!(!canary(&one(
        &rule,
        with_header("cookie", "xbeta=1; beta=2")
    )));
    assert!(!canary(&one(&rule, with_header("x-beta", "1"))));
}

#[test]
fn body_conditions_read_json_by_dotted_path_or_form_fields() {
    let rule = |param: &str, value: &str| single("body", param, "=", value);
    let order = r#"{"user": {"id": 7, "vip": true, "name": "Ada"}, "items": [{"sku": "A-1"}], "note": null}"#;
    assert!(
        canary(&one(&rule("user.id", "7"), with_body(order))),
        "a number as its JSON text"
    );
    assert!(canary(&one(&rule("user.vip", "true"), with_body(order))));
    assert!(
        canary(&one(&rule("user.name", "Ada"), with_body(order))),
        "a string as its content"
    );
    assert!(canary(&one(&rule("items.0.sku", "A-1"), with_body(order))));
    assert!(
        canary(&one(&rule("items", r#"[{"sku":"A-1"}]"#), with_body(order))),
        "an array as its JSON text"
    );
    assert!(
        !canary(&one(&single("body", "note", "!=", "x"), with_body(order))),
        "null is no value"
    );
    assert!(!canary(&one(&rule("items.1.sku", "A-1"), with_body(order))));
    let form = "user=ada+lovelace&plan=pro%2Bplus&empty=";
    assert!(canary(&one(&rule("user", "ada lovelace"), with_body(form))));
    assert!(canary(&one(&rule("plan", "pro+plus"), with_body(form))));
    assert!(!canary(&one(&rule("user.id", "7"), with_body(""))));
    assert_eq!(
        one(&rule("user.id", "7"), with_body(order)).reason,
        r#"body user.id = "7""#
    );
}

#[test]
fn dubbo_conditions_read_arguments_by_index_and_expression() {
    let rule = |path: Option<&str>, index: u32, expr: &str, cond: &str, value: &str| {
        json!({"grayType": "CONTENT", "content": {"tag": "beta", "rules": [{"serviceType": "Dubbo", "path": path,
            "conditions": [{"index": index, "expr": expr, "cond": cond, "value": value}]}]}})
    };
    let call = dubbo(
        "com.shop.CartService",
        "add",
        &[
            r#""alice""#,
            r#"{"user": {"id": 42}, "tags": ["a"]}"#,
            "plain text",
        ],
    );
    assert!(
        canary(&one(&rule(None, 0, "$", "=", "alice"), call.clone())),
        "a JSON string as its content"
    );
    assert!(canary(&one(
        &rule(None, 0, ".", "=", "alice"),
        call.clone()
    )));
    assert!(canary(&one(
        &rule(None, 1, "user.id", ">", "40"),
        call.clone()
    )));
    assert!(canary(&one(
        &rule(None, 1, "$.user.id", "=", "42"),
        call.clone()
    )));
    assert!(canary(&one(
        &rule(None, 1, "tags.0", "=", "a"),
        call.clone()
    )));
    assert!(
        canary(&one(&rule(None, 2, "$", "=", "plain text"), call.clone())),
        "not JSON: the text itself"
    );
    assert!(!canary(&one(
        &rule(None, 2, "user.id", "=", "42"),
        call.clone()
    )));
    assert!(
        !canary(&one(&rule(None, 3, "$", "!=", "x"), call.clone())),
        "no such argument"
    );
    assert!(canary(&one(
        &rule(Some("com.shop.CartService"), 0, "$", "=", "alice"),
        call.clone()
    )));
    assert!(canary(&one(
        &rule(Some("com.shop.CartService:add"), 0, "$", "=", "alice"),
        call.clone()
    )));
    assert!(!canary(&one(
        &rule(Some("com.shop.CartService:remove"), 0, "$", "=", "alice"),
        call.clone()
    )));
    assert!(!canary(&one(
        &rule(Some("com.shop.OrderService"), 0, "$", "=", "alice"),
        call.clone()
    )));
    assert_eq!(
        one(&rule(None, 1, "user.id", ">", "40"), call).reason,
        r#"argument 1 user.id = "42" is greater than 40"#
    );
}

#[test]
fn dubbo_rules_see_only_dubbo_calls_and_http_rules_only_http_requests() {
    let http = single("header", "x-user", "=", "alice");
    let mut call = dubbo("com.shop.CartService", "add", &[]);
    call.headers = pairs(&[("x-user", "alice")]);
    assert!(!canary(&one(&http, call)));
    let dubbo_rule = json!({"grayType": "CONTENT", "content": {"tag": "beta", "rules": [{"serviceType": "Dubbo",
        "conditions": [{"index": 0, "expr": "$", "cond": "=", "value": "alice"}]}]}});
    assert!(!canary(&one(&dubbo_rule, with_header("x-user", "alice"))));
}

#[test]
fn rule_paths_are_element_prefixes() {
    let rule = json!({"grayType": "CONTENT", "content": {"tag": "beta", "rules": [{"serviceType": "springCloud", "path": "/api",
        "conditions": [{"type": "header", "param": "x-user", "cond": "=", "value": "alice"}]}]}});
    let at = |path: &str| Sample {
        headers: pairs(&[("x-user", "alice")]),
        ..get(path)
    };
    for (path, expected) in [
        ("/api", true),
        ("/api/", true),
        ("/api/cart", true),
        ("/api?x=1", true),
        ("/apix", false),
        ("/", false),
        ("/v1/api", false),
    ] {
        assert_eq!(canary(&one(&rule, at(path))), expected, "{path}");
    }
    let everything = single("header", "x-user", "=", "alice");
    assert!(canary(&one(&everything, at("/anything/at/all"))));
}

#[test]
fn and_is_decided_by_the_rule_and_or_by_the_first_matching_condition() {
    let rule = |condition: &str| {
        json!({"grayType": "CONTENT", "content": {"tag": "beta", "rules": [{"serviceType": "springCloud", "path": "/", "condition": condition,
            "conditions": [
                {"type": "header", "param": "x-user", "cond": "=", "value": "alice"},
                {"type": "param", "param": "region", "cond": "in", "value": "eu,us"}]}]}})
    };
    let both = Sample {
        headers: pairs(&[("x-user", "alice")]),
        query: pairs(&[("region", "eu")]),
        ..get("/")
    };
    let and = one(&rule("AND"), both.clone());
    assert_eq!(and.decided_by, "content.rules[0]");
    assert_eq!(
        and.reason,
        r#"header x-user = "alice" and param region = "eu" is in [eu, us]"#
    );
    assert!(!canary(&one(&rule("AND"), with_query("region", "eu"))));
    let or = one(&rule("OR"), both);
    assert_eq!(or.decided_by, "content.rules[0].conditions[0]");
    let second = one(&rule("OR"), with_query("region", "us"));
    assert_eq!(second.decided_by, "content.rules[0].conditions[1]");
}

#[test]
fn rules_are_tried_in_order_and_the_first_match_decides() {
    let rule = json!({"grayType": "CONTENT", "content": {"tag": "beta", "rules": [
        {"serviceType": "springCloud", "path": "/api", "conditions": [{"type": "header", "param": "x-user", "cond": "=", "value": "alice"}]},
        {"serviceType": "springCloud", "path": "/", "conditions": [{"type": "cookie", "param": "beta", "cond": "=", "value": "1"}]}]}});
    let both = Sample {
        headers: pairs(&[("x-user", "alice"), ("cookie", "beta=1")]),
        ..get("/api/cart")
    };
    let outcomes = evaluate(
        &rule,
        &[
            both.clone(),
            Sample {
                path: "/shop".into(),
                ..both
            },
        ],
    );
    assert_eq!(outcomes[0].decided_by, "content.rules[0].conditions[0]");
    assert_eq!(
        outcomes[1].decided_by, "content.rules[1].conditions[0]",
        "rule 0 does not cover /shop"
    );
}

#[test]
fn an_invalid_rule_evaluates_nothing() {
    let violations =
        evaluate_json(&json!({"grayType": "CONTENT"}), &[get("/")]).expect_err("invalid");
    assert_eq!(violations.0[0].field, "content");
}

#[test]
fn reasons_stay_short_whatever_the_request_carries() {
    let long = "x".repeat(5000);
    let rule = single("header", "x-user", "regex", "x+");
    let reason = one(&rule, with_header("x-user", &long)).reason;
    assert!(
        reason.starts_with(&format!("header x-user = \"{}…\"", "x".repeat(64))),
        "{reason}"
    );
    let items: Vec<String> = (0..500).map(|i| format!("user{i}")).collect();
    let rule = single("header", "x-user", "in", &items.join(","));
    let reason = one(&rule, with_header("x-user", "user499")).reason;
    assert_eq!(reason.chars().count(), 257, "256 and the ellipsis");
    assert!(reason.ends_with('…'));
}
