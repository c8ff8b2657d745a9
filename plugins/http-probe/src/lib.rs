//! `http-probe`: a pipeline step that GETs a URL and checks the response status.
//!
//! Params: `{"url": "http(s)://…", "expectStatus": 100-599 (default 200)}`. A matching
//! status finishes the step with `{"status", "bytes"}`; any other status, a transport
//! error or a URL the host refuses (not on the plugin's allow-list) fails the step with a
//! message the user can act on, rather than an internal error.

use serde_json::{Map, Value, json};
use wharf_sdk::http::{self, HttpError};
use wharf_sdk::step::{
    Descriptor, Meta, Outcome, PluginInfo, RunContext, Step, StepError, Violation,
};

const DESCRIPTION: &str = "GETs a URL and checks the response status.";
const PARAMS_SCHEMA: &str = r#"{"type":"object","properties":{"url":{"type":"string","pattern":"^https?://"},"expectStatus":{"type":"integer","minimum":100,"maximum":599,"default":200}},"required":["url"],"additionalProperties":false}"#;
const DEFAULT_EXPECT_STATUS: u16 = 200;

pub struct HttpProbe;

/// What `meta.info()` returns.
pub fn info() -> PluginInfo {
    PluginInfo {
        id: "http-probe".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        description: DESCRIPTION.to_string(),
        world: "step".to_string(),
    }
}

impl Meta for HttpProbe {
    fn info() -> PluginInfo {
        info()
    }
}

/// Validated params.
#[derive(Debug, PartialEq, Eq)]
struct Params {
    url: String,
    expect_status: u16,
}

impl Step for HttpProbe {
    fn describe() -> Descriptor {
        Descriptor {
            kind: "http-probe".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            description: DESCRIPTION.to_string(),
            params_schema: PARAMS_SCHEMA.to_string(),
            outputs: Vec::new(),
            can_compensate: false,
        }
    }

    fn run(_context: RunContext, params_json: String) -> Result<Outcome, StepError> {
        let params = parse_params(&params_json)?;
        let response = match http::get(&params.url) {
            Ok(response) => response,
            Err(HttpError::Denied(why)) => {
                wharf_sdk::warn!("GET {} refused by the host: {why}", params.url);
                return Ok(Outcome::failed(format!(
                    "request denied: {} ({why}); an admin must add it to the plugin's http allow-list",
                    params.url
                )));
            }
            // The URL passed our checks but not the host's: still the user's input to fix.
            Err(HttpError::InvalidRequest(why)) => {
                return Err(StepError::invalid_param("url", why));
            }
            Err(HttpError::Transport(why)) => {
                wharf_sdk::warn!("GET {} failed: {why}", params.url);
                return Ok(Outcome::failed(format!(
                    "request to {} failed: {why}",
                    params.url
                )));
            }
        };

        wharf_sdk::info!("GET {} -> {}", params.url, response.status);
        if response.status == params.expect_status {
            Ok(Outcome::done_json(
                &json!({ "status": response.status, "bytes": response.body.len() }),
            ))
        } else {
            Ok(Outcome::failed(format!(
                "expected {}, got {}",
                params.expect_status, response.status
            )))
        }
    }
}

fn parse_params(params_json: &str) -> Result<Params, StepError> {
    let params: Value = serde_json::from_str(params_json)
        .map_err(|e| StepError::invalid_param("", format!("params are not valid JSON: {e}")))?;
    let Value::Object(fields) = params else {
        return Err(StepError::invalid_param("", "params must be a JSON object"));
    };
    // Report every problem at once so the user fixes the pipeline in one go.
    let mut violations = Vec::new();
    let url = check_url(&fields, &mut violations);
    let expect_status = check_expect_status(&fields, &mut violations);
    for unknown in fields
        .keys()
        .filter(|k| !matches!(k.as_str(), "url" | "expectStatus"))
    {
        violations.push(Violation::new(unknown.clone(), "is not a known parameter"));
    }
    match (url, expect_status) {
        (Some(url), Some(expect_status)) if violations.is_empty() => {
            Ok(Params { url, expect_status })
        }
        _ => Err(StepError::InvalidParams(violations)),
    }
}

