//! The platform actions of one step invocation: deploy through a change order, read,
//! roll back or abort a change order, read a config item, publish a build output as a
//! generic package, read the step's decisions.
//!
//! Each is authorized by the authorizer plugin as the user who started the run (never as
//! the plugin), and audited with the plugin's id and version. A mutation is made once per
//! run, step, attempt, phase and position: its answer is kept at
//! `pipeline-effects/<run>/<step>/<attempt>/<phase>/<n>`, and an invocation repeated after
//! a restart gets that answer back. A deploy that was opened but not yet recorded when the
//! host stopped is adopted by its description, which names the run, step and attempt.

use std::sync::Arc;

use serde_json::{Value, json};

use super::runs::Runs;
use crate::audit::{Actor, AuditLog, Entry, Outcome};
use crate::auth::Identity;
use crate::domain::artifacts::packages::{
    NewPackage, Package, PackageError, PackageType, Packages,
};
use crate::domain::config_items::ConfigItems;
use crate::domain::rollout::{DeployError, DeployRequest, Deployer, Requester};
use crate::runtime::Runtime;
use crate::runtime::authorizer::{Decision as AuthzDecision, Request as AuthzRequest, Subject};
use crate::runtime::bindings::host::wharf::host::platform::{Decision, PlatformError};
use crate::runtime::platform::{PlatformAnswer, PlatformCall, PlatformFuture, PlatformHost};
use crate::runtime::step::Phase;
use crate::store::Store;

/// What the platform needs from the rest of the host.
#[derive(Clone)]
pub struct Services {
    pub store: Store,
    pub runtime: Runtime,
    pub identity: Identity,
    pub audit: AuditLog,
    pub deployer: Deployer,
    pub config_items: ConfigItems,
    pub runs: Runs,
    /// Where `publish-artifact` stores build outputs.
    pub packages: Packages,
}

/// The invocation the actions belong to.
#[derive(Debug, Clone)]
pub struct InvocationRef {
    pub pipeline: String,
    pub run: String,
    pub run_number: u64,
    pub step: String,
    pub attempt: u32,
    pub phase: Phase,
    pub user_id: String,
    pub username: String,
    /// `id@version` of the step plugin.
    pub plugin: String,
}

/// [`PlatformHost`] for one invocation.
pub struct RunPlatform {
    pub services: Services,
    pub invocation: InvocationRef,
}

fn effect_key(i: &InvocationRef, mutation: u32) -> String {
    let phase = i.phase.name();
    Store::key(&[
        "pipeline-effects",
        &i.run,
        &i.step,
        &format!("{:04}", i.attempt),
        phase,
        &format!("{mutation:04}"),
    ])
}

fn deploy_error(e: DeployError) -> PlatformError {
    let text = e.to_string();
    match e {
        DeployError::InFlight { .. }
        | DeployError::WrongState { .. }
        | DeployError::NothingToRollBack(_)
        | DeployError::AppDisabled(_) => PlatformError::Conflict(text),
        DeployError::Invalid { .. } => PlatformError::Invalid(text),
        DeployError::AppNotFound(_)
        | DeployError::ChangeNotFound(_)
        | DeployError::NotDeployed { .. }
        | DeployError::Deleted { .. } => PlatformError::NotFound(text),
        _ => PlatformError::Unavailable(text),
    }
}

fn package_error(e: PackageError) -> PlatformError {
    let text = e.to_string();
    match e {
        PackageError::Invalid { .. } | PackageError::DigestMismatch { .. } => {
            PlatformError::Invalid(text)
        }
        PackageError::TooLarge { .. } => PlatformError::Invalid(text),
        PackageError::ProjectNotFound(_) | PackageError::NotFound(_) => {
            PlatformError::NotFound(text)
        }
        PackageError::VersionExists { .. } => PlatformError::Conflict(text),
        _ => PlatformError::Unavailable(text),
    }
}

fn json_text<T: serde::Serialize>(value: &T) -> Result<String, PlatformError> {
    serde_json::to_string(value).map_err(|e| PlatformError::Unavailable(e.to_string()))
}

