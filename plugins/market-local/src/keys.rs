//! Where the catalog keeps things in the plugin's kv, per market connection:
//!
//! | key | value |
//! |---|---|
//! | `app/<market>/<app>` | the app's index: name, description, versions (newest first) |
//! | `version/<market>/<app>/<version>` | one version's template and when it was published |
//!
//! Each segment is percent-encoded, so no id, name or version can reach into another
//! market's or app's keys (`a/b` is `a%2Fb`).

/// Every app index of `market`.
pub fn apps(market: &str) -> String {
    format!("app/{}/", encode(market))
}

pub fn app(market: &str, app: &str) -> String {
    format!("app/{}/{}", encode(market), encode(app))
}

/// Every version of `app`.
pub fn versions(market: &str, app: &str) -> String {
    format!("version/{}/{}/", encode(market), encode(app))
}

pub fn version(market: &str, app: &str, version: &str) -> String {
    format!("{}{}", versions(market, app), encode(version))
}

/// RFC 3986 percent-encoding of everything but the unreserved characters.
pub fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_cannot_reach_into_other_keys() {
        assert_eq!(version("m-1", "a/b", "1.0"), "version/m-1/a%2Fb/1.0");
        assert!(!version("m", "a/b", "1").starts_with(&versions("m", "a")));
        assert!(!app("m/x", "a").starts_with(&apps("m")));
        assert_eq!(encode("50%"), "50%25");
    }
}
