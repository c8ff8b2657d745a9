//! Market install (issue 13, seed 000) against a fake Rainbond store on loopback that speaks
//! the real protocol: browse a store through Wharf, install multi-component apps with and
//! without deploy (through `/api/v1` and the seed's route verbatim), upgrade with a dry-run
//! diff, roll back, uninstall, refuse bad input, local catalogs, the outbound allow-list of
//! `market-rainstore`, a third-party marketplace plugin, and the README's story on the CLI.
//!
//! Files: `fake_store` (the store), `ram` (templates), `install`, `lifecycle` (upgrade,
//! rollback, uninstall), `bad_input`, `catalogs` (local, third-party, allow-list), `cli`.

mod bad_input;
mod catalogs;
mod cli;
mod fake_store;
mod install;
mod lifecycle;
mod ram;

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use serde_json::{Value, json};
use wharf_tests::{Kubectl, Reply, Server};

use fake_store::FakeStore;

/// The store's access key (32 hex, like Rainbond's) and market domain.
pub(crate) const ACCESS_KEY: &str = "0af5dff63cb740788e5a1c2b3d4e5f60";
pub(crate) const DOMAIN: &str = "rainbond";
pub(crate) const INSTALLS: &str = "/api/v1/projects/shop/installs";
pub(crate) const NAMESPACE: &str = "shop-dev";

/// Project `shop` with environment `dev` bound to `shop-dev`, an unrelated app `cart`
/// (outside any group) and an empty app group `mall`; the group's id.
pub(crate) async fn shop_with_group(server: &Server) -> String {
    crate::rollouts::shop(server, false).await;
    let reply = server
        .post("/api/v1/projects/shop/app-groups", json!({"name": "mall"}))
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    reply.body["id"].as_str().expect("group id").to_owned()
}

/// Connects `store` as market `name` with its access key.
pub(crate) async fn connect(server: &Server, store: &FakeStore, name: &str) -> Value {
    let reply = server
        .post(
            "/api/v1/markets",
            json!({"name": name, "url": store.url, "domain": store.domain,
                   "accessKey": store.access_key}),
        )
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    reply.body
}

pub(crate) fn install_body(
    market: &str,
    app: &str,
    version: &str,
    group: &str,
    deploy: bool,
) -> Value {
    json!({"market": market, "appId": app, "version": version, "group": group,
           "env": "dev", "deploy": deploy})
}

/// The seed 000 body for `store`.
pub(crate) fn seed_body(store: &FakeStore, app: &str, version: &str) -> Value {
    json!({"market_url": store.url, "market_domain": store.domain, "market_type": "rainstore",
           "market_access_key": store.access_key, "app_model_id": app,
           "app_model_version": version})
}

/// The seed 000 route into environment `dev` of project `shop`, group `group`.
pub(crate) fn seed_path(group: &str, deploy: bool) -> String {
    let query = if deploy { "?is_deploy=true" } else { "" };
    format!("/openapi/v1/teams/shop/regions/dev/apps/{group}/install{query}")
}

pub(crate) async fn get_install(server: &Server, id: &str) -> Value {
    let reply = server.get(&format!("{INSTALLS}/{id}")).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body
}

/// The component of an install with template key `key`.
pub(crate) fn component<'a>(install: &'a Value, key: &str) -> &'a Value {
    install["components"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["key"] == key)
        .unwrap_or_else(|| panic!("no component {key} in {install:#}"))
}

