//! The `wharf:host/platform` interface: actions a pipeline step takes on Wharf itself.
//!
//! The runtime only carries the calls. What they do, and as whom, is the
//! [`PlatformHost`] the caller attached to the invocation (the pipeline engine attaches
//! one that acts as the run's starter); without one every call is `unavailable`. Each
//! call counts against the invocation's host-call budget and is journaled for replay.
//! Mutations carry their position among the invocation's mutations, so the host can make
//! them idempotent per run, step and attempt.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::{Value, json};

use super::bindings::host::wharf::host::platform::{Decision, Host, PlatformError};
use super::journal::Journal;
use super::state::CallBudget;

/// One platform action, with its arguments.
#[derive(Debug, Clone)]
pub enum PlatformCall {
    Deploy {
        project: String,
        app: String,
        env: String,
        request: String,
    },
    ChangeOrder {
        id: String,
    },
    RollbackChange {
        id: String,
    },
    AbortChange {
        id: String,
    },
    ConfigItem {
        project: String,
        env: String,
        name: String,
    },
    PublishArtifact {
        project: String,
        name: String,
        version: String,
        content: Vec<u8>,
    },
    Decisions,
}

impl PlatformCall {
    /// Whether the call changes something (and so must happen once per attempt).
    pub fn mutates(&self) -> bool {
        matches!(
            self,
            PlatformCall::Deploy { .. }
                | PlatformCall::RollbackChange { .. }
                | PlatformCall::AbortChange { .. }
                | PlatformCall::PublishArtifact { .. }
        )
    }

    /// `platform.<function>`, as the journal and the audit log name it.
    pub fn name(&self) -> &'static str {
        match self {
            PlatformCall::Deploy { .. } => "platform.deploy",
            PlatformCall::ChangeOrder { .. } => "platform.change-order",
            PlatformCall::RollbackChange { .. } => "platform.rollback-change",
            PlatformCall::AbortChange { .. } => "platform.abort-change",
            PlatformCall::ConfigItem { .. } => "platform.config-item",
            PlatformCall::PublishArtifact { .. } => "platform.publish-artifact",
            PlatformCall::Decisions => "platform.decisions",
        }
    }

    /// The arguments as the journal keeps them (an artifact's content by size only).
    fn args(&self) -> Value {
        match self {
            PlatformCall::Deploy {
                project,
                app,
                env,
                request,
            } => json!([project, app, env, request]),
            PlatformCall::ChangeOrder { id }
            | PlatformCall::RollbackChange { id }
            | PlatformCall::AbortChange { id } => json!([id]),
            PlatformCall::ConfigItem { project, env, name } => json!([project, env, name]),
            PlatformCall::PublishArtifact {
                project,
                name,
                version,
                content,
            } => json!([project, name, version, content.len()]),
            PlatformCall::Decisions => json!([]),
        }
    }
}

/// What a platform action answers: JSON text, an optional JSON text, or decisions.
#[derive(Debug, Clone)]
pub enum PlatformAnswer {
    Text(String),
    Optional(Option<String>),
    Decisions(Vec<Decision>),
}

pub type PlatformFuture =
    Pin<Box<dyn Future<Output = Result<PlatformAnswer, PlatformError>> + Send>>;

/// Carries out platform calls for one invocation.
pub trait PlatformHost: Send + Sync {
    /// `mutation` is the call's position among this invocation's mutations (0 for the
    /// first), `None` for a read.
    fn call(&self, call: PlatformCall, mutation: Option<u32>) -> PlatformFuture;
}

/// What a call's `platform` import sees.
pub struct PlatformView<'a> {
    pub host: Option<Arc<dyn PlatformHost>>,
    pub journal: Option<&'a Journal>,
    pub budget: &'a mut CallBudget,
    pub mutations: &'a mut u32,
}

