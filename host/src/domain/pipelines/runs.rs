//! Run records (`v1/pipeline-runs/<id>`): a run's status and every step's, stored under
//! compare-and-swap so each transition is durable before it is acted on. A run in flight
//! is also listed under `pipeline-active/` (written in the same batch), which is what a
//! restarted host resumes; outputs live beside the record, one key per step, so a run's
//! record stays small whatever its steps produce.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::PipelineError;
use super::model::Pipeline;
use crate::store::{Batch, Store, StoreError};

/// Outputs larger than this are left out of a run's JSON (fetch them from `/outputs`).
pub const INLINE_OUTPUT_BYTES: usize = 64 * 1024;
/// Executions kept per step (a long wait re-checks many times; the newest are kept).
const MAX_EXECUTIONS: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum RunStatus {
    Queued,
    Running,
    /// The current step waits (a recheck, a change order, a user's decision).
    Waiting,
    Succeeded,
    Failed,
    Aborted,
    RollingBack,
    RolledBack,
    RollbackFailed,
}

impl RunStatus {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded
                | RunStatus::Failed
                | RunStatus::Aborted
                | RunStatus::RolledBack
                | RunStatus::RollbackFailed
        )
    }

    /// Seed 001's `statusCd`.
    pub fn code(self) -> u8 {
        match self {
            RunStatus::Queued => 11,
            RunStatus::Running | RunStatus::RollingBack => 12,
            RunStatus::Succeeded | RunStatus::RolledBack => 13,
            RunStatus::Failed | RunStatus::Aborted | RunStatus::RollbackFailed => 14,
            RunStatus::Waiting => 15,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum StepStatus {
    Pending,
    Running,
    Waiting,
    Succeeded,
    Failed,
    Skipped,
    Aborted,
    Compensating,
    Compensated,
    CompensationFailed,
}

impl StepStatus {
    pub fn code(self) -> u8 {
        match self {
            StepStatus::Pending => 11,
            StepStatus::Running | StepStatus::Compensating => 12,
            StepStatus::Succeeded | StepStatus::Skipped | StepStatus::Compensated => 13,
            StepStatus::Failed | StepStatus::Aborted | StepStatus::CompensationFailed => 14,
            StepStatus::Waiting => 15,
        }
    }
}

/// A user's decision on a step (an approval step reads them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    pub username: String,
    pub approve: bool,
    pub comment: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub at: OffsetDateTime,
}

/// One plugin invocation of a step, with what it cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    pub attempt: u32,
    /// Position of the invocation within its attempt and phase (1 for the first).
    pub call: u32,
    /// `run`, `cancel` or `compensate`.
    pub phase: String,
    /// `id@version`, or `host` for a native step.
    pub plugin: String,
    pub fuel: u64,
    pub peak_memory_bytes: u64,
    pub duration_us: u64,
    /// `done`, `pending`, `failed` or `error`.
    pub outcome: String,
    pub message: String,
    /// Host calls it made (kept for replay).
    pub host_calls: usize,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StepRun {
    pub id: String,
    pub stage: String,
    pub stage_index: usize,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: StepStatus,
    /// 0 until the first attempt starts.
    pub attempt: u32,
    pub message: String,
    pub progress: Option<u8>,
    /// The step's own state between `pending` invocations (opaque to the host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Invocations so far in the current attempt and phase.
    #[serde(default)]
    pub calls: u32,
    /// When the step is to be invoked next.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    pub next_check_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    pub attempt_started_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    pub started_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    pub finished_at: Option<OffsetDateTime>,
    /// Order in which it succeeded within the run (1 first); compensation goes backwards.
    pub completed_order: Option<u32>,
    /// Size of its outputs, once it succeeded.
    pub outputs_bytes: Option<usize>,
    /// Filled in views when the outputs are small (see [`INLINE_OUTPUT_BYTES`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub outputs: Option<Value>,
    #[serde(default)]
    pub decisions: Vec<Decision>,
    #[serde(default)]
    pub executions: Vec<Execution>,
}

impl StepRun {
    pub fn push_execution(&mut self, execution: Execution) {
        if self.executions.len() >= MAX_EXECUTIONS {
            self.executions.remove(0);
        }
        self.executions.push(execution);
    }

    /// Done with, as far as moving the run forward goes.
    pub fn is_settled(&self) -> bool {
        matches!(self.status, StepStatus::Succeeded | StepStatus::Skipped)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StageRun {
    pub name: String,
    pub category: String,
    pub status: StepStatus,
    pub status_cd: u8,
}

/// Who started the run: platform actions are authorized as them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Starter {
    pub user_id: String,
    pub username: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    pub id: String,
    pub number: u64,
    pub pipeline: String,
    pub pipeline_name: String,
    pub pipeline_version: u32,
    pub project: String,
    pub app: String,
    pub branch: String,
    #[schema(value_type = Object)]
    pub variables: serde_json::Map<String, Value>,
    pub started_by: String,
    /// Kept with the run: platform actions and self-approval checks need the user's id.
    #[serde(default)]
    pub starter: Option<Starter>,
    pub status: RunStatus,
    pub status_cd: u8,
    pub message: String,
    /// Set by an abort request; the engine stops the running step and ends the run.
    #[serde(default)]
    pub abort_requested: bool,
    /// How many steps succeeded so far (the next one gets `completedOrder` = this + 1).
    #[serde(default)]
    pub completed: u32,
    /// Bytes of outputs the run's steps hold.
    #[serde(default)]
    pub outputs_bytes: usize,
    pub stages: Vec<StageRun>,
    pub steps: Vec<StepRun>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub created_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    pub started_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>)]
    pub finished_at: Option<OffsetDateTime>,
}

