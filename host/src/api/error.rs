//! RFC 9457 problem responses: the one error type every handler returns.
//!
//! Each problem carries a stable `code` (clients switch on it) and, when one input field
//! is at fault, `field`. Domain errors map here; nothing below the API knows about HTTP.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::AuthError;
use crate::runtime::trust::TrustError;
use crate::runtime::{CallError, LifecycleError};
use crate::store::StoreError;

/// An `application/problem+json` body.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// `about:blank`: the `code` says what happened.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable machine-readable code, e.g. `invalid-field`, `plugin-not-found`.
    pub code: String,
    /// The offending input field, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The change order in the way, for `change-in-flight`.
    #[serde(rename = "changeOrderId", skip_serializing_if = "Option::is_none")]
    pub change_order_id: Option<String>,
    /// Every complaint, when there are several (a gray rule's); `field` is the first's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub violations: Option<Vec<crate::domain::gray::rules::Violation>>,
}

/// The `code` of a problem response, kept as a response extension for the audit log.
#[derive(Debug, Clone, Copy)]
pub struct ProblemCode(pub &'static str);

/// An error on its way to becoming a problem response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    detail: String,
    field: Option<String>,
    change_order_id: Option<String>,
    violations: Option<Vec<crate::domain::gray::rules::Violation>>,
    /// `id@version` of a plugin that took part, for the audit record.
    plugin: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            field: None,
            change_order_id: None,
            violations: None,
            plugin: None,
        }
    }

    /// Names the plugin (`id@version`) that took part, for the audit record.
    pub fn plugin(mut self, plugin: Option<String>) -> Self {
        self.plugin = plugin;
        self
    }

    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Lists every violation; the first names `field`.
    pub fn violations(mut self, violations: Vec<crate::domain::gray::rules::Violation>) -> Self {
        if self.field.is_none() {
            self.field = violations.first().map(|v| v.field.clone());
        }
        self.violations = Some(violations);
        self
    }

    /// 422 for a value that parsed but is not acceptable.
    pub fn invalid(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field", detail).field(field)
    }

    pub fn not_found(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, detail)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "a valid bearer token is required: log in with POST /api/v1/auth/login",
        )
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "an internal error occurred",
        )
    }

    /// 503: the audit intent could not be written, so the request was not carried out.
    pub fn audit_unavailable(error: StoreError) -> Self {
        tracing::error!(%error, "writing an audit intent failed; the request is refused");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "audit-unavailable",
            "the audit log cannot be written right now, so the request was not carried out; try again",
        )
    }

    /// 500: the request ran but its audit record could not be completed (it stays
    /// `pending`, and reads `interrupted` after the next start).
    pub fn audit_incomplete(error: StoreError) -> Self {
        tracing::error!(%error, "completing an audit record failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "audit-incomplete",
            "the request may have taken effect, but its audit record could not be completed; check before retrying",
        )
    }

    /// 500 for a handler that panicked (the panic is logged, not shown).
    pub fn panicked(panic: impl std::fmt::Display) -> Self {
        tracing::error!(%panic, "a request handler panicked");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "an internal error occurred",
        )
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The offending field, if the problem names one.
    pub fn field_name(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// The problem's machine-readable code (`invalid`, `not-found`, …).
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Problem {
            kind: "about:blank".into(),
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.status.as_u16(),
            detail: self.detail,
            code: self.code.to_owned(),
            field: self.field,
            change_order_id: self.change_order_id,
            violations: self.violations,
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        response.extensions_mut().insert(ProblemCode(self.code));
        if let Some(plugin) = self.plugin {
            response.extensions_mut().insert(super::guard::AuditDetail {
                plugin: Some(plugin),
                ..Default::default()
            });
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::internal(e)
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::InvalidCredentials => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid-credentials",
                e.to_string(),
            ),
            AuthError::InvalidToken => ApiError::unauthorized(),
            AuthError::Throttled { .. } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "login-throttled",
                e.to_string(),
            ),
            AuthError::Invalid { field, message } => ApiError::invalid(field, message),
            AuthError::UserNotFound(_) => ApiError::not_found("user-not-found", e.to_string()),
            AuthError::TokenNotFound(_) => ApiError::not_found("token-not-found", e.to_string()),
            AuthError::UsernameTaken(_) => {
                ApiError::new(StatusCode::CONFLICT, "username-taken", e.to_string())
                    .field("username")
            }
            AuthError::GroupNotFound(_) => ApiError::not_found("group-not-found", e.to_string()),
            AuthError::NameTaken(_) => {
                ApiError::new(StatusCode::CONFLICT, "name-taken", e.to_string()).field("name")
            }
            AuthError::Refused(_) => ApiError::new(StatusCode::CONFLICT, "refused", e.to_string()),
            AuthError::RegistrationDisabled => ApiError::forbidden(e.to_string()),
            AuthError::Store(e) => e.into(),
            AuthError::Hashing(e) => ApiError::internal(e),
        }
    }
}

