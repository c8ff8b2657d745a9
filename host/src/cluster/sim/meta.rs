//! Small helpers over JSON objects: reading and writing metadata fields, timestamps,
//! names, owner references.

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub fn now_rfc3339() -> String {
    timestamp(OffsetDateTime::now_utc())
}

pub fn timestamp(at: OffsetDateTime) -> String {
    at.replace_nanosecond(0)
        .unwrap_or(at)
        .format(&Rfc3339)
        .unwrap_or_default()
}

pub fn parse_timestamp(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

pub fn str_at<'a>(object: &'a Value, pointer: &str) -> Option<&'a str> {
    object.pointer(pointer).and_then(Value::as_str)
}

pub fn name(object: &Value) -> &str {
    str_at(object, "/metadata/name").unwrap_or("")
}

pub fn namespace(object: &Value) -> &str {
    str_at(object, "/metadata/namespace").unwrap_or("")
}

pub fn uid(object: &Value) -> &str {
    str_at(object, "/metadata/uid").unwrap_or("")
}

pub fn is_deleting(object: &Value) -> bool {
    object.pointer("/metadata/deletionTimestamp").is_some()
}

pub fn finalizers(object: &Value) -> Vec<String> {
    object
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|f| f.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// `metadata` as a mutable map, created when missing.
pub fn metadata_mut(object: &mut Value) -> &mut Map<String, Value> {
    if !object.get("metadata").is_some_and(Value::is_object) {
        object["metadata"] = json!({});
    }
    match object.get_mut("metadata") {
        Some(Value::Object(map)) => map,
        _ => unreachable!("metadata was just made an object"),
    }
}

/// A mutable map at `field` of `parent` (an object), created when missing.
pub fn map_mut<'a>(parent: &'a mut Value, field: &str) -> &'a mut Map<String, Value> {
    if !parent.get(field).is_some_and(Value::is_object) {
        parent[field] = json!({});
    }
    match parent.get_mut(field) {
        Some(Value::Object(map)) => map,
        _ => unreachable!("the field was just made an object"),
    }
}

pub fn label<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object
        .pointer("/metadata/labels")
        .and_then(|labels| labels.get(key))
        .and_then(Value::as_str)
}

pub fn annotation<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object
        .pointer("/metadata/annotations")
        .and_then(|annotations| annotations.get(key))
        .and_then(Value::as_str)
}

/// The uid of the controlling owner, if any.
pub fn controller_uid(object: &Value) -> Option<&str> {
    object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)?
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
        .and_then(|r| r.get("uid"))
        .and_then(Value::as_str)
}

/// Every owner uid.
pub fn owner_uids(object: &Value) -> Vec<&str> {
    object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .filter_map(|r| r.get("uid").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default()
}

/// A controller owner reference pointing at `owner`.
pub fn controller_ref(owner: &Value) -> Value {
    json!({
        "apiVersion": owner.get("apiVersion").cloned().unwrap_or(Value::Null),
        "kind": owner.get("kind").cloned().unwrap_or(Value::Null),
        "name": name(owner),
        "uid": uid(owner),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// `prefix` + five random characters from the alphabet Kubernetes uses for generated names.
pub fn generate_name(prefix: &str) -> String {
    use rand::Rng as _;
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    let suffix: String = (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{suffix}")
}

/// DNS-1123 subdomain (most object names).
pub fn valid_subdomain(name: &str) -> bool {
    !name.is_empty() && name.len() <= 253 && name.split('.').all(valid_label_chars)
}

/// DNS-1123 label (namespaces, services).
pub fn valid_label(name: &str) -> bool {
    name.len() <= 63 && valid_label_chars(name)
}

fn valid_label_chars(part: &str) -> bool {
    !part.is_empty()
        && part
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !part.starts_with('-')
        && !part.ends_with('-')
}

/// A Kubernetes quantity in millis of its unit (`100m` → 100, `2` → 2000, `1Gi` → bytes×1000).
pub fn quantity_millis(text: &str) -> Option<u128> {
    let text = text.trim();
    let suffixes: [(&str, u128); 12] = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("Pi", 1 << 50),
        ("Ei", 1 << 60),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
        ("P", 1_000_000_000_000_000),
        ("E", 1_000_000_000_000_000_000),
    ];
    if let Some(milli) = text.strip_suffix('m') {
        return milli.parse::<f64>().ok().map(|v| v.max(0.0) as u128);
    }
    for (suffix, factor) in suffixes {
        if let Some(number) = text.strip_suffix(suffix) {
            return number
                .parse::<f64>()
                .ok()
                .map(|v| (v.max(0.0) * factor as f64 * 1000.0) as u128);
        }
    }
    text.parse::<f64>()
        .ok()
        .map(|v| (v.max(0.0) * 1000.0) as u128)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse_in_millis() {
        assert_eq!(quantity_millis("100m"), Some(100));
        assert_eq!(quantity_millis("2"), Some(2000));
        assert_eq!(quantity_millis("1Ki"), Some(1024 * 1000));
        assert_eq!(quantity_millis("x"), None);
    }

    #[test]
    fn names_follow_dns_rules() {
        assert!(valid_subdomain("web-1.example"));
        assert!(!valid_subdomain("Web"));
        assert!(valid_label("shop-prod"));
        assert!(!valid_label("shop.prod"));
        assert!(generate_name("web-").starts_with("web-"));
    }
}
