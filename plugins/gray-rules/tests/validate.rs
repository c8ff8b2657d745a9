//! Validation: the seed's shape and every conditional requirement, each violation at the
//! JSON path of its field, all of them collected in one pass.

use gray_rules::{Violation, parse, validate};
use serde_json::{Value, json};

/// The fields complained about, in order.
fn fields(rule: Value) -> Vec<String> {
    violations(rule).into_iter().map(|v| v.field).collect()
}

fn violations(rule: Value) -> Vec<Violation> {
    match validate(&rule) {
        Ok(_) => Vec::new(),
        Err(violations) => violations.0,
    }
}

fn message_at(rule: Value, field: &str) -> String {
    let all = violations(rule);
    all.iter()
        .find(|v| v.field == field)
        .map(|v| v.message.clone())
        .unwrap_or_else(|| panic!("no violation at {field}: {all:?}"))
}

fn content(rules: Value) -> Value {
    json!({"grayType": "CONTENT", "content": {"tag": "beta", "rules": rules}})
}

fn http_rule(conditions: Value) -> Value {
    json!([{"serviceType": "springCloud", "path": "/api", "condition": "OR", "conditions": conditions}])
}

fn dubbo_rule(conditions: Value) -> Value {
    json!([{"serviceType": "Dubbo", "condition": "OR", "conditions": conditions}])
}

fn http_condition(cond: &str, value: &str) -> Value {
    json!({"type": "header", "param": "x-user", "cond": cond, "value": value})
}

const C0: &str = "content.rules[0].conditions[0]";

#[test]
fn the_seeds_own_empty_template_lists_every_missing_field() {
    // Seed 001 §5.1.6 / §5.3.18 send every field, empty: "" counts as absent.
    let seed = json!({"grayType":"","percent":{"tag":"","rate":0},"content":{"ruleName":"","tag":"","carryData":false,"rules":[{"serviceType":"","path":"","condition":"","conditions":[{"index":0,"expr":"","type":"","param":"","cond":"","value":"","operator":""}]}]}});
    assert_eq!(
        fields(seed),
        [
            "grayType",
            "percent.tag",
            "content.tag",
            "content.rules[0].serviceType",
            &format!("{C0}.cond"),
            &format!("{C0}.value"),
        ]
    );
}

#[test]
fn rule_text_that_is_not_a_json_object_is_refused_as_a_whole() {
    let not_json = parse("{grayType: PERCENT").expect_err("not JSON");
    assert_eq!(not_json.0[0].field, "");
    assert!(
        not_json.0[0].message.starts_with("is not valid JSON"),
        "{not_json}"
    );
    assert_eq!(fields(json!(["PERCENT"])), [""]);
}

#[test]
fn unknown_fields_are_named_wherever_they_are() {
    let rule = json!({"grayType": "CONTENT", "colour": "red", "content": {"tag": "beta", "extra": 1, "rules": [
        {"serviceType": "springCloud", "path": "/", "weight": 3, "conditions": [
            {"type": "header", "param": "x", "cond": "=", "value": "1", "negate": true}]}]}});
    assert_eq!(
        fields(rule),
        [
            "colour",
            "content.extra",
            "content.rules[0].weight",
            &format!("{C0}.negate")
        ]
    );
    assert_eq!(
        message_at(
            json!({"grayType": "PERCENT", "percent": {"rate": 1, "tag": "c", "x": 1}}),
            "percent.x"
        ),
        "unknown field"
    );
}

#[test]
fn null_and_empty_strings_count_as_absent() {
    let rule = json!({"grayType": "PERCENT", "percent": {"rate": 5, "tag": "canary"}, "content": null, "note": ""});
    assert_eq!(fields(rule), Vec::<String>::new());
    assert_eq!(
        fields(json!({"grayType": "PERCENT", "percent": {"rate": null, "tag": "canary"}})),
        ["percent.rate"]
    );
}

#[test]
fn gray_type_is_required_and_case_sensitive() {
    assert_eq!(fields(json!({})), ["grayType"]);
    assert_eq!(
        message_at(json!({"grayType": "percent"}), "grayType"),
        "must be PERCENT or CONTENT"
    );
}

