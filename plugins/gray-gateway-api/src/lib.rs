//! `gray-gateway-api`: Wharf's gray-router plugin for Gateway API. It renders a rule as the
//! stable and canary Services plus one HTTPRoute ([`httproute`]); validation and
//! evaluation are `gray-rules`' own.

pub mod httproute;

use wharf_sdk::gray_router::{
    Evaluation, GrayRouter, Meta, PluginInfo, RouteError, SampleRequest, Target,
};

const DESCRIPTION: &str = "Gateway API HTTPRoutes for gray releases: weighted backendRefs for PERCENT rules, header, query and cookie matches for CONTENT rules.";

/// The plugin; it keeps no state.
pub struct GrayGatewayApi;

/// What `meta.info()` returns; must match `wharf-plugin.toml`.
pub fn info() -> PluginInfo {
    PluginInfo {
        id: "gray-gateway-api".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        description: DESCRIPTION.to_string(),
        world: "gray-router".to_string(),
    }
}

impl Meta for GrayGatewayApi {
    fn info() -> PluginInfo {
        info()
    }
}

impl GrayRouter for GrayGatewayApi {
    fn validate(rule_json: String) -> Result<(), RouteError> {
        gray_rules::wit::validate(&rule_json)
    }

    fn render(rule_json: String, target: Target) -> Result<Vec<String>, RouteError> {
        gray_rules::wit::render(&rule_json, target, httproute::render)
    }

    fn evaluate(
        rule_json: String,
        requests: Vec<SampleRequest>,
    ) -> Result<Vec<Evaluation>, RouteError> {
        gray_rules::wit::evaluate(&rule_json, requests)
    }
}

wharf_sdk::export_gray_router!(GrayGatewayApi);
