//! The `step` world: a pipeline step type.
//!
//! Implement [`Meta`] and [`Step`] on one type and call [`export_step!`](crate::export_step)
//! with it. The manifest says `world = "step"`; in WIT the world is
//! `wharf:plugin/pipeline-step` (a package cannot hold a world and an interface both named
//! `step`), and the component exports `wharf:plugin/meta@0.1.0` and
//! `wharf:plugin/step@0.1.0`. [`Violation`] is shared with [`gray_router`](crate::gray_router).
//!
//! [`Params`] reads a call's params field by field and reports every problem at once: the
//! host checks params against the step's schema when a pipeline is saved, but `${…}`
//! references are substituted at run time and a plugin must not trust its caller anyway.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use serde_json::{Map, Value};

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

/// A step's params being read: each getter takes one field out and notes what is wrong
/// with it; [`Params::finish`] turns the notes into one `InvalidParams` naming every field.
///
/// ```ignore
/// let mut params = Params::parse(&params_json, &["url", "retries"])?;
/// let url = params.string("url");
/// let retries = params.integer("retries", 0..=10, Some(0));
/// params.finish()?;
/// // every getter returned Some: finish succeeded only if nothing was wrong
/// ```
#[derive(Debug)]
pub struct Params {
    fields: Map<String, Value>,
    violations: Vec<Violation>,
}

impl Params {
    /// Parses `params_json`, which must be a JSON object of no fields but `known`.
    pub fn parse(params_json: &str, known: &[&str]) -> Result<Params, StepError> {
        let value: Value = serde_json::from_str(params_json)
            .map_err(|e| StepError::invalid_param("", format!("params are not valid JSON: {e}")))?;
        let Value::Object(fields) = value else {
            return Err(StepError::invalid_param("", "params must be a JSON object"));
        };
        let violations = fields
            .keys()
            .filter(|k| !known.contains(&k.as_str()))
            .map(|k| Violation::new(k.clone(), "is not a known parameter"))
            .collect();
        Ok(Params { fields, violations })
    }

    /// Notes a problem of `field` found by the step's own checks.
    pub fn violate(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.violations.push(Violation::new(field, message));
    }

    /// A required, non-empty string.
    pub fn string(&mut self, name: &str) -> Option<String> {
        let value = self.optional_string(name);
        if value.is_none() && !self.has(name) {
            self.violate(name, "is required");
        }
        value
    }

    /// An optional string; present means non-empty.
    pub fn optional_string(&mut self, name: &str) -> Option<String> {
        match self.fields.remove(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => {
                self.violate(name, "must not be empty");
                None
            }
            Some(Value::String(s)) => Some(s),
            Some(_) => {
                self.violate(name, "must be a string");
                None
            }
        }
    }

    /// An integer in `range`; `default` when absent (absent without a default is a
    /// violation: the field is required).
    pub fn integer(
        &mut self,
        name: &str,
        range: RangeInclusive<u64>,
        default: Option<u64>,
    ) -> Option<u64> {
        match self.fields.remove(name) {
            None | Some(Value::Null) => {
                if default.is_none() {
                    self.violate(name, "is required");
                }
                default
            }
            Some(value) => match value.as_u64().filter(|n| range.contains(n)) {
                Some(n) => Some(n),
                None => {
                    let message = format!(
                        "must be an integer from {} to {}",
                        range.start(),
                        range.end()
                    );
                    self.violate(name, message);
                    None
                }
            },
        }
    }

    /// A boolean; `default` when absent.
    pub fn boolean(&mut self, name: &str, default: bool) -> Option<bool> {
        match self.fields.remove(name) {
            None | Some(Value::Null) => Some(default),
            Some(Value::Bool(b)) => Some(b),
            Some(_) => {
                self.violate(name, "must be true or false");
                None
            }
        }
    }