impl PlatformView<'_> {
    async fn run(&mut self, call: PlatformCall) -> Result<PlatformAnswer, PlatformError> {
        self.budget
            .take_host_call()
            .map_err(|e| PlatformError::Unavailable(format!("{e:?}")))?;
        let name = call.name();
        let args = call.args();
        let mutation = call.mutates().then(|| {
            let n = *self.mutations;
            *self.mutations += 1;
            n
        });
        if let Some(journal) = self.journal
            && let Some(answer) = journal.answer::<Result<Value, PlatformError>>(name, &args)
        {
            let recorded = answer.map_err(PlatformError::Unavailable)??;
            return decode(&call, recorded);
        }
        let Some(host) = self.host.clone() else {
            return Err(PlatformError::Unavailable(
                "platform actions are offered to pipeline steps during a run only".into(),
            ));
        };
        let result = host.call(call.clone(), mutation).await;
        if let Some(journal) = self.journal {
            journal.note(
                name,
                args,
                &result.as_ref().map(encode).map_err(Clone::clone),
            );
        }
        result
    }
}

fn encode(answer: &PlatformAnswer) -> Value {
    match answer {
        PlatformAnswer::Text(text) => json!({ "text": text }),
        PlatformAnswer::Optional(text) => json!({ "optional": text }),
        PlatformAnswer::Decisions(list) => json!({ "decisions": list }),
    }
}

fn decode(call: &PlatformCall, recorded: Value) -> Result<PlatformAnswer, PlatformError> {
    let unreadable =
        || PlatformError::Unavailable(format!("{}: recorded answer unreadable", call.name()));
    if let Some(text) = recorded.get("text").and_then(Value::as_str) {
        return Ok(PlatformAnswer::Text(text.to_owned()));
    }
    if let Some(optional) = recorded.get("optional") {
        return Ok(PlatformAnswer::Optional(
            optional.as_str().map(str::to_owned),
        ));
    }
    if let Some(list) = recorded.get("decisions") {
        return serde_json::from_value(list.clone())
            .map(PlatformAnswer::Decisions)
            .map_err(|_| unreadable());
    }
    Err(unreadable())
}

fn text(answer: PlatformAnswer) -> Result<String, PlatformError> {
    match answer {
        PlatformAnswer::Text(text) => Ok(text),
        other => Err(mismatch(other)),
    }
}

fn mismatch(answer: PlatformAnswer) -> PlatformError {
    PlatformError::Unavailable(format!("the host answered the wrong shape: {answer:?}"))
}

impl Host for PlatformView<'_> {
    async fn deploy(
        &mut self,
        project: String,
        app: String,
        env: String,
        request_json: String,
    ) -> Result<String, PlatformError> {
        text(
            self.run(PlatformCall::Deploy {
                project,
                app,
                env,
                request: request_json,
            })
            .await?,
        )
    }

    async fn change_order(&mut self, id: String) -> Result<String, PlatformError> {
        text(self.run(PlatformCall::ChangeOrder { id }).await?)
    }

    async fn rollback_change(&mut self, id: String) -> Result<String, PlatformError> {
        text(self.run(PlatformCall::RollbackChange { id }).await?)
    }

    async fn abort_change(&mut self, id: String) -> Result<String, PlatformError> {
        text(self.run(PlatformCall::AbortChange { id }).await?)
    }

    async fn config_item(
        &mut self,
        project: String,
        env: String,
        name: String,
    ) -> Result<Option<String>, PlatformError> {
        match self
            .run(PlatformCall::ConfigItem { project, env, name })
            .await?
        {
            PlatformAnswer::Optional(item) => Ok(item),
            other => Err(mismatch(other)),
        }
    }

    async fn publish_artifact(
        &mut self,
        project: String,
        name: String,
        version: String,
        content: Vec<u8>,
    ) -> Result<String, PlatformError> {
        text(
            self.run(PlatformCall::PublishArtifact {
                project,
                name,
                version,
                content,
            })
            .await?,
        )
    }

    async fn decisions(&mut self) -> Result<Vec<Decision>, PlatformError> {
        match self.run(PlatformCall::Decisions).await? {
            PlatformAnswer::Decisions(list) => Ok(list),
            other => Err(mismatch(other)),
        }
    }
}
