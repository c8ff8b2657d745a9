//! `http-check`: a pipeline step that requests a URL and checks the response.
//!
//! Params: `{"url": "http(s)://…", "method"?: "GET" (default) | "HEAD" | "POST" | "PUT" |
//! "DELETE" | "PATCH" | "OPTIONS", "expectStatus"?: 100–599 (default 200),
//! "bodyContains"?: text, "retries"?: 0–10 (default 0)}`. A matching response finishes
//! the step with `{"status", "bytes"}`. A wrong status, a missing text or a transport
//! error is tried again `retries` times, 2 s apart, by answering `pending` (so the wait
//! holds no instance); the state is the number of tries made. A URL the host refuses (not
//! on the plugin's allow-list) fails at once: trying again cannot change it.

use serde_json::json;
use wharf_sdk::http::{self, HttpError, Method, Request};
use wharf_sdk::step::{
    Descriptor, Meta, Outcome, OutputSpec, Params, PendingInfo, PluginInfo, RunContext, Step,
    StepError,
};

const DESCRIPTION: &str =
    "Requests a URL and checks the response status and body, trying again on failure.";
const PARAMS_SCHEMA: &str = r#"{
  "type": "object",
  "properties": {
    "url": {"type": "string", "pattern": "^https?://", "description": "The URL to request; its host must be on the plugin's http allow-list."},
    "method": {"type": "string", "enum": ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"], "default": "GET"},
    "expectStatus": {"type": "integer", "minimum": 100, "maximum": 599, "default": 200},
    "bodyContains": {"type": "string", "minLength": 1, "description": "Text the response body must contain."},
    "retries": {"type": "integer", "minimum": 0, "maximum": 10, "default": 0, "description": "Further tries, 2 s apart, before the step fails."}
  },
  "required": ["url"],
  "additionalProperties": false
}"#;
const KNOWN: &[&str] = &["url", "method", "expectStatus", "bodyContains", "retries"];
const MAX_RETRIES: u64 = 10;
/// Pause between tries.
const RETRY_AFTER_MS: u32 = 2000;

pub struct HttpCheck;

/// What `meta.info()` returns.
pub fn info() -> PluginInfo {
    PluginInfo {
        id: "http-check".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        description: DESCRIPTION.to_string(),
        world: "step".to_string(),
    }
}

impl Meta for HttpCheck {
    fn info() -> PluginInfo {
        info()
    }
}

/// Validated params.
#[derive(Debug)]
struct Check {
    url: String,
    method: Method,
    expect_status: u16,
    body_contains: Option<String>,
    retries: u32,
}

impl Step for HttpCheck {
    fn describe() -> Descriptor {
        Descriptor {
            kind: "http-check".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            description: DESCRIPTION.to_string(),
            params_schema: PARAMS_SCHEMA.to_string(),
            outputs: vec![
                OutputSpec {
                    name: "status".to_string(),
                    description: "The response status.".to_string(),
                },
                OutputSpec {
                    name: "bytes".to_string(),
                    description: "Size of the response body.".to_string(),
                },
            ],
            can_compensate: false,
        }
    }

