//! Checking a pipeline definition before it is saved: names and ids, limits, variable
//! types, `${…}` references (a step may only use steps before it), and each step's params
//! against the JSON Schema its plugin describes. Every complaint names its field
//! (`stages[0].steps[1].params.url`).

use std::collections::HashSet;

use serde_json::Value;

use super::PipelineError;
use super::model::{INPUT_FIELDS, NATIVE_ECHO, PipelineInput, VariableDef, VariableType};
use super::params::{self, Reference};
use crate::runtime::Runtime;

pub const MAX_STAGES: usize = 20;
pub const MAX_STEPS: usize = 100;
pub const MAX_VARIABLES: usize = 100;
/// Bytes of one step's params as written.
const MAX_PARAMS_BYTES: usize = 64 * 1024;

fn invalid(field: impl Into<String>, message: impl Into<String>) -> PipelineError {
    PipelineError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// Reads a request body as a definition, refusing fields a definition does not have.
pub fn parse_input(body: Value) -> Result<PipelineInput, PipelineError> {
    let Some(object) = body.as_object() else {
        return Err(invalid("body", "must be a JSON object"));
    };
    if let Some(unknown) = object.keys().find(|k| !INPUT_FIELDS.contains(&k.as_str())) {
        return Err(invalid(
            unknown.as_str(),
            format!("unknown field; a pipeline has {}", INPUT_FIELDS.join(", ")),
        ));
    }
    serde_path_to_error::deserialize(body).map_err(|e| {
        let message = e.inner().to_string();
        let field = crate::input::field_of(&e.path().to_string(), &message);
        invalid(field, message)
    })
}

fn check_id(field: &str, id: &str) -> Result<(), PipelineError> {
    let ok = !id.is_empty()
        && id.len() <= 63
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            field,
            "must be 1–63 characters of a-z, 0-9 and `-`",
        ))
    }
}

fn check_variable(field: &str, var: &VariableDef) -> Result<(), PipelineError> {
    if var.name.is_empty()
        || var.name.len() > 63
        || !var
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(invalid(
            format!("{field}.name"),
            "must be 1–63 characters of letters, digits, `_` and `-`",
        ));
    }
    if let Some(default) = &var.default {
        check_value(&format!("{field}.default"), var.kind, default)?;
    }
    Ok(())
}

/// Checks a variable's value against its type.
pub fn check_value(field: &str, kind: VariableType, value: &Value) -> Result<(), PipelineError> {
    let ok = match kind {
        VariableType::String => value.is_string(),
        VariableType::Number => value.is_number(),
        VariableType::Boolean => value.is_boolean(),
    };
    if ok {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("must be a {}", format!("{kind:?}").to_lowercase()),
        ))
    }
}