impl Run {
    pub fn new(
        pipeline: &Pipeline,
        id: String,
        number: u64,
        branch: String,
        variables: serde_json::Map<String, Value>,
        starter: Starter,
    ) -> Run {
        let steps = pipeline
            .steps()
            .map(|(stage_index, step)| StepRun {
                id: step.id.clone(),
                stage: pipeline.definition.stages[stage_index].name.clone(),
                stage_index,
                kind: step.kind.clone(),
                status: StepStatus::Pending,
                attempt: 0,
                message: String::new(),
                progress: None,
                state: None,
                calls: 0,
                next_check_at: None,
                attempt_started_at: None,
                started_at: None,
                finished_at: None,
                completed_order: None,
                outputs_bytes: None,
                outputs: None,
                decisions: Vec::new(),
                executions: Vec::new(),
            })
            .collect();
        let mut run = Run {
            id,
            number,
            pipeline: pipeline.id.clone(),
            pipeline_name: pipeline.definition.name.clone(),
            pipeline_version: pipeline.version,
            project: pipeline.project.clone(),
            app: pipeline.app.clone(),
            branch,
            variables,
            started_by: starter.username.clone(),
            starter: Some(starter),
            status: RunStatus::Queued,
            status_cd: RunStatus::Queued.code(),
            message: String::new(),
            abort_requested: false,
            completed: 0,
            outputs_bytes: 0,
            stages: pipeline
                .definition
                .stages
                .iter()
                .map(|s| StageRun {
                    name: s.name.clone(),
                    category: s.category.clone(),
                    status: StepStatus::Pending,
                    status_cd: StepStatus::Pending.code(),
                })
                .collect(),
            steps,
            created_at: OffsetDateTime::now_utc(),
            started_at: None,
            finished_at: None,
        };
        run.refresh();
        run
    }

    pub fn set_status(&mut self, status: RunStatus, message: impl Into<String>) {
        self.status = status;
        self.message = message.into();
        if status.is_terminal() && self.finished_at.is_none() {
            self.finished_at = Some(OffsetDateTime::now_utc());
        }
        self.refresh();
    }

