//! Pipelines (seed 001 §5.6, §5.12; seeds 003, 004): definitions per app and durable runs
//! whose steps are plugins of the step world.
//!
//! - `model.rs`: what a definition is (stages, steps, variables, triggers, mode). Pure.
//! - `validate.rs`: checking a definition, each step's params against its plugin's schema.
//! - `params.rs`: `${…}` references in params: finding and substituting them. Pure.
//! - `definitions.rs`: storing pipelines and every version of them; soft delete.
//! - `runs.rs`: run records under compare-and-swap, their outputs and the active list.
//! - `engine.rs`: moving runs forward — invoking steps, retries, timeouts, abort, retry
//!   from the failed step, compensation on rollback — resumed after a restart.
//! - `platform.rs`: the platform actions a step takes, authorized as the run's starter
//!   and made once per attempt.
//! - `journal.rs`: what each invocation recorded (inputs, host calls, outcome), its log
//!   lines, and replaying a recorded invocation.
//!
//! The step call itself is `runtime::step`; the WIT is `wit/plugin` (`step`) and
//! `wit/host` (`platform`).

pub mod definitions;
pub mod engine;
pub mod journal;
pub mod model;
pub mod params;
pub mod platform;
pub mod runs;
pub mod validate;

use crate::store::StoreError;

pub use definitions::Definitions;
pub use engine::Engine;
pub use model::{Pipeline, PipelineInput};
pub use runs::{Run, RunStatus, Runs, StepStatus};

/// The engine over this host's store, runtime and services.
pub fn engine(
    store: &crate::store::Store,
    runtime: &crate::runtime::Runtime,
    identity: &crate::auth::Identity,
    audit: &crate::audit::AuditLog,
    deployer: &crate::domain::rollout::Deployer,
    clusters: &crate::domain::clusters::Clusters,
    packages: &crate::domain::artifacts::packages::Packages,
    max_run_output_bytes: usize,
) -> Engine {
    let environments = crate::domain::environments::Environments::new(
        clusters.clone(),
        crate::domain::projects::Projects::new(store.clone()),
        crate::domain::gray::providers::Providers::new(runtime.clone()),
    );
    Engine::new(
        platform::Services {
            store: store.clone(),
            runtime: runtime.clone(),
            identity: identity.clone(),
            audit: audit.clone(),
            deployer: deployer.clone(),
            config_items: crate::domain::config_items::ConfigItems::new(environments),
            runs: Runs::new(store.clone()),
            packages: packages.clone(),
        },
        Definitions::new(store.clone()),
        max_run_output_bytes,
    )
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("no pipeline `{0}` in this app")]
    NotFound(String),
    #[error("no app `{0}` in this project")]
    AppNotFound(String),
    #[error("pipeline `{id}` has no version {version}")]
    VersionNotFound { id: String, version: u32 },
    #[error("no run `{0}` of this pipeline")]
    RunNotFound(String),
    #[error("no step `{0}` in this run")]
    StepNotFound(String),
    #[error("a pipeline named `{0}` exists in this app")]
    NameTaken(String),
    #[error("{0}")]
    Conflict(String),
    /// The user who started a run cannot decide on its steps.
    #[error("{0}")]
    SelfApproval(String),
    /// A decision for a step that is not waiting.
    #[error("{0}")]
    StepNotWaiting(String),
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}
