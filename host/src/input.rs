//! Naming the offending field of a JSON input error, shared by the API and the plugin console.

/// The field a deserialization error is about: its path, plus the field serde reports as
/// missing (serde places a missing field's error at its parent).
pub fn field_of(path: &str, message: &str) -> String {
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    match (path, missing) {
        (".", Some(name)) => name.to_owned(),
        (".", None) => "body".to_owned(),
        (path, Some(name)) => format!("{path}.{name}"),
        (path, None) => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::field_of;

    #[test]
    fn missing_fields_are_named() {
        assert_eq!(
            field_of(".", "missing field `password` at line 1"),
            "password"
        );
        assert_eq!(field_of("grants", "missing field `allow`"), "grants.allow");
        assert_eq!(field_of("grants.http", "invalid type"), "grants.http");
        assert_eq!(field_of(".", "invalid type: integer"), "body");
    }
}
