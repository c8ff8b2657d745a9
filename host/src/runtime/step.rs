//! The host side of the step world: describing a step type, and one invocation of a step
//! (run, cancel or compensate) — metered, journaled for replay, its log lines captured.
//!
//! Every invocation takes the ordinary plugin path (limits, deadline, accounting); a
//! plugin that traps, runs out of memory or time answers a [`CallError`], which the run
//! engine turns into a failed attempt. The host never trusts a step with more than the
//! call it is in: platform actions go through the [`PlatformHost`] the engine attaches.

use std::sync::{Arc, Mutex};

use super::bindings::step::exports::wharf::plugin::step as wit;
use super::call::{CallError, Lane, Metering};
use super::journal::{HostCall, Journal, Recording};
use super::log::LogLine;
use super::manifest::World;
use super::platform::PlatformHost;
use super::state::StepCall;
use super::{Runtime, WorldPre};

pub use wit::{
    Descriptor, Failure, Outcome, OutputSpec, PendingInfo, RunContext, StepError, StepOutputs,
    Variable,
};

/// Which export an invocation calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    Run,
    Cancel,
    Compensate,
}

impl Phase {
    /// The export's name, as stored keys and views spell it.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Run => "run",
            Phase::Cancel => "cancel",
            Phase::Compensate => "compensate",
        }
    }
}

/// One invocation's inputs.
#[derive(Debug, Clone)]
pub struct StepInvocation {
    pub phase: Phase,
    pub context: RunContext,
    pub params: String,
    /// What the step produced, for `compensate`.
    pub outputs: String,
}

/// What an invocation did.
#[derive(Debug)]
pub struct Executed {
    /// `cancel` answers `done("{}")` when it succeeded.
    pub result: Result<Result<Outcome, StepError>, CallError>,
    pub metering: Metering,
    /// The host calls it made (empty for a replay).
    pub recording: Recording,
    /// For a replay: where it left the recording, if it did.
    pub divergence: Option<String>,
    pub logs: Vec<LogLine>,
}

/// Why a plugin cannot serve as a step.
#[derive(Debug, thiserror::Error)]
pub enum StepCallError {
    #[error("`{0}` is not a step plugin")]
    WrongWorld(String),
    #[error(transparent)]
    Call(#[from] CallError),
}

/// Bytes of text an outcome hands the host, against the plugin's output limit.
fn outcome_size(result: &Result<Outcome, StepError>) -> usize {
    match result {
        Ok(Outcome::Done(outputs)) => outputs.len(),
        Ok(Outcome::Pending(p)) => p.state.len() + p.message.len(),
        Ok(Outcome::Failed(f)) => f.reason.len(),
        Err(StepError::InvalidParams(v)) => v.iter().map(|v| v.field.len() + v.message.len()).sum(),
        Err(StepError::Internal(m)) => m.len(),
    }
}

impl Runtime {
    /// The enabled version of step plugin `id`.
    fn step_plugin(&self, id: &str) -> Result<Arc<super::ActivePlugin>, StepCallError> {
        match self.active(id) {
            None => Err(CallError::NotEnabled(id.to_owned()).into()),
            Some(p) if p.world() != World::Step => Err(StepCallError::WrongWorld(id.into())),
            Some(p) => Ok(p),
        }
    }

    /// The `id@version` serving step type `id` now, if it is an enabled step plugin.
    pub fn step_version(&self, id: &str) -> Option<String> {
        self.step_plugin(id)
            .ok()
            .map(|p| format!("{}@{}", p.context.id, p.context.version))
    }

    pub async fn describe_step(&self, id: &str) -> Result<Descriptor, StepCallError> {
        let plugin = self.step_plugin(id)?;
        Ok(self
            .call_version(&plugin, move |store, pre| {
                Box::pin(async move {
                    let WorldPre::Step(pre) = pre else {
                        return Err(wasmtime::format_err!("not a step plugin"));
                    };
                    let instance = pre.instantiate_async(&mut *store).await?;
                    let d = instance
                        .wharf_plugin_step()
                        .call_describe(&mut *store)
                        .await?;
                    let size = d.params_schema.len() + d.description.len();
                    Ok((d, size))
                })
            })
            .await?)
    }

    /// Runs one invocation of step plugin `id`. With `replay`, host calls are answered
    /// from that recording and nothing acts on the world.
    pub async fn execute_step(
        &self,
        id: &str,
        invocation: StepInvocation,
        platform: Option<Arc<dyn PlatformHost>>,
        replay: Option<Vec<HostCall>>,
    ) -> Result<Executed, StepCallError> {
        let plugin = self.step_plugin(id)?;
        let journal = match replay {
            Some(calls) => Journal::replaying(calls),
            None => Journal::recording(),
        };
        let logs = Arc::new(Mutex::new(Vec::new()));
        let step = StepCall {
            platform,
            journal: Some(journal.clone()),
            logs: Some(logs.clone()),
        };
        let (result, metering) = self
            .call_metered(Lane::General, &plugin, move |store, pre| {
                Box::pin(async move {
                    let WorldPre::Step(pre) = pre else {
                        return Err(wasmtime::format_err!("not a step plugin"));
                    };
                    store.data_mut().attach_step(step);
                    let instance = pre.instantiate_async(&mut *store).await?;
                    let guest = instance.wharf_plugin_step();
                    let StepInvocation {
                        phase,
                        context,
                        params,
                        outputs,
                    } = invocation;
                    let result = match phase {
                        Phase::Run => guest.call_run(&mut *store, &context, &params).await?,
                        Phase::Compensate => {
                            guest
                                .call_compensate(&mut *store, &context, &params, &outputs)
                                .await?
                        }
                        Phase::Cancel => guest
                            .call_cancel(&mut *store, &context, &params)
                            .await?
                            .map(|()| Outcome::Done("{}".to_owned())),
                    };
                    let size = outcome_size(&result);
                    Ok((result, size))
                })
            })
            .await;
        let logs = std::mem::take(&mut *logs.lock().unwrap_or_else(|p| p.into_inner()));
        let (recording, divergence) = if journal.is_replay() {
            (Recording::default(), journal.finish_replay())
        } else {
            (journal.finish_recording(), None)
        };
        Ok(Executed {
            result,
            metering,
            recording,
            divergence,
            logs,
        })
    }
}