fn check_url(fields: &Map<String, Value>, violations: &mut Vec<Violation>) -> Option<String> {
    match fields.get("url") {
        Some(Value::String(url)) if url.starts_with("http://") || url.starts_with("https://") => {
            Some(url.clone())
        }
        Some(Value::String(_)) => {
            violations.push(Violation::new("url", "must start with http:// or https://"));
            None
        }
        Some(_) => {
            violations.push(Violation::new("url", "must be a string"));
            None
        }
        None => {
            violations.push(Violation::new("url", "is required"));
            None
        }
    }
}

fn check_expect_status(
    fields: &Map<String, Value>,
    violations: &mut Vec<Violation>,
) -> Option<u16> {
    let Some(value) = fields.get("expectStatus") else {
        return Some(DEFAULT_EXPECT_STATUS);
    };
    match value.as_u64().and_then(|n| u16::try_from(n).ok()) {
        Some(status) if (100..=599).contains(&status) => Some(status),
        _ => {
            violations.push(Violation::new(
                "expectStatus",
                "must be an integer from 100 to 599",
            ));
            None
        }
    }
}

wharf_sdk::export_step!(HttpProbe);

#[cfg(test)]
mod tests {
    use wharf_sdk::harness::{self, Host};

    use super::*;

    fn run(host: &Host, params: Value) -> Result<Outcome, StepError> {
        host.run(|| HttpProbe::run(harness::run_context(), params.to_string()))
    }

    #[test]
    fn matching_status_is_done() {
        let host = Host::new().stub_http("https://svc.example/health", 200, "ok");
        let outcome = run(&host, json!({ "url": "https://svc.example/health" }));
        assert_eq!(
            outcome,
            Ok(Outcome::done_json(&json!({ "status": 200, "bytes": 2 })))
        );
        assert_eq!(
            host.log_messages(),
            vec!["GET https://svc.example/health -> 200".to_string()]
        );
    }

    #[test]
    fn other_status_fails_the_step() {
        let host = Host::new().stub_http("http://svc/ready", 503, "");
        let outcome = run(&host, json!({ "url": "http://svc/ready" }));
        assert_eq!(
            outcome,
            Ok(Outcome::failed("expected 200, got 503".to_string()))
        );
        let outcome = run(
            &host,
            json!({ "url": "http://svc/ready", "expectStatus": 503 }),
        );
        assert_eq!(
            outcome,
            Ok(Outcome::done_json(&json!({ "status": 503, "bytes": 0 })))
        );
    }

    #[test]
    fn denied_url_fails_with_readable_message() {
        let host = Host::new();
        let outcome = run(&host, json!({ "url": "http://10.0.0.1:8080/" }));
        match outcome {
            Ok(Outcome::failed(message)) => {
                assert!(
                    message.starts_with("request denied: http://10.0.0.1:8080/"),
                    "{message}"
                );
                assert!(message.contains("HTTP request denied"), "{message}");
            }
            other => panic!("expected Failed, got {other:?}"),
        }
        assert_eq!(
            host.denied_urls(),
            vec!["http://10.0.0.1:8080/".to_string()]
        );
    }

    #[test]
    fn bad_params_name_their_fields() {
        let host = Host::new();
        let result = run(
            &host,
            json!({ "url": "ftp://x", "expectStatus": 700, "retries": 3 }),
        );
        let Err(StepError::InvalidParams(violations)) = result else {
            panic!("expected InvalidParams, got {result:?}");
        };
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, vec!["url", "expectStatus", "retries"]);
        assert!(host.http_requests().is_empty());
    }

    #[test]
    fn malformed_url_is_a_url_violation() {
        let host = Host::new();
        let result = run(&host, json!({ "url": "http://" }));
        assert!(
            matches!(&result, Err(StepError::InvalidParams(v)) if v.len() == 1 && v[0].field == "url"),
            "{result:?}"
        );
    }

    #[test]
    fn manifest_matches_info() {
        let manifest = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/wharf-plugin.toml"));
        harness::assert_manifest_matches(manifest, &info());
    }
}
