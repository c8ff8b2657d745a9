//! Reading one JSON object of a rule by JSON path: typed getters for its known fields,
//! where `null` and `""` count as absent, and an "unknown field" violation for the rest.

use serde_json::{Map, Value};

use crate::violation::Violation;

/// The JSON path of `key` inside the object at `parent` (`""` is the document).
pub(crate) fn child(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// The JSON path of item `index` of the array at `parent`.
pub(crate) fn item(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// One object of the rule document and where it sits.
pub(crate) struct Object<'a> {
    pub path: String,
    map: &'a Map<String, Value>,
}

impl<'a> Object<'a> {
    /// The object at `path`, reporting a non-object and every field outside `known`.
    pub fn open(
        value: &'a Value,
        path: &str,
        known: &[&str],
        out: &mut Vec<Violation>,
    ) -> Option<Object<'a>> {
        let Value::Object(map) = value else {
            out.push(Violation::new(path, "must be a JSON object"));
            return None;
        };
        for (key, value) in map {
            if !known.contains(&key.as_str()) && !is_absent(value) {
                out.push(Violation::new(child(path, key), "unknown field"));
            }
        }
        Some(Object {
            path: path.to_owned(),
            map,
        })
    }

    pub fn path_of(&self, key: &str) -> String {
        child(&self.path, key)
    }

    /// The field's value, `None` when absent, `null` or `""`.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !is_absent(v))
    }

    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Reports `key` as required when it is absent.
    pub fn require(&self, key: &str, out: &mut Vec<Violation>) -> Option<&'a Value> {
        let value = self.get(key);
        if value.is_none() {
            out.push(Violation::new(self.path_of(key), "is required"));
        }
        value
    }

    pub fn string(&self, key: &str, out: &mut Vec<Violation>) -> Option<&'a str> {
        self.get(key).and_then(|v| self.as_string(key, v, out))
    }

    pub fn required_string(&self, key: &str, out: &mut Vec<Violation>) -> Option<&'a str> {
        self.require(key, out)
            .and_then(|v| self.as_string(key, v, out))
    }

    pub fn required_integer(&self, key: &str, out: &mut Vec<Violation>) -> Option<i64> {
        let value = self.require(key, out)?;
        let integer = value.as_i64().or_else(|| value.as_u64().map(|_| i64::MAX));
        if integer.is_none() {
            out.push(Violation::new(self.path_of(key), "must be an integer"));
        }
        integer
    }

    pub fn boolean(&self, key: &str, out: &mut Vec<Violation>) -> Option<bool> {
        let value = self.get(key)?;
        let boolean = value.as_bool();
        if boolean.is_none() {
            out.push(Violation::new(self.path_of(key), "must be true or false"));
        }
        boolean
    }

    /// The items of an array field holding `min..=max` items (reported otherwise, but the
    /// items are still returned so each can be checked).
    pub fn required_array(
        &self,
        key: &str,
        (min, max): (usize, usize),
        noun: &str,
        out: &mut Vec<Violation>,
    ) -> Option<&'a [Value]> {
        let value = self.require(key, out)?;
        let Value::Array(items) = value else {
            out.push(Violation::new(self.path_of(key), "must be an array"));
            return None;
        };
        if !(min..=max).contains(&items.len()) {
            out.push(Violation::new(
                self.path_of(key),
                format!("must hold {min} to {max} {noun}"),
            ));
        }
        Some(items)
    }

    /// Reports each of `keys` that is present with `message`. The seed's clients send
    /// every field of the form, unused ones as placeholders (`"index": 0` on an HTTP
    /// condition, `"content": {}` or `{"tag": "", "rate": 0}` beside the other gray
    /// type): those are not reported.
    pub fn forbid(&self, keys: &[&str], message: &str, out: &mut Vec<Violation>) {
        for key in keys {
            if self.map.get(*key).is_some_and(|v| !is_placeholder(v)) {
                out.push(Violation::new(self.path_of(key), message));
            }
        }
    }

    fn as_string(&self, key: &str, value: &'a Value, out: &mut Vec<Violation>) -> Option<&'a str> {
        let text = value.as_str();
        if text.is_none() {
            out.push(Violation::new(self.path_of(key), "must be a string"));
        }
        text
    }
}

/// An unfilled form field: absent, zero, false, or a container of nothing but those.
fn is_placeholder(value: &Value) -> bool {
    match value {
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Bool(b) => !b,
        Value::Array(items) => items.iter().all(is_placeholder),
        Value::Object(map) => map.values().all(is_placeholder),
        other => is_absent(other),
    }
}

fn is_absent(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}
