//! The request as the gateway routes it: the host without its port, the path, the
//! decoded query, and the headers (names lower-cased, in arrival order) that filters
//! change and the pod echoes.

use axum::http::{HeaderMap, Method, Uri};
use serde_json::{Map, Value};

#[derive(Debug, Clone)]
pub struct Incoming {
    pub method: String,
    /// Lower-cased, without port or trailing dot; empty when the request names none.
    pub host: String,
    pub path: String,
    /// Decoded `name=value` pairs in order.
    pub query: Vec<(String, String)>,
    /// Lower-cased names, one entry per received header line.
    pub headers: Vec<(String, String)>,
}

impl Incoming {
    pub fn read(method: &Method, uri: &Uri, headers: &HeaderMap) -> Self {
        let host = headers
            .get(axum::http::header::HOST)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
            .or_else(|| uri.authority().map(|a| a.as_str().to_owned()))
            .unwrap_or_default();
        let query = uri
            .query()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        Self {
            method: method.as_str().to_owned(),
            host: strip_port(&host),
            path: uri.path().to_owned(),
            query,
            headers: headers
                .iter()
                .map(|(name, value)| {
                    (
                        name.as_str().to_owned(),
                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    )
                })
                .collect(),
        }
    }

    /// Every value of header `name` (any case), joined with `,` as a proxy merges
    /// repeated header lines (`; ` for `cookie`, which HTTP/2 clients split); `None`
    /// when absent.
    pub fn header(&self, name: &str) -> Option<String> {
        let values: Vec<&str> = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect();
        let separator = if name.eq_ignore_ascii_case("cookie") {
            "; "
        } else {
            ","
        };
        (!values.is_empty()).then(|| values.join(separator))
    }

    /// The first value of query parameter `name` (names are case-sensitive).
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of cookie `name` from the `cookie` header(s) (`a=1; b=2`).
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n == "cookie")
            .flat_map(|(_, v)| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(n, _)| n.trim() == name)
            .map(|(_, v)| v.trim().to_owned())
    }

    /// Replaces every value of `name` with `value`.
    pub fn set_header(&mut self, name: &str, value: &str) {
        self.remove_header(name);
        self.headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
    }

    /// Adds a value after the existing ones.
    pub fn add_header(&mut self, name: &str, value: &str) {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
    }

    pub fn remove_header(&mut self, name: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// The headers as the pod shows them: name → values joined with `,`.
    pub fn headers_json(&self) -> Value {
        let mut map = Map::new();
        for (name, _) in &self.headers {
            if !map.contains_key(name)
                && let Some(value) = self.header(name)
            {
                map.insert(name.clone(), Value::String(value));
            }
        }
        Value::Object(map)
    }
}

/// `Example.com:8080` → `example.com`, `[::1]:80` → `::1`.
fn strip_port(authority: &str) -> String {
    let host = match authority.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
pub fn sample(method: &str, host: &str, target: &str, headers: &[(&str, &str)]) -> Incoming {
    let uri: Uri = target.parse().expect("a request target");
    let mut map = HeaderMap::new();
    map.insert(
        axum::http::header::HOST,
        host.parse().expect("a host header"),
    );
    for (name, value) in headers {
        map.append(
            axum::http::HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
            value.parse().expect("a header value"),
        );
    }
    Incoming::read(
        &Method::from_bytes(method.as_bytes()).expect("a method"),
        &uri,
        &map,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_is_stripped_and_lower_cased() {
        assert_eq!(strip_port("Cart.Shop.svc:16480"), "cart.shop.svc");
        assert_eq!(strip_port("[::1]:80"), "::1");
        assert_eq!(strip_port("example.com."), "example.com");
    }

    #[test]
    fn cookies_query_and_repeated_headers_are_read() {
        let request = sample(
            "GET",
            "a.b:1",
            "/x?name=al%20ice&name=bob&flag",
            &[
                ("Cookie", "a=1"),
                ("cookie", "beta=yes"),
                ("X-User", "u1"),
                ("x-user", "u2"),
            ],
        );
        assert_eq!(request.header("cookie").as_deref(), Some("a=1; beta=yes"));
        assert_eq!(request.cookie("beta").as_deref(), Some("yes"));
        assert_eq!(request.cookie("b"), None);
        assert_eq!(request.query_param("name"), Some("al ice"));
        assert_eq!(request.query_param("flag"), Some(""));
        assert_eq!(request.header("X-USER").as_deref(), Some("u1,u2"));
        assert_eq!(request.headers_json()["x-user"], "u1,u2");
    }
}
