//! A small REST client for the admin CLI: bearer token, problem+json errors as messages.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A failed request, rendered for a terminal.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach {server}: {source}")]
    Unreachable {
        server: String,
        source: reqwest::Error,
    },
    #[error("{detail} (HTTP {status}, code {code}{})", .field.as_deref().map(|f| format!(", field {f}")).unwrap_or_default())]
    Problem {
        status: u16,
        code: String,
        detail: String,
        field: Option<String>,
    },
    #[error("unexpected response: {0}")]
    Unexpected(String),
}

pub struct Client {
    http: reqwest::Client,
    server: String,
    token: Option<String>,
}

impl Client {
    pub fn new(server: &str, token: Option<String>) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(300))
            .build()
            .map_err(|e| ClientError::Unexpected(e.to_string()))?;
        Ok(Self {
            http,
            server: server.trim_end_matches('/').to_owned(),
            token,
        })
    }

    /// Sends a request and returns the body of a 2xx answer; any other answer becomes its
    /// problem.
    async fn exchange<B: Serialize>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<String, ClientError> {
        let mut request = self.http.request(method, format!("{}{path}", self.server));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|source| ClientError::Unreachable {
                server: self.server.clone(),
                source,
            })?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| ClientError::Unexpected(e.to_string()))?;
        if status.is_success() {
            Ok(text)
        } else {
            Err(problem(status.as_u16(), text))
        }
    }

    /// GET returning the body as text (for non-JSON answers such as JSON lines).
    pub async fn get_text(&self, path: &str) -> Result<String, ClientError> {
        self.exchange::<()>(reqwest::Method::GET, path, None).await
    }

    /// Sends a request; the JSON answer, or `None` for an empty one.
    pub async fn send<B: Serialize>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<Option<Value>, ClientError> {
        let text = self.exchange(method, path, body).await?;
        if text.trim().is_empty() {
            return Ok(None);
        }
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| ClientError::Unexpected(format!("{e}: {text}")))
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let value = self
            .send::<()>(reqwest::Method::GET, path, None)
            .await?
            .unwrap_or(Value::Null);
        serde_json::from_value(value).map_err(|e| ClientError::Unexpected(e.to_string()))
    }

    pub async fn post<B: Serialize>(&self, path: &str, body: &B) -> Result<Value, ClientError> {
        Ok(self
            .send(reqwest::Method::POST, path, Some(body))
            .await?
            .unwrap_or(Value::Null))
    }

    pub async fn put<B: Serialize>(&self, path: &str, body: &B) -> Result<Value, ClientError> {
        Ok(self
            .send(reqwest::Method::PUT, path, Some(body))
            .await?
            .unwrap_or(Value::Null))
    }

    /// Opens a long-lived GET (server-sent events): the response with its body unread.
    /// No overall timeout: the stream lasts as long as the server keeps it open.
    pub async fn open_stream(&self, path: &str) -> Result<reqwest::Response, ClientError> {
        self.open(reqwest::Method::GET, path, Some("text/event-stream"), None)
            .await
    }

    /// Sends a request whose body or answer may take long (a file upload or download)
    /// and returns a 2xx response with its body unread. Only connecting is bounded in time.
    pub async fn open(
        &self,
        method: reqwest::Method,
        path: &str,
        accept: Option<&str>,
        body: Option<reqwest::Body>,
    ) -> Result<reqwest::Response, ClientError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ClientError::Unexpected(e.to_string()))?;
        let mut request = http.request(method, format!("{}{path}", self.server));
        if let Some(accept) = accept {
            request = request.header(reqwest::header::ACCEPT, accept);
        }
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(body);
        }
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .map_err(|source| ClientError::Unreachable {
                server: self.server.clone(),
                source,
            })?;
        let status = response.status();
        if status.is_success() {
            Ok(response)
        } else {
            let text = response.text().await.unwrap_or_default();
            Err(problem(status.as_u16(), text))
        }
    }

    pub async fn delete(&self, path: &str) -> Result<(), ClientError> {
        self.send::<()>(reqwest::Method::DELETE, path, None)
            .await
            .map(|_| ())
    }
}

/// A problem+json body (or any error body) as a [`ClientError`].
fn problem(status: u16, text: String) -> ClientError {
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    ClientError::Problem {
        status,
        code: body["code"].as_str().unwrap_or("unknown").to_owned(),
        detail: body["detail"].as_str().map(str::to_owned).unwrap_or(text),
        field: body["field"].as_str().map(str::to_owned),
    }
}
