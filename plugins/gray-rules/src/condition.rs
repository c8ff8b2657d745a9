//! Validating one condition of a content rule: which fields its framework needs, and what
//! its `value` must look like for its `cond`, building the typed [`Condition`].

use regex::RegexBuilder;
use serde_json::Value;

use crate::fields::Object;
use crate::model::{Comparison, Condition, Source, Test};
use crate::validate::Framework;
use crate::violation::Violation;

const CONDITION_FIELDS: &[&str] = &[
    "type", "param", "index", "expr", "cond", "operator", "value",
];
const MAX_REGEX: usize = 256;
/// Bytes a compiled regex may take: ample for a header pattern, far below a plugin's memory.
const MAX_COMPILED_REGEX: usize = 1 << 20;
const CONDS: &str = "= != > < >= <= % in mod regex";

/// A `cond` before its value is parsed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cond {
    Equals,
    NotEquals,
    Compare(Comparison),
    Bucket,
    In,
    Mod,
    Regex,
}

impl Cond {
    fn parse(text: &str) -> Option<Cond> {
        Some(match text {
            "=" => Cond::Equals,
            "!=" => Cond::NotEquals,
            "%" => Cond::Bucket,
            "in" => Cond::In,
            "mod" => Cond::Mod,
            "regex" => Cond::Regex,
            other => match Comparison::parse(other)? {
                c @ (Comparison::Gt | Comparison::Lt | Comparison::Ge | Comparison::Le) => {
                    Cond::Compare(c)
                }
                Comparison::Eq | Comparison::Ne => return None,
            },
        })
    }
}

/// Reads the condition at `path`; `framework` is `None` when the rule's `serviceType` is
/// itself invalid (the framework-specific fields are then not judged).
pub(crate) fn read_condition(
    value: &Value,
    path: &str,
    framework: Option<Framework>,
    out: &mut Vec<Violation>,
) -> Option<Condition> {
    let condition = Object::open(value, path, CONDITION_FIELDS, out)?;
    let cond = condition.required_string("cond", out).and_then(|text| {
        let cond = Cond::parse(text);
        if cond.is_none() {
            out.push(Violation::new(
                condition.path_of("cond"),
                format!("must be one of {CONDS}"),
            ));
        }
        cond
    });
    let source = match framework {
        Some(Framework::SpringCloud) => read_http_source(&condition, out),
        Some(Framework::Dubbo) => read_argument_source(&condition, out),
        None => None,
    };
    let operator = read_operator(&condition, cond, out);
    let value = condition.required_string("value", out);
    let test = match (cond, value) {
        (Some(cond), Some(value)) => read_test(&condition, cond, operator, value, out),
        _ => None,
    };
    Some(Condition {
        path: path.to_owned(),
        source: source?,
        test: test?,
        value: value?.to_owned(),
    })
}

fn read_http_source(condition: &Object, out: &mut Vec<Violation>) -> Option<Source> {
    condition.forbid(&["index", "expr"], "only for Dubbo", out);
    let kind = condition.required_string("type", out);
    let param = condition.required_string("param", out).map(str::to_owned);
    let make: fn(String) -> Source = match kind? {
        "cookie" => Source::Cookie,
        "header" => Source::Header,
        "param" => Source::Param,
        "body" => Source::Body,
        _ => {
            out.push(Violation::new(
                condition.path_of("type"),
                "must be cookie, header, param or body",
            ));
            return None;
        }
    };
    Some(make(param?))
}

fn read_argument_source(condition: &Object, out: &mut Vec<Violation>) -> Option<Source> {
    condition.forbid(&["type", "param"], "only for springCloud", out);
    let index = condition.required_integer("index", out).and_then(|index| {
        let index = usize::try_from(index).ok();
        if index.is_none() {
            out.push(Violation::new(
                condition.path_of("index"),
                "must be an integer of 0 or more",
            ));
        }
        index
    });
    // The seed's template sends `"expr": ""`, which counts as absent: say how to name the
    // whole argument instead.
    let expr = if condition.has("expr") {
        condition.string("expr", out)
    } else {
        out.push(Violation::new(
            condition.path_of("expr"),
            "is required ($ names the whole argument)",
        ));
        None
    };
    Some(Source::Argument {
        index: index?,
        expr: whole_argument_or_path(expr?),
    })
}

