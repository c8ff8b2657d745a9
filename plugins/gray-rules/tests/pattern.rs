//! The regexes renders put in match objects mean what evaluation means: a cookie pattern
//! on the `cookie` header accepts exactly the headers whose cookie passes the condition.

use gray_rules::model::{GrayRule, Test};
use gray_rules::pattern::{ValueMatch, cookie_header_pattern, escape, value_match};
use gray_rules::{Sample, validate};
use regex::Regex;
use serde_json::json;

fn cookie_rule(cond: &str, value: &str) -> GrayRule {
    let rule = json!({"grayType": "CONTENT", "content": {"tag": "beta", "rules": [{"serviceType": "springCloud", "path": "/",
        "conditions": [{"type": "cookie", "param": "b.eta", "cond": cond, "value": value}]}]}});
    validate(&rule).expect("valid")
}

fn test_of(rule: &GrayRule) -> &Test {
    match rule {
        GrayRule::Content(content) => &content.rules[0].conditions[0].test,
        GrayRule::Percent(_) => unreachable!("a content rule"),
    }
}

#[test]
fn cookie_header_patterns_agree_with_evaluation() {
    let headers = [
        "b.eta=1",
        "b.eta=1; theme=dark",
        "session=x;b.eta=1",
        "session=x;  b.eta=1 ; a=b",
        "bxeta=1",
        "xb.eta=1",
        "b.eta=10",
        "b.eta=2; other=1",
        "b.eta=a.b",
        "b.eta=aXb",
        "b.eta=c",
        "",
    ];
    for (cond, value) in [("=", "1"), ("in", "1,a.b"), ("regex", "[12]|c")] {
        let rule = cookie_rule(cond, value);
        let pattern = cookie_header_pattern("b.eta", test_of(&rule)).expect("expressible");
        let regex = Regex::new(&pattern).expect("compiles");
        for header in headers {
            let sample = Sample {
                headers: vec![("cookie".into(), header.into())],
                path: "/".into(),
                ..Sample::default()
            };
            let evaluated = rule.evaluate(&sample).canary_share == 100;
            assert_eq!(
                regex.is_match(header),
                evaluated,
                "{cond} {value} on {header:?} ({pattern})"
            );
        }
    }
}

#[test]
fn values_are_escaped_for_every_regex_dialect() {
    assert_eq!(
        escape("a.b*c(d)|[e]{f}^$+?\\"),
        r"a\.b\*c\(d\)\|\[e\]\{f\}\^\$\+\?\\"
    );
    assert_eq!(escape("plain-text_1~#&"), "plain-text_1~#&");
    let rule = validate(&json!({"grayType": "CONTENT", "content": {"tag": "beta", "rules": [{"serviceType": "springCloud", "path": "/",
        "conditions": [{"type": "header", "param": "x", "cond": "in", "value": "a.b, c+"}]}]}})).expect("valid");
    assert_eq!(
        value_match(test_of(&rule)),
        Some(ValueMatch::FullRegex(r"^(a\.b|c\+)$".into()))
    );
}
