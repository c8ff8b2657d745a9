//! The `step` world: a pipeline step type.
//!
//! Implement [`Meta`] and [`Step`] on one type and call [`export_step!`](crate::export_step)
//! with it. The manifest says `world = "step"`; in WIT the world is
//! `wharf:plugin/pipeline-step` (a package cannot hold a world and an interface both named
//! `step`), and the component exports `wharf:plugin/meta@0.1.0` and
//! `wharf:plugin/step@0.1.0`. [`Violation`] is shared with [`gray_router`](crate::gray_router).

use serde_json::Value;

/// Bindings for the world's own export. `meta`, the other half of the world, is generated
/// once in [`crate::meta`]: wit-bindgen defines a crate-root macro per exported interface,
/// so generating `meta` in every world module would collide.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit/plugin",
        inline: "package wharf:sdk-pipeline-step; world pipeline-step-exports { export wharf:plugin/step@0.1.0; }",
        world: "wharf:sdk-pipeline-step/pipeline-step-exports",
        with: {
            "wharf:plugin/types@0.1.0": generate,
        },
        additional_derives: [PartialEq, Eq],
        pub_export_macro: true,
        export_macro_name: "__export_world",
        default_bindings_module: "$crate::step::bindings",
        type_section_suffix: "wharf-sdk",
    });
}

pub use crate::meta::{Meta, PluginInfo};
pub use bindings::exports::wharf::plugin::step::{
    Descriptor, Failure, Outcome, OutputSpec, PendingInfo, RunContext, StepError, StepOutputs,
    Variable,
};
pub use bindings::wharf::plugin::types::Violation;

/// A pipeline step type. `cancel` and `compensate` have defaults for steps with nothing to
/// stop or undo; a step that overrides `compensate` says so in `Descriptor::can_compensate`.
pub trait Step {
    fn describe() -> Descriptor;
    fn run(context: RunContext, params_json: String) -> Result<Outcome, StepError>;
    fn cancel(_context: RunContext, _params_json: String) -> Result<(), StepError> {
        Ok(())
    }
    fn compensate(
        _context: RunContext,
        _params_json: String,
        _outputs_json: String,
    ) -> Result<Outcome, StepError> {
        Ok(Outcome::Done("{}".to_string()))
    }
}

impl<T: Step> bindings::exports::wharf::plugin::step::Guest for T {
    fn describe() -> Descriptor {
        T::describe()
    }
    fn run(context: RunContext, params_json: String) -> Result<Outcome, StepError> {
        T::run(context, params_json)
    }
    fn cancel(context: RunContext, params_json: String) -> Result<(), StepError> {
        T::cancel(context, params_json)
    }
    fn compensate(
        context: RunContext,
        params_json: String,
        outputs_json: String,
    ) -> Result<Outcome, StepError> {
        T::compensate(context, params_json, outputs_json)
    }
}

impl Violation {
    /// A complaint about `field` (a path such as `rules[0].weight`).
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Violation {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl Outcome {
    /// `Done` with `outputs` (a JSON object) as its text.
    pub fn done_json(outputs: &Value) -> Self {
        Outcome::Done(outputs.to_string())
    }

    /// `Failed` for a reason trying again will not change.
    pub fn failed(reason: impl Into<String>) -> Self {
        Outcome::Failed(Failure {
            reason: reason.into(),
            retryable: false,
        })
    }

    /// `Failed` for a reason that may pass (the host retries up to the step's `retries`).
    pub fn failed_retryable(reason: impl Into<String>) -> Self {
        Outcome::Failed(Failure {
            reason: reason.into(),
            retryable: true,
        })
    }

    /// `Pending`: call again after `recheck_after_ms` with `state`.
    pub fn pending(
        state: impl Into<String>,
        recheck_after_ms: u32,
        message: impl Into<String>,
    ) -> Self {
        Outcome::Pending(PendingInfo {
            state: state.into(),
            recheck_after_ms,
            progress: None,
            message: message.into(),
        })
    }
}

impl RunContext {
    /// The outputs of the earlier step `step_id`, parsed, if it finished.
    pub fn outputs_of(&self, step_id: &str) -> Option<Value> {
        self.previous
            .iter()
            .find(|p| p.step_id == step_id)
            .and_then(|p| serde_json::from_str(&p.outputs).ok())
    }

    /// The run variable `name`, if set.
    pub fn variable(&self, name: &str) -> Option<&str> {
        self.variables
            .iter()
            .find(|v| v.name == name)
            .map(|v| v.value.as_str())
    }
}

impl StepError {
    /// `InvalidParams` with a single violation.
    pub fn invalid_param(field: impl Into<String>, message: impl Into<String>) -> Self {
        StepError::InvalidParams(vec![Violation::new(field, message)])
    }
}

/// Exports `$ty` (which implements [`Meta`] and [`Step`]) as the plugin's step world.
///
/// ```ignore
/// struct Hello;
/// impl wharf_sdk::step::Meta for Hello { /* ... */ }
/// impl wharf_sdk::step::Step for Hello { /* ... */ }
/// wharf_sdk::export_step!(Hello);
/// ```
#[macro_export]
macro_rules! export_step {
    ($ty:ident) => {
        // Exports exist only in the component. Native builds (the plugin's tests) skip them:
        // export names like `wharf:plugin/meta@0.1.0#info` are not valid native symbols.
        #[cfg(target_arch = "wasm32")]
        $crate::__export_meta!($ty);
        #[cfg(target_arch = "wasm32")]
        $crate::step::bindings::__export_world!($ty);
        // Still check natively that the type implements the world, so `cargo test` catches it.
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            const fn implements_world<T: $crate::meta::Meta + $crate::step::Step>() {}
            implements_world::<$ty>()
        };
    };
}
