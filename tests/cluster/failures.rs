//! Failure injection: a pod simulates an image pull error, a crash loop, never becoming
//! ready or a slow start when its image (or the `wharf.dev/simulate` annotation) says
//! so — the states a rollback must be tested against.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;

use crate::{cluster, deployment, wait_for};

async fn settled_pod(client: &kube::Client, app: &str, image: &str) -> Pod {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    deployments
        .create(
            &PostParams::default(),
            &serde_json::from_value(deployment(app, 1, image)).unwrap(),
        )
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    wait_for("the pod to leave its first state", || async {
        let pod = pods
            .list(&ListParams::default().labels(&format!("app={app}")))
            .await
            .ok()?
            .items
            .pop()?;
        pod.status.as_ref()?.container_statuses.as_ref()?;
        Some(pod)
    })
    .await
}

fn waiting_reason(pod: &Pod) -> Option<String> {
    pod.status.as_ref()?.container_statuses.as_ref()?[0]
        .state
        .as_ref()?
        .waiting
        .as_ref()?
        .reason
        .clone()
}

async fn deployment_status(client: &kube::Client, name: &str) -> (i32, String) {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let d = deployments.get(name).await.unwrap();
    let status = d.status.unwrap_or_default();
    let available = status
        .conditions
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "Available")
        .map(|c| c.status)
        .unwrap_or_default();
    (status.available_replicas.unwrap_or(0), available)
}

#[tokio::test]
async fn image_pull_errors_keep_the_pod_pending() {
    let (_sim, client) = cluster();
    let pod = settled_pod(&client, "pull", "registry.local/app:image-pull-error").await;
    assert_eq!(
        pod.status.as_ref().unwrap().phase.as_deref(),
        Some("Pending")
    );
    assert_eq!(waiting_reason(&pod).as_deref(), Some("ImagePullBackOff"));
    assert_eq!(
        deployment_status(&client, "pull").await,
        (0, "False".into())
    );
}

#[tokio::test]
async fn crash_loops_restart_and_never_become_ready() {
    let (_sim, client) = cluster();
    settled_pod(&client, "crash", "registry.local/app:crash-loop").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod = wait_for("a restart", || async {
        let pod = pods
            .list(&ListParams::default().labels("app=crash"))
            .await
            .ok()?
            .items
            .pop()?;
        let restarts = pod.status.as_ref()?.container_statuses.as_ref()?[0].restart_count;
        (restarts >= 1).then_some(pod)
    })
    .await;
    assert_eq!(waiting_reason(&pod).as_deref(), Some("CrashLoopBackOff"));
    assert_eq!(deployment_status(&client, "crash").await.0, 0);
}

#[tokio::test]
async fn never_ready_pods_run_without_readiness() {
    let (_sim, client) = cluster();
    let pod = settled_pod(&client, "stuck", "registry.local/app:never-ready").await;
    assert_eq!(
        pod.status.as_ref().unwrap().phase.as_deref(),
        Some("Running")
    );
    let statuses = pod.status.unwrap().container_statuses.unwrap();
    assert!(!statuses[0].ready);
    assert!(statuses[0].state.as_ref().unwrap().running.is_some());
    assert_eq!(deployment_status(&client, "stuck").await.0, 0);
}

#[tokio::test]
async fn slow_starts_take_longer_than_normal_pods() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // At a real time scale a normal pod is ready after 200 ms and a slow one after 2 s.
    let sim = wharf_host::cluster::Simulator::start(wharf_host::cluster::SimConfig {
        time_scale: 0.1,
        ..Default::default()
    })
    .unwrap();
    let client = sim.client();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let mut slow = deployment("slow", 1, "app:1");
    slow["spec"]["template"]["metadata"]["annotations"] =
        json!({"wharf.dev/simulate": "slow-start"});
    deployments
        .create(
            &PostParams::default(),
            &serde_json::from_value(slow).unwrap(),
        )
        .await
        .unwrap();
    deployments
        .create(
            &PostParams::default(),
            &serde_json::from_value(deployment("quick", 1, "app:1")).unwrap(),
        )
        .await
        .unwrap();
    wait_for("the quick pod", || async {
        (deployment_status(&client, "quick").await.0 == 1).then_some(())
    })
    .await;
    assert_eq!(
        deployment_status(&client, "slow").await.0,
        0,
        "the slow pod is still starting"
    );
    wait_for("the slow pod", || async {
        (deployment_status(&client, "slow").await.0 == 1).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_rollout_that_cannot_progress_reports_progress_deadline_exceeded() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sim = wharf_host::cluster::Simulator::start(wharf_host::cluster::SimConfig {
        time_scale: 1.0,
        pod_start_delay: std::time::Duration::from_millis(10),
        ..Default::default()
    })
    .unwrap();
    let deployments: Api<Deployment> = Api::namespaced(sim.client(), "default");
    let mut stuck = deployment("stalled", 1, "app:never-ready");
    stuck["spec"]["progressDeadlineSeconds"] = json!(1);
    deployments
        .create(
            &PostParams::default(),
            &serde_json::from_value(stuck).unwrap(),
        )
        .await
        .unwrap();
    let reason = wait_for("the progress deadline", || async {
        let d = deployments.get("stalled").await.ok()?;
        let progressing = d
            .status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "Progressing")?;
        (progressing.status == "False").then_some(progressing.reason.unwrap_or_default())
    })
    .await;
    assert_eq!(reason, "ProgressDeadlineExceeded");
}
