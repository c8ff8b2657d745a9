//! `hello`: the example Wharf plugin, a pipeline step that greets someone.
//!
//! It shows every piece a plugin needs: `meta` (what the plugin is; must match
//! `wharf-plugin.toml`), `describe` (the step's params schema), `run` (validate params,
//! read config, use kv, log, return an outcome) and native tests under
//! `wharf_sdk::harness`. Build it with
//! `cargo build --release --target wasm32-wasip2 -p wharf-plugin-hello`.

use serde_json::{Value, json};
use wharf_sdk::kv;
use wharf_sdk::step::{Descriptor, Meta, Outcome, PluginInfo, RunContext, Step, StepError};

/// The kv key holding how many greetings this plugin has given.
const COUNTER_KEY: &str = "greetings";
const DESCRIPTION: &str = "Greets someone by name and counts the greetings.";
const PARAMS_SCHEMA: &str = r#"{"type":"object","properties":{"name":{"type":"string","minLength":1,"maxLength":64}},"required":["name"],"additionalProperties":false}"#;

/// The plugin. It has no state of its own: everything durable lives in kv.
pub struct Hello;

/// What `meta.info()` returns. A plain function so native code can call it too.
pub fn info() -> PluginInfo {
    PluginInfo {
        id: "hello".to_string(),
        // The crate version is the manifest version, so they cannot drift apart.
        version: env!("CARGO_PKG_VERSION").to_string(),
        description: DESCRIPTION.to_string(),
        world: "step".to_string(),
    }
}

/// The greeting text, e.g. `greet("Hello", "Ada") == "Hello, Ada!"`.
pub fn greet(greeting: &str, name: &str) -> String {
    format!("{greeting}, {name}!")
}

impl Meta for Hello {
    fn info() -> PluginInfo {
        info()
    }
}

impl Step for Hello {
    fn describe() -> Descriptor {
        Descriptor {
            kind: "hello".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            description: DESCRIPTION.to_string(),
            params_schema: PARAMS_SCHEMA.to_string(),
            outputs: Vec::new(),
            can_compensate: false,
        }
    }

    fn run(_context: RunContext, params_json: String) -> Result<Outcome, StepError> {
        let name = parse_name(&params_json)?;
        // An admin may set `greeting` in the plugin's config; anything else means the default.
        let greeting: String =
            wharf_sdk::config::get("greeting").unwrap_or_else(|| "Hello".to_string());

        // One kv round trip: read the counter, write it back incremented. Concurrent runs
        // can lose an increment; `kv::compare_and_swap` would make it exact.
        let count = kv::get_json::<u64>(COUNTER_KEY)
            .map_err(|e| StepError::Internal(e.to_string()))?
            .unwrap_or(0)
            + 1;
        kv::set_json(COUNTER_KEY, &count).map_err(|e| StepError::Internal(e.to_string()))?;

        let message = greet(&greeting, &name);
        wharf_sdk::info!("{message} (greeting #{count})");
        Ok(Outcome::done_json(
            &json!({ "message": message, "count": count }),
        ))
    }
}

/// Checks the params against the schema in `describe`, naming the offending field.
fn parse_name(params_json: &str) -> Result<String, StepError> {
    let params: Value = serde_json::from_str(params_json)
        .map_err(|e| StepError::invalid_param("", format!("params are not valid JSON: {e}")))?;
    let Value::Object(mut fields) = params else {
        return Err(StepError::invalid_param("", "params must be a JSON object"));
    };
    let name = match fields.remove("name") {
        Some(Value::String(name)) => name,
        Some(_) => return Err(StepError::invalid_param("name", "must be a string")),
        None => return Err(StepError::invalid_param("name", "is required")),
    };
    if !(1..=64).contains(&name.chars().count()) {
        return Err(StepError::invalid_param(
            "name",
            "must be 1 to 64 characters",
        ));
    }
    if let Some(unknown) = fields.keys().next() {
        return Err(StepError::invalid_param(
            unknown.clone(),
            "is not a known parameter",
        ));
    }
    Ok(name)
}

