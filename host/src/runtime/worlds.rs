//! The five plugin worlds on the host side: pre-instantiated components per world, the
//! `meta` call every world shares, and JSON invocation of each world's functions (the
//! admin's plugin console, `POST /api/v1/plugins/{id}/invoke`).

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use wasmtime::Store;
use wasmtime::component::InstancePre;

use super::bindings::{artifact_policy, authorizer, gray_router, marketplace, step};
use super::manifest::World;
use super::router::{self, TargetInput};
use super::state::PluginState;

/// A component pre-linked and type-checked against its world.
#[derive(Clone)]
pub enum WorldPre {
    Authorizer(authorizer::AuthorizerPre<PluginState>),
    Marketplace(marketplace::MarketplacePre<PluginState>),
    GrayRouter(gray_router::GrayRouterPre<PluginState>),
    Step(step::PipelineStepPre<PluginState>),
    ArtifactPolicy(artifact_policy::ArtifactPolicyPre<PluginState>),
}

impl WorldPre {
    /// Type-checks the component's exports against `world`.
    pub fn new(world: World, pre: InstancePre<PluginState>) -> wasmtime::Result<WorldPre> {
        Ok(match world {
            World::Authorizer => WorldPre::Authorizer(authorizer::AuthorizerPre::new(pre)?),
            World::Marketplace => WorldPre::Marketplace(marketplace::MarketplacePre::new(pre)?),
            World::GrayRouter => WorldPre::GrayRouter(gray_router::GrayRouterPre::new(pre)?),
            World::Step => WorldPre::Step(step::PipelineStepPre::new(pre)?),
            World::ArtifactPolicy => {
                WorldPre::ArtifactPolicy(artifact_policy::ArtifactPolicyPre::new(pre)?)
            }
        })
    }

    pub fn world(&self) -> World {
        match self {
            WorldPre::Authorizer(_) => World::Authorizer,
            WorldPre::Marketplace(_) => World::Marketplace,
            WorldPre::GrayRouter(_) => World::GrayRouter,
            WorldPre::Step(_) => World::Step,
            WorldPre::ArtifactPolicy(_) => World::ArtifactPolicy,
        }
    }
}

/// What `meta.info` returned.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PluginInfo {
    pub id: String,
    pub version: String,
    pub description: String,
    pub world: String,
}

macro_rules! meta_info {
    ($pre:expr, $store:expr) => {{
        let instance = $pre.instantiate_async(&mut *$store).await?;
        let info = instance.wharf_plugin_meta().call_info(&mut *$store).await?;
        PluginInfo {
            id: info.id,
            version: info.version,
            description: info.description,
            world: info.world,
        }
    }};
}

/// Calls `meta.info` on a fresh instance.
pub async fn meta_info(
    store: &mut Store<PluginState>,
    pre: &WorldPre,
) -> wasmtime::Result<PluginInfo> {
    Ok(match pre {
        WorldPre::Authorizer(p) => meta_info!(p, store),
        WorldPre::Marketplace(p) => meta_info!(p, store),
        WorldPre::GrayRouter(p) => meta_info!(p, store),
        WorldPre::Step(p) => meta_info!(p, store),
        WorldPre::ArtifactPolicy(p) => meta_info!(p, store),
    })
}

/// Why a console invocation could not be made.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("`{function}` is not a function of the {world} world; it offers: {offered}")]
    UnknownFunction {
        function: String,
        world: World,
        offered: String,
    },
    #[error("{field}: {message}")]
    InvalidInput { field: String, message: String },
}

/// Functions each world offers to the console.
pub fn functions(world: World) -> &'static [&'static str] {
    match world {
        World::Authorizer => &["meta.info", "authorize.check", "authorize.manage"],
        World::Marketplace => &[
            "meta.info",
            "catalog.list-apps",
            "catalog.list-versions",
            "catalog.get-template",
            "catalog.publish",
            "catalog.remove",
        ],
        World::GrayRouter => &[
            "meta.info",
            "router.validate",
            "router.render",
            "router.evaluate",
        ],
        World::Step => &["meta.info", "step.describe", "step.run"],
        World::ArtifactPolicy => &[
            "meta.info",
            "policy.check-push",
            "policy.check-delete",
            "policy.select-for-deletion",
        ],
    }
}

