//! Tests of the embedded Kubernetes cluster through the clients real clusters get:
//! kube-rs in-process (`Simulator::client()`), kube-rs and kubectl over the loopback
//! HTTPS endpoint of a running `wharf serve`; and its gateway, over plain HTTP.

mod controllers;
mod failures;
mod gateway;
mod kube_api;
mod kubectl;

use std::time::Duration;

use wharf_host::cluster::{SimConfig, Simulator};

/// A fresh in-memory cluster whose pods become ready on the next controller pass.
pub fn cluster() -> (Simulator, kube::Client) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sim = Simulator::start(SimConfig {
        time_scale: 0.0,
        ..SimConfig::default()
    })
    .expect("starting the simulator");
    let client = sim.client();
    (sim, client)
}

/// Polls `check` until it returns `Some`, for at most ~20 s of real time.
pub async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..400 {
        if let Some(value) = check().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

pub fn deployment(name: &str, replicas: i32, image: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image}]}
            }
        }
    })
}
