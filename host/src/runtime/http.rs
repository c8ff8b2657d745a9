//! Outbound HTTP for plugins (`wasi:http/outgoing-handler`), denied unless allow-listed.
//!
//! An admin grants a plugin `scheme://host:port` patterns (`*` for any host or port,
//! `*.example.com` for subdomains, port omitted = the scheme's default). Every request is
//! checked in [`OutboundHooks::send_request`] before a connection is made; a refused
//! request fails in the guest with `HTTP-request-denied`, is logged to the plugin's ring
//! and counted in its stats. The plugin's call deadline bounds the whole exchange.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde::{Deserialize, Serialize};
use serde_json::json;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use super::journal::Journal;

/// Completion of the connection task, as wasi-http expects it.
type IoFuture = Box<dyn Future<Output = Result<(), HttpError>> + Send>;

use super::log::LogRing;
use super::stats::PluginStats;

/// One allow-list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowPattern {
    scheme: String,
    host: HostPattern,
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    Exact(String),
    /// `*.example.com`: any subdomain of `example.com`.
    Suffix(String),
}

fn default_port(scheme: &str) -> u16 {
    if scheme == "https" { 443 } else { 80 }
}

impl AllowPattern {
    /// Parses `scheme://host[:port]`.
    pub fn parse(pattern: &str) -> Result<AllowPattern, String> {
        let (scheme, rest) = pattern
            .split_once("://")
            .ok_or_else(|| format!("`{pattern}` is not scheme://host:port"))?;
        if scheme != "http" && scheme != "https" {
            return Err(format!("`{pattern}`: the scheme must be http or https"));
        }
        if rest.contains(['/', '?', '#', '@']) {
            return Err(format!(
                "`{pattern}`: give only scheme://host:port, no path"
            ));
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || rest.starts_with('[') => {
                let port = if port == "*" {
                    None
                } else {
                    Some(
                        port.parse::<u16>()
                            .map_err(|_| format!("`{pattern}`: the port must be a number or *"))?,
                    )
                };
                (host, port)
            }
            _ => (rest, Some(default_port(scheme))),
        };
        if host.is_empty() {
            return Err(format!("`{pattern}`: the host is empty"));
        }
        let host = host.to_ascii_lowercase();
        let host = if host == "*" {
            HostPattern::Any
        } else if let Some(suffix) = host.strip_prefix("*.") {
            HostPattern::Suffix(suffix.to_owned())
        } else if host.contains('*') {
            return Err(format!(
                "`{pattern}`: `*` may only be the whole host or its first label"
            ));
        } else {
            HostPattern::Exact(host)
        };
        Ok(AllowPattern {
            scheme: scheme.to_owned(),
            host,
            port,
        })
    }

    /// The one origin (`scheme://host:port`) of `url`: what a call serving that URL may
    /// reach, and nothing else.
    pub fn origin_of(url: &str) -> Result<AllowPattern, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
        let scheme = parsed.scheme();
        if scheme != "http" && scheme != "https" {
            return Err(format!("`{url}`: the scheme must be http or https"));
        }
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("`{url}` names no host"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        Ok(AllowPattern {
            scheme: scheme.to_owned(),
            host: HostPattern::Exact(host.to_ascii_lowercase()),
            port: Some(parsed.port().unwrap_or_else(|| default_port(scheme))),
        })
    }

    pub fn matches(&self, scheme: &str, host: &str, port: u16) -> bool {
        let host = host.to_ascii_lowercase();
        let host_ok = match &self.host {
            HostPattern::Any => true,
            HostPattern::Exact(h) => *h == host,
            HostPattern::Suffix(s) => host.ends_with(&format!(".{s}")),
        };
        self.scheme == scheme && host_ok && self.port.is_none_or(|p| p == port)
    }
}

/// The parsed allow-list of one plugin version.
#[derive(Debug, Clone, Default)]
pub struct AllowList(Vec<AllowPattern>);

impl AllowList {
    pub fn of(patterns: Vec<AllowPattern>) -> AllowList {
        AllowList(patterns)
    }

    pub fn parse(patterns: &[String]) -> Result<AllowList, String> {
        patterns
            .iter()
            .map(|p| AllowPattern::parse(p))
            .collect::<Result<_, _>>()
            .map(AllowList)
    }

    pub fn permits(&self, uri: &http::Uri) -> bool {
        let Some(scheme) = uri.scheme_str() else {
            return false;
        };
        let Some(host) = uri.host() else { return false };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or_else(|| default_port(scheme));
        self.0.iter().any(|p| p.matches(scheme, host, port))
    }
}

/// wasi-http hooks of one call: the allow-list check in front of the default client.
pub struct OutboundHooks {
    pub allow: Arc<AllowList>,
    /// Set for calls that serve one remote (a market connection): a request must be on
    /// this list as well as on the plugin's own.
    pub narrowed: Option<AllowList>,
    pub ring: Arc<LogRing>,
    pub stats: Arc<PluginStats>,
    pub version: String,
    /// A pipeline step's journal: responses are recorded, or answered from a recording.
    pub journal: Option<Journal>,
}

/// Largest response body a journaled request keeps; a bigger one fails the request.
const MAX_JOURNALED_BODY: usize = 8 * 1024 * 1024;

/// A response as the journal keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RecordedResponse {
    status: u16,
    headers: Vec<(String, String)>,
    /// Base64.
    body: String,
}

