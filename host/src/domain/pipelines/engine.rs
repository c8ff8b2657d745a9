//! Moving runs forward. One driver task per run in flight (per host): it reads the run,
//! takes one transition, stores it (compare-and-swap) and only then acts on it, so a
//! host that stops anywhere resumes from the record — a step whose attempt had started is
//! invoked again with the same run id, step id and attempt, and its platform actions
//! answer what they answered before instead of acting twice.
//!
//! A step runs until `done`, `failed`, or while `pending` again after its recheck delay;
//! a retryable failure starts the next attempt after a doubling backoff, up to the step's
//! retries; an attempt past its timeout is cancelled and counts as a retryable failure.
//! Abort cancels the running step. Retry resumes from the failed step, keeping what
//! succeeded. Rollback compensates every succeeded step in reverse completion order.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use tokio::sync::Notify;

use super::PipelineError;
use super::definitions::Definitions;
use super::journal::{self, InvocationRecord, OutcomeView, RecordedInputs};
use super::model::{NATIVE_ECHO, OnError, Pipeline, StepDef};
use super::params::{self, Scope};
use super::platform::{InvocationRef, Services, platform_for};
use super::runs::{self, Decision, Execution, Run, RunStatus, Starter, StepStatus};
use super::validate;
use crate::audit::{Actor, Entry, Outcome as AuditOutcome};
use crate::runtime::Metering;
use crate::runtime::step::{
    Outcome, Phase, RunContext, StepError, StepInvocation, StepOutputs, Variable,
};
use crate::store::Batch;

/// Default cap on the outputs one run's steps may hold together.
pub const DEFAULT_MAX_RUN_OUTPUT_BYTES: usize = 64 * 1024 * 1024;
/// Bounds on a step's recheck delay.
const MIN_RECHECK: Duration = Duration::from_millis(100);
const MAX_RECHECK: Duration = Duration::from_secs(600);
/// A driver looks at its record at least this often (another host may have changed it).
const IDLE_LOOK: Duration = Duration::from_secs(1);

/// What one look at a run decided.
enum Next {
    /// The record changed: look again now.
    Again,
    /// Nothing to do before then.
    WaitUntil(OffsetDateTime),
    /// The run ended.
    Finished,
}

struct Inner {
    services: Services,
    definitions: Definitions,
    max_run_output_bytes: usize,
    running: Mutex<HashSet<String>>,
    wakers: Mutex<HashMap<String, Arc<Notify>>>,
}

/// The run engine.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> PipelineError {
    PipelineError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