impl RunPlatform {
    /// Asks the authorizer whether the run's starter may take `action` on `resource`.
    async fn authorize(&self, action: &str, resource: &str) -> Result<(), PlatformError> {
        let services = &self.services;
        let i = &self.invocation;
        let Some(authorizer) = services.runtime.authorizer() else {
            return Err(PlatformError::Unavailable(
                "no authorizer plugin is enabled".into(),
            ));
        };
        let user = services
            .identity
            .user(&i.user_id)
            .map_err(|e| PlatformError::Denied(format!("the run's user `{}`: {e}", i.username)))?;
        let subject = Subject {
            id: user.id.clone(),
            username: user.username.clone(),
            groups: services.identity.groups_of(&user.id).unwrap_or_default(),
            is_admin: user.is_admin,
        };
        let request = AuthzRequest {
            action: action.to_owned(),
            resource: resource.to_owned(),
        };
        match services.runtime.decide(&authorizer, subject, request).await {
            Ok(Ok(AuthzDecision::Allow)) => Ok(()),
            Ok(Ok(AuthzDecision::Deny(reason))) => Err(PlatformError::Denied(format!(
                "{} may not `{action}` on `{resource}`: {reason}",
                i.username
            ))),
            Ok(Err(e)) => Err(PlatformError::Unavailable(format!(
                "the authorizer failed: {e:?}"
            ))),
            Err(e) => Err(PlatformError::Unavailable(format!(
                "the authorizer failed: {e}"
            ))),
        }
    }

    fn requester(&self, what: &str) -> Requester {
        Requester {
            username: self.invocation.username.clone(),
            description: Some(self.marker(what)),
            ticket: None,
        }
    }

    /// The description a change order opened by this invocation carries.
    fn marker(&self, what: &str) -> String {
        let i = &self.invocation;
        format!(
            "pipeline {} run #{} ({}) step {} attempt {}: {what}",
            i.pipeline, i.run_number, i.run, i.step, i.attempt
        )
    }

    async fn audit(
        &self,
        action: &str,
        target: &str,
        after: Value,
        failed: Option<&PlatformError>,
    ) {
        let i = &self.invocation;
        let entry = Entry::new(
            Actor::user(&i.user_id, &i.username),
            action,
            target,
            if failed.is_some() {
                Outcome::Error
            } else {
                Outcome::Ok
            },
        );
        self.services
            .audit
            .record(Entry {
                plugin: Some(i.plugin.clone()),
                after: Some(json!({
                    "pipeline": i.pipeline, "run": i.run, "step": i.step, "attempt": i.attempt,
                    "result": after, "error": failed.map(|e| format!("{e:?}")),
                })),
                ..entry
            })
            .await;
    }

    fn change_scope(
        &self,
        id: &str,
    ) -> Result<(String, crate::domain::changes::ChangeOrder), PlatformError> {
        let change = self
            .services
            .deployer
            .change(id)
            .map_err(|_| PlatformError::NotFound(format!("no change order `{id}`")))?;
        let scope = format!(
            "project:{}/app:{}/env:{}",
            change.project, change.app, change.env
        );
        Ok((scope, change))
    }

    async fn deploy(
        &self,
        project: String,
        app: String,
        env: String,
        request: String,
    ) -> Result<String, PlatformError> {
        let scope = format!("project:{project}/app:{app}/env:{env}");
        self.authorize("deploy.create", &scope).await?;
        let body: Value = serde_json::from_str(&request)
            .map_err(|e| PlatformError::Invalid(format!("request-json: not JSON: {e}")))?;
        let request =
            DeployRequest::from_json(body).map_err(|e| PlatformError::Invalid(e.to_string()))?;
        let requester = self.requester(&format!("deploy {app} to {env}"));
        let marker = requester.description.clone().unwrap_or_default();
        let opened = self
            .services
            .deployer
            .deploy(&project, &app, &env, request, requester)
            .await;
        let change = match opened {
            Ok(change) => change,
            Err(DeployError::InFlight { change_order }) => {
                let (_, change) = self.change_scope(&change_order)?;
                if change.description != marker {
                    return Err(PlatformError::Conflict(format!(
                        "change order {change_order} is in flight for {app} in {env}"
                    )));
                }
                change
            }
            Err(e) => return Err(deploy_error(e)),
        };
        let answer = json_text(&change)?;
        self.audit(
            "pipeline.deploy",
            &scope,
            json!({"changeOrder": change.id}),
            None,
        )
        .await;
        Ok(answer)
    }

