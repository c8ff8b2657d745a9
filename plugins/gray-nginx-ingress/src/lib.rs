//! `gray-nginx-ingress`: Wharf's gray-router plugin for ingress-nginx. It renders a rule as the
//! stable and canary Services, a main Ingress and a canary Ingress ([`ingress`]); validation and
//! evaluation are `gray-rules`' own.

pub mod ingress;

use wharf_sdk::gray_router::{
    Evaluation, GrayRouter, Meta, PluginInfo, RouteError, SampleRequest, Target,
};

const DESCRIPTION: &str = "ingress-nginx canary Ingresses for gray releases: canary-weight for PERCENT rules, canary-by-header and canary-by-cookie for CONTENT rules.";

/// The plugin; it keeps no state.
pub struct GrayNginxIngress;

/// What `meta.info()` returns; must match `wharf-plugin.toml`.
pub fn info() -> PluginInfo {
    PluginInfo {
        id: "gray-nginx-ingress".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        description: DESCRIPTION.to_string(),
        world: "gray-router".to_string(),
    }
}

impl Meta for GrayNginxIngress {
    fn info() -> PluginInfo {
        info()
    }
}

impl GrayRouter for GrayNginxIngress {
    fn validate(rule_json: String) -> Result<(), RouteError> {
        gray_rules::wit::validate(&rule_json)
    }

    fn render(rule_json: String, target: Target) -> Result<Vec<String>, RouteError> {
        gray_rules::wit::render(&rule_json, target, ingress::render)
    }

    fn evaluate(
        rule_json: String,
        requests: Vec<SampleRequest>,
    ) -> Result<Vec<Evaluation>, RouteError> {
        gray_rules::wit::evaluate(&rule_json, requests)
    }
}

wharf_sdk::export_gray_router!(GrayNginxIngress);
