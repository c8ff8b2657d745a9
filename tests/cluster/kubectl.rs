//! kubectl (Debian's kubernetes-client 1.20, or the one on PATH) against `wharf serve`,
//! with the kubeconfig Wharf hands out: get (Table columns), get -o yaml, apply,
//! logs, rollout status and delete. State survives a restart unless `--ephemeral`.

use futures::TryStreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, WatchEvent, WatchParams};
use wharf_tests::{Kubectl, Server};

const APP: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: demo
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: demo
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.25
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: demo
spec:
  selector: {app: web}
  ports:
  - port: 80
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: demo
data:
  mode: blue
"#;

#[tokio::test]
async fn kubectl_applies_gets_and_deletes_on_the_embedded_cluster() {
    let server = Server::start().await;
    let kubectl = Kubectl::for_server(&server).await;

    let (ok, out, err) = kubectl.run(&["apply", "-f", "-"], Some(APP));
    assert!(ok, "apply failed: {err}");
    assert!(out.contains("deployment.apps/web created"), "{out}");
    kubectl.ok(&[
        "-n",
        "demo",
        "rollout",
        "status",
        "deployment/web",
        "--timeout=30s",
    ]);

    // Human output comes from server-side Tables: the standard columns, not just NAME/AGE.
    let pods = kubectl.ok(&["-n", "demo", "get", "pods"]);
    let header = pods.lines().next().unwrap_or("");
    for column in ["NAME", "READY", "STATUS", "RESTARTS", "AGE"] {
        assert!(header.contains(column), "missing {column} in {pods}");
    }
    assert_eq!(
        pods.lines()
            .filter(|l| l.contains("1/1") && l.contains("Running"))
            .count(),
        2,
        "{pods}"
    );
    let deployments = kubectl.ok(&["-n", "demo", "get", "deployments"]);
    assert!(
        deployments.contains("UP-TO-DATE") && deployments.contains("2/2"),
        "{deployments}"
    );
    let services = kubectl.ok(&["-n", "demo", "get", "svc"]);
    assert!(
        services.contains("CLUSTER-IP") && services.contains("80/TCP"),
        "{services}"
    );

    let yaml = kubectl.ok(&["-n", "demo", "get", "configmap", "settings", "-o", "yaml"]);
    assert!(
        yaml.contains("mode: blue") && yaml.contains("resourceVersion:"),
        "{yaml}"
    );
    let logs = kubectl.ok(&["-n", "demo", "logs", "deployment/web"]);
    assert!(
        logs.contains("starting container web from image nginx:1.25"),
        "{logs}"
    );

    // Re-apply with a change: kubectl sends a strategic merge patch.
    let changed = APP.replace("mode: blue", "mode: green");
    let (ok, out, err) = kubectl.run(&["apply", "-f", "-"], Some(&changed));
    assert!(ok, "{err}");
    assert!(out.contains("configmap/settings configured"), "{out}");
    assert!(
        kubectl
            .ok(&[
                "-n",
                "demo",
                "get",
                "cm",
                "settings",
                "-o",
                "jsonpath={.data.mode}"
            ])
            .contains("green")
    );

    // What kubectl changed, Wharf's own kube client sees.
    let maps: Api<ConfigMap> = Api::namespaced(kubectl.kube_client().await, "demo");
    assert_eq!(
        maps.get("settings").await.unwrap().data.unwrap()["mode"],
        "green"
    );

    // delete waits (list + watch by metadata.name) until the object is gone.
    let deleted = kubectl.ok(&["-n", "demo", "delete", "configmap", "settings"]);
    assert!(deleted.contains("deleted"), "{deleted}");
    let (ok, _, err) = kubectl.run(&["-n", "demo", "get", "configmap", "settings"], None);
    assert!(!ok && err.contains("NotFound"), "{err}");
}

#[tokio::test]
async fn kubectl_without_the_token_is_refused() {
    let server = Server::start().await;
    let kubectl = Kubectl::for_server(&server).await;
    let text = std::fs::read_to_string(&kubectl.kubeconfig).unwrap();
    let token_line = text
        .lines()
        .find(|l| l.trim_start().starts_with("token:"))
        .unwrap();
    std::fs::write(
        &kubectl.kubeconfig,
        text.replace(token_line, "    token: not-the-token"),
    )
    .unwrap();
    let (ok, _, err) = kubectl.run(&["get", "namespaces"], None);
    assert!(!ok, "a wrong token must not read the cluster");
    assert!(
        err.contains("Unauthorized") || err.contains("unauthorized") || err.contains("credentials"),
        "{err}"
    );
}

