//! Ordering versions as Rainbond does (RC console/utils/version.py `compare_version`):
//! split on `.`, a part of digits compares as its number, any other part as -1, and the
//! parts compare left to right (a shorter list that is a prefix sorts first).

use std::cmp::Ordering;

use crate::model::VersionSummary;

/// One dot-separated part: anything that is not all digits sorts below every number.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Part<'a> {
    NotNumeric,
    /// Digits without leading zeros; ordered by length, then digit by digit, so numbers of
    /// any size compare by value.
    Number(usize, &'a str),
}

fn parts(version: &str) -> Vec<Part<'_>> {
    version
        .split('.')
        .map(|part| {
            if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
                let digits = part.trim_start_matches('0');
                Part::Number(digits.len(), digits)
            } else {
                Part::NotNumeric
            }
        })
        .collect()
}

/// `a` against `b` by Rainbond's rule; versions that differ only in non-numeric parts
/// (`1.a`, `1.b`) compare equal.
pub fn compare(a: &str, b: &str) -> Ordering {
    parts(a).cmp(&parts(b))
}

/// Newest first: by [`compare`], then by `updated_at` (RFC 3339 UTC texts sort by time),
/// then by the version text so the order is total.
pub fn sort_newest_first(versions: &mut [VersionSummary]) {
    versions.sort_by(|a, b| {
        compare(&b.version, &a.version)
            .then_with(|| b.updated_at.cmp(&a.updated_at))
            .then_with(|| b.version.cmp(&a.version))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_like_rainbond() {
        // Rainbond's own cases.
        assert_eq!(compare("1.1.1", "1.0.1"), Ordering::Greater);
        assert_eq!(compare("1.1.10", "1.2.1"), Ordering::Less);
        assert_eq!(compare("1.1.1", "1.1.1"), Ordering::Equal);
        assert_eq!(compare("1.a.1", "1.0.1"), Ordering::Less);
        assert_eq!(compare("1.0.1", "1.b.1"), Ordering::Greater);
        // A prefix is older; leading zeros and huge numbers compare by value.
        assert_eq!(compare("1.8", "1.8.1"), Ordering::Less);
        assert_eq!(compare("1.010", "1.9"), Ordering::Greater);
        assert_eq!(compare("1.00", "1.0"), Ordering::Equal);
        assert_eq!(
            compare("99999999999999999999999", "99999999999999999999998"),
            Ordering::Greater
        );
        assert_eq!(compare("v2.0", "1.0"), Ordering::Less);
    }

    #[test]
    fn sorts_newest_first_then_by_time() {
        let v = |version: &str, updated_at: &str| VersionSummary {
            version: version.into(),
            alias: String::new(),
            description: String::new(),
            updated_at: updated_at.into(),
        };
        let mut versions = vec![
            v("1.8", "2026-01-01T00:00:00Z"),
            v("2.0", "2025-01-01T00:00:00Z"),
            v("1.10", "2024-01-01T00:00:00Z"),
            v("1.a", "2026-03-01T00:00:00Z"),
            v("1.b", "2026-02-01T00:00:00Z"),
        ];
        sort_newest_first(&mut versions);
        let order: Vec<&str> = versions.iter().map(|v| v.version.as_str()).collect();
        assert_eq!(order, ["2.0", "1.10", "1.8", "1.a", "1.b"]);
    }
}
