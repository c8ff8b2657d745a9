//! Registry answers that are not successes, as the distribution spec writes them:
//! `{"errors": [{"code", "message", "detail"}]}` with the spec's codes, and on a 401 the
//! `WWW-Authenticate` challenge that starts the token flow.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::domain::artifacts::RegistryError;
use crate::store::StoreError;

#[derive(Debug)]
pub struct RegistryReply {
    status: StatusCode,
    code: &'static str,
    message: String,
    challenge: Option<String>,
    /// The upload's current range, on a 416.
    range: Option<String>,
}

impl RegistryReply {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        RegistryReply {
            status,
            code,
            message: message.into(),
            challenge: None,
            range: None,
        }
    }

    /// 401 with the challenge a client answers by fetching a token.
    pub fn unauthorized(challenge: String, message: impl Into<String>) -> Self {
        RegistryReply {
            challenge: Some(challenge),
            ..RegistryReply::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message)
        }
    }

    pub fn denied(message: impl Into<String>) -> Self {
        RegistryReply::new(StatusCode::FORBIDDEN, "DENIED", message)
    }

    pub fn unsupported(message: impl Into<String>) -> Self {
        RegistryReply::new(StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        RegistryReply::new(StatusCode::NOT_FOUND, "NAME_UNKNOWN", message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        RegistryReply::new(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", message)
    }

    /// A 416 for a chunk that does not continue the upload, with where the upload stands.
    pub fn range(message: impl Into<String>, size: u64) -> Self {
        RegistryReply {
            range: Some(format!("0-{}", size.saturating_sub(1))),
            ..RegistryReply::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "BLOB_UPLOAD_INVALID",
                message,
            )
        }
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl From<RegistryError> for RegistryReply {
    fn from(e: RegistryError) -> Self {
        if let RegistryError::RangeInvalid { message, size } = e {
            return RegistryReply::range(message, size);
        }
        let status = match &e {
            RegistryError::NameUnknown(_)
            | RegistryError::BlobUnknown(_)
            | RegistryError::UploadUnknown(_)
            | RegistryError::ManifestUnknown(_) => StatusCode::NOT_FOUND,
            RegistryError::SizeInvalid(_) => StatusCode::PAYLOAD_TOO_LARGE,
            RegistryError::Unsupported(_) => StatusCode::METHOD_NOT_ALLOWED,
            RegistryError::Denied(_) => StatusCode::FORBIDDEN,
            RegistryError::PolicyUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            RegistryError::Store(StoreError::Corrupt { .. })
            | RegistryError::Store(_)
            | RegistryError::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        let message = e.to_string();
        if status.is_server_error() {
            tracing::error!(error = %message, "registry storage failed");
        }
        RegistryReply::new(status, e.code(), message)
    }
}

impl IntoResponse for RegistryReply {
    fn into_response(self) -> Response {
        let body =
            json!({"errors": [{"code": self.code, "message": self.message, "detail": null}]});
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if let Some(challenge) = self.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            headers.insert(header::WWW_AUTHENTICATE, challenge);
        }
        if let Some(range) = self.range.and_then(|r| HeaderValue::from_str(&r).ok()) {
            headers.insert(header::RANGE, range);
        }
        headers.insert(
            "docker-distribution-api-version",
            HeaderValue::from_static("registry/2.0"),
        );
        response
    }
}