    fn run(context: RunContext, params_json: String) -> Result<Outcome, StepError> {
        let check = parse_params(&params_json)?;
        let tries_before: u32 = match context.state.as_deref() {
            None => 0,
            Some(state) => state.parse().map_err(|_| {
                StepError::Internal(format!(
                    "the step's state `{state}` is not a number of tries"
                ))
            })?,
        };
        let request = Request::new(check.method.clone(), &check.url);
        let problem = match http::send(request) {
            Ok(response) => {
                wharf_sdk::info!("{} {} -> {}", check.method, check.url, response.status);
                if response.status != check.expect_status {
                    format!(
                        "{} {} answered {}, expected {}",
                        check.method, check.url, response.status, check.expect_status
                    )
                } else if let Some(text) = check
                    .body_contains
                    .as_deref()
                    .filter(|text| !response.text().contains(text))
                {
                    format!(
                        "{} {} answered {} but its body does not contain `{text}`",
                        check.method, check.url, response.status
                    )
                } else {
                    return Ok(Outcome::done_json(
                        &json!({ "status": response.status, "bytes": response.body.len() }),
                    ));
                }
            }
            Err(HttpError::Denied(why)) => {
                wharf_sdk::warn!("{} {} refused by the host: {why}", check.method, check.url);
                return Ok(Outcome::failed(format!(
                    "request denied: {} ({why}); an admin must add its host to the http allow-list of plugin http-check",
                    check.url
                )));
            }
            // The URL passed our checks but not the host's: still the user's input to fix.
            Err(HttpError::InvalidRequest(why)) => {
                return Err(StepError::invalid_param("url", why));
            }
            Err(HttpError::Transport(why)) => {
                wharf_sdk::warn!("{} {} failed: {why}", check.method, check.url);
                format!("{} {} failed: {why}", check.method, check.url)
            }
        };
        let tries = tries_before + 1;
        if tries <= check.retries {
            return Ok(Outcome::Pending(PendingInfo {
                state: tries.to_string(),
                recheck_after_ms: RETRY_AFTER_MS,
                progress: None,
                message: format!(
                    "{problem}; try {} of {} in {} s",
                    tries + 1,
                    check.retries + 1,
                    RETRY_AFTER_MS / 1000
                ),
            }));
        }
        let tried = if tries > 1 {
            format!(" (after {tries} tries)")
        } else {
            String::new()
        };
        // The service may come up later: the pipeline's own step retries may try again.
        Ok(Outcome::failed_retryable(format!("{problem}{tried}")))
    }
}

fn parse_method(token: &str) -> Option<Method> {
    Some(match token {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "PATCH" => Method::Patch,
        "OPTIONS" => Method::Options,
        _ => return None,
    })
}

fn parse_params(params_json: &str) -> Result<Check, StepError> {
    let mut params = Params::parse(params_json, KNOWN)?;
    let url = params.string("url");
    if let Some(url) = &url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        params.violate("url", "must start with http:// or https://");
    }
    let method = params.optional_string("method");
    let method = match method.as_deref() {
        None => Some(Method::Get),
        Some(token) => {
            let parsed = parse_method(token);
            if parsed.is_none() {
                params.violate(
                    "method",
                    format!("`{token}` is not one of GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS"),
                );
            }
            parsed
        }
    };
    let expect_status = params.integer("expectStatus", 100..=599, Some(200));
    let body_contains = params.optional_string("bodyContains");
    let retries = params.integer("retries", 0..=MAX_RETRIES, Some(0));
    params.finish()?;
    match (url, method, expect_status, retries) {
        (Some(url), Some(method), Some(expect_status), Some(retries)) => Ok(Check {
            url,
            method,
            // Both within range: checked by `integer` above.
            expect_status: expect_status as u16,
            body_contains,
            retries: retries as u32,
        }),
        _ => Err(StepError::Internal(
            "params passed validation but a field is missing".to_string(),
        )),
    }
}