#[tokio::test]
async fn cluster_objects_survive_a_restart_and_ephemeral_ones_do_not() {
    let mut server = Server::start().await;
    let kubectl = Kubectl::for_server(&server).await;
    kubectl.ok(&["create", "configmap", "kept", "--from-literal=a=1"]);
    server.kill_and_restart().await;
    let kubectl = Kubectl::for_server(&server).await;
    assert!(
        kubectl
            .ok(&["get", "configmap", "kept", "-o", "name"])
            .contains("configmap/kept")
    );

    let mut ephemeral = Server::start_with(&["--ephemeral"]).await;
    let kubectl = Kubectl::for_server(&ephemeral).await;
    kubectl.ok(&["create", "configmap", "lost", "--from-literal=a=1"]);
    ephemeral.kill_and_restart().await;
    let kubectl = Kubectl::for_server(&ephemeral).await;
    let (ok, _, err) = kubectl.run(&["get", "configmap", "lost"], None);
    assert!(!ok && err.contains("NotFound"), "{err}");
}

#[tokio::test]
async fn a_watch_from_before_a_restart_gets_410_expired() {
    let mut server = Server::start().await;
    let kubectl = Kubectl::for_server(&server).await;
    kubectl.ok(&["create", "configmap", "before", "--from-literal=a=1"]);
    let maps: Api<ConfigMap> = Api::namespaced(kubectl.kube_client().await, "default");
    let old_rv = maps
        .get("before")
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    // A change after `old_rv` that a resumed watch would have to replay, then a restart
    // that forgets the event history.
    kubectl.ok(&["label", "configmap", "before", "changed=yes"]);
    server.kill_and_restart().await;
    let kubectl = Kubectl::for_server(&server).await;
    let maps: Api<ConfigMap> = Api::namespaced(kubectl.kube_client().await, "default");
    let current: u64 = maps
        .get("before")
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        current >= old_rv.parse::<u64>().unwrap(),
        "resourceVersions keep growing across restarts"
    );
    let mut events = Box::pin(
        maps.watch(&WatchParams::default().timeout(5), &old_rv)
            .await
            .unwrap(),
    );
    match events.try_next().await.unwrap() {
        Some(WatchEvent::Error(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (410, "Expired"));
        }
        other => panic!("expected an ERROR 410 event, got {other:?}"),
    }
}

#[tokio::test]
async fn kubectl_rollout_undo_returns_to_the_previous_replica_set() {
    let server = Server::start().await;
    let kubectl = Kubectl::for_server(&server).await;
    let (ok, _, err) = kubectl.run(&["apply", "-f", "-"], Some(APP));
    assert!(ok, "{err}");
    kubectl.ok(&[
        "-n",
        "demo",
        "rollout",
        "status",
        "deployment/web",
        "--timeout=30s",
    ]);
    kubectl.ok(&[
        "-n",
        "demo",
        "set",
        "image",
        "deployment/web",
        "web=nginx:1.26",
    ]);
    kubectl.ok(&[
        "-n",
        "demo",
        "rollout",
        "status",
        "deployment/web",
        "--timeout=30s",
    ]);
    kubectl.ok(&["-n", "demo", "rollout", "undo", "deployment/web"]);
    kubectl.ok(&[
        "-n",
        "demo",
        "rollout",
        "status",
        "deployment/web",
        "--timeout=30s",
    ]);
    let sets = kubectl.ok(&["-n", "demo", "get", "rs", "-o", "name"]);
    assert_eq!(
        sets.lines().count(),
        2,
        "undo reuses the first replica set: {sets}"
    );
    let history = kubectl.ok(&["-n", "demo", "rollout", "history", "deployment/web"]);
    let revisions: Vec<&str> = history
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.parse::<u32>().is_ok())
        .collect();
    assert_eq!(revisions, ["2", "3"], "{history}");
    let image = kubectl.ok(&[
        "-n",
        "demo",
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    assert_eq!(image, "nginx:1.25");
}