#[test]
fn percent_needs_a_rate_from_0_to_100_and_a_tag() {
    let percent = |p: Value| json!({"grayType": "PERCENT", "percent": p});
    assert_eq!(fields(json!({"grayType": "PERCENT"})), ["percent"]);
    assert_eq!(fields(percent(json!({}))), ["percent.rate", "percent.tag"]);
    for rate in [json!(101), json!(-1), json!(10.5), json!("10")] {
        assert_eq!(
            fields(percent(json!({"rate": rate, "tag": "canary"}))),
            ["percent.rate"],
            "{rate}"
        );
    }
    assert!(validate(&percent(json!({"rate": 0, "tag": "canary"}))).is_ok());
    assert!(validate(&percent(json!({"rate": 100, "tag": "canary"}))).is_ok());
}

#[test]
fn percent_may_be_the_one_element_array_of_the_seeds_table() {
    let percent = |p: Value| json!({"grayType": "PERCENT", "percent": p});
    assert!(validate(&percent(json!([{"rate": 10, "tag": "canary"}]))).is_ok());
    assert_eq!(
        fields(percent(json!([{"rate": 300, "tag": "canary"}]))),
        ["percent[0].rate"]
    );
    assert_eq!(
        fields(percent(
            json!([{"rate": 1, "tag": "a"}, {"rate": 2, "tag": "b"}])
        )),
        ["percent"]
    );
    assert_eq!(fields(percent(json!([]))), ["percent"]);
}

#[test]
fn each_gray_type_refuses_the_others_section() {
    let both = |gray_type: &str| {
        json!({"grayType": gray_type, "percent": {"rate": 10, "tag": "canary"},
               "content": {"tag": "beta", "rules": http_rule(json!([http_condition("=", "a")]))}})
    };
    assert_eq!(
        message_at(both("PERCENT"), "content"),
        "only used with grayType CONTENT"
    );
    assert_eq!(
        message_at(both("CONTENT"), "percent"),
        "only used with grayType PERCENT"
    );
    assert_eq!(fields(both("PERCENT")), ["content"]);
    // The seed's clients send the other section unfilled.
    let unfilled = json!({"grayType": "PERCENT", "percent": {"rate": 10, "tag": "canary"},
        "content": {"ruleName": "", "tag": "", "carryData": false, "rules": []}});
    assert!(fields(unfilled).is_empty());
}

#[test]
fn tags_must_be_kubernetes_label_values() {
    let with_tag = |tag: &str| json!({"grayType": "PERCENT", "percent": {"rate": 1, "tag": tag}});
    for good in ["canary", "v2.1", "a", "A_b-c.9", &"x".repeat(63)] {
        assert!(validate(&with_tag(good)).is_ok(), "{good}");
    }
    for bad in ["-canary", "canary_", "two words", "ümlaut", &"x".repeat(64)] {
        assert_eq!(fields(with_tag(bad)), ["percent.tag"], "{bad}");
    }
    let mut rule = content(http_rule(json!([http_condition("=", "a")])));
    rule["content"]["tag"] = json!("bad tag");
    assert_eq!(fields(rule), ["content.tag"]);
}

#[test]
fn content_needs_a_tag_and_1_to_20_rules() {
    assert_eq!(fields(json!({"grayType": "CONTENT"})), ["content"]);
    assert_eq!(
        fields(json!({"grayType": "CONTENT", "content": {}})),
        ["content.tag", "content.rules"]
    );
    assert_eq!(fields(content(json!([]))), ["content.rules"]);
    let one = http_rule(json!([http_condition("=", "a")]))[0].clone();
    assert!(validate(&content(Value::Array(vec![one.clone(); 20]))).is_ok());
    assert_eq!(
        message_at(content(Value::Array(vec![one; 21])), "content.rules"),
        "must hold 1 to 20 rules"
    );
    assert_eq!(
        fields(content(json!({"serviceType": "Dubbo"}))),
        ["content.rules"]
    );
}