impl RecordedResponse {
    fn into_response(self) -> Result<http::Response<WasiBody>, HttpError> {
        let body = base64::engine::general_purpose::STANDARD
            .decode(&self.body)
            .map_err(|_| internal("recorded response body unreadable"))?;
        let mut builder = http::Response::builder().status(self.status);
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
        builder
            .body(
                Full::new(Bytes::from(body))
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            )
            .map_err(|e| internal(&e.to_string()))
    }
}

fn internal(why: &str) -> HttpError {
    HttpError::InternalError(Some(why.to_owned()))
}

/// Sends `request`, reads the whole response and records it in `journal`.
async fn send_recorded(
    request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
    journal: Journal,
    args: serde_json::Value,
) -> Result<(http::Response<WasiBody>, IoFuture), HttpError> {
    let (response, io) = match wasmtime_wasi_http::default_send_request(request, options).await {
        Ok(sent) => sent,
        Err(error) => {
            journal.note("http.send", args, &Err::<RecordedResponse, ()>(()));
            return Err(error);
        }
    };
    let (parts, body) = response.into_parts();
    let limited = http_body_util::Limited::new(body, MAX_JOURNALED_BODY);
    let bytes = limited
        .collect()
        .await
        .map_err(|e| internal(&format!("reading the response for the journal: {e}")))?
        .to_bytes();
    let recorded = RecordedResponse {
        status: parts.status.as_u16(),
        headers: parts
            .headers
            .iter()
            .filter_map(|(n, v)| Some((n.to_string(), v.to_str().ok()?.to_owned())))
            .collect(),
        body: base64::engine::general_purpose::STANDARD.encode(&bytes),
    };
    journal.note("http.send", args, &Ok::<_, ()>(&recorded));
    Ok((recorded.into_response()?, Box::new(io) as IoFuture))
}

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), HttpError>> + Send>
    {
        drop(fut);
        let uri = request.uri().clone();
        let journaled_args = json!([request.method().as_str(), uri.to_string()]);
        if let Some(journal) = &self.journal
            && let Some(answer) =
                journal.answer::<Result<RecordedResponse, ()>>("http.send", &journaled_args)
        {
            return Box::new(async move {
                match answer {
                    Ok(Ok(recorded)) => Ok((
                        recorded.into_response()?,
                        Box::new(async { Ok(()) }) as IoFuture,
                    )),
                    Ok(Err(())) => Err(HttpError::ConnectionRefused),
                    Err(why) => Err(internal(&format!("replay diverged: {why}"))),
                }
            });
        }
        let refusal = if !self.allow.permits(&uri) {
            Some("not on the plugin's allow-list")
        } else if self.narrowed.as_ref().is_some_and(|n| !n.permits(&uri)) {
            Some("this call may reach only the URL it serves")
        } else {
            None
        };
        if let Some(why) = refusal {
            self.stats.http_denied.fetch_add(1, Ordering::Relaxed);
            self.ring.host_line(
                "warn",
                &self.version,
                format!("outbound request to {uri} denied: {why}"),
            );
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }
        if let Some(journal) = self.journal.clone() {
            return Box::new(send_recorded(request, options, journal, journaled_args));
        }
        Box::new(async move {
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as IoFuture,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn permits(patterns: &[&str], uri: &str) -> bool {
        let list =
            AllowList::parse(&patterns.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        list.permits(&uri.parse().unwrap())
    }

    #[test]
    fn nothing_is_allowed_by_default() {
        assert!(!permits(&[], "https://example.com/"));
    }

    #[test]
    fn patterns_match_scheme_host_and_port() {
        assert!(permits(
            &["https://api.example.com"],
            "https://api.example.com/v1"
        ));
        assert!(!permits(
            &["https://api.example.com"],
            "http://api.example.com/v1"
        ));
        assert!(!permits(
            &["https://api.example.com"],
            "https://api.example.com:8443/"
        ));
        assert!(permits(&["http://127.0.0.1:*"], "http://127.0.0.1:9999/x"));
        assert!(permits(
            &["https://*.example.com:443"],
            "https://a.example.com/"
        ));
        assert!(!permits(
            &["https://*.example.com:443"],
            "https://example.com/"
        ));
        assert!(!permits(
            &["https://*.example.com:443"],
            "https://evil-example.com/"
        ));
        assert!(permits(&["http://*:8080"], "http://anything:8080/"));
    }

    #[test]
    fn an_origin_allows_its_scheme_host_and_port_only() {
        let origin = AllowPattern::origin_of("http://127.0.0.1:4567/app-server").unwrap();
        let list = AllowList::of(vec![origin]);
        assert!(
            list.permits(
                &"http://127.0.0.1:4567/app-server/openapi/apps"
                    .parse()
                    .unwrap()
            )
        );
        assert!(!list.permits(&"http://127.0.0.1:4568/".parse().unwrap()));
        assert!(!list.permits(&"https://127.0.0.1:4567/".parse().unwrap()));
        let https = AllowList::of(vec![
            AllowPattern::origin_of("https://Hub.Example.com").unwrap(),
        ]);
        assert!(https.permits(&"https://hub.example.com:443/x".parse().unwrap()));
        assert!(!https.permits(&"https://evil.example.com/".parse().unwrap()));
        assert!(AllowPattern::origin_of("ftp://x").is_err());
        assert!(AllowPattern::origin_of("not a url").is_err());
    }

    #[test]
    fn malformed_patterns_are_refused() {
        for bad in [
            "example.com",
            "ftp://x:1",
            "http://x:port",
            "http://x/path",
            "http://a*b:1",
            "http://:80",
        ] {
            assert!(AllowPattern::parse(bad).is_err(), "{bad}");
        }
    }
}