/// `$`, `.` and `$.a.b` style prefixes name the argument itself; what remains is a dotted
/// path inside it (empty: the whole argument).
fn whole_argument_or_path(expr: &str) -> String {
    let expr = expr.strip_prefix('$').unwrap_or(expr);
    expr.strip_prefix('.').unwrap_or(expr).to_owned()
}

/// `operator`: required with `mod`, not allowed with any other `cond`.
fn read_operator(
    condition: &Object,
    cond: Option<Cond>,
    out: &mut Vec<Violation>,
) -> Option<Comparison> {
    match cond {
        Some(Cond::Mod) => {
            let text = condition.required_string("operator", out)?;
            let operator = Comparison::parse(text);
            if operator.is_none() {
                out.push(Violation::new(
                    condition.path_of("operator"),
                    "must be one of = != > < >= <=",
                ));
            }
            operator
        }
        Some(_) => {
            condition.forbid(&["operator"], "only used with cond mod", out);
            None
        }
        None => None,
    }
}

fn read_test(
    condition: &Object,
    cond: Cond,
    operator: Option<Comparison>,
    value: &str,
    out: &mut Vec<Violation>,
) -> Option<Test> {
    let field = condition.path_of("value");
    let mut complain = |message: String| {
        out.push(Violation::new(field.clone(), message));
        None
    };
    match cond {
        Cond::Equals => Some(Test::Equals(value.to_owned())),
        Cond::NotEquals => Some(Test::NotEquals(value.to_owned())),
        Cond::Compare(comparison) => match value.trim().parse::<f64>() {
            Ok(number) if number.is_finite() => Some(Test::Compare(comparison, number)),
            _ => complain(format!(
                "must be a number with cond {}",
                comparison.symbol()
            )),
        },
        Cond::Bucket => match value.trim().parse::<u8>() {
            Ok(percent) if percent <= 100 => Some(Test::Bucket(percent)),
            _ => complain("must be an integer from 0 to 100 with cond %".to_owned()),
        },
        Cond::Mod => match value.trim().parse::<i64>() {
            Ok(remainder) if (0..100).contains(&remainder) => {
                operator.map(|operator| Test::Mod(operator, remainder))
            }
            _ => complain("must be an integer from 0 to 99 with cond mod".to_owned()),
        },
        Cond::In => {
            let items: Vec<String> = value.split(',').map(|i| i.trim().to_owned()).collect();
            if items.iter().any(String::is_empty) {
                complain(
                    "must be a comma-separated list of non-empty values with cond in".to_owned(),
                )
            } else {
                Some(Test::In(items))
            }
        }
        Cond::Regex => {
            if value.chars().count() > MAX_REGEX {
                return complain(format!("must be at most {MAX_REGEX} characters"));
            }
            // Parse the expression alone: `a)|(b` only compiles once wrapped in `^(?:…)$`.
            if let Err(e) = regex_syntax::Parser::new().parse(value) {
                return complain(format!(
                    "is not a valid regex: {}",
                    error_line(&e.to_string())
                ));
            }
            match RegexBuilder::new(&format!("^(?:{value})$"))
                .size_limit(MAX_COMPILED_REGEX)
                .build()
            {
                Ok(anchored) => Some(Test::Regex {
                    expr: value.to_owned(),
                    anchored,
                }),
                Err(e) => complain(format!(
                    "is not a valid regex: {}",
                    error_line(&e.to_string())
                )),
            }
        }
    }
}

/// regex errors draw the pattern over several lines; the `error:` line says what is wrong.
fn error_line(message: &str) -> &str {
    message
        .lines()
        .rev()
        .find(|l| l.starts_with("error:"))
        .unwrap_or(message)
}