    /// Recomputes the derived fields: codes and each stage's status from its steps.
    pub fn refresh(&mut self) {
        self.status_cd = self.status.code();
        for (i, stage) in self.stages.iter_mut().enumerate() {
            let steps: Vec<&StepRun> = self.steps.iter().filter(|s| s.stage_index == i).collect();
            let any = |st: StepStatus| steps.iter().any(|s| s.status == st);
            stage.status = if any(StepStatus::CompensationFailed) {
                StepStatus::CompensationFailed
            } else if any(StepStatus::Compensating) {
                StepStatus::Compensating
            } else if any(StepStatus::Failed) {
                StepStatus::Failed
            } else if any(StepStatus::Aborted) {
                StepStatus::Aborted
            } else if any(StepStatus::Waiting) {
                StepStatus::Waiting
            } else if any(StepStatus::Running) {
                StepStatus::Running
            } else if !steps.is_empty() && steps.iter().all(|s| s.status == StepStatus::Compensated)
            {
                StepStatus::Compensated
            } else if steps
                .iter()
                .all(|s| s.is_settled() || s.status == StepStatus::Compensated)
            {
                StepStatus::Succeeded
            } else {
                StepStatus::Pending
            };
            stage.status_cd = stage.status.code();
        }
    }

    pub fn step(&self, id: &str) -> Option<&StepRun> {
        self.steps.iter().find(|s| s.id == id)
    }

    pub fn step_mut(&mut self, id: &str) -> Option<&mut StepRun> {
        self.steps.iter_mut().find(|s| s.id == id)
    }
}

pub fn key(id: &str) -> String {
    Store::key(&["pipeline-runs", id])
}

fn active_key(id: &str) -> String {
    Store::key(&["pipeline-active", id])
}

fn active_prefix() -> String {
    format!("{}/", Store::key(&["pipeline-active"]))
}

/// `pipeline-run-index/<pipeline>/<number>`: the runs of a pipeline, oldest first.
fn index_key(pipeline: &str, number: u64) -> String {
    Store::key(&["pipeline-run-index", pipeline, &format!("{number:012}")])
}

fn index_prefix(pipeline: &str) -> String {
    format!("{}/", Store::key(&["pipeline-run-index", pipeline]))
}

fn sequence_key(pipeline: &str) -> String {
    Store::key(&["pipeline-run-seq", pipeline])
}

pub fn outputs_key(run: &str, step: &str) -> String {
    Store::key(&["pipeline-outputs", run, step])
}

/// Run records over the host store.
#[derive(Clone)]
pub struct Runs {
    store: Store,
}

impl Runs {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The next run number of `pipeline` (compare-and-swap on its counter).
    pub fn next_number(&self, pipeline: &str) -> Result<u64, PipelineError> {
        let next = self
            .store
            .update_json::<u64, PipelineError>(&sequence_key(pipeline), |n| {
                Ok(Some(n.unwrap_or(0) + 1))
            })?;
        Ok(next.unwrap_or(1))
    }

    /// Stores a new run, its index entry and its place among the active runs, at once.
    pub async fn create(&self, run: &Run) -> Result<(), PipelineError> {
        let batch = Batch::new()
            .absent(&key(&run.id))
            .put_json(&key(&run.id), run)?
            .put_raw(
                &index_key(&run.pipeline, run.number),
                run.id.as_bytes().to_vec(),
            )
            .put_raw(&active_key(&run.id), Vec::new());
        self.store
            .apply(&batch)?
            .map_err(|_| PipelineError::Conflict(format!("run `{}` exists", run.id)))?;
        self.store.commit().await?;
        Ok(())
    }

