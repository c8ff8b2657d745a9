//! A small blocking HTTP client over `wasi:http/outgoing-handler`.
//!
//! Outbound requests are limited by the host to the plugin's allow-list; a refused URL comes
//! back as [`HttpError::Denied`] carrying the wasi:http error code text
//! (`"HTTP request denied"`), so plugins can turn it into a message the user can act on.
//! The whole response body is read into memory; the plugin's memory limit bounds it.
//! On native targets requests are answered by the stubs of the current
//! [`harness::Host`](crate::harness::Host).

use std::borrow::Cow;
use std::fmt;

use serde::de::DeserializeOwned;

/// An HTTP method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Patch,
    Options,
    /// Any other method token, e.g. `PROPFIND`.
    Other(String),
}

impl Method {
    /// The method token as sent on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Patch => "PATCH",
            Method::Options => "OPTIONS",
            Method::Other(token) => token,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An outbound request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    /// Absolute `http://` or `https://` URL.
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// A request with no headers and an empty body.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Request {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A `GET` of `url`.
    pub fn get(url: impl Into<String>) -> Self {
        Request::new(Method::Get, url)
    }

    /// A `POST` of `body` to `url`.
    pub fn post(url: impl Into<String>, body: impl Into<Vec<u8>>) -> Self {
        Request {
            body: body.into(),
            ..Request::new(Method::Post, url)
        }
    }

    /// Adds a header (builder style).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// A complete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Header names as received; values that are not UTF-8 are converted lossily.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text, replacing invalid UTF-8.
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// The body decoded from JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Why a request produced no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The request could not be built (bad URL, method or header); nothing was sent.
    InvalidRequest(String),
    /// The host refused the request, typically because the URL is not on the plugin's
    /// allow-list. The text is the wasi:http error code, `"HTTP request denied"`.
    Denied(String),
    /// The request failed on the way (DNS, connect, TLS, timeout, protocol, body stream).
    /// The text is the wasi:http error code, e.g. `"connection refused"`.
    Transport(String),
}

impl HttpError {
    /// The error text without a kind prefix.
    pub fn message(&self) -> &str {
        match self {
            HttpError::InvalidRequest(m) | HttpError::Denied(m) | HttpError::Transport(m) => m,
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::InvalidRequest(m) => write!(f, "invalid request: {m}"),
            HttpError::Denied(m) | HttpError::Transport(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for HttpError {}

/// `GET url`.
pub fn get(url: &str) -> Result<Response, HttpError> {
    send(Request::get(url))
}

/// Sends `request` and waits for the complete response.
pub fn send(request: Request) -> Result<Response, HttpError> {
    let target = Target::parse(&request.url)?;
    dispatch(&request, &target)
}

#[cfg(target_arch = "wasm32")]
fn dispatch(request: &Request, target: &Target) -> Result<Response, HttpError> {
    wasi_backend::send(request, target)
}

/// The harness matches stubs by URL; `send` still parses first, so native tests see the
/// same `InvalidRequest` errors as the component would.
#[cfg(not(target_arch = "wasm32"))]
fn dispatch(request: &Request, _target: &Target) -> Result<Response, HttpError> {
    crate::harness::http_send(request)
}

/// The parts of an absolute URL that wasi:http wants separately.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    https: bool,
    authority: String,
    path_with_query: String,
}

impl Target {
    fn parse(url: &str) -> Result<Target, HttpError> {
        let invalid = |why: &str| HttpError::InvalidRequest(format!("URL `{url}` {why}"));
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| invalid("is not absolute"))?;
        let https = if scheme.eq_ignore_ascii_case("https") {
            true
        } else if scheme.eq_ignore_ascii_case("http") {
            false
        } else {
            return Err(invalid("must use http or https"));
        };
        // The fragment is never sent to the server.
        let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        if authority.is_empty() {
            return Err(invalid("has no host"));
        }
        if authority.contains('@') {
            return Err(invalid("must not carry credentials; send them in a header"));
        }
        if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("contains whitespace or control characters"));
        }
        let path_with_query = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        Ok(Target {
            https,
            authority: authority.to_string(),
            path_with_query,
        })
    }
}

#[cfg(target_arch = "wasm32")]
mod wasi_backend {
    //! The wasm path: one request through `wasi:http/outgoing-handler`, blocking on pollables.

    use wasip2::http::outgoing_handler;
    use wasip2::http::types::{
        ErrorCode, Fields, IncomingBody, Method as WasiMethod, OutgoingBody, OutgoingRequest,
        Scheme,
    };
    use wasip2::io::streams::StreamError;

    use super::{HttpError, Method, Request, Response, Target};

    /// Largest chunk handed to `blocking-write-and-flush` (the interface caps it at 4096).
    const WRITE_CHUNK: usize = 4096;
    /// Read size per `blocking-read`.
    const READ_CHUNK: u64 = 64 * 1024;