#[test]
fn rule_name_is_optional_up_to_64_characters_and_carry_data_a_boolean() {
    let mut rule = content(http_rule(json!([http_condition("=", "a")])));
    rule["content"]["ruleName"] = json!("名".repeat(64));
    rule["content"]["carryData"] = json!(true);
    assert!(validate(&rule).is_ok());
    rule["content"]["ruleName"] = json!("n".repeat(65));
    rule["content"]["carryData"] = json!("yes");
    assert_eq!(fields(rule), ["content.ruleName", "content.carryData"]);
}

#[test]
fn service_type_is_springcloud_or_dubbo_in_any_case() {
    for service_type in ["springCloud", "springcloud", "SPRINGCLOUD"] {
        let rule = content(
            json!([{"serviceType": service_type, "path": "/", "conditions": [http_condition("=", "a")]}]),
        );
        assert!(validate(&rule).is_ok(), "{service_type}");
    }
    let dubbo = content(
        json!([{"serviceType": "dubbo", "conditions": [{"index": 0, "expr": "$", "cond": "=", "value": "1"}]}]),
    );
    assert!(validate(&dubbo).is_ok());
    let grpc = content(json!([{"serviceType": "grpc", "conditions": [http_condition("=", "a")]}]));
    assert_eq!(fields(grpc.clone()), ["content.rules[0].serviceType"]);
    assert_eq!(
        message_at(grpc, "content.rules[0].serviceType"),
        "must be springCloud or Dubbo"
    );
    assert_eq!(
        fields(content(json!([{"conditions": [http_condition("=", "a")]}]))),
        ["content.rules[0].serviceType"]
    );
}

#[test]
fn a_springcloud_rule_needs_an_absolute_path_without_query() {
    let with_path = |path: Value| {
        content(
            json!([{"serviceType": "springCloud", "path": path, "conditions": [http_condition("=", "a")]}]),
        )
    };
    assert_eq!(
        message_at(with_path(json!(null)), "content.rules[0].path"),
        "is required"
    );
    assert_eq!(
        message_at(with_path(json!("api")), "content.rules[0].path"),
        "must start with /"
    );
    assert_eq!(
        message_at(with_path(json!("/api?x=1")), "content.rules[0].path"),
        "must not contain ? or #"
    );
    assert_eq!(
        fields(with_path(json!("/api#top"))),
        ["content.rules[0].path"]
    );
    assert!(validate(&with_path(json!("/"))).is_ok());
}

#[test]
fn a_dubbo_rule_path_is_optional_and_names_a_service_or_method() {
    let with_path = |path: &str| {
        content(
            json!([{"serviceType": "Dubbo", "path": path, "conditions": [{"index": 0, "expr": "id", "cond": "=", "value": "1"}]}]),
        )
    };
    assert!(validate(&with_path("com.shop.CartService")).is_ok());
    assert!(validate(&with_path("com.shop.CartService:add")).is_ok());
    for bad in ["a:b:c", ":add", "com.shop.Cart:", "two words"] {
        assert_eq!(fields(with_path(bad)), ["content.rules[0].path"], "{bad}");
    }
}

#[test]
fn a_rule_needs_1_to_20_conditions_and_condition_with_two_or_more() {
    let rule = |condition: Value, conditions: Value| {
        content(
            json!([{"serviceType": "springCloud", "path": "/", "condition": condition, "conditions": conditions}]),
        )
    };
    let one = http_condition("=", "a");
    assert_eq!(
        fields(rule(json!(null), json!(null))),
        ["content.rules[0].conditions"]
    );
    assert_eq!(
        fields(rule(json!(null), json!([]))),
        ["content.rules[0].conditions"]
    );
    assert!(
        validate(&rule(json!(null), json!([one.clone()]))).is_ok(),
        "one condition defaults to AND"
    );
    assert_eq!(
        message_at(
            rule(json!(null), json!([one.clone(), one.clone()])),
            "content.rules[0].condition"
        ),
        "is required with 2 or more conditions (AND or OR)"
    );
    assert_eq!(
        message_at(
            rule(json!("and"), json!([one.clone()])),
            "content.rules[0].condition"
        ),
        "must be AND or OR"
    );
    assert!(validate(&rule(json!("AND"), Value::Array(vec![one.clone(); 20]))).is_ok());
    assert_eq!(
        fields(rule(json!("OR"), Value::Array(vec![one; 21]))),
        ["content.rules[0].conditions"]
    );
}