wharf_sdk::export_step!(HttpCheck);

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use wharf_sdk::harness::{self, Host};

    use super::*;

    fn run(host: &Host, params: Value, state: Option<&str>) -> Result<Outcome, StepError> {
        let context = RunContext {
            state: state.map(str::to_string),
            ..harness::run_context()
        };
        host.run(|| HttpCheck::run(context, params.to_string()))
    }

    #[test]
    fn matching_status_and_body_is_done() {
        let host = Host::new().stub_http("https://svc.example/health", 200, "all ok");
        let params = json!({ "url": "https://svc.example/health", "bodyContains": "ok" });
        assert_eq!(
            run(&host, params, None),
            Ok(Outcome::done_json(&json!({ "status": 200, "bytes": 6 })))
        );
        assert_eq!(
            host.log_messages(),
            vec!["GET https://svc.example/health -> 200".to_string()]
        );
    }

    #[test]
    fn the_method_is_sent() {
        let host = Host::new().stub_http("http://svc/hook", 204, "");
        let outcome = run(
            &host,
            json!({ "url": "http://svc/hook", "method": "POST", "expectStatus": 204 }),
            None,
        );
        assert!(matches!(outcome, Ok(Outcome::Done(_))), "{outcome:?}");
        assert_eq!(host.http_requests()[0].method, Method::Post);
    }

    #[test]
    fn wrong_status_or_body_fails_naming_what_differed() {
        let host = Host::new().stub_http("http://svc/ready", 503, "starting");
        let outcome = run(&host, json!({ "url": "http://svc/ready" }), None);
        assert_eq!(
            outcome,
            Ok(Outcome::failed_retryable(
                "GET http://svc/ready answered 503, expected 200"
            ))
        );
        let outcome = run(
            &host,
            json!({ "url": "http://svc/ready", "expectStatus": 503, "bodyContains": "ready" }),
            None,
        );
        assert_eq!(
            outcome,
            Ok(Outcome::failed_retryable(
                "GET http://svc/ready answered 503 but its body does not contain `ready`"
            ))
        );
    }

    #[test]
    fn retries_are_pending_calls_counting_tries_in_the_state() {
        let host = Host::new().fail_http(
            "http://svc/",
            HttpError::Transport("connection refused".into()),
        );
        let params = json!({ "url": "http://svc/", "retries": 2 });
        let Ok(Outcome::Pending(first)) = run(&host, params.clone(), None) else {
            panic!("expected pending after the first failed try");
        };
        assert_eq!(first.state, "1");
        assert_eq!(first.recheck_after_ms, RETRY_AFTER_MS);
        assert_eq!(
            first.message,
            "GET http://svc/ failed: connection refused; try 2 of 3 in 2 s"
        );
        let Ok(Outcome::Pending(second)) = run(&host, params.clone(), Some("1")) else {
            panic!("expected pending after the second failed try");
        };
        assert_eq!(second.state, "2");
        assert_eq!(
            run(&host, params, Some("2")),
            Ok(Outcome::failed_retryable(
                "GET http://svc/ failed: connection refused (after 3 tries)"
            ))
        );
        assert_eq!(host.http_requests().len(), 3);
    }

    #[test]
    fn a_later_try_that_passes_is_done() {
        let host = Host::new().stub_http("http://svc/", 200, "");
        let outcome = run(
            &host,
            json!({ "url": "http://svc/", "retries": 3 }),
            Some("2"),
        );
        assert!(matches!(outcome, Ok(Outcome::Done(_))), "{outcome:?}");
    }

    #[test]
    fn denied_url_fails_at_once_naming_the_allow_list() {
        let host = Host::new();
        let outcome = run(
            &host,
            json!({ "url": "http://10.0.0.1:8080/", "retries": 5 }),
            None,
        );
        match outcome {
            Ok(Outcome::Failed(failure)) => {
                assert!(!failure.retryable);
                assert!(
                    failure
                        .reason
                        .starts_with("request denied: http://10.0.0.1:8080/"),
                    "{}",
                    failure.reason
                );
                assert!(failure.reason.contains("allow-list"), "{}", failure.reason);
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
            json!({ "url": "ftp://x", "method": "FETCH", "expectStatus": 700, "retries": 11, "timeout": 3 }),
            None,
        );
        let Err(StepError::InvalidParams(violations)) = result else {
            panic!("expected InvalidParams, got {result:?}");
        };
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            vec!["timeout", "url", "method", "expectStatus", "retries"]
        );
        assert!(host.http_requests().is_empty());
    }

    #[test]
    fn malformed_url_is_a_url_violation() {
        let host = Host::new();
        let result = run(&host, json!({ "url": "http://" }), None);
        assert!(
            matches!(&result, Err(StepError::InvalidParams(v)) if v.len() == 1 && v[0].field == "url"),
            "{result:?}"
        );
    }

    #[test]
    fn schema_is_json_and_closed() {
        let schema: Value =
            serde_json::from_str(&HttpCheck::describe().params_schema).expect("the schema is JSON");
        assert_eq!(schema["additionalProperties"], false);
        let properties = schema["properties"].as_object().expect("properties");
        assert_eq!(properties.len(), KNOWN.len());
        assert!(KNOWN.iter().all(|k| properties.contains_key(*k)));
    }

    #[test]
    fn manifest_matches_info() {
        let manifest = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/wharf-plugin.toml"));
        harness::assert_manifest_matches(manifest, &info());
    }
}
