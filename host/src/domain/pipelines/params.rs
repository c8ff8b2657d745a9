//! `${…}` references in step params: finding them (to check a definition) and
//! substituting them when a step runs. `${steps.<id>.outputs.<name>}`, `${vars.<name>}`,
//! `${run.id}`, `${run.number}`, `${run.branch}`. A string that is one reference and
//! nothing else takes the referenced value as it is (a number stays a number, an object an
//! object); inside a longer string the value is written as text.

use serde_json::{Map, Value};

/// What a reference names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    StepOutput { step: String, output: String },
    Variable(String),
    Run(String),
}

/// A reference that is not one of the forms above.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`${{{0}}}` is not a reference: use steps.<id>.outputs.<name>, vars.<name> or run.id|number|branch"
)]
pub struct BadReference(pub String);

fn parse(inner: &str) -> Result<Reference, BadReference> {
    let bad = || BadReference(inner.to_owned());
    let parts: Vec<&str> = inner.trim().split('.').collect();
    match parts.as_slice() {
        ["steps", step, "outputs", output] if !step.is_empty() && !output.is_empty() => {
            Ok(Reference::StepOutput {
                step: (*step).to_owned(),
                output: (*output).to_owned(),
            })
        }
        ["vars", name] if !name.is_empty() => Ok(Reference::Variable((*name).to_owned())),
        ["run", field] if matches!(*field, "id" | "number" | "branch") => {
            Ok(Reference::Run((*field).to_owned()))
        }
        _ => Err(bad()),
    }
}

/// The pieces of a string: text and references, in order.
enum Piece<'a> {
    Text(&'a str),
    Ref(&'a str),
}

fn pieces(text: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let Some(len) = rest[start + 2..].find('}') else {
            break;
        };
        if start > 0 {
            out.push(Piece::Text(&rest[..start]));
        }
        out.push(Piece::Ref(&rest[start + 2..start + 2 + len]));
        rest = &rest[start + 3 + len..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    out
}

/// Every reference in `params`, with the JSON path of the string holding it.
pub fn references(params: &Value) -> Vec<(String, Result<Reference, BadReference>)> {
    let mut found = Vec::new();
    walk(params, String::new(), &mut |path, text| {
        for piece in pieces(text) {
            if let Piece::Ref(inner) = piece {
                found.push((path.to_owned(), parse(inner)));
            }
        }
    });
    found
}

fn walk(value: &Value, path: String, visit: &mut dyn FnMut(&str, &str)) {
    match value {
        Value::String(text) => visit(&path, text),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, format!("{path}[{i}]"), visit);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                let next = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                walk(v, next, visit);
            }
        }
        _ => {}
    }
}

/// What references resolve against when a step runs.
pub struct Scope<'a> {
    pub run_id: &'a str,
    pub run_number: u64,
    pub branch: &'a str,
    pub variables: &'a Map<String, Value>,
    /// Outputs of the steps that finished, by step id.
    pub outputs: &'a dyn Fn(&str) -> Option<Value>,
}

/// Why a reference could not be resolved at run time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("params.{path}: {message}")]
pub struct Unresolved {
    pub path: String,
    pub message: String,
}

impl Scope<'_> {
    fn resolve(&self, reference: &Reference) -> Result<Value, String> {
        match reference {
            Reference::Run(field) => Ok(match field.as_str() {
                "id" => Value::from(self.run_id),
                "number" => Value::from(self.run_number),
                _ => Value::from(self.branch),
            }),
            Reference::Variable(name) => self
                .variables
                .get(name)
                .cloned()
                .ok_or_else(|| format!("variable `{name}` has no value in this run")),
            Reference::StepOutput { step, output } => {
                let outputs = (self.outputs)(step)
                    .ok_or_else(|| format!("step `{step}` has not finished in this run"))?;
                outputs
                    .get(output)
                    .cloned()
                    .ok_or_else(|| format!("step `{step}` produced no output `{output}`"))
            }
        }
    }
}

/// `params` with every reference replaced.
pub fn substitute(params: &Value, scope: &Scope<'_>) -> Result<Value, Unresolved> {
    substitute_at(params, String::new(), scope)
}

fn substitute_at(value: &Value, path: String, scope: &Scope<'_>) -> Result<Value, Unresolved> {
    let unresolved = |message: String| Unresolved {
        path: path.clone(),
        message,
    };
    Ok(match value {
        Value::String(text) => {
            let parts = pieces(text);
            if let [Piece::Ref(inner)] = parts.as_slice() {
                let reference = parse(inner).map_err(|e| unresolved(e.to_string()))?;
                return scope.resolve(&reference).map_err(unresolved);
            }
            let mut out = String::with_capacity(text.len());
            for part in parts {
                match part {
                    Piece::Text(t) => out.push_str(t),
                    Piece::Ref(inner) => {
                        let reference = parse(inner).map_err(|e| unresolved(e.to_string()))?;
                        match scope.resolve(&reference).map_err(unresolved)? {
                            Value::String(s) => out.push_str(&s),
                            other => out.push_str(&other.to_string()),
                        }
                    }
                }
            }
            Value::String(out)
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| substitute_at(item, format!("{path}[{i}]"), scope))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let next = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    Ok((k.clone(), substitute_at(v, next, scope)?))
                })
                .collect::<Result<_, Unresolved>>()?,
        ),
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_whole_reference_keeps_its_type_and_a_partial_one_becomes_text() {
        let vars = json!({"tag": "1.2", "n": 3}).as_object().cloned().unwrap();
        let outputs =
            |step: &str| (step == "build").then(|| json!({"image": "r/app:1.2", "size": 7}));
        let scope = Scope {
            run_id: "r1",
            run_number: 4,
            branch: "main",
            variables: &vars,
            outputs: &outputs,
        };
        let params = json!({
            "image": "${steps.build.outputs.image}",
            "size": "${steps.build.outputs.size}",
            "label": "v${vars.tag}-#${run.number}-${vars.n}",
            "list": ["${run.branch}"],
        });
        assert_eq!(
            substitute(&params, &scope).unwrap(),
            json!({"image": "r/app:1.2", "size": 7, "label": "v1.2-#4-3", "list": ["main"]})
        );
        let missing =
            substitute(&json!({"a": {"b": "${steps.test.outputs.x}"}}), &scope).unwrap_err();
        assert_eq!(missing.path, "a.b");
        assert!(missing.message.contains("`test` has not finished"));
    }

    #[test]
    fn references_are_found_with_their_paths_and_bad_ones_named() {
        let found = references(&json!({"x": ["${vars.a}", "${steps.b.outputs.c} ${nope}"]}));
        assert_eq!(found.len(), 3);
        assert_eq!(
            found[0],
            ("x[0]".into(), Ok(Reference::Variable("a".into())))
        );
        assert_eq!(found[2].0, "x[1]");
        assert!(found[2].1.is_err());
    }
}
