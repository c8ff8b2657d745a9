//! Evaluating a valid rule against sample requests: which tag each reaches, what decided
//! it (a JSON path into the rule) and why, in words.

use crate::model::{
    Combine, Comparison, Condition, Content, ContentRule, GrayRule, Service, Source, Test,
};
use crate::sample::{Request, Sample};

/// Reasons quote request values and rule lists; they are for people, and a batch of them
/// must stay well within a plugin's output cap (1,000 × 256 characters).
const MAX_QUOTED_VALUE: usize = 64;
const MAX_REASON: usize = 256;

/// Where one sample request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Percent of such requests reaching the canary: 100 or 0 for CONTENT, the rate for
    /// PERCENT.
    pub canary_share: u8,
    /// The rule's tag (the canary's).
    pub tag: String,
    /// `percent`, `content.rules[i]` (an AND), `content.rules[i].conditions[j]`, or empty.
    pub decided_by: String,
    pub reason: String,
}

impl GrayRule {
    /// Where `sample` goes under this rule.
    pub fn evaluate(&self, sample: &Sample) -> Outcome {
        match self {
            GrayRule::Percent(percent) => Outcome {
                canary_share: percent.rate,
                tag: percent.tag.clone(),
                decided_by: "percent".to_owned(),
                reason: format!("{}% of requests reach {}", percent.rate, percent.tag),
            },
            GrayRule::Content(content) => evaluate_content(content, sample),
        }
    }
}

fn evaluate_content(content: &Content, sample: &Sample) -> Outcome {
    let request = Request::new(sample);
    let decision = content
        .rules
        .iter()
        .filter(|rule| applies(&rule.service, sample))
        .find_map(|rule| decide(rule, &request));
    let (canary_share, decided_by, reason) = match decision {
        Some((decided_by, reason)) => (100, decided_by, bounded(reason)),
        None => (0, String::new(), "no rule matched".to_owned()),
    };
    Outcome {
        canary_share,
        tag: content.tag.clone(),
        decided_by,
        reason,
    }
}

/// Whether a rule looks at this request at all: HTTP rules at HTTP requests under their
/// path, Dubbo rules at Dubbo calls (to their service and method when given).
fn applies(service: &Service, sample: &Sample) -> bool {
    match (service, &sample.dubbo) {
        (Service::SpringCloud { path }, None) => under(path, &sample.path),
        (Service::Dubbo { only }, Some(call)) => only.as_ref().is_none_or(|only| {
            only.service == call.service && only.method.as_ref().is_none_or(|m| *m == call.method)
        }),
        _ => false,
    }
}

/// Path-element prefix: `/api` covers `/api`, `/api/` and `/api/x`, not `/apix`.
fn under(prefix: &str, path: &str) -> bool {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let prefix = prefix.trim_end_matches('/');
    prefix.is_empty()
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// `(decided-by, reason)` when the rule matches.
fn decide(rule: &ContentRule, request: &Request) -> Option<(String, String)> {
    let single = |condition: &Condition| {
        let value = matched(condition, request)?;
        Some((condition.path.clone(), reason(condition, &value)))
    };
    match (rule.conditions.as_slice(), rule.combine) {
        ([condition], _) => single(condition),
        (conditions, Combine::And) => {
            let reasons = conditions
                .iter()
                .map(|c| matched(c, request).map(|value| reason(c, &value)))
                .collect::<Option<Vec<_>>>()?;
            Some((rule.path.clone(), reasons.join(" and ")))
        }
        (conditions, Combine::Or) => conditions.iter().find_map(single),
    }
}

/// The request's value for the condition, when there is one and it passes the test.
fn matched<'r>(condition: &Condition, request: &'r Request) -> Option<std::borrow::Cow<'r, str>> {
    request
        .value(&condition.source)
        .filter(|value| passes(&condition.test, value))
}

fn passes(test: &Test, value: &str) -> bool {
    match test {
        Test::Equals(expected) => value == expected,
        Test::NotEquals(other) => value != other,
        Test::Compare(comparison, bound) => {
            number(value).is_some_and(|v| comparison.holds(v, *bound))
        }
        Test::Bucket(percent) => bucket(value) < u32::from(*percent),
        Test::In(items) => items.iter().any(|item| item == value),
        Test::Mod(comparison, remainder) => value
            .trim()
            .parse::<i64>()
            .is_ok_and(|v| comparison.holds(v.rem_euclid(100), *remainder)),
        Test::Regex { anchored, .. } => anchored.is_match(value),
    }
}

fn number(value: &str) -> Option<f64> {
    value.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

/// A stable bucket 0–99 of a value: FNV-1a (32 bit) of its bytes, modulo 100.
fn bucket(value: &str) -> u32 {
    let hash = value.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    hash % 100
}

/// `header x-user = "bob" is in [alice, bob]`.
fn reason(condition: &Condition, value: &str) -> String {
    let subject = match &condition.source {
        Source::Argument { index, expr } if expr.is_empty() => format!("argument {index}"),
        Source::Argument { index, expr } => format!("argument {index} {expr}"),
        Source::Cookie(name) | Source::Header(name) | Source::Param(name) | Source::Body(name) => {
            format!("{} {name}", condition.source.kind())
        }
    };
    let verdict = match &condition.test {
        Test::Equals(_) => String::new(),
        Test::NotEquals(other) => format!(" is not \"{other}\""),
        Test::Compare(comparison, _) => {
            let relation = match comparison {
                Comparison::Gt => "greater than",
                Comparison::Lt => "less than",
                Comparison::Ge => "at least",
                Comparison::Le => "at most",
                Comparison::Eq | Comparison::Ne => comparison.symbol(),
            };
            format!(" is {relation} {}", condition.value.trim())
        }
        Test::Bucket(percent) => {
            format!(" falls in the first {percent}% (bucket {})", bucket(value))
        }
        Test::In(items) => format!(" is in [{}]", items.join(", ")),
        Test::Mod(comparison, remainder) => {
            let v = value.trim().parse::<i64>().unwrap_or_default();
            format!(
                ": {v} mod 100 = {} {} {remainder}",
                v.rem_euclid(100),
                comparison.symbol()
            )
        }
        Test::Regex { expr, .. } => format!(" matches regex {expr}"),
    };
    format!(
        "{subject} = \"{}\"{verdict}",
        shorten(value, MAX_QUOTED_VALUE)
    )
}

/// `reason` cut to [`MAX_REASON`] characters; byte length bounds the count, so most
/// reasons are returned untouched without counting.
fn bounded(reason: String) -> String {
    if reason.len() <= MAX_REASON {
        reason
    } else {
        shorten(&reason, MAX_REASON).into_owned()
    }
}

/// At most `max` characters of `text`, marked with `…` when cut.
fn shorten(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]).into(),
        None => text.into(),
    }
}
