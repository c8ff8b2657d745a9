//! Regular-expression text for rendered match objects: escaping literal values, and the
//! full-match patterns of `=`, `in` and `regex` conditions, for header values and cookies.

use crate::model::Test;

/// How a provider can match a value for a condition's test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueMatch {
    Exact(String),
    /// A pattern the whole value must match (already anchored with `^…$`).
    FullRegex(String),
}

/// `=` → exact, `in` → `^(a|b)$`, `regex` → `^(?:expr)$`; other tests have no match object.
pub fn value_match(test: &Test) -> Option<ValueMatch> {
    Some(match test {
        Test::Equals(value) => ValueMatch::Exact(value.clone()),
        Test::In(_) | Test::Regex { .. } => ValueMatch::FullRegex(format!("^{}$", group(test)?)),
        _ => return None,
    })
}

/// A `cookie` header pattern matching cookie `name` with a value passing `test`
/// (`=`, `in` or `regex`), wherever it sits among the other cookies.
pub fn cookie_header_pattern(name: &str, test: &Test) -> Option<String> {
    let value = match test {
        Test::Equals(value) => escape(value),
        _ => group(test)?,
    };
    Some(format!(r"^(.*;\s*)?{}={value}(\s*;.*)?$", escape(name)))
}

/// `(a|b)` for `in` (items escaped), `(?:expr)` for `regex`.
fn group(test: &Test) -> Option<String> {
    match test {
        Test::In(items) => Some(format!(
            "({})",
            items
                .iter()
                .map(|i| escape(i))
                .collect::<Vec<_>>()
                .join("|")
        )),
        Test::Regex { expr, .. } => Some(format!("(?:{expr})")),
        _ => None,
    }
}

/// `text` as a literal in RE2, PCRE and Rust regex syntax alike: only the characters that
/// are special outside a class everywhere get a backslash.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '.' | '+' | '*' | '?' | '(' | ')' | '|' | '[' | ']' | '{' | '}' | '^' | '$'
        ) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// An HTTP header (or query parameter) name Gateway API and ingress-nginx accept: an
/// RFC 7230 token.
pub fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