/// Validates a console request before any plugin code runs.
pub fn check_function(world: World, function: &str) -> Result<(), InvokeError> {
    if functions(world).contains(&function) {
        Ok(())
    } else {
        Err(InvokeError::UnknownFunction {
            function: function.to_owned(),
            world,
            offered: functions(world).join(", "),
        })
    }
}

fn parse<T: DeserializeOwned>(input: &Value) -> Result<T, InvokeError> {
    serde_path_to_error::deserialize(input).map_err(|e| {
        let message = e.inner().to_string();
        let field = crate::input::field_of(&e.path().to_string(), &message);
        InvokeError::InvalidInput {
            field: if field == "body" {
                "input".to_owned()
            } else {
                format!("input.{field}")
            },
            message,
        }
    })
}

/// JSON text from a plugin, parsed when it is JSON, else kept as a string.
fn json_or_text(text: String) -> Value {
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

/// A parsed console request, ready to run against an instance.
pub enum Invocation {
    MetaInfo,
    StepDescribe,
    StepRun(step::exports::wharf::plugin::step::RunContext, String),
    /// The subject of an authorizer call is always the caller (see [`Invocation::parse`]).
    AuthorizeCheck(
        authorizer::exports::wharf::plugin::authorize::Subject,
        Vec<authorizer::exports::wharf::plugin::authorize::Request>,
    ),
    AuthorizeManage(
        authorizer::exports::wharf::plugin::authorize::Subject,
        String,
        String,
    ),
    /// The market connection, then the call (outbound HTTP narrowed to its URL).
    Catalog(super::catalog::MarketRef, CatalogCall),
    RouterValidate(String),
    RouterRender(String, router::Target),
    RouterEvaluate(String, Vec<router::SampleRequest>),
    PolicyCheckPush(
        artifact_policy::exports::wharf::plugin::policy::Artifact,
        Option<artifact_policy::exports::wharf::plugin::policy::Artifact>,
        artifact_policy::exports::wharf::plugin::policy::Usage,
    ),
    PolicyCheckDelete(artifact_policy::exports::wharf::plugin::policy::Artifact),
    PolicySelect(
        String,
        Vec<artifact_policy::exports::wharf::plugin::policy::Artifact>,
        String,
    ),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StepRunInput {
    #[serde(default)]
    context: RunContextInput,
    #[serde(default)]
    params: Value,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RunContextInput {
    #[serde(default)]
    run_id: String,
    #[serde(default)]
    step_id: String,
    #[serde(default)]
    attempt: u32,
    state: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ManageInput {
    /// Accepted for older clients and replaced by the caller: who an authorizer call is
    /// about is never input.
    #[serde(default, rename = "subject")]
    _subject: Option<serde::de::IgnoredAny>,
    operation: String,
    #[serde(default)]
    input: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RequestInput {
    action: String,
    resource: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CheckInput {
    /// Replaced by the caller, as in [`ManageInput`].
    #[serde(default, rename = "subject")]
    _subject: Option<serde::de::IgnoredAny>,
    requests: Vec<RequestInput>,
}

/// A catalog function with its arguments.
pub enum CatalogCall {
    ListApps(marketplace::exports::wharf::plugin::catalog::AppQuery),
    ListVersions(String),
    GetTemplate(String, String),
    Publish(String),
    Remove(String, Option<String>),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MarketInput {
    #[serde(default)]
    id: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    domain: String,
    access_key: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CatalogInput {
    market: MarketInput,
    #[serde(default)]
    query: String,
    #[serde(default = "one")]
    page: u32,
    #[serde(default = "twenty")]
    page_size: u32,
    app_id: Option<String>,
    version: Option<String>,
    /// `catalog.publish`: the template document (JSON, or its text).
    template: Option<Value>,
}

fn one() -> u32 {
    1
}
fn twenty() -> u32 {
    20
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RuleInput {
    rule: Value,
    #[serde(default)]
    target: Option<TargetInput>,
    #[serde(default)]
    requests: Vec<router::RequestInput>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ArtifactInput {
    repository: String,
    reference: String,
    digest: String,
    #[serde(default)]
    media_type: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    created_at: String,
}

impl From<ArtifactInput> for artifact_policy::exports::wharf::plugin::policy::Artifact {
    fn from(a: ArtifactInput) -> Self {
        Self {
            repository: a.repository,
            reference: a.reference,
            digest: a.digest,
            media_type: a.media_type,
            size: a.size,
            created_at: a.created_at,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UsageInput {
    #[serde(default)]
    project: String,
    #[serde(default)]
    bytes: u64,
    #[serde(default)]
    tags: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CheckPushInput {
    candidate: ArtifactInput,
    existing: Option<ArtifactInput>,
    #[serde(default)]
    usage: UsageInput,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CheckDeleteInput {
    target: ArtifactInput,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SelectInput {
    repository: String,
    artifacts: Vec<ArtifactInput>,
    /// RFC 3339; the host's clock when not given.
    now: Option<String>,
}

fn json_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Invocation {
    /// Parses `input` for `function` (already checked against the world). Authorizer
    /// functions run as `caller`: a `subject` in the input is ignored, so holding
    /// `plugin.invoke` on the authorizer never lets anyone act as someone else.
    pub fn parse(
        function: &str,
        input: &Value,
        caller: authorizer::exports::wharf::plugin::authorize::Subject,
    ) -> Result<Invocation, InvokeError> {
        use artifact_policy::exports::wharf::plugin::policy::{Artifact, Usage};
        use authorizer::exports::wharf::plugin::authorize::Request;
        Ok(match function {
            "meta.info" => Invocation::MetaInfo,
            "step.describe" => Invocation::StepDescribe,
            "step.run" => {
                let input: StepRunInput = parse(input)?;
                let ctx = step::exports::wharf::plugin::step::RunContext {
                    run_id: input.context.run_id,
                    step_id: input.context.step_id,
                    attempt: input.context.attempt,
                    started_by: String::new(),
                    variables: Vec::new(),
                    previous: Vec::new(),
                    state: input.context.state,
                };
                Invocation::StepRun(ctx, json_text(&input.params))
            }
            "authorize.check" => {
                let input: CheckInput = parse(input)?;
                let requests = input
                    .requests
                    .into_iter()
                    .map(|r| Request {
                        action: r.action,
                        resource: r.resource,
                    })
                    .collect();
                Invocation::AuthorizeCheck(caller, requests)
            }
            "authorize.manage" => {
                let input: ManageInput = parse(input)?;
                Invocation::AuthorizeManage(caller, input.operation, json_text(&input.input))
            }
            f if f.starts_with("catalog.") => {
                let input: CatalogInput = parse(input)?;
                let needed = |value: Option<String>, field: &str| {
                    value.ok_or_else(|| InvokeError::InvalidInput {
                        field: format!("input.{field}"),
                        message: format!("{f} needs `{field}`"),
                    })
                };
                let call = match f {
                    "catalog.list-apps" => CatalogCall::ListApps(
                        marketplace::exports::wharf::plugin::catalog::AppQuery {
                            query: input.query,
                            page: input.page,
                            page_size: input.page_size,
                        },
                    ),
                    "catalog.list-versions" => {
                        CatalogCall::ListVersions(needed(input.app_id, "appId")?)
                    }
                    "catalog.get-template" => CatalogCall::GetTemplate(
                        needed(input.app_id, "appId")?,
                        needed(input.version, "version")?,
                    ),
                    "catalog.publish" => {
                        CatalogCall::Publish(json_text(&input.template.ok_or_else(|| {
                            InvokeError::InvalidInput {
                                field: "input.template".into(),
                                message: "catalog.publish needs `template`".into(),
                            }
                        })?))
                    }
                    _ => CatalogCall::Remove(needed(input.app_id, "appId")?, input.version),
                };
                let market = super::catalog::MarketRef {
                    id: input.market.id,
                    url: input.market.url,
                    domain: input.market.domain,
                    access_key: input.market.access_key,
                };
                Invocation::Catalog(market, call)
            }
            "router.validate" | "router.render" | "router.evaluate" => {
                let input: RuleInput = parse(input)?;
                let rule = json_text(&input.rule);
                match function {
                    "router.validate" => Invocation::RouterValidate(rule),
                    "router.render" => {
                        let target = input.target.ok_or_else(|| InvokeError::InvalidInput {
                            field: "input.target".into(),
                            message: "router.render needs a target".into(),
                        })?;
                        Invocation::RouterRender(rule, target.into())
                    }
                    _ => Invocation::RouterEvaluate(
                        rule,
                        input.requests.into_iter().map(Into::into).collect(),
                    ),
                }
            }
            "policy.check-push" => {
                let input: CheckPushInput = parse(input)?;
                Invocation::PolicyCheckPush(
                    input.candidate.into(),
                    input.existing.map(Artifact::from),
                    Usage {
                        project: input.usage.project,
                        bytes: input.usage.bytes,
                        tags: input.usage.tags,
                    },
                )
            }
            "policy.check-delete" => {
                let input: CheckDeleteInput = parse(input)?;
                Invocation::PolicyCheckDelete(input.target.into())
            }
            "policy.select-for-deletion" => {
                let input: SelectInput = parse(input)?;
                let now = input.now.unwrap_or_else(|| {
                    time::OffsetDateTime::now_utc()
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default()
                });
                Invocation::PolicySelect(
                    input.repository,
                    input.artifacts.into_iter().map(Artifact::from).collect(),
                    now,
                )
            }
            other => {
                return Err(InvokeError::InvalidInput {
                    field: "function".into(),
                    message: format!("unknown function `{other}`"),
                });
            }
        })
    }

    /// Runs the invocation on a fresh instance and renders the result as JSON.
    pub async fn run(
        self,
        store: &mut Store<PluginState>,
        pre: &WorldPre,
    ) -> wasmtime::Result<Value> {
        if let Invocation::MetaInfo = self {
            let info = meta_info(store, pre).await?;
            return Ok(json!(info));
        }
        match (self, pre) {
            (Invocation::StepDescribe, WorldPre::Step(p)) => {
                let i = p.instantiate_async(&mut *store).await?;
                let d = i.wharf_plugin_step().call_describe(&mut *store).await?;
                Ok(json!({
                    "kind": d.kind,
                    "version": d.version,
                    "description": d.description,
                    "paramsSchema": json_or_text(d.params_schema),
                    "outputs": d.outputs.into_iter()
                        .map(|o| json!({"name": o.name, "description": o.description}))
                        .collect::<Vec<_>>(),
                    "canCompensate": d.can_compensate,
                }))
            }
            (Invocation::StepRun(ctx, params), WorldPre::Step(p)) => {
                use step::exports::wharf::plugin::step::{Outcome, StepError};
                let i = p.instantiate_async(&mut *store).await?;
                let result = i
                    .wharf_plugin_step()
                    .call_run(&mut *store, &ctx, &params)
                    .await?;
                Ok(match result {
                    Ok(Outcome::Done(outputs)) => {
                        json!({"outcome": "done", "outputs": json_or_text(outputs)})
                    }
                    Ok(Outcome::Pending(p)) => json!({
                        "outcome": "pending", "state": p.state, "recheckAfterMs": p.recheck_after_ms,
                        "progress": p.progress, "message": p.message,
                    }),
                    Ok(Outcome::Failed(f)) => {
                        json!({"outcome": "failed", "reason": f.reason, "retryable": f.retryable})
                    }
                    Err(StepError::InvalidParams(violations)) => json!({"error": {
                        "kind": "invalid-params",
                        "violations": violations.into_iter()
                            .map(|v| json!({"field": v.field, "message": v.message}))
                            .collect::<Vec<_>>(),
                    }}),
                    Err(StepError::Internal(message)) => {
                        json!({"error": {"kind": "internal", "message": message}})
                    }
                })
            }
            (Invocation::AuthorizeCheck(subject, requests), WorldPre::Authorizer(p)) => {
                use authorizer::exports::wharf::plugin::authorize::Decision;
                let i = p.instantiate_async(&mut *store).await?;
                let result = i
                    .wharf_plugin_authorize()
                    .call_check(&mut *store, &subject, &requests)
                    .await?;
                Ok(match result {
                    Ok(decisions) => json!({"decisions": decisions.into_iter().map(|d| match d {
                        Decision::Allow => json!({"allow": true}),
                        Decision::Deny(reason) => json!({"allow": false, "reason": reason}),
                    }).collect::<Vec<_>>()}),
                    Err(e) => json!({"error": authorize_error(&e)}),
                })
            }
            (Invocation::AuthorizeManage(subject, operation, input), WorldPre::Authorizer(p)) => {
                let i = p.instantiate_async(&mut *store).await?;
                let result = i
                    .wharf_plugin_authorize()
                    .call_manage(&mut *store, &subject, &operation, &input)
                    .await?;
                Ok(match result {
                    Ok(output) => json_or_text(output),
                    Err(e) => json!({"error": authorize_error(&e)}),
                })
            }
            (Invocation::Catalog(market, call), WorldPre::Marketplace(p)) => {
                store.data_mut().narrow_outbound(market.outbound());
                let i = p.instantiate_async(&mut *store).await?;
                let catalog = i.wharf_plugin_catalog();
                let m = market.wit();
                let answer = match call {
                    CatalogCall::ListApps(q) => catalog
                        .call_list_apps(&mut *store, &m, &q)
                        .await?
                        .map(|p| json!(super::catalog::app_page(p))),
                    CatalogCall::ListVersions(app) => catalog
                        .call_list_versions(&mut *store, &m, &app)
                        .await?
                        .map(|v| {
                            json!(
                                v.into_iter()
                                    .map(super::catalog::version)
                                    .collect::<Vec<_>>()
                            )
                        }),
                    CatalogCall::GetTemplate(app, version) => catalog
                        .call_get_template(&mut *store, &m, &app, &version)
                        .await?
                        .map(|t| json!(super::catalog::template(t))),
                    CatalogCall::Publish(text) => catalog
                        .call_publish(&mut *store, &m, &text)
                        .await?
                        .map(|t| json!(super::catalog::template(t))),
                    CatalogCall::Remove(app, version) => catalog
                        .call_remove(&mut *store, &m, &app, version.as_deref())
                        .await?
                        .map(|n| json!({"removed": n})),
                };
                Ok(answer.unwrap_or_else(|e| json!({"error": super::catalog::fault(e)})))
            }
            (Invocation::RouterValidate(rule), WorldPre::GrayRouter(p)) => {
                let i = p.instantiate_async(&mut *store).await?;
                let result = i
                    .wharf_plugin_router()
                    .call_validate(&mut *store, &rule)
                    .await?;
                Ok(match result {
                    Ok(()) => json!({"valid": true}),
                    Err(e) => json!({"error": router::error_json(&e)}),
                })
            }
            (Invocation::RouterRender(rule, target), WorldPre::GrayRouter(p)) => {
                let i = p.instantiate_async(&mut *store).await?;
                let result = i
                    .wharf_plugin_router()
                    .call_render(&mut *store, &rule, &target)
                    .await?;
                Ok(match result {
                    Ok(objects) => {
                        json!({"objects": objects.into_iter().map(json_or_text).collect::<Vec<_>>()})
                    }
                    Err(e) => json!({"error": router::error_json(&e)}),
                })
            }
            (Invocation::RouterEvaluate(rule, requests), WorldPre::GrayRouter(p)) => {
                let i = p.instantiate_async(&mut *store).await?;
                let result = i
                    .wharf_plugin_router()
                    .call_evaluate(&mut *store, &rule, &requests)
                    .await?;
                Ok(match result {
                    Ok(evaluations) => json!({"evaluations": evaluations
                        .iter()
                        .map(router::evaluation_json)
                        .collect::<Vec<_>>()}),
                    Err(e) => json!({"error": router::error_json(&e)}),
                })
            }
            (
                Invocation::PolicyCheckPush(candidate, existing, usage),
                WorldPre::ArtifactPolicy(p),
            ) => {
                let i = p.instantiate_async(&mut *store).await?;
                let result = i
                    .wharf_plugin_policy()
                    .call_check_push(&mut *store, &candidate, existing.as_ref(), &usage)
                    .await?;
                Ok(verdict_json(result))
            }
            (Invocation::PolicyCheckDelete(target), WorldPre::ArtifactPolicy(p)) => {
                let i = p.instantiate_async(&mut *store).await?;
                let result = i
                    .wharf_plugin_policy()
                    .call_check_delete(&mut *store, &target)
                    .await?;
                Ok(verdict_json(result))
            }
            (Invocation::PolicySelect(repository, artifacts, now), WorldPre::ArtifactPolicy(p)) => {
                let i = p.instantiate_async(&mut *store).await?;
                let result = i
                    .wharf_plugin_policy()
                    .call_select_for_deletion(&mut *store, &repository, &artifacts, &now)
                    .await?;
                Ok(match result {
                    Ok(tags) => json!({"delete": tags}),
                    Err(e) => policy_error(e),
                })
            }
            (_, pre) => Err(wasmtime::format_err!(
                "the invocation does not belong to the {} world",
                pre.world()
            )),
        }
    }
}

/// An authorizer's typed error as JSON: `{"kind", "message"}` or `{"kind", "violations"}`.
pub fn authorize_error(e: &authorizer::exports::wharf::plugin::authorize::AuthorizeError) -> Value {
    use authorizer::exports::wharf::plugin::authorize::AuthorizeError as E;
    let (kind, message) = match e {
        E::InvalidRequest(violations) => {
            return json!({
                "kind": "invalid-request",
                "violations": violations.iter()
                    .map(|v| json!({"field": v.field, "message": v.message}))
                    .collect::<Vec<_>>(),
            });
        }
        E::NotFound(m) => ("not-found", m),
        E::Forbidden(m) => ("forbidden", m),
        E::UnknownPermission(m) => ("unknown-permission", m),
        E::Unsupported(m) => ("unsupported", m),
        E::Unavailable(m) => ("unavailable", m),
    };
    json!({"kind": kind, "message": message})
}

fn verdict_json(
    result: Result<
        artifact_policy::exports::wharf::plugin::policy::Verdict,
        artifact_policy::exports::wharf::plugin::policy::PolicyError,
    >,
) -> Value {
    use artifact_policy::exports::wharf::plugin::policy::Verdict;
    match result {
        Ok(Verdict::Accept) => json!({"accept": true}),
        Ok(Verdict::Reject(reason)) => json!({"accept": false, "reason": reason}),
        Err(e) => policy_error(e),
    }
}

fn policy_error(e: artifact_policy::exports::wharf::plugin::policy::PolicyError) -> Value {
    use artifact_policy::exports::wharf::plugin::policy::PolicyError as E;
    let (kind, message) = match e {
        E::InvalidRequest(m) => ("invalid-request", m),
        E::Unavailable(m) => ("unavailable", m),
    };
    json!({"error": {"kind": kind, "message": message}})
}