impl From<TrustError> for ApiError {
    fn from(e: TrustError) -> Self {
        let detail = e.to_string();
        match e {
            TrustError::UnsignedRefused => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unsigned-package", detail)
                    .field("signature")
            }
            TrustError::UnknownKey(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown-signing-key",
                detail,
            )
            .field("signature.keyId"),
            TrustError::BadSignature(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "bad-signature", detail)
                    .field("signature")
            }
            TrustError::Invalid { field, message } => ApiError::invalid(field, message),
            TrustError::Store(e) => e.into(),
        }
    }
}

impl From<CallError> for ApiError {
    fn from(e: CallError) -> Self {
        let detail = e.to_string();
        match e {
            CallError::NotEnabled(_) => {
                ApiError::new(StatusCode::CONFLICT, "plugin-not-enabled", detail)
            }
            CallError::Timeout { .. } => {
                ApiError::new(StatusCode::GATEWAY_TIMEOUT, "plugin-timeout", detail)
            }
            CallError::Trap { .. } => {
                ApiError::new(StatusCode::BAD_GATEWAY, "plugin-trapped", detail)
            }
            CallError::OutputTooLarge { .. } => {
                ApiError::new(StatusCode::BAD_GATEWAY, "plugin-output-too-large", detail)
            }
            CallError::Host { .. } => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "plugin-unavailable",
                detail,
            ),
        }
    }
}

impl From<LifecycleError> for ApiError {
    fn from(e: LifecycleError) -> Self {
        use LifecycleError as E;
        let detail = e.to_string();
        let unprocessable =
            |code| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail.clone());
        match e {
            E::NotFound(_) => ApiError::not_found("plugin-not-found", detail),
            E::AlreadyInstalled(_) => ApiError::new(StatusCode::CONFLICT, "plugin-exists", detail),
            E::NotEnabled(_) => ApiError::new(StatusCode::CONFLICT, "plugin-not-enabled", detail),
            E::Manifest(m) => ApiError::invalid(m.field, m.message).with_code("invalid-manifest"),
            E::Invalid { field, message } => ApiError::invalid(field, message),
            E::Compile(_) => unprocessable("component-invalid").field("component"),
            E::WorldMismatch { .. } => unprocessable("world-mismatch").field("component"),
            E::MetaMismatch { field, .. } => {
                unprocessable("meta-mismatch").field(format!("manifest.{field}"))
            }
            E::Ungranted(u) => {
                unprocessable("ungranted-import").field(format!("grants ({})", u.import))
            }
            E::Trust(t) => t.into(),
            E::VersionConflict { .. } => {
                ApiError::new(StatusCode::CONFLICT, "version-conflict", detail)
            }
            E::UnknownVersion { .. } => unprocessable("unknown-version").field("version"),
            E::AlreadyActive(_) => ApiError::new(StatusCode::CONFLICT, "already-active", detail),
            E::NothingToRollBack(_) => {
                ApiError::new(StatusCode::CONFLICT, "no-previous-version", detail)
            }
            E::Invoke(crate::runtime::worlds::InvokeError::UnknownFunction { .. }) => {
                unprocessable("unknown-function").field("function")
            }
            E::Invoke(crate::runtime::worlds::InvokeError::InvalidInput { field, message }) => {
                ApiError::invalid(field, message)
            }
            E::Call(c) => c.into(),
            E::Store(s) => s.into(),
        }
    }
}

