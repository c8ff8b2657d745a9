//! URLs of a store: the market's base URL checked once, path segments and query values
//! percent-encoded (an app id such as `../x` stays one segment), the origin a request goes
//! to (the access key goes to the market's own origin only) and redirect targets.

use wharf_sdk::marketplace::CatalogError;

/// Scheme, host and port: what "the market's own URL" means for the key and the host's
/// narrowing of outbound HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    /// The origin of an absolute `http(s)://` URL; `None` for anything else.
    pub fn of(url: &str) -> Option<Origin> {
        let (scheme, rest) = url.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
        if authority.is_empty() || authority.contains('@') {
            return None;
        }
        // `[v6]:port`, `host:port` or a bare host.
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => (host, Some(port)),
            _ => (authority, None),
        };
        let port = match port {
            Some(p) => p.parse().ok()?,
            None => default_port,
        };
        if host.is_empty() {
            return None;
        }
        Some(Origin {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// The market's URL without trailing slashes, checked to be a plain `http(s)://` base.
pub fn base(url: &str) -> Result<(String, Origin), CatalogError> {
    let url = url.trim().trim_end_matches('/');
    let refuse = |why: &str| {
        CatalogError::Unavailable(format!(
            "the market URL `{url}` {why}; give the store's base URL, e.g. https://hub.grapps.cn"
        ))
    };
    if url.is_empty() {
        return Err(CatalogError::Unavailable(
            "the market has no URL; a rainstore market needs the store's base URL".to_string(),
        ));
    }
    if url.contains(['?', '#']) {
        return Err(refuse("must not carry a query or fragment"));
    }
    let origin = Origin::of(url).ok_or_else(|| refuse("is not an http or https URL"))?;
    Ok((url.to_string(), origin))
}

/// RFC 3986 percent-encoding of everything but the unreserved characters, for one path
/// segment or one query value.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `a=1&b=2` with every value encoded.
pub fn query(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(name, value)| format!("{name}={}", encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Where a redirect's `Location` points, seen from `current`.
pub fn resolve(current: &str, location: &str) -> Option<String> {
    let location = location.trim();
    if Origin::of(location).is_some() {
        return Some(location.to_string());
    }
    let (scheme, rest) = current.split_once("://")?;
    if let Some(authority_and_path) = location.strip_prefix("//") {
        return Some(format!("{scheme}://{authority_and_path}"));
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    if location.starts_with('/') {
        return Some(format!("{scheme}://{authority}{location}"));
    }
    if location.is_empty() || location.contains("://") {
        return None;
    }
    // Relative to the current path's directory.
    let path = &rest[authority_end..];
    let path = &path[..path.find(['?', '#']).unwrap_or(path.len())];
    let directory = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    let directory = if directory.is_empty() { "/" } else { directory };
    Some(format!("{scheme}://{authority}{directory}{location}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_everything_but_unreserved_characters() {
        assert_eq!(encode("../x"), "..%2Fx");
        assert_eq!(encode("a b+c?d#e&f=g%"), "a%20b%2Bc%3Fd%23e%26f%3Dg%25");
        assert_eq!(encode("v1.0_beta-2~"), "v1.0_beta-2~");
        assert_eq!(encode("应用"), "%E5%BA%94%E7%94%A8");
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        let store = Origin::of("https://Store.example.com/app-server").expect("origin");
        assert_eq!(
            Origin::of("https://store.example.com:443/x"),
            Some(store.clone())
        );
        assert_ne!(
            Origin::of("http://store.example.com/x"),
            Some(store.clone())
        );
        assert_ne!(
            Origin::of("https://store.example.com:8443/"),
            Some(store.clone())
        );
        assert_ne!(Origin::of("https://cdn.example.com/"), Some(store));
        assert_eq!(
            Origin::of("http://[::1]:8080/a").map(|o| o.to_string()),
            Some("http://[::1]:8080".to_string())
        );
        for bad in [
            "ftp://x",
            "store.example.com",
            "http://",
            "http://u@h/",
            "http://h:x/",
        ] {
            assert_eq!(Origin::of(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_market_url_must_be_a_plain_base() {
        assert_eq!(
            base("https://hub.grapps.cn/").map(|(b, _)| b),
            Ok("https://hub.grapps.cn".to_string())
        );
        for bad in ["", "hub.grapps.cn", "https://hub?x=1", "ftp://hub"] {
            assert!(
                matches!(base(bad), Err(CatalogError::Unavailable(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn redirect_targets_resolve_like_a_browser() {
        let from = "http://store:8080/app-server/openapi/apps?x=1";
        assert_eq!(
            resolve(from, "https://cdn/a").as_deref(),
            Some("https://cdn/a")
        );
        assert_eq!(
            resolve(from, "//other/b").as_deref(),
            Some("http://other/b")
        );
        assert_eq!(
            resolve(from, "/v2/apps").as_deref(),
            Some("http://store:8080/v2/apps")
        );
        assert_eq!(
            resolve(from, "apps2?y=2").as_deref(),
            Some("http://store:8080/app-server/openapi/apps2?y=2")
        );
        assert_eq!(resolve(from, ""), None);
    }
}
