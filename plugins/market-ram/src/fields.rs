//! Typed reads of one JSON object's fields, each failure a violation at the field's path.
//!
//! The templates come from Rainbond's console, which is Python: numbers may arrive as JSON
//! numbers or as numeric strings (`"512"`), and an absent field, `null` and (for numbers)
//! `""` all mean "not given". What cannot be read is recorded and reads as absent, so one
//! pass reports every bad field.

use serde_json::{Map, Value};

use crate::violation::{Violation, join};

/// One JSON object being read at `path`, with the violations found so far.
pub(crate) struct Fields<'a, 'v> {
    object: &'a Map<String, Value>,
    path: String,
    violations: &'v mut Vec<Violation>,
}

impl<'a, 'v> Fields<'a, 'v> {
    /// `value` read as an object at `path`; `None` (and a violation) when it is not one.
    pub(crate) fn of(
        value: &'a Value,
        path: String,
        violations: &'v mut Vec<Violation>,
    ) -> Option<Fields<'a, 'v>> {
        match value.as_object() {
            Some(object) => Some(Fields {
                object,
                path,
                violations,
            }),
            None => {
                violations.push(Violation::new(path, "must be a JSON object"));
                None
            }
        }
    }

    pub(crate) fn path(&self, key: &str) -> String {
        join(&self.path, key)
    }

    pub(crate) fn complain(&mut self, key: &str, message: impl Into<String>) {
        let field = self.path(key);
        self.violations.push(Violation::new(field, message));
    }

    pub(crate) fn violations(&mut self) -> &mut Vec<Violation> {
        self.violations
    }

    /// The field's value unless it is absent or `null`.
    pub(crate) fn value(&self, key: &str) -> Option<&'a Value> {
        self.object.get(key).filter(|v| !v.is_null())
    }

    /// A string field; `None` when absent or `null`.
    pub(crate) fn string(&mut self, key: &str) -> Option<String> {
        match self.value(key)? {
            Value::String(s) => Some(s.clone()),
            _ => {
                self.complain(key, "must be a string");
                None
            }
        }
    }

    /// A string field that must be present and non-empty.
    pub(crate) fn required_string(&mut self, key: &str) -> Option<String> {
        match self.string(key) {
            Some(s) if !s.trim().is_empty() => Some(s),
            Some(_) => {
                self.complain(key, "must not be empty");
                None
            }
            None if self.value(key).is_none() => {
                self.complain(key, "is required");
                None
            }
            None => None,
        }
    }

    /// Text that may also be written as a number (`"version": 1.2` from a hand-written
    /// template); `None` when absent or `null`.
    pub(crate) fn text(&mut self, key: &str) -> Option<String> {
        match self.value(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => {
                self.complain(key, "must be a string");
                None
            }
        }
    }

    /// A boolean flag; absent or `null` is false.
    pub(crate) fn flag(&mut self, key: &str) -> bool {
        match self.value(key) {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                self.complain(key, "must be true or false");
                false
            }
        }
    }

    /// A whole number from 0 to `u32::MAX`, as a JSON number or a numeric string.
    pub(crate) fn number(&mut self, key: &str) -> Option<u32> {
        let value = self.value(key)?;
        match read_number(value) {
            Ok(n) => n,
            Err(message) => {
                self.complain(key, message);
                None
            }
        }
    }

    /// An object field read with its own path; `None` when absent, `null` or not an
    /// object (the last with a violation).
    pub(crate) fn object(&mut self, key: &str) -> Option<Fields<'a, '_>> {
        let value = self.value(key)?;
        let path = self.path(key);
        Fields::of(value, path, self.violations)
    }

    /// An array field; absent or `null` is empty.
    pub(crate) fn array(&mut self, key: &str) -> &'a [Value] {
        match self.value(key) {
            None => &[],
            Some(Value::Array(items)) => items,
            Some(_) => {
                self.complain(key, "must be an array");
                &[]
            }
        }
    }
}