/// Checks `input` completely; step params go to their plugins' schemas.
pub async fn check(runtime: &Runtime, input: &PipelineInput) -> Result<(), PipelineError> {
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(invalid("name", "must be 1–100 characters"));
    }
    if input.description.chars().count() > 1000 {
        return Err(invalid("description", "must be at most 1000 characters"));
    }
    if input.stages.is_empty() || input.stages.len() > MAX_STAGES {
        return Err(invalid(
            "stages",
            format!("must hold 1–{MAX_STAGES} stages"),
        ));
    }
    if input.variables.len() > MAX_VARIABLES {
        return Err(invalid("variables", format!("at most {MAX_VARIABLES}")));
    }
    let mut variable_names = HashSet::new();
    for (i, var) in input.variables.iter().enumerate() {
        let field = format!("variables[{i}]");
        check_variable(&field, var)?;
        if !variable_names.insert(var.name.as_str()) {
            return Err(invalid(format!("{field}.name"), "is used twice"));
        }
    }
    let total: usize = input.stages.iter().map(|s| s.steps.len()).sum();
    if total > MAX_STEPS {
        return Err(invalid(
            "stages",
            format!("at most {MAX_STEPS} steps in all"),
        ));
    }
    let mut earlier: HashSet<&str> = HashSet::new();
    for (si, stage) in input.stages.iter().enumerate() {
        let sfield = format!("stages[{si}]");
        if stage.name.trim().is_empty() || stage.name.chars().count() > 100 {
            return Err(invalid(
                format!("{sfield}.name"),
                "must be 1–100 characters",
            ));
        }
        if stage.steps.is_empty() {
            return Err(invalid(
                format!("{sfield}.steps"),
                "must hold at least one step",
            ));
        }
        for (i, step) in stage.steps.iter().enumerate() {
            let field = format!("{sfield}.steps[{i}]");
            check_id(&format!("{field}.id"), &step.id)?;
            if earlier.contains(step.id.as_str()) {
                return Err(invalid(
                    format!("{field}.id"),
                    format!("`{}` is used twice", step.id),
                ));
            }
            if !step.params.is_object() {
                return Err(invalid(format!("{field}.params"), "must be a JSON object"));
            }
            if step.params.to_string().len() > MAX_PARAMS_BYTES {
                return Err(invalid(
                    format!("{field}.params"),
                    format!("at most {MAX_PARAMS_BYTES} bytes"),
                ));
            }
            if !(1..=86_400).contains(&step.timeout_secs) {
                return Err(invalid(format!("{field}.timeoutSecs"), "must be 1–86400"));
            }
            if step.retries > 10 {
                return Err(invalid(format!("{field}.retries"), "must be 0–10"));
            }
            if step.retry_backoff_secs > 3600 {
                return Err(invalid(
                    format!("{field}.retryBackoffSecs"),
                    "must be 0–3600",
                ));
            }
            for (path, reference) in params::references(&step.params) {
                let pfield = format!("{field}.params.{path}");
                match reference {
                    Err(bad) => return Err(invalid(pfield, bad.to_string())),
                    Ok(Reference::StepOutput { step: other, .. })
                        if !earlier.contains(other.as_str()) =>
                    {
                        return Err(invalid(
                            pfield,
                            format!("`{other}` is not a step before this one"),
                        ));
                    }
                    Ok(Reference::Variable(name)) if !variable_names.contains(name.as_str()) => {
                        return Err(invalid(pfield, format!("no variable `{name}` is declared")));
                    }
                    Ok(_) => {}
                }
            }
            if step.kind != NATIVE_ECHO {
                check_params(runtime, &field, &step.kind, &step.params).await?;
            }
            earlier.insert(step.id.as_str());
        }
    }
    Ok(())
}

/// Checks `params` against the schema step plugin `kind` describes. A string holding a
/// reference is only known at run time, so it satisfies any type there.
async fn check_params(
    runtime: &Runtime,
    field: &str,
    kind: &str,
    params: &Value,
) -> Result<(), PipelineError> {
    let descriptor = runtime.describe_step(kind).await.map_err(|e| {
        invalid(
            format!("{field}.type"),
            format!("`{kind}` is not a usable step type: {e}"),
        )
    })?;
    let schema: Value = serde_json::from_str(&descriptor.params_schema).map_err(|e| {
        invalid(
            format!("{field}.type"),
            format!("step type `{kind}` describes an unreadable params schema: {e}"),
        )
    })?;
    let validator = jsonschema::validator_for(&schema).map_err(|e| {
        invalid(
            format!("{field}.type"),
            format!("step type `{kind}` describes an invalid params schema: {e}"),
        )
    })?;
    let referenced: HashSet<String> = params::references(params)
        .into_iter()
        .map(|(path, _)| path)
        .collect();
    for error in validator.iter_errors(params) {
        let at = error.instance_path.to_string();
        let path = at
            .trim_start_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|segment| match segment.parse::<usize>() {
                Ok(i) => format!("[{i}]"),
                Err(_) => format!(".{segment}"),
            })
            .collect::<String>();
        let path = path.trim_start_matches('.').replace(".[", "[");
        if !path.is_empty() && referenced.contains(&path) {
            continue;
        }
        let pfield = if path.is_empty() {
            format!("{field}.params")
        } else {
            format!("{field}.params.{path}")
        };
        return Err(invalid(pfield, error.to_string()));
    }
    Ok(())
}
