//! The gray-router world's exports for a plugin built on this crate (feature `wit`): the
//! WIT types converted to and from the plain ones by moving their strings, and each
//! failure mapped to its `route-error`.

use serde_json::Value;
use wharf_sdk::gray_router::{
    DubboCall as WitDubboCall, Evaluation, GatewayRef as WitGatewayRef, RouteError, SampleRequest,
    ServicePort as WitServicePort, Target as WitTarget, Violation as WitViolation,
};

use crate::model::GrayRule;
use crate::sample::{DubboCall, Sample};
use crate::target::{GatewayRef, RenderError, ServicePort, Target};
use crate::violation::{Violation, Violations};

/// A provider's rendering: the objects, or what it cannot express.
pub type Provider = fn(&GrayRule, &Target) -> Result<Vec<Value>, Vec<Violation>>;

/// `validate(rule-json)`.
pub fn validate(rule_json: &str) -> Result<(), RouteError> {
    crate::parse(rule_json).map(drop).map_err(invalid_rule)
}

/// `render(rule-json, target)` through `provider`, each object as JSON text.
pub fn render(
    rule_json: &str,
    target: WitTarget,
    provider: Provider,
) -> Result<Vec<String>, RouteError> {
    let rule: Value = serde_json::from_str(rule_json).map_err(|e| {
        RouteError::InvalidRule(vec![WitViolation::new(
            "",
            format!("is not valid JSON: {e}"),
        )])
    })?;
    let objects = crate::render_with(&rule, &target_of(target), provider).map_err(|e| match e {
        RenderError::InvalidRule(v) => RouteError::InvalidRule(wit_violations(v)),
        RenderError::Unsupported(v) => RouteError::Unsupported(wit_violations(v)),
        RenderError::InvalidTarget(message) => RouteError::InvalidTarget(message),
    })?;
    Ok(objects.iter().map(Value::to_string).collect())
}

/// `evaluate(rule-json, requests)`: the rule is parsed once for the whole batch.
pub fn evaluate(
    rule_json: &str,
    requests: Vec<SampleRequest>,
) -> Result<Vec<Evaluation>, RouteError> {
    let rule = crate::parse(rule_json).map_err(invalid_rule)?;
    Ok(requests
        .into_iter()
        .map(|request| {
            let outcome = rule.evaluate(&sample_of(request));
            Evaluation {
                canary_share: outcome.canary_share,
                tag: outcome.tag,
                decided_by: outcome.decided_by,
                reason: outcome.reason,
            }
        })
        .collect())
}

fn invalid_rule(violations: Violations) -> RouteError {
    RouteError::InvalidRule(wit_violations(violations.0))
}

fn wit_violations(violations: Vec<Violation>) -> Vec<WitViolation> {
    violations
        .into_iter()
        .map(|v| WitViolation::new(v.field, v.message))
        .collect()
}

fn sample_of(request: SampleRequest) -> Sample {
    Sample {
        method: request.method,
        path: request.path,
        headers: request.headers,
        cookies: request.cookies,
        query: request.query,
        body: request.body,
        dubbo: request.dubbo.map(
            |WitDubboCall {
                 service,
                 method,
                 arguments,
             }| DubboCall {
                service,
                method,
                arguments,
            },
        ),
    }
}

fn target_of(target: WitTarget) -> Target {
    Target {
        namespace: target.namespace,
        name: target.name,
        hostname: target.hostname,
        ports: target
            .ports
            .into_iter()
            .map(
                |WitServicePort {
                     name,
                     port,
                     target_port,
                     protocol,
                 }| ServicePort {
                    name,
                    port,
                    target_port,
                    protocol,
                },
            )
            .collect(),
        stable_selector: target.stable_selector,
        canary_selector: target.canary_selector,
        canary_weight: target.canary_weight,
        labels: target.labels,
        gateway: target
            .gateway
            .map(|WitGatewayRef { name, namespace }| GatewayRef { name, namespace }),
    }
}