    /// Stores a build output as a generic package of `project` (source CODE_GENERATE),
    /// filed under the run's app when the run belongs to that project. `name` ends with
    /// the package type (`orders.jar`). The same content published again by the same
    /// user answers the package already stored (so an invocation repeated after a
    /// restart, whose answer was not kept, gets it back); other content is a conflict.
    async fn publish(
        &self,
        project: String,
        name: String,
        version: String,
        content: Vec<u8>,
    ) -> Result<Package, PlatformError> {
        self.authorize("artifact.push", &format!("project:{project}"))
            .await?;
        let (base, package_type) = PackageType::split_file_name(&name).ok_or_else(|| {
            PlatformError::Invalid(format!(
                "name: `{name}` must end with .jar, .war, .zip, .tar.gz or .rpm"
            ))
        })?;
        let run = self
            .services
            .runs
            .get(&self.invocation.run)
            .map_err(|e| PlatformError::Unavailable(e.to_string()))?;
        let new = NewPackage {
            name: base.to_owned(),
            version,
            package_type: Some(package_type.extension().to_owned()),
            source: Some("CODE_GENERATE".to_owned()),
            app: (run.project == project).then(|| run.app.clone()),
            ..NewPackage::default()
        };
        let packages = &self.services.packages;
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&content));
        let checked = match packages.check(&project, new) {
            Ok(checked) => checked,
            Err(PackageError::VersionExists { id, .. }) => {
                let kept = packages.find(&id).map_err(package_error)?;
                if kept.sha256 == digest && kept.created_by == self.invocation.username {
                    return Ok(kept);
                }
                return Err(PlatformError::Conflict(format!(
                    "{base} {} ({}) is already published as package {id} with other content",
                    kept.version,
                    package_type.extension()
                )));
            }
            Err(e) => return Err(package_error(e)),
        };
        let body = futures::stream::iter([Ok::<_, std::convert::Infallible>(bytes::Bytes::from(
            content,
        ))]);
        packages
            .upload(checked, body, &self.invocation.username)
            .await
            .map_err(package_error)
    }

    async fn act(&self, call: PlatformCall) -> Result<PlatformAnswer, PlatformError> {
        let i = &self.invocation;
        match call {
            PlatformCall::Deploy {
                project,
                app,
                env,
                request,
            } => {
                let result = self
                    .deploy(project, app.clone(), env.clone(), request)
                    .await;
                if let Err(e) = &result {
                    self.audit(
                        "pipeline.deploy",
                        &format!("app:{app}/env:{env}"),
                        Value::Null,
                        Some(e),
                    )
                    .await;
                }
                result.map(PlatformAnswer::Text)
            }
            PlatformCall::ChangeOrder { id } => {
                let (scope, change) = self.change_scope(&id)?;
                self.authorize("deploy.read", &scope).await?;
                Ok(PlatformAnswer::Text(json_text(&change)?))
            }
            PlatformCall::RollbackChange { id } => {
                let (scope, _) = self.change_scope(&id)?;
                self.authorize("deploy.rollback", &scope).await?;
                let result = self
                    .services
                    .deployer
                    .rollback_change(&id, self.requester(&format!("roll back change order {id}")))
                    .await
                    .map_err(deploy_error);
                match &result {
                    Ok(change) => {
                        self.audit(
                            "pipeline.rollback-change",
                            &scope,
                            json!({"changeOrder": change.id, "rollbackOf": id}),
                            None,
                        )
                        .await
                    }
                    Err(e) => {
                        self.audit("pipeline.rollback-change", &scope, Value::Null, Some(e))
                            .await
                    }
                }
                Ok(PlatformAnswer::Text(json_text(&result?)?))
            }
            PlatformCall::AbortChange { id } => {
                let (scope, _) = self.change_scope(&id)?;
                self.authorize("deploy.abort", &scope).await?;
                let result = self
                    .services
                    .deployer
                    .abort(&id, &i.username)
                    .await
                    .map_err(deploy_error);
                match &result {
                    Ok(change) => {
                        self.audit(
                            "pipeline.abort-change",
                            &scope,
                            json!({"changeOrder": change.id}),
                            None,
                        )
                        .await
                    }
                    Err(e) => {
                        self.audit("pipeline.abort-change", &scope, Value::Null, Some(e))
                            .await
                    }
                }
                Ok(PlatformAnswer::Text(json_text(&result?)?))
            }
            PlatformCall::ConfigItem { project, env, name } => {
                self.authorize(
                    "config.read",
                    &format!("project:{project}/env:{env}/config:{name}"),
                )
                .await?;
                match self.services.config_items.get(&project, &env, &name) {
                    Ok(item) => {
                        let entries: serde_json::Map<String, Value> = item
                            .items
                            .into_iter()
                            .map(|e| (e.name, Value::String(e.value)))
                            .collect();
                        Ok(PlatformAnswer::Optional(Some(json_text(&entries)?)))
                    }
                    Err(e) if e.to_string().starts_with("no ") => {
                        Ok(PlatformAnswer::Optional(None))
                    }
                    Err(e) => Err(PlatformError::Unavailable(e.to_string())),
                }
            }
            PlatformCall::PublishArtifact {
                project,
                name,
                version,
                content,
            } => {
                let target = format!("project:{project}");
                let result = self.publish(project, name, version, content).await;
                match &result {
                    Ok(package) => {
                        self.audit(
                            "pipeline.publish-artifact",
                            &format!("{target}/package:{}", package.id),
                            json!({"package": package.id, "sha256": package.sha256}),
                            None,
                        )
                        .await
                    }
                    Err(e) => {
                        self.audit("pipeline.publish-artifact", &target, Value::Null, Some(e))
                            .await
                    }
                }
                Ok(PlatformAnswer::Text(json_text(&result?)?))
            }
            PlatformCall::Decisions => {
                let run = self
                    .services
                    .runs
                    .get(&i.run)
                    .map_err(|e| PlatformError::Unavailable(e.to_string()))?;
                let step = run
                    .step(&i.step)
                    .ok_or_else(|| PlatformError::NotFound(format!("no step `{}`", i.step)))?;
                Ok(PlatformAnswer::Decisions(
                    step.decisions
                        .iter()
                        .map(|d| Decision {
                            username: d.username.clone(),
                            approve: d.approve,
                            comment: d.comment.clone(),
                            at: d
                                .at
                                .format(&time::format_description::well_known::Rfc3339)
                                .unwrap_or_default(),
                        })
                        .collect(),
                ))
            }
        }
    }
}