#[test]
fn a_springcloud_condition_needs_type_and_param_and_refuses_index_and_expr() {
    let fields_of = |condition: Value| fields(content(http_rule(json!([condition]))));
    assert_eq!(
        fields_of(json!({"cond": "=", "value": "a"})),
        [format!("{C0}.type"), format!("{C0}.param")]
    );
    assert_eq!(
        fields_of(json!({"type": "query", "param": "x", "cond": "=", "value": "a"})),
        [format!("{C0}.type")]
    );
    let with_dubbo_fields = json!({"type": "header", "param": "x", "index": 1, "expr": "id", "cond": "=", "value": "a"});
    // The seed's form sends every field; its unfilled Dubbo ones on an HTTP condition pass.
    assert!(
        fields_of(json!({"type": "header", "param": "x", "index": 0, "expr": "", "cond": "=", "value": "a"}))
            .is_empty()
    );
    assert_eq!(
        fields_of(with_dubbo_fields.clone()),
        [format!("{C0}.index"), format!("{C0}.expr")]
    );
    assert_eq!(
        message_at(
            content(http_rule(json!([with_dubbo_fields]))),
            &format!("{C0}.index")
        ),
        "only for Dubbo"
    );
    for kind in ["cookie", "header", "param", "body"] {
        assert_eq!(
            fields_of(json!({"type": kind, "param": "x", "cond": "=", "value": "a"})),
            Vec::<String>::new()
        );
    }
}

#[test]
fn a_dubbo_condition_needs_index_and_expr_and_refuses_type_and_param() {
    let fields_of = |condition: Value| fields(content(dubbo_rule(json!([condition]))));
    assert_eq!(
        fields_of(json!({"cond": "=", "value": "a"})),
        [format!("{C0}.index"), format!("{C0}.expr")]
    );
    let empty_expr = content(dubbo_rule(
        json!([{"index": 0, "expr": "", "cond": "=", "value": "a"}]),
    ));
    assert_eq!(
        message_at(empty_expr, &format!("{C0}.expr")),
        "is required ($ names the whole argument)"
    );
    assert_eq!(
        fields_of(json!({"index": -1, "expr": "id", "cond": "=", "value": "a"})),
        [format!("{C0}.index")]
    );
    assert_eq!(
        fields_of(json!({"index": "0", "expr": "id", "cond": "=", "value": "a"})),
        [format!("{C0}.index")]
    );
    let with_http_fields = json!({"type": "header", "param": "x", "index": 0, "expr": "id", "cond": "=", "value": "a"});
    assert_eq!(
        fields_of(with_http_fields.clone()),
        [format!("{C0}.type"), format!("{C0}.param")]
    );
    assert_eq!(
        message_at(
            content(dubbo_rule(json!([with_http_fields]))),
            &format!("{C0}.param")
        ),
        "only for springCloud"
    );
    // The seed's own template, filled in for Dubbo: the empty HTTP fields count as absent.
    let seed_shaped = json!({"index": 0, "expr": "user.id", "type": "", "param": "", "cond": "=", "value": "7", "operator": ""});
    assert_eq!(fields_of(seed_shaped), Vec::<String>::new());
}

#[test]
fn cond_is_one_of_the_ten() {
    for cond in ["=", "!=", "in", "regex"] {
        assert_eq!(
            fields(content(http_rule(json!([http_condition(cond, "a")])))),
            Vec::<String>::new(),
            "{cond}"
        );
    }
    for cond in [">", "<", ">=", "<=", "%"] {
        assert_eq!(
            fields(content(http_rule(json!([http_condition(cond, "5")])))),
            Vec::<String>::new(),
            "{cond}"
        );
    }
    assert_eq!(
        message_at(
            content(http_rule(json!([http_condition("==", "a")]))),
            &format!("{C0}.cond")
        ),
        "must be one of = != > < >= <= % in mod regex"
    );
    assert_eq!(
        fields(content(http_rule(
            json!([{"type": "header", "param": "x", "value": "a"}])
        ))),
        [format!("{C0}.cond")]
    );
}

