//! A sample request to evaluate a rule against, in plain Rust types (the plugins convert
//! the WIT `sample-request` into it by moving its strings), and how a condition reads its
//! value from it: headers, cookies, query, JSON or form body, Dubbo arguments.

use std::borrow::Cow;
use std::cell::OnceCell;

use serde_json::Value;

use crate::model::Source;

/// An HTTP request, or a Dubbo call when `dubbo` is set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sample {
    pub method: String,
    /// The request path; anything after `?` or `#` is ignored.
    pub path: String,
    /// Names in any case.
    pub headers: Vec<(String, String)>,
    /// Cookies given apart; a `cookie` header is read too when a name is not here.
    pub cookies: Vec<(String, String)>,
    pub query: Vec<(String, String)>,
    /// As sent: JSON or form-urlencoded; empty for none.
    pub body: String,
    pub dubbo: Option<DubboCall>,
}

/// A Dubbo call: service interface, method and each argument as JSON text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DubboCall {
    pub service: String,
    pub method: String,
    pub arguments: Vec<String>,
}

/// A sample being evaluated; its body is parsed at most once, on first use.
pub(crate) struct Request<'a> {
    pub sample: &'a Sample,
    body: OnceCell<Option<Body>>,
}

enum Body {
    Json(Value),
    Form(Vec<(String, String)>),
}

impl<'a> Request<'a> {
    pub fn new(sample: &'a Sample) -> Self {
        Request {
            sample,
            body: OnceCell::new(),
        }
    }

    /// The value `source` names, or `None` when the request does not carry it.
    pub fn value(&self, source: &Source) -> Option<Cow<'_, str>> {
        let sample = self.sample;
        match source {
            Source::Header(name) => header(sample, name).map(Cow::Borrowed),
            Source::Cookie(name) => cookie(sample, name).map(Cow::Borrowed),
            Source::Param(name) => first(&sample.query, name).map(Cow::Borrowed),
            Source::Body(path) => match self.body()? {
                Body::Json(json) => dotted(json, path).and_then(text),
                Body::Form(fields) => first(fields, path).map(Cow::Borrowed),
            },
            Source::Argument { index, expr } => {
                let argument = sample.dubbo.as_ref()?.arguments.get(*index)?;
                match serde_json::from_str::<Value>(argument) {
                    Ok(json) => dotted(&json, expr)
                        .and_then(text)
                        .map(|v| Cow::Owned(v.into_owned())),
                    // Not JSON: the text itself is the whole argument, and has no fields.
                    Err(_) if expr.is_empty() => Some(Cow::Borrowed(argument)),
                    Err(_) => None,
                }
            }
        }
    }

    fn body(&self) -> Option<&Body> {
        self.body
            .get_or_init(|| {
                let body = self.sample.body.as_str();
                if body.trim().is_empty() {
                    return None;
                }
                Some(match serde_json::from_str(body) {
                    Ok(json) => Body::Json(json),
                    Err(_) => Body::Form(form_fields(body)),
                })
            })
            .as_ref()
    }
}

/// The first value of a header, by name in any case.
fn header<'s>(sample: &'s Sample, name: &str) -> Option<&'s str> {
    sample
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A cookie from `cookies`, else from the `cookie` headers (`a=1; b=2`).
fn cookie<'s>(sample: &'s Sample, name: &str) -> Option<&'s str> {
    first(&sample.cookies, name).or_else(|| {
        sample
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
            .flat_map(|(_, v)| v.split(';'))
            .filter_map(|pair| pair.split_once('='))
            .find(|(n, _)| n.trim() == name)
            .map(|(_, v)| v.trim())
    })
}

fn first<'s>(pairs: &'s [(String, String)], name: &str) -> Option<&'s str> {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Follows `a.b.0.c` through objects and arrays; `""` is the value itself.
fn dotted<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    if path.is_empty() {
        return Some(value);
    }
    path.split('.').try_fold(value, |value, key| match value {
        Value::Object(map) => map.get(key),
        Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

/// How a JSON value compares: a string as its content, anything else as its JSON text;
/// `null` is no value.
fn text(value: &Value) -> Option<Cow<'_, str>> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(Cow::Borrowed(s)),
        other => Some(Cow::Owned(other.to_string())),
    }
}

/// `a=1&b=x%20y` decoded (`+` is a space).
fn form_fields(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name), percent_decode(value))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'+' => decoded.push(b' '),
            b'%' => {
                let digit = |at: usize| bytes.get(at).and_then(|b| hex(*b));
                match (digit(i + 1), digit(i + 2)) {
                    (Some(high), Some(low)) => {
                        decoded.push((high * 16 + low) as u8);
                        i += 2;
                    }
                    _ => decoded.push(b'%'),
                }
            }
            b => decoded.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&decoded).into_owned()
}
