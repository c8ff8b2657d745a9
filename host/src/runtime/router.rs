//! The host side of the gray-router world: calling an environment's traffic provider to
//! validate, render and evaluate gray rules, and the JSON shapes of its records.
//!
//! Every call takes the ordinary plugin path (limits, deadline, accounting). Evaluation is
//! split into calls of at most [`MAX_EVALUATE_BATCH`] requests, so a large dry run never
//! needs one instance to hold it all.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use super::bindings::gray_router::exports::wharf::plugin::router as wit;
use super::call::CallError;
use super::manifest::World;
use super::{Runtime, WorldPre};

pub use wit::{DubboCall, Evaluation, GatewayRef, RouteError, SampleRequest, ServicePort, Target};

/// Sample requests per plugin call.
pub const MAX_EVALUATE_BATCH: usize = 1000;

/// Why a router call gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error("`{0}` is not a gray-router plugin")]
    WrongWorld(String),
    #[error(transparent)]
    Call(#[from] CallError),
    #[error("plugin `{id}` returned {got} evaluations for {asked} requests")]
    Miscounted {
        id: String,
        asked: usize,
        got: usize,
    },
}

impl Runtime {
    /// Checks that `id` is an enabled gray-router plugin.
    pub fn router(&self, id: &str) -> Result<(), RouterError> {
        match self.active(id) {
            None => Err(CallError::NotEnabled(id.to_owned()).into()),
            Some(p) if p.world() != World::GrayRouter => Err(RouterError::WrongWorld(id.into())),
            Some(_) => Ok(()),
        }
    }

    pub async fn validate_rule(
        &self,
        id: &str,
        rule: &Value,
    ) -> Result<Result<(), RouteError>, RouterError> {
        self.router(id)?;
        let rule = rule.to_string();
        Ok(self
            .call(id, move |store, pre| {
                Box::pin(async move {
                    let WorldPre::GrayRouter(pre) = pre else {
                        return Err(wasmtime::format_err!("not a gray-router plugin"));
                    };
                    let instance = pre.instantiate_async(&mut *store).await?;
                    let result = instance
                        .wharf_plugin_router()
                        .call_validate(&mut *store, &rule)
                        .await?;
                    Ok((result, 0))
                })
            })
            .await?)
    }

    /// The objects (parsed JSON) that make `rule` real for `target`.
    pub async fn render_rule(
        &self,
        id: &str,
        rule: &Value,
        target: Target,
    ) -> Result<Result<Vec<Value>, RouteError>, RouterError> {
        self.router(id)?;
        let rule = rule.to_string();
        let rendered = self
            .call(id, move |store, pre| {
                Box::pin(async move {
                    let WorldPre::GrayRouter(pre) = pre else {
                        return Err(wasmtime::format_err!("not a gray-router plugin"));
                    };
                    let instance = pre.instantiate_async(&mut *store).await?;
                    let result = instance
                        .wharf_plugin_router()
                        .call_render(&mut *store, &rule, &target)
                        .await?;
                    let size = result
                        .as_ref()
                        .map(|objects| objects.iter().map(String::len).sum())
                        .unwrap_or(0);
                    Ok((result, size))
                })
            })
            .await?;
        Ok(rendered.map(|objects| {
            objects
                .into_iter()
                .map(|text| serde_json::from_str(&text).unwrap_or(Value::String(text)))
                .collect()
        }))
    }

    /// One evaluation per request, asking [`MAX_EVALUATE_BATCH`] at a time.
    pub async fn evaluate_rule(
        &self,
        id: &str,
        rule: &Value,
        requests: Vec<SampleRequest>,
    ) -> Result<Result<Vec<Evaluation>, RouteError>, RouterError> {
        self.router(id)?;
        let rule = rule.to_string();
        let mut evaluations = Vec::with_capacity(requests.len());
        let mut requests = requests.into_iter().peekable();
        while requests.peek().is_some() {
            let chunk: Vec<SampleRequest> = requests.by_ref().take(MAX_EVALUATE_BATCH).collect();
            let asked = chunk.len();
            let rule = rule.clone();
            let answered = self
                .call(id, move |store, pre| {
                    Box::pin(async move {
                        let WorldPre::GrayRouter(pre) = pre else {
                            return Err(wasmtime::format_err!("not a gray-router plugin"));
                        };
                        let instance = pre.instantiate_async(&mut *store).await?;
                        let result = instance
                            .wharf_plugin_router()
                            .call_evaluate(&mut *store, &rule, &chunk)
                            .await?;
                        let size = result
                            .as_ref()
                            .map(|list| {
                                list.iter()
                                    .map(|e| 8 + e.tag.len() + e.decided_by.len() + e.reason.len())
                                    .sum()
                            })
                            .unwrap_or(0);
                        Ok((result, size))
                    })
                })
                .await?;
            match answered {
                Ok(list) if list.len() == asked => evaluations.extend(list),
                Ok(list) => {
                    return Err(RouterError::Miscounted {
                        id: id.to_owned(),
                        asked,
                        got: list.len(),
                    });
                }
                Err(error) => return Ok(Err(error)),
            }
        }
        Ok(Ok(evaluations))
    }
}