    pub(super) fn send(request: &Request, target: &Target) -> Result<Response, HttpError> {
        let header_list: Vec<(String, Vec<u8>)> = request
            .headers
            .iter()
            .map(|(name, value)| (name.clone(), value.as_bytes().to_vec()))
            .collect();
        let headers = Fields::from_list(&header_list)
            .map_err(|e| HttpError::InvalidRequest(format!("headers rejected: {e:?}")))?;

        let outgoing = OutgoingRequest::new(headers);
        outgoing
            .set_method(&wasi_method(&request.method))
            .map_err(|()| {
                HttpError::InvalidRequest(format!("method `{}` rejected", request.method))
            })?;
        outgoing
            .set_scheme(Some(&if target.https {
                Scheme::Https
            } else {
                Scheme::Http
            }))
            .map_err(|()| HttpError::InvalidRequest("scheme rejected".to_string()))?;
        outgoing
            .set_authority(Some(&target.authority))
            .map_err(|()| {
                HttpError::InvalidRequest(format!("authority `{}` rejected", target.authority))
            })?;
        outgoing
            .set_path_with_query(Some(&target.path_with_query))
            .map_err(|()| {
                HttpError::InvalidRequest(format!("path `{}` rejected", target.path_with_query))
            })?;

        // The body handle must be taken before `handle` consumes the request, but written
        // after it: the host only drains the body once the request is in flight, so writing
        // first could block forever on a full pipe.
        let body = outgoing
            .body()
            .map_err(|()| HttpError::InvalidRequest("request body unavailable".to_string()))?;
        let pending = outgoing_handler::handle(outgoing, None).map_err(classify)?;
        write_body(&body, &request.body)?;
        OutgoingBody::finish(body, None).map_err(classify)?;

        pending.subscribe().block();
        let incoming = match pending.get() {
            Some(Ok(Ok(response))) => response,
            Some(Ok(Err(code))) => return Err(classify(code)),
            // `get` after a completed `block` returns the response exactly once; anything
            // else means the host broke the protocol.
            Some(Err(())) | None => {
                return Err(HttpError::Transport(
                    "response was not delivered by the host".to_string(),
                ));
            }
        };

        let status = incoming.status();
        let headers = incoming
            .headers()
            .entries()
            .into_iter()
            .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
            .collect();
        let body = incoming
            .consume()
            .map_err(|()| HttpError::Transport("response body unavailable".to_string()))?;
        let bytes = read_body(&body)?;
        // Trailers are not exposed; finishing just releases the body.
        drop(IncomingBody::finish(body));
        Ok(Response {
            status,
            headers,
            body: bytes,
        })
    }