/// A mutation's answer as the effects key keeps it.
#[derive(serde::Serialize, serde::Deserialize)]
enum KeptAnswer {
    Text(String),
    Failed(PlatformError),
}

impl PlatformHost for RunPlatform {
    fn call(&self, call: PlatformCall, mutation: Option<u32>) -> PlatformFuture {
        let this = RunPlatform {
            services: self.services.clone(),
            invocation: self.invocation.clone(),
        };
        Box::pin(async move {
            let Some(n) = mutation else {
                return this.act(call).await;
            };
            let key = effect_key(&this.invocation, n);
            if let Ok(Some(kept)) = this.services.store.get_json::<KeptAnswer>(&key) {
                return match kept {
                    KeptAnswer::Text(text) => Ok(PlatformAnswer::Text(text)),
                    KeptAnswer::Failed(e) => Err(e),
                };
            }
            let result = this.act(call).await;
            let kept = match &result {
                Ok(PlatformAnswer::Text(text)) => Some(KeptAnswer::Text(text.clone())),
                Err(e @ (PlatformError::Denied(_) | PlatformError::Invalid(_))) => {
                    Some(KeptAnswer::Failed(e.clone()))
                }
                _ => None,
            };
            if let Some(kept) = kept {
                if let Err(e) = this.services.store.put_json(&key, &kept) {
                    tracing::error!(error = %e, "keeping a platform action's answer failed");
                } else if let Err(e) = this.services.store.commit().await {
                    tracing::error!(error = %e, "keeping a platform action's answer failed");
                }
            }
            result
        })
    }
}

/// Shares `services` with the invocations of one run.
pub fn platform_for(services: &Services, invocation: InvocationRef) -> Arc<dyn PlatformHost> {
    Arc::new(RunPlatform {
        services: services.clone(),
        invocation,
    })
}
