//! The Job controller: runs up to `parallelism` pods until `completions` succeeded,
//! gives up after `backoffLimit` failures (`BackoffLimitExceeded`) or
//! `activeDeadlineSeconds` (`DeadlineExceeded`), and reports counts and conditions.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::{Clock, by_controller, condition, find_condition, record_event, write_if_changed};
use crate::cluster::sim::meta;
use crate::cluster::sim::resources::kinds;
use crate::cluster::sim::world::{DeleteOptions, World};

fn finished(job: &Value) -> bool {
    ["Complete", "Failed"]
        .iter()
        .any(|kind| find_condition(job, kind).is_some_and(|c| c["status"] == "True"))
}

/// One pass; true while an unfinished job has an `activeDeadlineSeconds` to watch.
pub fn sync(world: &mut World, clock: &Clock) -> bool {
    let mut timed = false;
    let owned = by_controller(world, kinds::pod());
    let jobs: Vec<Arc<Value>> = world.list(kinds::job(), None).cloned().collect();
    for job in jobs {
        if meta::is_deleting(&job) || finished(&job) {
            continue;
        }
        timed |= job.pointer("/spec/activeDeadlineSeconds").is_some();
        let namespace = meta::namespace(&job).to_owned();
        let pods = owned.get(meta::uid(&job)).cloned().unwrap_or_default();
        let phase = |pod: &Value| {
            meta::str_at(pod, "/status/phase")
                .unwrap_or("Pending")
                .to_owned()
        };
        let succeeded = pods.iter().filter(|p| phase(p) == "Succeeded").count() as i64;
        let failed = pods.iter().filter(|p| phase(p) == "Failed").count() as i64;
        let mut active: Vec<&Arc<Value>> = pods
            .iter()
            .filter(|p| {
                !matches!(phase(p).as_str(), "Succeeded" | "Failed") && !meta::is_deleting(p)
            })
            .collect();
        let completions = job
            .pointer("/spec/completions")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let parallelism = job
            .pointer("/spec/parallelism")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let backoff_limit = job
            .pointer("/spec/backoffLimit")
            .and_then(Value::as_i64)
            .unwrap_or(6);
        let start = meta::str_at(&job, "/status/startTime")
            .map(str::to_owned)
            .unwrap_or_else(meta::now_rfc3339);
        let past_deadline = job
            .pointer("/spec/activeDeadlineSeconds")
            .and_then(Value::as_u64)
            .is_some_and(|limit| {
                meta::parse_timestamp(&start).is_some_and(|at| {
                    let elapsed = (time::OffsetDateTime::now_utc() - at)
                        .whole_milliseconds()
                        .max(0) as u64;
                    Duration::from_millis(elapsed) >= clock.scaled(Duration::from_secs(limit))
                })
            });
        let mut conditions = Vec::new();
        let mut completion_time = None;
        if succeeded >= completions {
            conditions.push(condition(None, "Complete", "True", "", "", true));
            completion_time = Some(meta::now_rfc3339());
            record_event(world, &job, "Normal", "Completed", "Job completed".into());
        } else if failed > backoff_limit || past_deadline {
            let (reason, message) = if past_deadline {
                (
                    "DeadlineExceeded",
                    "Job was active longer than specified deadline",
                )
            } else {
                (
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                )
            };
            conditions.push(condition(None, "Failed", "True", reason, message, true));
            record_event(world, &job, "Warning", reason, message.into());
            for pod in active.drain(..) {
                let options = DeleteOptions::default();
                let _ = world.delete(kinds::pod(), &namespace, meta::name(pod), &options);
            }
        } else {
            let wanted = parallelism.min(completions - succeeded).max(0) as usize;
            for _ in active.len()..wanted {
                let pod =
                    super::replicaset::pod_from_template(&job, &format!("{}-", meta::name(&job)));
                match world.create(kinds::pod(), &namespace, pod) {
                    Ok(created) => record_event(
                        world,
                        &job,
                        "Normal",
                        "SuccessfulCreate",
                        format!("Created pod: {}", meta::name(&created)),
                    ),
                    Err(_) => break,
                }
            }
        }
        let Some(current) = world.get(kinds::job(), &namespace, meta::name(&job)) else {
            continue;
        };
        let active_now = world
            .list(kinds::pod(), Some(&namespace))
            .filter(|p| {
                meta::controller_uid(p) == Some(meta::uid(&job))
                    && !matches!(
                        meta::str_at(p, "/status/phase"),
                        Some("Succeeded" | "Failed")
                    )
            })
            .count();
        let mut next = current.as_ref().clone();
        let mut status = json!({
            "startTime": start,
            "active": active_now,
            "succeeded": succeeded,
            "failed": failed,
            "ready": 0,
        });
        if !conditions.is_empty() {
            status["conditions"] = json!(conditions);
            status["active"] = json!(0);
        }
        if let Some(at) = completion_time {
            status["completionTime"] = json!(at);
        }
        next["status"] = status;
        write_if_changed(world, kinds::job(), &current, next);
    }
    timed
}
