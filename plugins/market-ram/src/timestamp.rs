//! RFC 3339 times as the marketplace world carries them: UTC, so that texts compare in
//! time order.

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// `text` (an RFC 3339 time with any offset, as a Go store writes `time.Time`) in UTC;
/// `None` when it is not RFC 3339.
pub fn normalize(text: &str) -> Option<String> {
    let time = OffsetDateTime::parse(text.trim(), &Rfc3339).ok()?;
    time.to_offset(UtcOffset::UTC).format(&Rfc3339).ok()
}

/// The current time (the wall clock; wasi:clocks in a component).
pub fn now() -> String {
    // Formatting a UTC time with a four-digit year cannot fail; the epoch is a fallback
    // that is still valid RFC 3339.
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_offsets_to_utc() {
        assert_eq!(
            normalize("2021-06-01T20:00:00.5+08:00").as_deref(),
            Some("2021-06-01T12:00:00.5Z")
        );
        assert_eq!(
            normalize("2021-06-01T12:00:00Z").as_deref(),
            Some("2021-06-01T12:00:00Z")
        );
        assert_eq!(normalize("2021-06-01 12:00:00"), None);
        assert_eq!(normalize(""), None);
    }

    #[test]
    fn now_is_rfc3339() {
        let now = now();
        assert_eq!(normalize(&now).as_deref(), Some(now.as_str()));
    }
}