pub(crate) fn keys(install: &Value) -> BTreeSet<String> {
    install["components"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| c["key"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Polls an install (bounded: 90 s) until `done` holds; fails at once when a component
/// fails.
pub(crate) async fn until_install(
    server: &Server,
    id: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let mut last = Value::Null;
    for _ in 0..900 {
        last = get_install(server, id).await;
        if done(&last) {
            return last;
        }
        let failed = last["components"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["state"] == "Failed");
        assert!(failed.is_none(), "a component failed: {last:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("install {id} never got there: {last:#}");
}

pub(crate) fn all_running(install: &Value) -> bool {
    let components = install["components"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    !components.is_empty() && components.iter().all(|c| c["state"] == "Running")
}

/// Names of the apps of group `group` in project `shop`.
pub(crate) async fn group_apps(server: &Server, group: &str) -> BTreeSet<String> {
    let reply = server
        .get(&format!(
            "/api/v1/projects/shop/apps?group={group}&pageSize=500"
        ))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|a| a["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Names of every app of project `shop`.
pub(crate) async fn project_apps(server: &Server) -> BTreeSet<String> {
    let reply = server.get("/api/v1/projects/shop/apps?pageSize=500").await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|a| a["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The deploy config of `app` in `dev` (the install writes exactly one).
pub(crate) async fn deploy_config(server: &Server, app: &str) -> Value {
    let reply = server
        .get(&format!(
            "/api/v1/projects/shop/apps/{app}/deploy-configs?env=dev"
        ))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["total"], 1, "{app}: {:?}", reply.body);
    reply.body["items"][0].clone()
}

/// The value of env var `name` in a deploy config.
pub(crate) fn env_var(config: &Value, name: &str) -> Option<String> {
    config["envVariableList"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["name"] == name)
        .and_then(|v| v["value"].as_str())
        .map(str::to_owned)
}

/// Apps deployed to `dev`.
pub(crate) async fn deployed(server: &Server) -> BTreeSet<String> {
    let reply = server
        .get("/api/v1/projects/shop/environments/dev/deployments?pageSize=500")
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| d["app"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// (ready pods, images) of `app` in `shop-dev`, read from the embedded cluster.
pub(crate) async fn pods_of(server: &Server, app: &str) -> (usize, BTreeSet<String>) {
    let client = Kubectl::for_server(server).await.kube_client().await;
    let api: Api<Pod> = Api::namespaced(client, NAMESPACE);
    let list = api
        .list(&ListParams::default().labels(&format!("app.kubernetes.io/name={app}")))
        .await
        .expect("pods listed");
    let ready = list
        .items
        .iter()
        .filter(|pod| {
            pod.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .count();
    let images = list
        .items
        .iter()
        .filter_map(|pod| pod.spec.as_ref())
        .flat_map(|spec| spec.containers.iter())
        .filter_map(|c| c.image.clone())
        .collect();
    (ready, images)
}

/// Polls (bounded: 60 s) until `app` has `count` ready pods, all running `image`.
pub(crate) async fn until_pods(server: &Server, app: &str, count: usize, image: &str) {
    let mut last = (0, BTreeSet::new());
    for _ in 0..600 {
        last = pods_of(server, app).await;
        if last.0 == count && last.1.iter().all(|i| i == image) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{app} never had {count} ready pods of {image}: {last:?}");
}

/// Polls (bounded: 60 s) until `app` has no pods left.
pub(crate) async fn until_no_pods(server: &Server, app: &str) {
    let mut last = (0, BTreeSet::new());
    for _ in 0..600 {
        last = pods_of(server, app).await;
        if last.0 == 0 && last.1.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{app} still has pods: {last:?}");
}

/// The action the route table gives `method path`.
pub(crate) fn action_of(method: &str, path: &str) -> &'static str {
    wharf_host::api::routes::ROUTES
        .iter()
        .find(|r| r.method == method && r.path == path)
        .unwrap_or_else(|| panic!("no route {method} {path} in the route table"))
        .action
}

/// Audit records of `action`, newest first.
pub(crate) async fn audit(server: &Server, action: &str) -> Vec<Value> {
    let reply = server
        .get(&format!("/api/v1/audit?pageSize=500&action={action}"))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["items"].as_array().cloned().unwrap_or_default()
}

/// Asserts a refused request: a problem+json (never a 500) whose detail names `cause`.
#[track_caller]
pub(crate) fn assert_refused(reply: &Reply, statuses: &[u16], cause: &str) {
    assert!(
        statuses.contains(&reply.status),
        "expected one of {statuses:?}, got {} {:?}",
        reply.status,
        reply.body
    );
    assert_eq!(
        reply.content_type, "application/problem+json",
        "{:?}",
        reply.body
    );
    assert!(
        reply.body["code"].as_str().is_some_and(|c| !c.is_empty()),
        "{:?}",
        reply.body
    );
    let detail = reply.body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.to_lowercase().contains(&cause.to_lowercase()),
        "the detail should name {cause:?}: {:?}",
        reply.body
    );
}