impl Engine {
    pub fn new(services: Services, definitions: Definitions, max_run_output_bytes: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                services,
                definitions,
                max_run_output_bytes,
                running: Mutex::new(HashSet::new()),
                wakers: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn services(&self) -> &Services {
        &self.inner.services
    }

    pub fn definitions(&self) -> &Definitions {
        &self.inner.definitions
    }

    pub fn runs(&self) -> &runs::Runs {
        &self.inner.services.runs
    }

    /// The variables of a new run: given values checked against their declared types
    /// (text is accepted for numbers and booleans, as seed 001 sends everything as text),
    /// defaults filled in, required ones present.
    fn variables(
        pipeline: &Pipeline,
        given: Map<String, Value>,
    ) -> Result<Map<String, Value>, PipelineError> {
        let declared = &pipeline.definition.variables;
        if let Some(unknown) = given
            .keys()
            .find(|k| !declared.iter().any(|d| &d.name == *k))
        {
            return Err(invalid(
                format!("variables.{unknown}"),
                "the pipeline declares no such variable",
            ));
        }
        let mut out = Map::new();
        for var in declared {
            let field = format!("variables.{}", var.name);
            let value = match given.get(&var.name) {
                Some(Value::String(text)) if var.kind != super::model::VariableType::String => {
                    serde_json::from_str::<Value>(text).map_err(|_| {
                        invalid(&field, format!("must be a {:?}", var.kind).to_lowercase())
                    })?
                }
                Some(value) => value.clone(),
                None => match (&var.default, var.required) {
                    (Some(default), _) => default.clone(),
                    (None, true) => return Err(invalid(&field, "is required")),
                    (None, false) => continue,
                },
            };
            validate::check_value(&field, var.kind, &value)?;
            out.insert(var.name.clone(), value);
        }
        Ok(out)
    }

    /// Starts a run of the current version of `pipeline`.
    pub async fn start(
        &self,
        pipeline: &Pipeline,
        branch: String,
        variables: Map<String, Value>,
        starter: Starter,
    ) -> Result<Run, PipelineError> {
        if pipeline.deleted {
            return Err(PipelineError::NotFound(pipeline.id.clone()));
        }
        if branch.chars().count() > 255 {
            return Err(invalid("branch", "must be at most 255 characters"));
        }
        let variables = Self::variables(pipeline, variables)?;
        let number = self.runs().next_number(&pipeline.id)?;
        let run = Run::new(
            pipeline,
            uuid::Uuid::new_v4().to_string(),
            number,
            branch,
            variables,
            starter,
        );
        self.runs().create(&run).await?;
        self.kick(&run.id);
        Ok(run)
    }

    /// Asks a run in flight to stop; its running step is cancelled.
    pub async fn abort(&self, id: &str, who: &str) -> Result<Run, PipelineError> {
        let run = self
            .runs()
            .update(id, |run| {
                if run.status.is_terminal() || run.status == RunStatus::RollingBack {
                    return Err(PipelineError::Conflict(format!(
                        "run #{} is {:?}: only a run in flight can be aborted",
                        run.number, run.status
                    )));
                }
                run.abort_requested = true;
                run.message = format!("abort requested by {who}");
                Ok(())
            })
            .await?;
        self.kick(id);
        Ok(run)
    }

    /// Runs a failed or aborted run again from its first failed or aborted step; the
    /// steps that succeeded before it are kept.
    pub async fn retry(&self, id: &str, who: &str) -> Result<Run, PipelineError> {
        let run = self
            .runs()
            .update(id, |run| {
                if !matches!(run.status, RunStatus::Failed | RunStatus::Aborted) {
                    return Err(PipelineError::Conflict(format!(
                        "run #{} is {:?}: only a failed or aborted run can be retried",
                        run.number, run.status
                    )));
                }
                let Some(from) = run
                    .steps
                    .iter()
                    .position(|s| matches!(s.status, StepStatus::Failed | StepStatus::Aborted))
                else {
                    return Err(PipelineError::Conflict(
                        "no step failed or was aborted".into(),
                    ));
                };
                for step in &mut run.steps[from..] {
                    if !step.is_settled() {
                        step.status = StepStatus::Pending;
                        step.message = format!("retried by {who}");
                        step.next_check_at = None;
                        step.state = None;
                        step.finished_at = None;
                    }
                }
                run.abort_requested = false;
                run.finished_at = None;
                run.set_status(
                    RunStatus::Running,
                    format!("retried by {who} from step `{}`", run.steps[from].id),
                );
                Ok(())
            })
            .await?;
        self.kick(id);
        Ok(run)
    }

    /// Undoes a finished run: each succeeded step's `compensate`, last completed first.
    pub async fn rollback(&self, id: &str, who: &str) -> Result<Run, PipelineError> {
        let run = self
            .runs()
            .update(id, |run| {
                if !matches!(
                    run.status,
                    RunStatus::Succeeded
                        | RunStatus::Failed
                        | RunStatus::Aborted
                        | RunStatus::RollbackFailed
                ) {
                    return Err(PipelineError::Conflict(format!(
                        "run #{} is {:?}: only a finished run can be rolled back",
                        run.number, run.status
                    )));
                }
                if !run.steps.iter().any(|s| s.status == StepStatus::Succeeded) {
                    return Err(PipelineError::Conflict(format!(
                        "run #{} has no succeeded step to undo",
                        run.number
                    )));
                }
                run.finished_at = None;
                run.set_status(
                    RunStatus::RollingBack,
                    format!("rollback requested by {who}"),
                );
                Ok(())
            })
            .await?;
        self.kick(id);
        Ok(run)
    }

    /// Records `user`'s decision on a step that is running or waiting (an approval step
    /// reads it). The user who started the run cannot decide.
    pub async fn decide(
        &self,
        id: &str,
        step_id: &str,
        user: &Starter,
        approve: bool,
        comment: String,
    ) -> Result<Run, PipelineError> {
        if comment.chars().count() > 1000 {
            return Err(invalid("comment", "must be at most 1000 characters"));
        }
        let run = self
            .runs()
            .update(id, |run| {
                if run
                    .starter
                    .as_ref()
                    .is_some_and(|s| s.user_id == user.user_id)
                {
                    return Err(PipelineError::SelfApproval(format!(
                        "{} started run #{}, so someone else must decide on its steps",
                        user.username, run.number
                    )));
                }
                let terminal = run.status.is_terminal();
                let step = run
                    .step_mut(step_id)
                    .ok_or_else(|| PipelineError::StepNotFound(step_id.to_owned()))?;
                if terminal || !matches!(step.status, StepStatus::Running | StepStatus::Waiting) {
                    return Err(PipelineError::StepNotWaiting(format!(
                        "step `{step_id}` is {:?}: only a running step takes decisions",
                        step.status
                    )));
                }
                step.decisions.retain(|d| d.username != user.username);
                step.decisions.push(Decision {
                    username: user.username.clone(),
                    approve,
                    comment: comment.clone(),
                    at: now(),
                });
                step.next_check_at = Some(now());
                Ok(())
            })
            .await?;
        self.kick(id);
        Ok(run)
    }

    /// Drives every run the store lists as in flight (after a restart).
    pub fn resume(&self) -> Result<usize, PipelineError> {
        let active = self.runs().active()?;
        for id in &active {
            self.kick(id);
        }
        Ok(active.len())
    }

    /// Wakes the run's driver, starting one if this host has none.
    pub fn kick(&self, id: &str) {
        let waker = lock(&self.inner.wakers)
            .entry(id.to_owned())
            .or_insert_with(|| Arc::new(Notify::new()))
            .clone();
        waker.notify_one();
        if !lock(&self.inner.running).insert(id.to_owned()) {
            return;
        }
        let engine = self.clone();
        let id = id.to_owned();
        tokio::spawn(async move {
            if let Err(e) = engine.drive(&id, waker).await {
                tracing::error!(run = %id, error = %e, "pipeline run driver stopped");
            }
            lock(&engine.inner.running).remove(&id);
            lock(&engine.inner.wakers).remove(&id);
        });
    }

    async fn drive(&self, id: &str, waker: Arc<Notify>) -> Result<(), PipelineError> {
        loop {
            let (read, run) = self.runs().read(id)?;
            if run.status.is_terminal() {
                return Ok(());
            }
            let pipeline = self
                .inner
                .definitions
                .version(&run.pipeline, run.pipeline_version)?;
            match self.advance(read, run, &pipeline).await? {
                Next::Again => {}
                Next::Finished => return Ok(()),
                Next::WaitUntil(at) => {
                    let wait = (at - now()).max(time::Duration::ZERO);
                    let wait = Duration::try_from(wait).unwrap_or(IDLE_LOOK).min(IDLE_LOOK);
                    tokio::select! {
                        _ = waker.notified() => {}
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }

    /// Stores `run` over `read`; a lost race just looks again.
    async fn store(&self, read: &[u8], run: &mut Run, extra: Batch) -> Result<Next, PipelineError> {
        run.refresh();
        self.runs().save(read, run, extra).await?;
        Ok(Next::Again)
    }

    async fn advance(
        &self,
        read: Vec<u8>,
        mut run: Run,
        pipeline: &Pipeline,
    ) -> Result<Next, PipelineError> {
        if run.status == RunStatus::Queued {
            run.started_at = Some(now());
            run.set_status(RunStatus::Running, "");
            return self.store(&read, &mut run, Batch::new()).await;
        }
        if run.status == RunStatus::RollingBack {
            return self.compensate_next(read, run, pipeline).await;
        }
        if run.abort_requested {
            return self.abort_now(read, run, pipeline).await;
        }
        let current = run.steps.iter().position(|s| {
            !(s.is_settled()
                || (s.status == StepStatus::Failed
                    && step_def(pipeline, &s.id).is_some_and(|d| d.on_error == OnError::Continue)))
        });
        let Some(index) = current else {
            let failed = run
                .steps
                .iter()
                .filter(|s| s.status == StepStatus::Failed)
                .count();
            let message = if failed > 0 {
                format!("succeeded; {failed} step(s) failed with onError: continue")
            } else {
                String::new()
            };
            run.set_status(RunStatus::Succeeded, message);
            self.store(&read, &mut run, Batch::new()).await?;
            return Ok(Next::Finished);
        };
        let Some(def) = step_def(pipeline, &run.steps[index].id).cloned() else {
            run.set_status(
                RunStatus::Failed,
                format!("step `{}` is not in the pipeline", run.steps[index].id),
            );
            self.store(&read, &mut run, Batch::new()).await?;
            return Ok(Next::Finished);
        };
        let step = &mut run.steps[index];
        match step.status {
            StepStatus::Pending if !def.enabled => {
                step.status = StepStatus::Skipped;
                step.message = "disabled in the pipeline".into();
                self.store(&read, &mut run, Batch::new()).await
            }
            StepStatus::Pending => {
                step.attempt += 1;
                step.status = StepStatus::Running;
                step.calls = 0;
                step.state = None;
                step.next_check_at = None;
                step.attempt_started_at = Some(now());
                step.started_at.get_or_insert_with(now);
                step.message = format!("attempt {} started", step.attempt);
                run.set_status(RunStatus::Running, "");
                self.store(&read, &mut run, Batch::new()).await
            }
            StepStatus::Running | StepStatus::Waiting => {
                if let Some(at) = step.next_check_at
                    && at > now()
                {
                    return Ok(Next::WaitUntil(at));
                }
                let started = step.attempt_started_at.unwrap_or_else(now);
                let timeout = time::Duration::seconds(i64::from(def.timeout_secs));
                if now() - started > timeout {
                    return self.time_out(read, run, index, &def).await;
                }
                self.invoke(read, run, index, &def, Phase::Run).await
            }
            StepStatus::Failed => {
                let message = format!("step `{}` failed: {}", step.id, step.message);
                run.set_status(RunStatus::Failed, message);
                self.store(&read, &mut run, Batch::new()).await?;
                Ok(Next::Finished)
            }
            other => {
                let message = format!("step `{}` is {other:?}", step.id);
                run.set_status(RunStatus::Failed, message);
                self.store(&read, &mut run, Batch::new()).await?;
                Ok(Next::Finished)
            }
        }
    }

    /// An attempt ran past its timeout: cancel it, then fail it (retryable).
    async fn time_out(
        &self,
        read: Vec<u8>,
        run: Run,
        index: usize,
        def: &StepDef,
    ) -> Result<Next, PipelineError> {
        let step_id = run.steps[index].id.clone();
        let cancelled = self.cancel_step(&run, index, def).await;
        let reason = format!("attempt timed out after {} s", def.timeout_secs);
        let (read2, mut fresh) = self.runs().read(&run.id)?;
        if read2 != read {
            return Ok(Next::Again);
        }
        if let Some(i) = fresh.steps.iter().position(|s| s.id == step_id) {
            if let Some(execution) = cancelled {
                fresh.steps[i].push_execution(execution);
            }
            fail_attempt(&mut fresh, i, def, reason, true);
        }
        self.store(&read2, &mut fresh, Batch::new()).await
    }

    /// Cancels the step at `index` (best effort: the run ends anyway); the invocation is
    /// journaled like any other, and its execution returned for the caller to keep in the
    /// step with the transition the cancel belongs to.
    async fn cancel_step(&self, run: &Run, index: usize, def: &StepDef) -> Option<Execution> {
        let step = &run.steps[index];
        if def.kind == NATIVE_ECHO || step.attempt == 0 {
            return None;
        }
        let invocation = self.invocation_for(run, index, def, Phase::Cancel).ok()?;
        let executed = self
            .execute(run, index, def, Phase::Cancel, invocation.clone())
            .await;
        let (result, metering, recording, logs) = executed;
        let record = InvocationRecord {
            kind: def.kind.clone(),
            plugin: metering.plugin.clone(),
            inputs: RecordedInputs::of(&invocation),
            recording,
            outcome: OutcomeView::of(&result),
        };
        self.audit_execution(run, &record, &metering).await;
        let store = self.inner.services.store.clone();
        let batch = journal::keep(&store, Batch::new(), 1, &record, &logs);
        if let Ok(batch) = batch
            && let Ok(Ok(())) = store.apply(&batch)
        {
            let _ = store.commit().await;
        }
        Some(execution_of(&record, &metering, 1))
    }

    async fn abort_now(
        &self,
        read: Vec<u8>,
        mut run: Run,
        pipeline: &Pipeline,
    ) -> Result<Next, PipelineError> {
        let active = run
            .steps
            .iter()
            .position(|s| matches!(s.status, StepStatus::Running | StepStatus::Waiting));
        if let Some(index) = active {
            let cancelled = match step_def(pipeline, &run.steps[index].id).cloned() {
                Some(def) => self.cancel_step(&run, index, &def).await,
                None => None,
            };
            let (read2, fresh) = self.runs().read(&run.id)?;
            if read2 != read {
                return Ok(Next::Again);
            }
            run = fresh;
            let step = &mut run.steps[index];
            if let Some(execution) = cancelled {
                step.push_execution(execution);
            }
            step.status = StepStatus::Aborted;
            step.finished_at = Some(now());
            step.next_check_at = None;
            step.message = "aborted".into();
            let message = run.message.clone();
            run.set_status(RunStatus::Aborted, message);
            self.store(&read2, &mut run, Batch::new()).await?;
            return Ok(Next::Finished);
        }
        let message = run.message.clone();
        run.set_status(RunStatus::Aborted, message);
        self.store(&read, &mut run, Batch::new()).await?;
        Ok(Next::Finished)
    }

    async fn compensate_next(
        &self,
        read: Vec<u8>,
        mut run: Run,
        pipeline: &Pipeline,
    ) -> Result<Next, PipelineError> {
        let mut order: Vec<usize> = (0..run.steps.len())
            .filter(|&i| {
                matches!(
                    run.steps[i].status,
                    StepStatus::Succeeded | StepStatus::Compensating
                )
            })
            .collect();
        order.sort_by_key(|&i| std::cmp::Reverse(run.steps[i].completed_order.unwrap_or(0)));
        let index = order
            .iter()
            .copied()
            .find(|&i| run.steps[i].status == StepStatus::Compensating)
            .or_else(|| order.first().copied());
        let Some(index) = index else {
            let failed = run
                .steps
                .iter()
                .any(|s| s.status == StepStatus::CompensationFailed);
            if failed {
                run.set_status(RunStatus::RollbackFailed, "a step could not be undone");
            } else {
                run.set_status(RunStatus::RolledBack, "every succeeded step was undone");
            }
            self.store(&read, &mut run, Batch::new()).await?;
            return Ok(Next::Finished);
        };
        let def = step_def(pipeline, &run.steps[index].id).cloned();
        let step = &mut run.steps[index];
        let Some(def) = def else {
            step.status = StepStatus::CompensationFailed;
            step.message = "the step is not in the pipeline version the run used".into();
            return self.store(&read, &mut run, Batch::new()).await;
        };
        if step.status == StepStatus::Succeeded {
            step.status = StepStatus::Compensating;
            step.calls = 0;
            step.state = None;
            step.next_check_at = None;
            step.attempt_started_at = Some(now());
            step.message = "compensating".into();
            return self.store(&read, &mut run, Batch::new()).await;
        }
        if def.kind == NATIVE_ECHO {
            step.status = StepStatus::Compensated;
            step.message = "nothing to undo".into();
            return self.store(&read, &mut run, Batch::new()).await;
        }
        if let Some(at) = step.next_check_at
            && at > now()
        {
            return Ok(Next::WaitUntil(at));
        }
        self.invoke(read, run, index, &def, Phase::Compensate).await
    }

    /// The context and params of an invocation of the step at `index`.
    fn invocation_for(
        &self,
        run: &Run,
        index: usize,
        def: &StepDef,
        phase: Phase,
    ) -> Result<StepInvocation, params::Unresolved> {
        let runs = self.runs();
        let mut done: Vec<&runs::StepRun> = run
            .steps
            .iter()
            .filter(|s| s.completed_order.is_some() && s.id != def.id)
            .collect();
        done.sort_by_key(|s| s.completed_order);
        let previous: Vec<StepOutputs> = done
            .iter()
            .map(|s| StepOutputs {
                step_id: s.id.clone(),
                outputs: runs
                    .outputs(&run.id, &s.id)
                    .map(|v| v.to_string())
                    .unwrap_or_else(|_| "{}".into()),
            })
            .collect();
        let lookup = |id: &str| -> Option<Value> {
            previous
                .iter()
                .find(|p| p.step_id == id)
                .and_then(|p| serde_json::from_str(&p.outputs).ok())
        };
        let scope = Scope {
            run_id: &run.id,
            run_number: run.number,
            branch: &run.branch,
            variables: &run.variables,
            outputs: &lookup,
        };
        let params = params::substitute(&def.params, &scope)?;
        let step = &run.steps[index];
        let outputs = if phase == Phase::Compensate {
            runs.outputs(&run.id, &step.id)
                .map(|v| v.to_string())
                .unwrap_or_else(|_| "{}".into())
        } else {
            "{}".into()
        };
        Ok(StepInvocation {
            phase,
            context: RunContext {
                run_id: run.id.clone(),
                step_id: step.id.clone(),
                attempt: step.attempt.max(1),
                started_by: run.started_by.clone(),
                variables: run
                    .variables
                    .iter()
                    .map(|(name, v)| Variable {
                        name: name.clone(),
                        value: match v {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        },
                    })
                    .collect(),
                previous,
                state: step.state.clone(),
            },
            params: params.to_string(),
            outputs,
        })
    }

    /// Runs one invocation: the host's own `echo`, or the step plugin.
    async fn execute(
        &self,
        run: &Run,
        index: usize,
        def: &StepDef,
        phase: Phase,
        invocation: StepInvocation,
    ) -> (
        Result<Result<Outcome, StepError>, String>,
        Metering,
        crate::runtime::journal::Recording,
        Vec<crate::runtime::LogLine>,
    ) {
        if def.kind == NATIVE_ECHO {
            let started = std::time::Instant::now();
            let outcome = match phase {
                Phase::Run => Outcome::Done(invocation.params.clone()),
                _ => Outcome::Done("{}".into()),
            };
            let metering = Metering {
                plugin: "host".into(),
                duration_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
                ..Metering::default()
            };
            return (Ok(Ok(outcome)), metering, Default::default(), Vec::new());
        }
        let services = &self.inner.services;
        let starter = run.starter.clone().unwrap_or(Starter {
            user_id: String::new(),
            username: run.started_by.clone(),
        });
        let plugin = services
            .runtime
            .step_version(&def.kind)
            .unwrap_or_else(|| def.kind.clone());
        let platform = platform_for(
            services,
            InvocationRef {
                pipeline: run.pipeline.clone(),
                run: run.id.clone(),
                run_number: run.number,
                step: def.id.clone(),
                attempt: run.steps[index].attempt.max(1),
                phase,
                user_id: starter.user_id,
                username: starter.username,
                plugin: plugin.clone(),
            },
        );
        match services
            .runtime
            .execute_step(&def.kind, invocation, Some(platform), None)
            .await
        {
            Ok(executed) => (
                executed.result.map_err(|e| e.to_string()),
                executed.metering,
                executed.recording,
                executed.logs,
            ),
            Err(e) => (
                Err(e.to_string()),
                Metering {
                    plugin,
                    ..Metering::default()
                },
                Default::default(),
                Vec::new(),
            ),
        }
    }

    async fn audit_execution(&self, run: &Run, record: &InvocationRecord, metering: &Metering) {
        let (user_id, username) = run
            .starter
            .as_ref()
            .map(|s| (s.user_id.clone(), s.username.clone()))
            .unwrap_or_default();
        let outcome = match record.outcome {
            OutcomeView::Error { .. } => AuditOutcome::Error,
            _ => AuditOutcome::Ok,
        };
        let entry = Entry::new(
            Actor::user(&user_id, &username),
            "pipeline.step-execute",
            &format!(
                "{}/run:{}/step:{}",
                super::model::scope(&run.project, &run.pipeline),
                run.id,
                record.inputs.step_id
            ),
            outcome,
        );
        self.inner
            .services
            .audit
            .record(Entry {
                plugin: (metering.plugin != "host").then(|| metering.plugin.clone()),
                after: Some(journal::audit_view(record, metering)),
                ..entry
            })
            .await;
    }

    /// Invokes the step at `index` in `phase` and stores what it answered, with its
    /// journal, log lines and outputs, in one batch.
    async fn invoke(
        &self,
        read: Vec<u8>,
        mut run: Run,
        index: usize,
        def: &StepDef,
        phase: Phase,
    ) -> Result<Next, PipelineError> {
        let invocation = match self.invocation_for(&run, index, def, phase) {
            Ok(invocation) => invocation,
            Err(unresolved) => {
                let reason = format!("cannot start: {unresolved}");
                match phase {
                    Phase::Compensate => {
                        let step = &mut run.steps[index];
                        step.status = StepStatus::CompensationFailed;
                        step.message = reason;
                    }
                    _ => fail_attempt(&mut run, index, def, reason, false),
                }
                return self.store(&read, &mut run, Batch::new()).await;
            }
        };
        let (result, metering, recording, logs) = self
            .execute(&run, index, def, phase, invocation.clone())
            .await;
        let call = run.steps[index].calls + 1;
        let outcome = OutcomeView::of(&result);
        let record = InvocationRecord {
            kind: def.kind.clone(),
            plugin: metering.plugin.clone(),
            inputs: RecordedInputs::of(&invocation),
            recording,
            outcome: outcome.clone(),
        };
        self.audit_execution(&run, &record, &metering).await;
        let attempt = run.steps[index].attempt;
        let step_id = run.steps[index].id.clone();
        // Store the outcome on the freshest record: a decision or an abort request may
        // have landed while the plugin ran.
        let mut read = read;
        loop {
            let step = &run.steps[index];
            if step.id != step_id || step.attempt != attempt {
                return Ok(Next::Again);
            }
            let mut extra = journal::keep(
                &self.inner.services.store,
                Batch::new(),
                call,
                &record,
                &logs,
            )?;
            let step = &mut run.steps[index];
            step.calls = call;
            step.push_execution(execution_of(&record, &metering, call));
            match phase {
                Phase::Compensate => apply_compensation(&mut run, index, &result),
                _ => {
                    if let Some(outputs) = self.apply_run(&mut run, index, def, &result) {
                        extra = extra.put_raw(&runs::outputs_key(&run.id, &step_id), outputs);
                    }
                }
            }
            run.refresh();
            if self.runs().save(&read, &run, extra).await? {
                return Ok(Next::Again);
            }
            let (fresh_read, fresh) = self.runs().read(&run.id)?;
            read = fresh_read;
            run = fresh;
        }
    }

    /// Applies a `run` outcome to the step at `index`; answers the outputs to store.
    fn apply_run(
        &self,
        run: &mut Run,
        index: usize,
        def: &StepDef,
        result: &Result<Result<Outcome, StepError>, String>,
    ) -> Option<Vec<u8>> {
        match result {
            Ok(Ok(Outcome::Done(text))) => {
                let parsed: Option<Value> =
                    serde_json::from_str(text).ok().filter(Value::is_object);
                let Some(outputs) = parsed else {
                    fail_attempt(
                        run,
                        index,
                        def,
                        "the step's outputs are not a JSON object".into(),
                        false,
                    );
                    return None;
                };
                let bytes = outputs.to_string().into_bytes();
                let total = run.outputs_bytes + bytes.len();
                if total > self.inner.max_run_output_bytes {
                    let reason = format!(
                        "its outputs ({} bytes) would bring the run's outputs to {total} bytes, over the cap of {} bytes",
                        bytes.len(),
                        self.inner.max_run_output_bytes
                    );
                    fail_attempt(run, index, def, reason, false);
                    return None;
                }
                run.outputs_bytes = total;
                run.completed += 1;
                let order = run.completed;
                let step = &mut run.steps[index];
                step.status = StepStatus::Succeeded;
                step.finished_at = Some(now());
                step.next_check_at = None;
                step.state = None;
                step.progress = Some(100);
                step.completed_order = Some(order);
                step.outputs_bytes = Some(bytes.len());
                step.message = "done".into();
                run.status = RunStatus::Running;
                Some(bytes)
            }
            Ok(Ok(Outcome::Pending(p))) => {
                let delay = Duration::from_millis(u64::from(p.recheck_after_ms))
                    .clamp(MIN_RECHECK, MAX_RECHECK);
                let step = &mut run.steps[index];
                step.status = StepStatus::Waiting;
                step.state = Some(p.state.clone());
                step.progress = p.progress.map(|n| n.min(100));
                step.message = p.message.clone();
                step.next_check_at = Some(now() + delay);
                run.status = RunStatus::Waiting;
                None
            }
            Ok(Ok(Outcome::Failed(f))) => {
                fail_attempt(run, index, def, f.reason.clone(), f.retryable);
                None
            }
            Ok(Err(StepError::InvalidParams(_))) => {
                let reason = match OutcomeView::of(result) {
                    OutcomeView::Error { message } => message,
                    _ => "invalid params".into(),
                };
                fail_attempt(run, index, def, reason, false);
                None
            }
            Ok(Err(StepError::Internal(m))) => {
                fail_attempt(run, index, def, format!("the step failed: {m}"), true);
                None
            }
            Err(e) => {
                fail_attempt(run, index, def, e.clone(), true);
                None
            }
        }
    }
}

/// What a step keeps of one invocation: what ran, what it cost, how it ended.
fn execution_of(record: &InvocationRecord, metering: &Metering, call: u32) -> Execution {
    Execution {
        attempt: record.inputs.attempt,
        call,
        phase: record.inputs.phase.name().into(),
        plugin: metering.plugin.clone(),
        fuel: metering.fuel,
        peak_memory_bytes: metering.peak_memory_bytes,
        duration_us: metering.duration_us,
        outcome: record.outcome.label().into(),
        message: match &record.outcome {
            OutcomeView::Pending { message, .. } => message.clone(),
            OutcomeView::Failed { reason, .. } => reason.clone(),
            OutcomeView::Error { message } => message.clone(),
            OutcomeView::Done { .. } => String::new(),
        },
        host_calls: record.recording.calls.len(),
        at: now(),
    }
}

fn step_def<'a>(pipeline: &'a Pipeline, id: &str) -> Option<&'a StepDef> {
    pipeline.steps().map(|(_, s)| s).find(|s| s.id == id)
}

/// Ends the current attempt of the step at `index` as failed: the next attempt is set up
/// when the failure is retryable and retries are left, else the step fails (and the run,
/// unless the step may fail).
fn fail_attempt(run: &mut Run, index: usize, def: &StepDef, reason: String, retryable: bool) {
    let step = &mut run.steps[index];
    if retryable && step.attempt <= def.retries {
        let exponent = step.attempt.saturating_sub(1).min(16);
        let backoff = u64::from(def.retry_backoff_secs)
            .saturating_mul(1 << exponent)
            .min(3600);
        let at = now() + Duration::from_secs(backoff);
        step.message = format!(
            "attempt {} failed: {reason}; attempt {} in {backoff} s",
            step.attempt,
            step.attempt + 1
        );
        step.attempt += 1;
        step.status = StepStatus::Running;
        step.calls = 0;
        step.state = None;
        step.next_check_at = Some(at);
        step.attempt_started_at = Some(at);
        run.status = RunStatus::Running;
        return;
    }
    step.status = StepStatus::Failed;
    step.finished_at = Some(now());
    step.next_check_at = None;
    step.message = reason.clone();
    if def.on_error == OnError::Fail {
        let message = format!("step `{}` failed: {reason}", step.id);
        run.set_status(RunStatus::Failed, message);
    } else {
        run.status = RunStatus::Running;
    }
}

fn apply_compensation(
    run: &mut Run,
    index: usize,
    result: &Result<Result<Outcome, StepError>, String>,
) {
    let step = &mut run.steps[index];
    match result {
        Ok(Ok(Outcome::Done(_))) => {
            step.status = StepStatus::Compensated;
            step.message = "undone".into();
            step.next_check_at = None;
            step.state = None;
        }
        Ok(Ok(Outcome::Pending(p))) => {
            let delay = Duration::from_millis(u64::from(p.recheck_after_ms))
                .clamp(MIN_RECHECK, MAX_RECHECK);
            step.state = Some(p.state.clone());
            step.message = p.message.clone();
            step.progress = p.progress;
            step.next_check_at = Some(now() + delay);
        }
        other => {
            step.status = StepStatus::CompensationFailed;
            step.next_check_at = None;
            step.message = match OutcomeView::of(other) {
                OutcomeView::Failed { reason, .. } => reason,
                OutcomeView::Error { message } => message,
                _ => "compensation failed".into(),
            };
        }
    }
}

/// The JSON of a run's audit records.
pub fn audit_view(run: &Run) -> Value {
    json!({
        "id": run.id, "number": run.number, "pipeline": run.pipeline,
        "pipelineVersion": run.pipeline_version, "branch": run.branch,
        "status": run.status, "startedBy": run.started_by,
    })
}
