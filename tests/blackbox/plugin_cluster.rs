//! The `cluster` host interface: a plugin reaches Kubernetes objects in the embedded
//! cluster only within the kinds and namespaces it was granted; every refusal is an
//! `access-denied` value in the plugin, a log line, a stats count and an audit record.

use serde_json::{Value, json};
use wharf_tests::{Kubectl, Server, fixture};

const PLUGIN: &str = "fixture-cluster-client";

async fn records(server: &Server, query: &str) -> Vec<Value> {
    let reply = server
        .get(&format!("/api/v1/audit?pageSize=500&{query}"))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["items"].as_array().cloned().unwrap_or_default()
}

/// Creates `plugin-space` in the embedded cluster (objects need their namespace).
async fn create_plugin_space(server: &Server) {
    let created = server
        .post(
            "/api/v1/clusters/embedded/namespaces",
            json!({"name": "plugin-space"}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
}

/// Runs kubectl against the embedded cluster with the kubeconfig Wharf hands out, so what
/// a plugin did is checked from outside the plugin.
async fn kubectl(server: &Server, args: &[&str]) -> Value {
    let kubectl = Kubectl::for_server(server).await;
    let output = kubectl.ok(&[args, &["-o", "json"]].concat());
    serde_json::from_str(&output).expect("kubectl prints JSON")
}

/// Runs the fixture's step and returns its outputs, failing on any other outcome.
async fn run(server: &Server, params: Value) -> Value {
    let reply = server
        .invoke(PLUGIN, "step.run", json!({"params": params}))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["output"]["outcome"], "done", "{:?}", reply.body);
    reply.body["output"]["outputs"].clone()
}

#[tokio::test]
async fn a_plugin_manages_config_maps_in_its_granted_namespace_and_nothing_else() {
    let server = Server::start().await;
    server.allow_unsigned().await;
    create_plugin_space(&server).await;
    let id = server.install_enabled(&fixture("cluster-client")).await;
    let view = server.get(&format!("/api/v1/plugins/{id}")).await;
    assert_eq!(
        view.body["grants"]["approved"]["cluster"],
        json!({"kinds": ["ConfigMap"], "namespaces": ["plugin-space"]})
    );

    let kept = run(&server, json!({"name": "from-plugin", "keep": true})).await;
    assert_eq!(kept["applied"]["data"]["greeting"], "hello from a plugin");
    assert!(
        kept["applied"]["uid"]
            .as_str()
            .is_some_and(|u| !u.is_empty()),
        "{kept}"
    );
    assert_eq!(kept["got"]["greeting"], "hello from a plugin", "{kept}");
    assert_eq!(kept["listed"], json!(["from-plugin"]), "{kept}");
    let denied_kind = kept["deniedKind"].as_str().unwrap_or_default();
    assert!(
        denied_kind.starts_with("access denied") && denied_kind.contains("Secret"),
        "{kept}"
    );
    let denied_namespace = kept["deniedNamespace"].as_str().unwrap_or_default();
    assert!(
        denied_namespace.starts_with("access denied") && denied_namespace.contains("kube-system"),
        "{kept}"
    );

    // The object is in the cluster for anyone to see, and a later call (a fresh instance)
    // reads it back from there.
    let seen = kubectl(
        &server,
        &["get", "configmap", "from-plugin", "-n", "plugin-space"],
    )
    .await;
    assert_eq!(seen["data"]["greeting"], "hello from a plugin", "{seen}");
    assert_eq!(seen["metadata"]["uid"], kept["applied"]["uid"]);
    assert_eq!(
        seen["metadata"]["labels"]["wharf.io/fixture"],
        "cluster-client"
    );
    let read_back = run(&server, json!({"action": "get", "name": "from-plugin"})).await;
    assert_eq!(read_back["found"], true, "{read_back}");
    assert_eq!(read_back["data"]["greeting"], "hello from a plugin");

    let removed = run(&server, json!({"name": "short-lived"})).await;
    assert_eq!(removed["deleted"], true, "{removed}");
    assert_eq!(removed["goneAfterDelete"], true, "{removed}");
    assert_eq!(removed["listed"], json!(["from-plugin", "short-lived"]));
    let gone = run(&server, json!({"action": "get", "name": "short-lived"})).await;
    assert_eq!(gone["found"], false);
    let left = kubectl(&server, &["get", "configmaps", "-n", "plugin-space"]).await;
    let names: Vec<&str> = left["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["metadata"]["name"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        names.contains(&"from-plugin") && !names.contains(&"short-lived"),
        "{names:?}"
    );

    // Two refusals per exercise: counted, logged and audited with the plugin's version.
    let view = server.get(&format!("/api/v1/plugins/{id}")).await;
    assert_eq!(
        view.body["stats"]["clusterDenied"], 4,
        "{:?}",
        view.body["stats"]
    );
    let logs = server.get(&format!("/api/v1/plugins/{id}/logs")).await;
    assert!(
        logs.body["items"].to_string().contains("denied"),
        "{:?}",
        logs.body
    );
    let denied = records(&server, "action=plugin.cluster.&outcome=denied").await;
    assert_eq!(denied.len(), 4, "{denied:?}");
    for record in &denied {
        assert_eq!(record["plugin"], "fixture-cluster-client@0.1.0", "{record}");
        assert_eq!(record["errorCode"], "access-denied", "{record}");
    }
    let targets: Vec<&str> = denied.iter().filter_map(|r| r["target"].as_str()).collect();
    assert!(
        targets.contains(&"cluster-object:plugin-space/Secret/from-plugin"),
        "{targets:?}"
    );
    assert!(
        targets.contains(&"cluster-object:kube-system/ConfigMap"),
        "{targets:?}"
    );
    let applies = records(&server, "action=plugin.cluster.apply&outcome=ok").await;
    assert_eq!(applies.len(), 2, "{applies:?}");
    assert_eq!(
        applies[0]["target"],
        "cluster-object:plugin-space/ConfigMap/short-lived"
    );
    let deletes = records(&server, "action=plugin.cluster.delete&outcome=ok").await;
    assert_eq!(deletes.len(), 1, "{deletes:?}");
}

#[tokio::test]
async fn the_cluster_grant_must_be_approved_and_can_be_narrowed() {
    let server = Server::start().await;
    server.allow_unsigned().await;
    create_plugin_space(&server).await;
    let installed = server.install(&fixture("cluster-client")).await;
    assert_eq!(installed.status, 201, "{:?}", installed.body);
    let enable = format!("/api/v1/plugins/{PLUGIN}/enable");

    let ungranted = server.post(&enable, json!({"grants": {}})).await;
    ungranted.assert_problem(422, "ungranted-import");
    assert!(
        ungranted.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("wharf:host/cluster@0.1.0"),
        "{:?}",
        ungranted.body
    );
    let view = server.get(&format!("/api/v1/plugins/{PLUGIN}")).await;
    assert_ne!(view.body["status"], "enabled");

    let cluster_scoped = server
        .post(
            &enable,
            json!({"grants": {"cluster": {"kinds": ["Node"], "namespaces": ["plugin-space"]}}}),
        )
        .await;
    cluster_scoped.assert_field(422, "grants.cluster.kinds[0]");
    let bad_namespace = server
        .post(
            &enable,
            json!({"grants": {"cluster": {"kinds": ["ConfigMap"], "namespaces": ["Plugin Space"]}}}),
        )
        .await;
    bad_namespace.assert_field(422, "grants.cluster.namespaces[0]");

    // The admin approves less than the manifest asks: another namespace only.
    let narrowed = server
        .post(
            &enable,
            json!({"grants": {"cluster": {"kinds": ["ConfigMap"], "namespaces": ["elsewhere"]}}}),
        )
        .await;
    assert_eq!(narrowed.status, 200, "{:?}", narrowed.body);
    let reply = server
        .invoke(PLUGIN, "step.run", json!({"params": {"name": "refused"}}))
        .await;
    assert_eq!(
        reply.body["output"]["outcome"], "failed",
        "{:?}",
        reply.body
    );
    let reason = reply.body["output"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("apply: access denied") && reason.contains("plugin-space"),
        "{reason}"
    );
    let denied = records(&server, "action=plugin.cluster.apply&outcome=denied").await;
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(
        denied[0]["target"],
        "cluster-object:plugin-space/ConfigMap/refused"
    );
}