impl ApiError {
    fn with_code(mut self, code: &'static str) -> Self {
        self.code = code;
        self
    }
}

impl From<crate::domain::rollout::DeployError> for ApiError {
    fn from(e: crate::domain::rollout::DeployError) -> Self {
        use crate::domain::rollout::DeployError as E;
        let detail = e.to_string();
        let conflict = |code| ApiError::new(StatusCode::CONFLICT, code, detail.clone());
        match e {
            E::Invalid { field, message } => ApiError::invalid(field, message),
            E::AppNotFound(_) => ApiError::not_found("app-not-found", detail),
            E::AppDisabled(_) => conflict("app-disabled"),
            E::NotDeployed { .. } => ApiError::not_found("deployment-not-found", detail),
            E::Deleted { .. } => conflict("deployment-deleted"),
            E::InFlight { change_order } => ApiError {
                change_order_id: Some(change_order),
                ..conflict("change-in-flight")
            },
            E::ChangeNotFound(_) => ApiError::not_found("change-order-not-found", detail),
            E::WrongState { .. } => conflict("change-order-state"),
            E::SelfApproval => ApiError::new(StatusCode::FORBIDDEN, "self-approval", detail),
            E::NotAssignee { .. } => ApiError::new(StatusCode::FORBIDDEN, "not-assignee", detail),
            E::NothingToRollBack(_) => conflict("nothing-to-roll-back"),
            E::Env(e) => e.into(),
            E::Gray(e) => e.into(),
            E::Cluster(_) => ApiError::new(StatusCode::BAD_GATEWAY, "cluster-unreachable", detail),
            E::Store(e) => e.into(),
        }
    }
}

impl From<crate::domain::gray::rules::GrayError> for ApiError {
    fn from(e: crate::domain::gray::rules::GrayError) -> Self {
        use crate::domain::gray::rules::GrayError as E;
        let detail = e.to_string();
        match e {
            E::Provider(_) => {
                ApiError::new(StatusCode::CONFLICT, "traffic-provider-unavailable", detail)
                    .field("trafficProvider")
            }
            E::InvalidRule(violations) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-gray-rule",
                detail,
            )
            .violations(violations),
            E::Unsupported { violations, .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "gray-rule-unsupported",
                detail,
            )
            .violations(violations),
            E::InvalidTarget { .. } | E::Plugin { .. } => {
                ApiError::new(StatusCode::BAD_GATEWAY, "traffic-provider-failed", detail)
            }
        }
    }
}

impl From<crate::domain::deploy_configs::DeployConfigError> for ApiError {
    fn from(e: crate::domain::deploy_configs::DeployConfigError) -> Self {
        use crate::domain::deploy_configs::DeployConfigError as E;
        let detail = e.to_string();
        match e {
            E::Invalid { field, message } => ApiError::invalid(field, message),
            E::AppNotFound(_) => ApiError::not_found("app-not-found", detail),
            E::NotFound(_) => ApiError::not_found("deploy-config-not-found", detail),
            E::NameTaken { .. } => {
                ApiError::new(StatusCode::CONFLICT, "deploy-config-name-taken", detail)
                    .field("name")
            }
            E::Ambiguous(_) => {
                ApiError::new(StatusCode::CONFLICT, "deploy-config-ambiguous", detail)
            }
            E::Env(e) => e.into(),
            E::Store(e) => e.into(),
        }
    }
}

