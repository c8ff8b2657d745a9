//! `gray-rules`: seed 001's `grayRule` for Wharf's gray-router plugins (`gray-gateway-api`,
//! `gray-nginx-ingress`), as written down in the gray contract: the rule model,
//! [`validate`] (every conditional requirement, all violations, each at its JSON path),
//! [`GrayRule::evaluate`] (every condition type, Dubbo arguments included) and the render
//! helpers both providers share ([`Target`] with its two Services, [`pattern`]).
//!
//! Native use, e.g. the host's benchmark (a path dependency, no WIT types involved):
//!
//! ```
//! use gray_rules::{Sample, evaluate_json};
//! use serde_json::json;
//!
//! let rule = json!({"grayType": "CONTENT", "content": {"tag": "beta", "rules": [{
//!     "serviceType": "springCloud", "path": "/",
//!     "conditions": [{"type": "header", "param": "x-user", "cond": "in", "value": "alice,bob"}]}]}});
//! let bob = Sample {
//!     path: "/cart".into(),
//!     headers: vec![("x-user".into(), "bob".into())],
//!     ..Sample::default()
//! };
//! let outcomes = evaluate_json(&rule, &[bob, Sample::default()]).expect("a valid rule");
//! assert_eq!(outcomes[0].canary_share, 100);
//! assert_eq!(outcomes[0].decided_by, "content.rules[0].conditions[0]");
//! assert_eq!(outcomes[0].reason, r#"header x-user = "bob" is in [alice, bob]"#);
//! assert_eq!(outcomes[1].reason, "no rule matched");
//! ```
//!
//! [`evaluate_json`] validates (and compiles) the rule once per call, then evaluates every
//! request: call it with a whole batch. With feature `wit`, [`wit`] implements the world's
//! three functions for a plugin; feature `golden` holds the rules both plugins' golden
//! files are rendered from.

mod condition;
mod evaluate;
mod fields;
pub mod model;
pub mod pattern;
mod sample;
mod target;
mod validate;
mod violation;

#[cfg(feature = "golden")]
pub mod golden;
#[cfg(feature = "wit")]
pub mod wit;

pub use evaluate::Outcome;
pub use model::GrayRule;
pub use sample::{DubboCall, Sample};
pub use target::{GatewayRef, RenderError, ServicePort, Target};
pub use validate::{parse, validate};
pub use violation::{Violation, Violations};

use serde_json::Value;

/// Validates `rule` once and evaluates every request against it, in order.
pub fn evaluate_json(rule: &Value, requests: &[Sample]) -> Result<Vec<Outcome>, Violations> {
    let rule = validate(rule)?;
    Ok(requests
        .iter()
        .map(|request| rule.evaluate(request))
        .collect())
}

/// A provider's render, in the contract's order: an invalid rule, then an invalid target,
/// then what `provider` cannot express.
pub fn render_with(
    rule: &Value,
    target: &Target,
    provider: impl FnOnce(&GrayRule, &Target) -> Result<Vec<Value>, Vec<Violation>>,
) -> Result<Vec<Value>, RenderError> {
    let rule = validate(rule).map_err(|v| RenderError::InvalidRule(v.0))?;
    target.check()?;
    provider(&rule, target).map_err(RenderError::Unsupported)
}
