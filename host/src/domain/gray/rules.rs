//! Asking a gray-router plugin about a rule: validation (with whether the provider can
//! render it), evaluation of sample requests, and the typed errors of both. Field paths
//! come back prefixed with where the rule sits in the caller's document (`rule.` in a dry
//! run, `deploymentStrategy.grayRule.` in a deploy).

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::providers::{ProviderError, Providers};
use super::release;
use crate::runtime::router::{self, RouteError, RouterError, SampleRequest};

/// One complaint about a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Violation {
    pub field: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum GrayError {
    #[error("{0}")]
    Provider(#[from] ProviderError),
    #[error("the gray rule is invalid: {}", summary(.0))]
    InvalidRule(Vec<Violation>),
    #[error("traffic provider `{provider}` cannot express this rule: {}", summary(.violations))]
    Unsupported {
        provider: String,
        violations: Vec<Violation>,
    },
    #[error("traffic provider `{provider}` refused the render target: {message}")]
    InvalidTarget { provider: String, message: String },
    #[error("traffic provider `{provider}` failed: {reason}")]
    Plugin { provider: String, reason: String },
}

fn summary(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// `prefix.field`, where the plugin's path may start with `[i]` or be empty.
pub fn prefixed(prefix: &str, field: &str) -> String {
    match field {
        "" => prefix.to_owned(),
        f if f.starts_with('[') => format!("{prefix}{f}"),
        f => format!("{prefix}.{f}"),
    }
}

fn violations(
    list: Vec<crate::runtime::bindings::gray_router::wharf::plugin::types::Violation>,
    prefix: &str,
) -> Vec<Violation> {
    list.into_iter()
        .map(|v| Violation {
            field: prefixed(prefix, &v.field),
            message: v.message,
        })
        .collect()
}

/// The typed error of a router answer.
pub fn route_error(provider: &str, error: RouteError, prefix: &str) -> GrayError {
    match error {
        RouteError::InvalidRule(list) => GrayError::InvalidRule(violations(list, prefix)),
        RouteError::Unsupported(list) => GrayError::Unsupported {
            provider: provider.to_owned(),
            violations: violations(list, prefix),
        },
        RouteError::InvalidTarget(message) => GrayError::InvalidTarget {
            provider: provider.to_owned(),
            message,
        },
    }
}

/// The error of a router call that gave no answer.
pub fn call_error(provider: &str, error: RouterError) -> GrayError {
    match error {
        RouterError::Call(crate::runtime::CallError::NotEnabled(id)) => {
            GrayError::Provider(ProviderError::NotEnabled(id))
        }
        other => GrayError::Plugin {
            provider: provider.to_owned(),
            reason: other.to_string(),
        },
    }
}

/// What a dry-run validation found.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValidationReport {
    pub provider: String,
    /// The rule has the seed's shape and meets every conditional requirement.
    pub valid: bool,
    pub violations: Vec<Violation>,
    /// The provider can render it (false when it is invalid).
    pub supported: bool,
    /// Why the provider cannot render it, field by field.
    pub unsupported: Vec<Violation>,
}

/// Validates `rule` with `provider`, then checks that the provider can render it.
pub async fn validate(
    providers: &Providers,
    provider: &str,
    rule: &Value,
    prefix: &str,
) -> Result<ValidationReport, GrayError> {
    providers.check(provider)?;
    let runtime = providers.runtime();
    let mut report = ValidationReport {
        provider: provider.to_owned(),
        valid: true,
        violations: Vec::new(),
        supported: true,
        unsupported: Vec::new(),
    };
    let validated = runtime
        .validate_rule(provider, rule)
        .await
        .map_err(|e| call_error(provider, e))?;
    if let Err(error) = validated {
        match route_error(provider, error, prefix) {
            GrayError::InvalidRule(list) => {
                report.valid = false;
                report.supported = false;
                report.violations = list;
                return Ok(report);
            }
            other => return Err(other),
        }
    }
    let rendered = runtime
        .render_rule(provider, rule, release::preview_target())
        .await
        .map_err(|e| call_error(provider, e))?;
    if let Err(error) = rendered {
        match route_error(provider, error, prefix) {
            GrayError::Unsupported { violations, .. } => {
                report.supported = false;
                report.unsupported = violations;
            }
            GrayError::InvalidRule(list) => {
                report.valid = false;
                report.supported = false;
                report.violations = list;
            }
            other => return Err(other),
        }
    }
    Ok(report)
}

/// Validates and checks renderability, refusing with the first failure: what a deploy needs.
pub async fn require_renderable(
    providers: &Providers,
    provider: &str,
    rule: &Value,
    prefix: &str,
) -> Result<(), GrayError> {
    let report = validate(providers, provider, rule, prefix).await?;
    if !report.valid {
        return Err(GrayError::InvalidRule(report.violations));
    }
    if !report.supported {
        return Err(GrayError::Unsupported {
            provider: provider.to_owned(),
            violations: report.unsupported,
        });
    }
    Ok(())
}

/// Where each sample request goes under `rule`.
pub async fn evaluate(
    providers: &Providers,
    provider: &str,
    rule: &Value,
    requests: Vec<SampleRequest>,
    prefix: &str,
) -> Result<Vec<router::Evaluation>, GrayError> {
    providers.check(provider)?;
    providers
        .runtime()
        .evaluate_rule(provider, rule, requests)
        .await
        .map_err(|e| call_error(provider, e))?
        .map_err(|e| route_error(provider, e, prefix))
}