    /// The stored bytes and the run.
    pub fn read(&self, id: &str) -> Result<(Vec<u8>, Run), PipelineError> {
        let k = key(id);
        let bytes = self
            .store
            .get_raw(&k)?
            .ok_or_else(|| PipelineError::RunNotFound(id.to_owned()))?;
        let run = serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
            key: k,
            reason: e.to_string(),
        })?;
        Ok((bytes, run))
    }

    pub fn get(&self, id: &str) -> Result<Run, PipelineError> {
        Ok(self.read(id)?.1)
    }

    /// Stores `run` if it is still as `read` (with `extra` writes in the same batch);
    /// false when it changed meanwhile. A terminal run leaves the active list.
    pub async fn save(&self, read: &[u8], run: &Run, extra: Batch) -> Result<bool, PipelineError> {
        let k = key(&run.id);
        let mut batch = Batch::new().equals(&k, read.to_vec()).put_json(&k, run)?;
        batch = if run.status.is_terminal() {
            batch.delete(&active_key(&run.id))
        } else {
            batch.put_raw(&active_key(&run.id), Vec::new())
        };
        match self.store.apply(&batch.merge(extra))? {
            Ok(()) => {
                self.store.commit().await?;
                Ok(true)
            }
            Err(_) => Ok(false),
        }
    }

    /// Reads, changes and stores a run under compare-and-swap; `change` runs once per
    /// attempt and may refuse.
    pub async fn update<F>(&self, id: &str, mut change: F) -> Result<Run, PipelineError>
    where
        F: FnMut(&mut Run) -> Result<(), PipelineError>,
    {
        loop {
            let (read, mut run) = self.read(id)?;
            change(&mut run)?;
            run.refresh();
            if self.save(&read, &run, Batch::new()).await? {
                return Ok(run);
            }
        }
    }

    /// Runs of `pipeline`, newest first.
    pub fn list(&self, pipeline: &str) -> Result<Vec<Run>, PipelineError> {
        let rows =
            self.store
                .backend()
                .scan(index_prefix(pipeline).as_bytes(), None, usize::MAX)?;
        let mut runs = Vec::with_capacity(rows.len());
        for (_, id) in rows.into_iter().rev() {
            if let Ok(run) = self.get(&String::from_utf8_lossy(&id)) {
                runs.push(run);
            }
        }
        Ok(runs)
    }

    /// Ids of the runs in flight.
    pub fn active(&self) -> Result<Vec<String>, PipelineError> {
        let prefix = active_prefix();
        let rows = self
            .store
            .backend()
            .scan(prefix.as_bytes(), None, usize::MAX)?;
        Ok(rows
            .into_iter()
            .map(|(k, _)| String::from_utf8_lossy(&k[prefix.len()..]).into_owned())
            .collect())
    }

    /// A step's outputs, parsed; `{}` before it produced any.
    pub fn outputs(&self, run: &str, step: &str) -> Result<Value, PipelineError> {
        let k = outputs_key(run, step);
        match self.store.get_raw(&k)? {
            None => Ok(Value::Object(Default::default())),
            Some(bytes) => Ok(
                serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                    key: k,
                    reason: e.to_string(),
                })?,
            ),
        }
    }

    /// `run` as the API shows it: small outputs inline.
    pub fn view(&self, mut run: Run) -> Run {
        for step in &mut run.steps {
            if step.outputs_bytes.is_some_and(|n| n <= INLINE_OUTPUT_BYTES) {
                step.outputs = self.outputs(&run.id, &step.id).ok();
            }
        }
        run
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::pipelines::model::PipelineInput;

    /// Everything the engine needs to go on after a restart survives the store's encoding:
    /// a field left out of it (as `starter` and `state` once were) leaves a resumed run
    /// acting as nobody, or a waiting step starting over.
    #[test]
    fn a_stored_run_reads_back_with_its_starter_and_the_steps_state() {
        let input: PipelineInput = serde_json::from_value(serde_json::json!({
            "name": "ship",
            "stages": [{"name": "deploy", "steps": [{"id": "deploy", "type": "echo"}]}],
        }))
        .expect("a pipeline input");
        let pipeline = Pipeline {
            id: "p".into(),
            project: "shop".into(),
            app: "cart".into(),
            version: 1,
            definition: input,
            deleted: false,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
            created_by: "ana".into(),
            updated_by: "ana".into(),
        };
        let starter = Starter {
            user_id: "u-1".into(),
            username: "ana".into(),
        };
        let mut run = Run::new(
            &pipeline,
            "r".into(),
            1,
            "main".into(),
            serde_json::Map::new(),
            starter,
        );
        run.steps[0].state = Some("change-order-42".into());
        let stored = serde_json::to_vec(&run).expect("encodes");
        let read: Run = serde_json::from_slice(&stored).expect("decodes");
        assert_eq!(read, run);
    }
}