/// Reads a count: `Ok(None)` for "not given" (`""`), an error message for anything that
/// is not a whole number from 0 to `u32::MAX`.
fn read_number(value: &Value) -> Result<Option<u32>, String> {
    let whole: u64 = match value {
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                u
            } else if n.as_i64().is_some_and(|i| i < 0) {
                return Err("must not be negative".to_string());
            } else {
                match n.as_f64() {
                    Some(f) if f < 0.0 => return Err("must not be negative".to_string()),
                    Some(f) if f.fract() == 0.0 && f <= u32::MAX as f64 => f as u64,
                    Some(f) if f.fract() == 0.0 => u64::MAX,
                    _ => return Err(format!("must be a whole number, not {n}")),
                }
            }
        }
        Value::String(s) => {
            let s = s.trim();
            if s.is_empty() {
                return Ok(None);
            }
            if s.starts_with('-') && s[1..].chars().all(|c| c.is_ascii_digit()) && s.len() > 1 {
                return Err("must not be negative".to_string());
            }
            if !s.chars().all(|c| c.is_ascii_digit()) {
                return Err(format!("must be a whole number, not \"{s}\""));
            }
            // All digits: only the size can fail.
            s.parse::<u64>().unwrap_or(u64::MAX)
        }
        _ => return Err("must be a number".to_string()),
    };
    u32::try_from(whole)
        .map(Some)
        .map_err(|_| format!("is too large (at most {})", u32::MAX))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read(value: Value) -> (Option<u32>, Vec<Violation>) {
        let doc = json!({ "n": value });
        let mut violations = Vec::new();
        let mut fields = Fields::of(&doc, "x".into(), &mut violations).expect("an object");
        let n = fields.number("n");
        (n, violations)
    }

    #[test]
    fn numbers_arrive_as_json_numbers_or_numeric_strings() {
        assert_eq!(read(json!(512)), (Some(512), vec![]));
        assert_eq!(read(json!("512")), (Some(512), vec![]));
        assert_eq!(read(json!(" 64 ")), (Some(64), vec![]));
        assert_eq!(read(json!(128.0)), (Some(128), vec![]));
        assert_eq!(read(json!("")), (None, vec![]));
        assert_eq!(read(json!(null)), (None, vec![]));
    }

    #[test]
    fn negative_fractional_and_non_numeric_numbers_are_refused_at_their_path() {
        for (value, message) in [
            (json!(-1), "must not be negative"),
            (json!("-20"), "must not be negative"),
            (json!(-0.5), "must not be negative"),
            (json!(1.5), "must be a whole number, not 1.5"),
            (json!("12abc"), "must be a whole number, not \"12abc\""),
            (json!("1.5"), "must be a whole number, not \"1.5\""),
            (json!(true), "must be a number"),
            (json!([1]), "must be a number"),
            (json!(4_294_967_296u64), "is too large (at most 4294967295)"),
            (
                json!("99999999999999999999999"),
                "is too large (at most 4294967295)",
            ),
        ] {
            let (n, violations) = read(value.clone());
            assert_eq!(n, None, "{value}");
            assert_eq!(violations, vec![Violation::new("x.n", message)], "{value}");
        }
    }

    #[test]
    fn required_strings_say_whether_they_are_missing_empty_or_mistyped() {
        let doc = json!({ "empty": " ", "number": 3 });
        let mut violations = Vec::new();
        let mut fields = Fields::of(&doc, "".into(), &mut violations).expect("an object");
        assert_eq!(fields.required_string("missing"), None);
        assert_eq!(fields.required_string("empty"), None);
        assert_eq!(fields.required_string("number"), None);
        assert_eq!(
            violations,
            vec![
                Violation::new("missing", "is required"),
                Violation::new("empty", "must not be empty"),
                Violation::new("number", "must be a string"),
            ]
        );
    }
}