/// A sample request as users write it (`POST /api/v1/gray/evaluate`, the plugin console).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestInput {
    /// Defaults to GET.
    #[serde(default)]
    pub method: Option<String>,
    /// Defaults to `/`.
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub cookies: BTreeMap<String, String>,
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// A JSON value is sent as its JSON text; a string as it is.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub body: Option<Value>,
    #[serde(default)]
    pub dubbo: Option<DubboInput>,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DubboInput {
    pub service: String,
    pub method: String,
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub arguments: Vec<Value>,
}

impl From<RequestInput> for SampleRequest {
    fn from(r: RequestInput) -> Self {
        SampleRequest {
            method: r
                .method
                .unwrap_or_else(|| "GET".into())
                .to_ascii_uppercase(),
            path: r.path.unwrap_or_else(|| "/".into()),
            // Header names are case-insensitive; plugins see them lower-cased.
            headers: r
                .headers
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect(),
            cookies: r.cookies.into_iter().collect(),
            query: r.query.into_iter().collect(),
            body: match r.body {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s,
                Some(other) => other.to_string(),
            },
            dubbo: r.dubbo.map(|d| DubboCall {
                service: d.service,
                method: d.method,
                arguments: d.arguments.iter().map(Value::to_string).collect(),
            }),
        }
    }
}

/// A render target as the plugin console takes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetInput {
    namespace: String,
    name: String,
    hostname: String,
    ports: Vec<PortInput>,
    stable_selector: BTreeMap<String, String>,
    canary_selector: BTreeMap<String, String>,
    #[serde(default)]
    canary_weight: u8,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    gateway: Option<GatewayInput>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PortInput {
    name: String,
    port: u16,
    target_port: u16,
    #[serde(default = "tcp")]
    protocol: String,
}

fn tcp() -> String {
    "TCP".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GatewayInput {
    name: String,
    namespace: String,
}

impl From<TargetInput> for Target {
    fn from(t: TargetInput) -> Self {
        Target {
            namespace: t.namespace,
            name: t.name,
            hostname: t.hostname,
            ports: t
                .ports
                .into_iter()
                .map(|p| ServicePort {
                    name: p.name,
                    port: p.port,
                    target_port: p.target_port,
                    protocol: p.protocol,
                })
                .collect(),
            stable_selector: t.stable_selector.into_iter().collect(),
            canary_selector: t.canary_selector.into_iter().collect(),
            canary_weight: t.canary_weight.min(100),
            labels: t.labels.into_iter().collect(),
            gateway: t.gateway.map(|g| GatewayRef {
                name: g.name,
                namespace: g.namespace,
            }),
        }
    }
}

/// An evaluation as JSON.
pub fn evaluation_json(e: &Evaluation) -> Value {
    json!({
        "canaryShare": e.canary_share,
        "tag": e.tag,
        "decidedBy": e.decided_by,
        "reason": e.reason,
    })
}

/// A router's typed error as JSON: `{"kind", "violations"}` or `{"kind", "message"}`.
pub fn error_json(e: &RouteError) -> Value {
    let violations = |list: &[super::bindings::gray_router::wharf::plugin::types::Violation]| {
        list.iter()
            .map(|v| json!({"field": v.field, "message": v.message}))
            .collect::<Vec<_>>()
    };
    match e {
        RouteError::InvalidRule(list) => {
            json!({"kind": "invalid-rule", "violations": violations(list)})
        }
        RouteError::Unsupported(list) => {
            json!({"kind": "unsupported", "violations": violations(list)})
        }
        RouteError::InvalidTarget(m) => json!({"kind": "invalid-target", "message": m}),
    }
}