    fn write_body(body: &OutgoingBody, bytes: &[u8]) -> Result<(), HttpError> {
        if bytes.is_empty() {
            return Ok(());
        }
        let stream = body
            .write()
            .map_err(|()| HttpError::Transport("request body stream unavailable".to_string()))?;
        for chunk in bytes.chunks(WRITE_CHUNK) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(stream_error)?;
        }
        // The stream is a child of the body and must be dropped before `finish`.
        drop(stream);
        Ok(())
    }

    fn read_body(body: &IncomingBody) -> Result<Vec<u8>, HttpError> {
        let stream = body
            .stream()
            .map_err(|()| HttpError::Transport("response body stream unavailable".to_string()))?;
        let mut bytes = Vec::new();
        loop {
            match stream.blocking_read(READ_CHUNK) {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(e) => return Err(stream_error(e)),
            }
        }
        Ok(bytes)
    }

    fn stream_error(e: StreamError) -> HttpError {
        match e {
            StreamError::Closed => HttpError::Transport("stream closed early".to_string()),
            StreamError::LastOperationFailed(err) => {
                match wasip2::http::types::http_error_code(&err) {
                    Some(code) => classify(code),
                    None => HttpError::Transport(err.to_debug_string()),
                }
            }
        }
    }

    fn wasi_method(method: &Method) -> WasiMethod {
        match method {
            Method::Get => WasiMethod::Get,
            Method::Head => WasiMethod::Head,
            Method::Post => WasiMethod::Post,
            Method::Put => WasiMethod::Put,
            Method::Delete => WasiMethod::Delete,
            Method::Patch => WasiMethod::Patch,
            Method::Options => WasiMethod::Options,
            Method::Other(token) => WasiMethod::Other(token.clone()),
        }
    }

    fn classify(code: ErrorCode) -> HttpError {
        match code {
            ErrorCode::HttpRequestDenied => HttpError::Denied(error_code_text(&code)),
            ErrorCode::HttpRequestMethodInvalid | ErrorCode::HttpRequestUriInvalid => {
                HttpError::InvalidRequest(error_code_text(&code))
            }
            other => HttpError::Transport(error_code_text(&other)),
        }
    }

    /// Readable text for a wasi:http error code (the generated `Display` is just `Debug`).
    fn error_code_text(code: &ErrorCode) -> String {
        fn limit<T: std::fmt::Display>(what: &str, n: &Option<T>) -> String {
            match n {
                Some(n) => format!("{what} (limit {n})"),
                None => what.to_string(),
            }
        }
        fn field(what: &str, p: &Option<wasip2::http::types::FieldSizePayload>) -> String {
            match p.as_ref().and_then(|p| p.field_name.as_deref()) {
                Some(name) => format!("{what}: {name}"),
                None => what.to_string(),
            }
        }
        match code {
            ErrorCode::DnsTimeout => "DNS timeout".to_string(),
            ErrorCode::DnsError(p) => match &p.rcode {
                Some(rcode) => format!("DNS error: {rcode}"),
                None => "DNS error".to_string(),
            },
            ErrorCode::DestinationNotFound => "destination not found".to_string(),
            ErrorCode::DestinationUnavailable => "destination unavailable".to_string(),
            ErrorCode::DestinationIpProhibited => "destination IP prohibited".to_string(),
            ErrorCode::DestinationIpUnroutable => "destination IP unroutable".to_string(),
            ErrorCode::ConnectionRefused => "connection refused".to_string(),
            ErrorCode::ConnectionTerminated => "connection terminated".to_string(),
            ErrorCode::ConnectionTimeout => "connection timeout".to_string(),
            ErrorCode::ConnectionReadTimeout => "connection read timeout".to_string(),
            ErrorCode::ConnectionWriteTimeout => "connection write timeout".to_string(),
            ErrorCode::ConnectionLimitReached => "connection limit reached".to_string(),
            ErrorCode::TlsProtocolError => "TLS protocol error".to_string(),
            ErrorCode::TlsCertificateError => "TLS certificate error".to_string(),
            ErrorCode::TlsAlertReceived(p) => match &p.alert_message {
                Some(message) => format!("TLS alert received: {message}"),
                None => "TLS alert received".to_string(),
            },
            ErrorCode::HttpRequestDenied => "HTTP request denied".to_string(),
            ErrorCode::HttpRequestLengthRequired => "HTTP request length required".to_string(),
            ErrorCode::HttpRequestBodySize(n) => limit("HTTP request body too large", n),
            ErrorCode::HttpRequestMethodInvalid => "HTTP request method invalid".to_string(),
            ErrorCode::HttpRequestUriInvalid => "HTTP request URI invalid".to_string(),
            ErrorCode::HttpRequestUriTooLong => "HTTP request URI too long".to_string(),
            ErrorCode::HttpRequestHeaderSectionSize(n) => {
                limit("HTTP request header section too large", n)
            }
            ErrorCode::HttpRequestHeaderSize(p) => field("HTTP request header too large", p),
            ErrorCode::HttpRequestTrailerSectionSize(n) => {
                limit("HTTP request trailer section too large", n)
            }
            ErrorCode::HttpRequestTrailerSize(p) => {
                field("HTTP request trailer too large", &Some(p.clone()))
            }
            ErrorCode::HttpResponseIncomplete => "HTTP response incomplete".to_string(),
            ErrorCode::HttpResponseHeaderSectionSize(n) => {
                limit("HTTP response header section too large", n)
            }
            ErrorCode::HttpResponseHeaderSize(p) => {
                field("HTTP response header too large", &Some(p.clone()))
            }
            ErrorCode::HttpResponseBodySize(n) => limit("HTTP response body too large", n),
            ErrorCode::HttpResponseTrailerSectionSize(n) => {
                limit("HTTP response trailer section too large", n)
            }
            ErrorCode::HttpResponseTrailerSize(p) => {
                field("HTTP response trailer too large", &Some(p.clone()))
            }
            ErrorCode::HttpResponseTransferCoding(c) => match c {
                Some(c) => format!("HTTP response transfer coding {c} unsupported"),
                None => "HTTP response transfer coding unsupported".to_string(),
            },
            ErrorCode::HttpResponseContentCoding(c) => match c {
                Some(c) => format!("HTTP response content coding {c} unsupported"),
                None => "HTTP response content coding unsupported".to_string(),
            },
            ErrorCode::HttpResponseTimeout => "HTTP response timeout".to_string(),
            ErrorCode::HttpUpgradeFailed => "HTTP upgrade failed".to_string(),
            ErrorCode::HttpProtocolError => "HTTP protocol error".to_string(),
            ErrorCode::LoopDetected => "loop detected".to_string(),
            ErrorCode::ConfigurationError => "configuration error".to_string(),
            ErrorCode::InternalError(Some(message)) => format!("internal error: {message}"),
            ErrorCode::InternalError(None) => "internal error".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_absolute_urls() {
        let t = Target::parse("https://example.com:8443/a/b?x=1#frag").expect("valid URL");
        assert!(t.https);
        assert_eq!(t.authority, "example.com:8443");
        assert_eq!(t.path_with_query, "/a/b?x=1");

        let t = Target::parse("http://127.0.0.1:9").expect("valid URL");
        assert!(!t.https);
        assert_eq!(t.path_with_query, "/");

        let t = Target::parse("http://host?q=1").expect("valid URL");
        assert_eq!(t.authority, "host");
        assert_eq!(t.path_with_query, "/?q=1");
    }

    #[test]
    fn rejects_unusable_urls() {
        for url in [
            "ftp://x/",
            "example.com/a",
            "http:///path",
            "http://user:pw@host/",
            "http://a b/",
        ] {
            assert!(
                matches!(Target::parse(url), Err(HttpError::InvalidRequest(_))),
                "{url} should be rejected"
            );
        }
    }
}
