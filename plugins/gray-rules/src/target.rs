//! What both plugins render for: the deployment's [`Target`], its checks, the metadata every
//! object carries and the two Services (`<name>-stable`, `<name>-canary`).

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::violation::Violation;

/// One deployment being released gray (the WIT `target`, in plain Rust types).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    pub namespace: String,
    /// Prefix of every object's name.
    pub name: String,
    pub hostname: String,
    /// HTTP routing uses the first.
    pub ports: Vec<ServicePort>,
    #[serde(serialize_with = "pairs_as_map")]
    pub stable_selector: Vec<(String, String)>,
    #[serde(serialize_with = "pairs_as_map")]
    pub canary_selector: Vec<(String, String)>,
    /// Canary share (0–100) of this step of a PERCENT rule.
    pub canary_weight: u8,
    #[serde(serialize_with = "pairs_as_map")]
    pub labels: Vec<(String, String)>,
    pub gateway: Option<GatewayRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    pub name: String,
    pub port: u16,
    pub target_port: u16,
    /// `TCP` | `UDP` | `SCTP`.
    pub protocol: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GatewayRef {
    pub name: String,
    pub namespace: String,
}

/// Why a plugin renders nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("invalid rule: {}", crate::Violations(.0.clone()))]
    InvalidRule(Vec<Violation>),
    /// The provider cannot express the rule; each violation names the field and why.
    #[error("unsupported by the provider: {}", crate::Violations(.0.clone()))]
    Unsupported(Vec<Violation>),
    #[error("invalid target: {0}")]
    InvalidTarget(String),
}

/// Longest Service name Kubernetes accepts (a DNS-1035 label).
const MAX_SERVICE_NAME: usize = 63;

impl Target {
    /// Refuses a target no provider can render for.
    pub fn check(&self) -> Result<(), RenderError> {
        let invalid = |message: String| Err(RenderError::InvalidTarget(message));
        if self.namespace.is_empty() {
            return invalid("namespace is empty".into());
        }
        if self.name.is_empty() || self.canary_service().len() > MAX_SERVICE_NAME {
            return invalid(format!(
                "name must be 1 to {} characters so `<name>-canary` is a valid Service name",
                MAX_SERVICE_NAME - "-canary".len()
            ));
        }
        if self.hostname.is_empty() {
            return invalid("hostname is empty".into());
        }
        if self.ports.is_empty() {
            return invalid("no ports: HTTP routing needs the first".into());
        }
        for port in &self.ports {
            if port.port == 0 || port.target_port == 0 {
                return invalid(format!(
                    "port {:?}: port and target-port must be 1-65535",
                    port.name
                ));
            }
            if !matches!(port.protocol.as_str(), "TCP" | "UDP" | "SCTP") {
                return invalid(format!(
                    "port {:?}: protocol must be TCP, UDP or SCTP",
                    port.name
                ));
            }
        }
        if self.ports.len() > 1 {
            let mut names: Vec<&str> = self.ports.iter().map(|p| p.name.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            if names.len() < self.ports.len() || names.contains(&"") {
                return invalid("several ports need distinct, non-empty names".into());
            }
        }
        if self.stable_selector.is_empty() || self.canary_selector.is_empty() {
            return invalid("stable-selector and canary-selector must not be empty".into());
        }
        if self.canary_weight > 100 {
            return invalid(format!("canary-weight {} is over 100", self.canary_weight));
        }
        Ok(())
    }

    pub fn stable_service(&self) -> String {
        format!("{}-stable", self.name)
    }

    pub fn canary_service(&self) -> String {
        format!("{}-canary", self.name)
    }

    /// The port HTTP routes send to.
    pub fn http_port(&self) -> u16 {
        self.ports.first().map_or(0, |p| p.port)
    }

    /// `metadata` of an object named `name`, in the target's namespace, with its labels.
    pub fn metadata(&self, name: &str) -> Value {
        json!({
            "name": name,
            "namespace": self.namespace,
            "labels": string_map(&self.labels),
        })
    }

    /// The stable and canary Services, both ClusterIP with the target's ports.
    pub fn services(&self) -> [Value; 2] {
        [
            self.service(&self.stable_service(), &self.stable_selector),
            self.service(&self.canary_service(), &self.canary_selector),
        ]
    }

    fn service(&self, name: &str, selector: &[(String, String)]) -> Value {
        let ports: Vec<Value> = self
            .ports
            .iter()
            .map(|p| {
                let mut port = json!({
                    "port": p.port,
                    "targetPort": p.target_port,
                    "protocol": p.protocol,
                });
                if !p.name.is_empty() {
                    port["name"] = json!(p.name);
                }
                port
            })
            .collect();
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": self.metadata(name),
            "spec": {
                "type": "ClusterIP",
                "selector": string_map(selector),
                "ports": ports,
            },
        })
    }
}

/// Shows label-style pairs as the map they become.
fn pairs_as_map<S: serde::Serializer>(
    pairs: &[(String, String)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(pairs.iter().map(|(k, v)| (k, v)))
}

/// Label-style pairs as a JSON object (a later duplicate wins).
fn string_map(pairs: &[(String, String)]) -> Value {
    Value::Object(
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect::<Map<_, _>>(),
    )
}
