//! The gray state a change order carries, and what the router is asked to render at
//! each step: the canary revision runs beside the stable one (which keeps all its
//! replicas), the provider's objects split traffic between them, `next-batch` raises the
//! canary's replicas (and a PERCENT rule's share with them), and a last `next-batch`
//! promotes the canary. Abort and rollback remove the canary and its objects.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::domain::deployments::{
    APP_LABEL, Deployment, ENV_LABEL, MANAGED_BY, MANAGED_LABEL, NAME_LABEL, PROJECT_LABEL,
    REVISION_LABEL,
};
use crate::domain::spec::ServiceSpec;
use crate::runtime::router::{GatewayRef, ServicePort, Target};

/// The label on a canary revision's pods: the rule's tag.
pub const GRAY_TAG_LABEL: &str = "wharf.dev/gray-tag";
/// The label on every object rendered for a gray change order: its id.
pub const GRAY_CHANGE_LABEL: &str = "wharf.dev/gray-change";

/// A rendered object, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub name: String,
}

/// A change order's gray release.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GrayRelease {
    /// The gray-router plugin rendering it, fixed when the change order opens.
    pub provider: String,
    #[schema(value_type = Object)]
    pub rule: Value,
    /// The canary's tag, on its pods as `wharf.dev/gray-tag`.
    pub tag: String,
    /// A PERCENT rule's rate; none for CONTENT.
    pub rate: Option<u8>,
    /// The canary's share rendered at the current step (PERCENT).
    pub weight: u8,
    /// The Service routed to, and the host name requests carry.
    pub service: String,
    pub hostname: String,
    /// The environment's Gateway (`namespace/name`) when the release opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// `next-batch` after the last step: the canary becomes stable.
    pub promoting: bool,
    /// Abort asked: the revert ends as aborted rather than rolled back.
    pub aborting: bool,
    /// Objects applied so far.
    pub objects: Vec<ObjectRef>,
}

/// The tag of a gray rule (`percent.tag`, also in the seed's one-element array, or
/// `content.tag`).
pub fn tag_of(rule: &Value) -> Option<String> {
    let tag = match rule.get("grayType")?.as_str()? {
        "PERCENT" => percent_of(rule)?.get("tag"),
        "CONTENT" => rule.get("content")?.get("tag"),
        _ => None,
    }?;
    tag.as_str().filter(|t| !t.is_empty()).map(str::to_owned)
}

fn percent_of(rule: &Value) -> Option<&Value> {
    match rule.get("percent")? {
        Value::Array(items) => items.first(),
        other => Some(other),
    }
}

/// A PERCENT rule's rate.
pub fn rate_of(rule: &Value) -> Option<u8> {
    if rule.get("grayType")?.as_str()? != "PERCENT" {
        return None;
    }
    let rate = percent_of(rule)?.get("rate")?.as_u64()?;
    u8::try_from(rate.min(100)).ok()
}

/// The canary's share at a step that runs `canary` of `total` replicas: the rate scaled
/// by how far the canary has grown, so the last step reaches the full rate.
pub fn weight_at(rate: u8, canary: u32, total: u32) -> u8 {
    if total == 0 {
        return rate;
    }
    let share =
        (u64::from(rate) * u64::from(canary.min(total)) + u64::from(total) / 2) / u64::from(total);
    u8::try_from(share).unwrap_or(100)
}

/// Whether `text` is a Kubernetes label value (what a tag becomes on the canary's pods).
pub fn is_label_value(text: &str) -> bool {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    (1..=63).contains(&text.len())
        && edge(text.chars().next())
        && edge(text.chars().last())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The Service a gray release routes through: the deployment's first.
pub fn routed_service(deployment: &Deployment) -> Option<&ServiceSpec> {
    deployment.services.first()
}

/// The host name of a Service inside the cluster (what the route objects match).
pub fn hostname_of(service: &str, namespace: &str) -> String {
    format!("{service}.{namespace}.svc")
}

fn selector(deployment: &Deployment, revision: u64) -> Vec<(String, String)> {
    vec![
        (NAME_LABEL.to_owned(), deployment.workload.clone()),
        (REVISION_LABEL.to_owned(), revision.to_string()),
    ]
}

/// Name prefix of a deployment's gray objects.
pub fn object_prefix(deployment: &Deployment) -> String {
    format!("{}-gray", deployment.workload)
}

/// What the router renders for one step of `gray`.
pub fn target(
    deployment: &Deployment,
    change_id: &str,
    gray: &GrayRelease,
    stable: u64,
    canary: u64,
) -> Target {
    let ports = deployment
        .services
        .iter()
        .find(|s| s.name == gray.service)
        .map(|s| {
            s.services_ports
                .iter()
                .map(|p| ServicePort {
                    name: format!("port-{}", p.port),
                    port: u16::try_from(p.port).unwrap_or(0),
                    target_port: u16::try_from(p.target_port).unwrap_or(0),
                    protocol: p.protocol.as_str().to_owned(),
                })
                .collect()
        })
        .unwrap_or_default();
    let labels: BTreeMap<String, String> = [
        (NAME_LABEL, deployment.workload.as_str()),
        (MANAGED_LABEL, MANAGED_BY),
        (PROJECT_LABEL, deployment.project.as_str()),
        (APP_LABEL, deployment.app.as_str()),
        (ENV_LABEL, deployment.env.as_str()),
        (GRAY_CHANGE_LABEL, change_id),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    Target {
        namespace: deployment.namespace.clone(),
        name: object_prefix(deployment),
        hostname: gray.hostname.clone(),
        ports,
        stable_selector: selector(deployment, stable),
        canary_selector: selector(deployment, canary),
        canary_weight: gray.weight,
        labels: labels.into_iter().collect(),
        gateway: gray.gateway.as_deref().and_then(|g| {
            let (namespace, name) = g.split_once('/')?;
            Some(GatewayRef {
                name: name.to_owned(),
                namespace: namespace.to_owned(),
            })
        }),
    }
}

/// A target for checking whether a provider can render a rule at all.
pub fn preview_target() -> Target {
    Target {
        namespace: "default".into(),
        name: "preview-gray".into(),
        hostname: hostname_of("preview", "default"),
        ports: vec![ServicePort {
            name: "port-80".into(),
            port: 80,
            target_port: 8080,
            protocol: "TCP".into(),
        }],
        stable_selector: vec![(REVISION_LABEL.to_owned(), "1".into())],
        canary_selector: vec![(REVISION_LABEL.to_owned(), "2".into())],
        canary_weight: 10,
        labels: Vec::new(),
        gateway: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_tag_and_rate_are_read_from_either_percent_shape() {
        let object = json!({"grayType": "PERCENT", "percent": {"tag": "canary", "rate": 20}});
        let array = json!({"grayType": "PERCENT", "percent": [{"tag": "canary", "rate": 20}]});
        for rule in [object, array] {
            assert_eq!(tag_of(&rule).as_deref(), Some("canary"));
            assert_eq!(rate_of(&rule), Some(20));
        }
        let content = json!({"grayType": "CONTENT", "content": {"tag": "beta", "rules": []}});
        assert_eq!(tag_of(&content).as_deref(), Some("beta"));
        assert_eq!(rate_of(&content), None);
    }

    #[test]
    fn a_percent_share_grows_with_the_canary_and_ends_at_the_rate() {
        assert_eq!(weight_at(20, 2, 4), 10);
        assert_eq!(weight_at(20, 4, 4), 20);
        assert_eq!(weight_at(50, 1, 3), 17);
        assert_eq!(weight_at(100, 9, 3), 100);
    }
}