wharf_sdk::export_step!(Hello);

#[cfg(test)]
mod tests {
    use serde_json::json;
    use wharf_sdk::harness::{self, Host};
    use wharf_sdk::log::Level;
    use wharf_sdk::step::Violation;

    use super::*;

    fn run(host: &Host, params: Value) -> Result<Outcome, StepError> {
        host.run(|| Hello::run(harness::run_context(), params.to_string()))
    }

    fn done(outcome: Result<Outcome, StepError>) -> Value {
        match outcome {
            Ok(Outcome::Done(outputs)) => serde_json::from_str(&outputs).expect("outputs are JSON"),
            other => panic!("expected Done, got {other:?}"),
        }
    }

    #[test]
    fn greets_with_default_greeting() {
        let host = Host::new();
        let outputs = done(run(&host, json!({ "name": "Ada" })));
        assert_eq!(outputs, json!({ "message": "Hello, Ada!", "count": 1 }));
    }

    #[test]
    fn uses_greeting_from_config() {
        let host = Host::new().config(json!({ "greeting": "Ahoy" }));
        let outputs = done(run(&host, json!({ "name": "Ada" })));
        assert_eq!(outputs["message"], "Ahoy, Ada!");
    }

    #[test]
    fn counter_increments_across_runs() {
        let host = Host::new();
        assert_eq!(done(run(&host, json!({ "name": "Ada" })))["count"], 1);
        assert_eq!(done(run(&host, json!({ "name": "Grace" })))["count"], 2);
        assert_eq!(host.kv_get_json::<u64>(COUNTER_KEY), Some(2));
    }

    #[test]
    fn logs_the_greeting() {
        let host = Host::new();
        done(run(&host, json!({ "name": "Ada" })));
        let logs = host.logs();
        assert_eq!(logs.len(), 1);
        assert_eq!(logs[0].level, Level::Info);
        assert_eq!(logs[0].message, "Hello, Ada! (greeting #1)");
    }

    #[test]
    fn invalid_name_is_a_violation_on_name() {
        let host = Host::new();
        for params in [
            json!({}),
            json!({ "name": 7 }),
            json!({ "name": "" }),
            json!({ "name": "x".repeat(65) }),
        ] {
            match run(&host, params.clone()) {
                Err(StepError::InvalidParams(violations)) => {
                    assert!(
                        matches!(violations.as_slice(), [Violation { field, .. }] if field == "name"),
                        "{params}: {violations:?}"
                    );
                }
                other => panic!("{params}: expected InvalidParams, got {other:?}"),
            }
        }
        // Rejected params touch nothing.
        assert_eq!(host.kv_get(COUNTER_KEY), None);
    }

    #[test]
    fn unknown_params_are_rejected() {
        let host = Host::new();
        let result = run(&host, json!({ "name": "Ada", "loud": true }));
        assert_eq!(
            result,
            Err(StepError::invalid_param("loud", "is not a known parameter"))
        );
    }

    #[test]
    fn kv_failure_is_internal_error() {
        let host = Host::new().fail_kv(wharf_sdk::HostError::Unavailable("store offline".into()));
        let result = run(&host, json!({ "name": "Ada" }));
        assert_eq!(
            result,
            Err(StepError::Internal("kv: unavailable: store offline".into()))
        );
    }

    #[test]
    fn describe_schema_is_json() {
        let schema: Value =
            serde_json::from_str(&Hello::describe().params_schema).expect("schema is JSON");
        assert_eq!(schema["required"], json!(["name"]));
    }

    #[test]
    fn manifest_matches_info() {
        // CARGO_MANIFEST_DIR, not a relative path: hello-v2 compiles this file with its own manifest.
        let manifest = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/wharf-plugin.toml"));
        harness::assert_manifest_matches(manifest, &info());
    }
}