    /// An optional list of strings; `Some(vec![])` when absent.
    pub fn strings(&mut self, name: &str) -> Option<Vec<String>> {
        match self.fields.remove(name) {
            None | Some(Value::Null) => Some(Vec::new()),
            Some(Value::Array(items)) => {
                let total = items.len();
                let mut out = Vec::with_capacity(total);
                for (i, item) in items.into_iter().enumerate() {
                    match item {
                        Value::String(s) => out.push(s),
                        _ => self.violate(format!("{name}[{i}]"), "must be a string"),
                    }
                }
                (out.len() == total).then_some(out)
            }
            Some(_) => {
                self.violate(name, "must be a list of strings");
                None
            }
        }
    }

    /// An optional object of string values; `Some` empty map when absent.
    pub fn string_map(&mut self, name: &str) -> Option<BTreeMap<String, String>> {
        match self.fields.remove(name) {
            None | Some(Value::Null) => Some(BTreeMap::new()),
            Some(Value::Object(entries)) => {
                let mut out = BTreeMap::new();
                let mut clean = true;
                for (key, value) in entries {
                    match value {
                        Value::String(s) => {
                            out.insert(key, s);
                        }
                        _ => {
                            self.violate(format!("{name}.{key}"), "must be a string");
                            clean = false;
                        }
                    }
                }
                clean.then_some(out)
            }
            Some(_) => {
                self.violate(name, "must be an object of strings");
                None
            }
        }
    }

    /// The remaining value of `name` as is (for fields a step checks itself).
    pub fn raw(&mut self, name: &str) -> Option<Value> {
        self.fields.remove(name).filter(|v| !v.is_null())
    }

    /// Whether `field` already has a complaint.
    pub fn has(&self, field: &str) -> bool {
        self.violations.iter().any(|v| v.field == field)
    }

    /// `Ok` when nothing was wrong, else every violation noted, in order.
    pub fn finish(self) -> Result<(), StepError> {
        if self.violations.is_empty() {
            Ok(())
        } else {
            Err(StepError::InvalidParams(self.violations))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fields_of(result: Result<(), StepError>) -> Vec<String> {
        match result {
            Err(StepError::InvalidParams(v)) => v.into_iter().map(|v| v.field).collect(),
            other => panic!("expected InvalidParams, got {other:?}"),
        }
    }

    #[test]
    fn params_collect_every_problem() {
        let json = json!({
            "name": "", "count": 11, "flag": "yes", "list": ["a", 1],
            "map": {"a": "x", "b": 2}, "extra": true,
        });
        let mut params = Params::parse(
            &json.to_string(),
            &["name", "count", "flag", "list", "map", "need"],
        )
        .expect("an object");
        assert_eq!(params.string("name"), None);
        assert_eq!(params.integer("count", 0..=10, Some(1)), None);
        assert_eq!(params.boolean("flag", false), None);
        assert_eq!(params.strings("list"), None);
        assert_eq!(params.string_map("map"), None);
        assert_eq!(params.string("need"), None);
        assert_eq!(
            fields_of(params.finish()),
            ["extra", "name", "count", "flag", "list[1]", "map.b", "need"]
        );
    }

    #[test]
    fn params_take_defaults_and_good_values() {
        let json = json!({ "name": "x", "list": ["a"], "map": {"k": "v"} });
        let mut params =
            Params::parse(&json.to_string(), &["name", "count", "flag", "list", "map"])
                .expect("an object");
        assert_eq!(params.string("name").as_deref(), Some("x"));
        assert_eq!(params.integer("count", 0..=10, Some(3)), Some(3));
        assert_eq!(params.boolean("flag", true), Some(true));
        assert_eq!(params.strings("list"), Some(vec!["a".to_string()]));
        assert_eq!(params.string_map("map").map(|m| m.len()), Some(1));
        assert_eq!(params.finish(), Ok(()));
        assert!(Params::parse("[1]", &[]).is_err());
        assert!(Params::parse("{", &[]).is_err());
    }
}