impl From<crate::domain::workloads::WorkloadError> for ApiError {
    fn from(e: crate::domain::workloads::WorkloadError) -> Self {
        use crate::domain::workloads::WorkloadError as E;
        let detail = e.to_string();
        match e {
            E::Invalid { field, message } => ApiError::invalid(field, message),
            E::DeploymentNotFound { .. } => ApiError::not_found("deployment-not-found", detail),
            E::PodNotFound(_) => ApiError::not_found("pod-not-found", detail),
            E::LogsUnavailable(_) => {
                ApiError::new(StatusCode::CONFLICT, "logs-unavailable", detail)
            }
            E::Cluster(c) => c.into(),
            E::Clusters(c) => c.into(),
            E::Store(s) => s.into(),
        }
    }
}

impl From<crate::domain::market::MarketError> for ApiError {
    fn from(e: crate::domain::market::MarketError) -> Self {
        use crate::domain::market::MarketError as E;
        use crate::runtime::catalog::CatalogFault as F;
        let detail = e.to_string();
        match e {
            E::Invalid { field, message } => ApiError::invalid(field, message),
            E::NotFound(_) => ApiError::not_found("market-not-found", detail),
            E::NameTaken(_) => {
                ApiError::new(StatusCode::CONFLICT, "market-name-taken", detail).field("name")
            }
            E::InUse { .. } => ApiError::new(StatusCode::CONFLICT, "market-in-use", detail),
            E::InstallNotFound(_) => ApiError::not_found("install-not-found", detail),
            E::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "install-conflict", detail),
            E::Catalog { fault, .. } => match fault {
                F::Unauthorized(_) => {
                    ApiError::new(StatusCode::BAD_GATEWAY, "market-unauthorized", detail)
                        .field("accessKey")
                }
                F::NotFound(_) => ApiError::not_found("market-app-not-found", detail),
                F::Unavailable(_) => {
                    ApiError::new(StatusCode::BAD_GATEWAY, "market-unavailable", detail)
                }
                F::InvalidTemplate(violations) => {
                    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-template", detail)
                        .violations(
                            violations
                                .into_iter()
                                .map(|v| crate::domain::gray::rules::Violation {
                                    field: v.field,
                                    message: v.message,
                                })
                                .collect(),
                        )
                }
                F::Unsupported(_) => {
                    ApiError::new(StatusCode::CONFLICT, "market-unsupported", detail)
                }
            },
            E::PluginFailed { .. } => {
                ApiError::new(StatusCode::BAD_GATEWAY, "market-plugin-failed", detail)
            }
            E::Component { component, .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "component-invalid",
                detail,
            )
            .field(format!("components.{component}")),
            E::Secret(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "market-secret-unavailable",
                detail,
            ),
            E::Store(e) => e.into(),
        }
    }
}

impl From<crate::domain::pipelines::PipelineError> for ApiError {
    fn from(e: crate::domain::pipelines::PipelineError) -> Self {
        use crate::domain::pipelines::PipelineError as E;
        let detail = e.to_string();
        match e {
            E::Invalid { field, message } => ApiError::invalid(field, message),
            E::NotFound(_) => ApiError::not_found("pipeline-not-found", detail),
            E::AppNotFound(_) => ApiError::not_found("app-not-found", detail),
            E::VersionNotFound { .. } => ApiError::not_found("pipeline-version-not-found", detail),
            E::RunNotFound(_) => ApiError::not_found("run-not-found", detail),
            E::StepNotFound(_) => ApiError::not_found("step-not-found", detail),
            E::NameTaken(_) => {
                ApiError::new(StatusCode::CONFLICT, "pipeline-name-taken", detail).field("name")
            }
            E::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "run-conflict", detail),
            E::SelfApproval(_) => ApiError::new(StatusCode::FORBIDDEN, "self-approval", detail),
            E::StepNotWaiting(_) => ApiError::new(StatusCode::CONFLICT, "step-not-waiting", detail),
            E::Unavailable(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "pipeline-unavailable",
                detail,
            ),
            E::Store(e) => e.into(),
        }
    }
}