#[test]
fn operator_is_required_with_mod_and_refused_otherwise() {
    let with = |cond: &str, operator: Value| {
        content(http_rule(
            json!([{"type": "param", "param": "uid", "cond": cond, "operator": operator, "value": "20"}]),
        ))
    };
    for operator in ["=", "!=", ">", "<", ">=", "<="] {
        assert!(
            validate(&with("mod", json!(operator))).is_ok(),
            "{operator}"
        );
    }
    assert_eq!(
        message_at(with("mod", json!(null)), &format!("{C0}.operator")),
        "is required"
    );
    assert_eq!(
        message_at(with("mod", json!("%")), &format!("{C0}.operator")),
        "must be one of = != > < >= <="
    );
    assert_eq!(
        message_at(with("=", json!(">")), &format!("{C0}.operator")),
        "only used with cond mod"
    );
}

#[test]
fn value_is_required_and_must_suit_its_cond() {
    let value_of = |cond: &str, value: Value| {
        let rule = content(http_rule(
            json!([{"type": "param", "param": "p", "cond": cond, "value": value, "operator": if cond == "mod" { json!("=") } else { json!(null) }}]),
        ));
        fields(rule)
    };
    let at_value = [format!("{C0}.value")];
    assert_eq!(value_of("=", json!(null)), at_value);
    assert_eq!(
        value_of("=", json!(5)),
        at_value,
        "value is a string, as in the seed"
    );
    assert_eq!(value_of("in", json!("a,,b")), at_value);
    assert_eq!(value_of("in", json!("a, ")), at_value);
    assert!(value_of("in", json!(" a , b ")).is_empty());
    for cond in [">", "<", ">=", "<="] {
        assert_eq!(value_of(cond, json!("ten")), at_value, "{cond}");
        assert_eq!(value_of(cond, json!("inf")), at_value, "{cond}");
        assert!(value_of(cond, json!("-2.5")).is_empty(), "{cond}");
    }
    assert_eq!(value_of("%", json!("101")), at_value);
    assert_eq!(value_of("%", json!("5.5")), at_value);
    assert!(value_of("%", json!("100")).is_empty());
    assert_eq!(value_of("mod", json!("100")), at_value);
    assert_eq!(value_of("mod", json!("-1")), at_value);
    assert!(value_of("mod", json!("99")).is_empty());
    assert_eq!(value_of("regex", json!("(")), at_value);
    assert_eq!(
        value_of("regex", json!("a)|(b")),
        at_value,
        "only valid once wrapped"
    );
    assert_eq!(value_of("regex", json!("a".repeat(257))), at_value);
    assert_eq!(
        value_of("regex", json!("((a{100}){100}){100}")),
        at_value,
        "compiles too big"
    );
    assert!(value_of("regex", json!("(?i)alice|bob\\d+")).is_empty());
}

#[test]
fn every_violation_of_a_rule_is_reported_at_once() {
    let rule = json!({"grayType": "CONTENT", "content": {"tag": "-", "carryData": 1, "rules": [
        {"serviceType": "springCloud", "path": "api", "conditions": [
            {"type": "header", "cond": "mod", "value": "x"},
            {"type": "cookie", "param": "b", "cond": "regex", "value": "["}]},
        {"serviceType": "Dubbo", "condition": "XOR", "conditions": [{"index": 0, "cond": "in", "value": "a,"}]}]}});
    assert_eq!(
        fields(rule),
        [
            "content.tag",
            "content.carryData",
            "content.rules[0].path",
            "content.rules[0].conditions[0].param",
            "content.rules[0].conditions[0].operator",
            "content.rules[0].conditions[0].value",
            "content.rules[0].conditions[1].value",
            "content.rules[0].condition",
            "content.rules[1].conditions[0].expr",
            "content.rules[1].conditions[0].value",
            "content.rules[1].condition",
        ]
    );
}
