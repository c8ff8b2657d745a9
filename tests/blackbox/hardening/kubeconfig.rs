//! Hardening (issue 11): see `mod.rs` for what this file proves.
//!
//! A kubeconfig that arrives over the API carries only inline material: whatever would make
//! the server run a command or read one of its files is refused with a 422 naming the
//! field, and nothing runs on the way to that answer. `kubeconfigPath` names files only in
//! the directory the operator gave `wharf serve --kubeconfig-dir`; the operator's own
//! `--kubeconfig` may still use an exec plugin.

use std::path::Path;

use serde_json::{Value, json};
use wharf_tests::{Server, TempDir};

/// A kubeconfig whose one user is `user` (YAML lines indented for `user:`).
fn with_user(user: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: far
  cluster:
    server: https://127.0.0.1:9
    insecure-skip-tls-verify: true
users:
- name: robot
  user:
{user}
contexts:
- name: far-ctx
  context:
    cluster: far
    user: robot
current-context: far-ctx
"
    )
}

fn inline() -> String {
    with_user("    token: t0ken")
}

/// An exec credential plugin that leaves `marker` behind when it runs.
fn exec_writing(marker: &Path) -> String {
    with_user(&format!(
        "    exec:
      apiVersion: client.authentication.k8s.io/v1
      interactiveMode: Never
      command: sh
      args:
      - -c
      - touch {}; echo '{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"x\"}}}}'",
        marker.display()
    ))
}

/// Registers cluster `filed` from a file on the server.
async fn create(server: &Server, kubeconfig_path: String) -> wharf_tests::Reply {
    server
        .post(
            "/api/v1/clusters",
            json!({"id": "filed", "kind": "kubeconfig", "kubeconfigPath": kubeconfig_path}),
        )
        .await
}

async fn patch(server: &Server, path: &str, body: Value) -> wharf_tests::Reply {
    server
        .request("PATCH", path, Some(body), Some(&server.token))
        .await
}

#[tokio::test]
async fn a_pasted_kubeconfig_with_an_exec_plugin_is_refused_and_runs_nothing() {
    let server = Server::start().await;
    let scratch = TempDir::new("exec-marker");
    let marker = scratch.path().join("ran");

    server
        .post(
            "/api/v1/clusters",
            json!({"id": "evil", "kind": "kubeconfig", "kubeconfig": exec_writing(&marker)}),
        )
        .await
        .assert_field(422, "kubeconfig.users[0].user.exec");
    assert!(!marker.exists(), "the exec plugin ran at create");
    server
        .get("/api/v1/clusters/evil")
        .await
        .assert_problem(404, "cluster-not-found");

    // A harmless cluster turned hostile by an update: refused the same way, and it keeps
    // working with what it had.
    let created = server
        .post(
            "/api/v1/clusters",
            json!({"id": "plain", "kind": "kubeconfig", "kubeconfig": inline()}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    patch(
        &server,
        "/api/v1/clusters/plain",
        json!({"kubeconfig": exec_writing(&marker)}),
    )
    .await
    .assert_field(422, "kubeconfig.users[0].user.exec");
    assert!(!marker.exists(), "the exec plugin ran at update");
    let health = server.get("/api/v1/clusters/plain/health").await;
    assert_eq!(health.status, 200, "{:?}", health.body);
    assert!(!marker.exists(), "the exec plugin ran at client rebuild");
    let renamed = patch(&server, "/api/v1/clusters/plain", json!({"name": "Plain"})).await;
    assert_eq!(renamed.status, 200, "{:?}", renamed.body);
}

#[tokio::test]
async fn kubeconfigs_that_would_read_server_files_or_run_providers_name_the_field() {
    let server = Server::start().await;
    let scratch = TempDir::new("provider-marker");
    let marker = scratch.path().join("ran");
    let ca_file = "apiVersion: v1
clusters:
- name: far
  cluster:
    server: https://127.0.0.1:9
    certificate-authority: /etc/ssl/certs/ca-certificates.crt
users:
- name: robot
  user:
    token: t0ken
contexts:
- name: far-ctx
  context:
    cluster: far
    user: robot
current-context: far-ctx
"
    .to_owned();
    for (kubeconfig, field) in [
        (
            with_user("    tokenFile: /etc/hostname"),
            "kubeconfig.users[0].user.tokenFile",
        ),
        (
            with_user("    client-certificate: /etc/hostname\n    client-key-data: LS0t"),
            "kubeconfig.users[0].user.client-certificate",
        ),
        (
            with_user("    client-key: /etc/hostname\n    client-certificate-data: LS0t"),
            "kubeconfig.users[0].user.client-key",
        ),
        (
            with_user(&format!(
                "    auth-provider:\n      name: gcp\n      config:\n        cmd-path: touch\n        cmd-args: {}",
                marker.display()
            )),
            "kubeconfig.users[0].user.auth-provider",
        ),
        (
            ca_file,
            "kubeconfig.clusters[0].cluster.certificate-authority",
        ),
    ] {
        server
            .post(
                "/api/v1/clusters",
                json!({"id": "reader", "kind": "kubeconfig", "kubeconfig": kubeconfig}),
            )
            .await
            .assert_field(422, field);
    }
    assert!(!marker.exists(), "the auth provider's command ran");
    server
        .get("/api/v1/clusters/reader")
        .await
        .assert_problem(404, "cluster-not-found");
}

#[tokio::test]
async fn kubeconfig_paths_stay_inside_the_operators_directory() {
    let base = TempDir::new("kubeconfig-dir");
    let dir = base.path().join("configs");
    std::fs::create_dir_all(&dir).expect("kubeconfig dir");
    let outside = base.path().join("outside.yaml");
    std::fs::write(&outside, inline()).expect("outside file");
    std::fs::write(dir.join("prod.yaml"), inline()).expect("inside file");
    let marker = base.path().join("ran");
    std::fs::write(dir.join("exec.yaml"), exec_writing(&marker)).expect("exec file");
    #[cfg(unix)]
    std::os::unix::fs::symlink(&outside, dir.join("link.yaml")).expect("symlink");
    let path = |p: &Path| p.to_str().expect("utf-8 path").to_owned();

    // Without --kubeconfig-dir no request names a file on the server.
    let closed = Server::start().await;
    create(&closed, path(&dir.join("prod.yaml")))
        .await
        .assert_field(422, "kubeconfigPath");

    let server = Server::start_with(&["--kubeconfig-dir", &path(&dir)]).await;
    let mut refused = vec![
        path(&outside),
        format!("{}/../outside.yaml", path(&dir)),
        "../outside.yaml".to_owned(),
        path(&dir.join("exec.yaml")),
        path(&dir),
        path(&dir.join("missing.yaml")),
    ];
    if cfg!(unix) {
        refused.push(path(&dir.join("link.yaml")));
    }
    for requested in refused {
        let reply = create(&server, requested.clone()).await;
        let field = reply.body["field"].as_str().unwrap_or_default();
        assert!(
            reply.status == 422 && field.starts_with("kubeconfigPath"),
            "{requested}: {:?}",
            reply.body
        );
    }
    create(&server, path(&dir.join("exec.yaml")))
        .await
        .assert_field(422, "kubeconfigPath.users[0].user.exec");
    assert!(!marker.exists(), "the exec plugin in the directory ran");

    let accepted = create(&server, path(&dir.join("prod.yaml"))).await;
    assert_eq!(accepted.status, 201, "{:?}", accepted.body);
    let canonical = std::fs::canonicalize(dir.join("prod.yaml")).expect("canonical");
    assert_eq!(accepted.body["kubeconfigPath"], path(&canonical));
    let relative = server
        .post(
            "/api/v1/clusters",
            json!({"id": "filed-2", "kind": "kubeconfig", "kubeconfigPath": "prod.yaml"}),
        )
        .await;
    assert_eq!(relative.status, 201, "{:?}", relative.body);
    let health = server.get("/api/v1/clusters/filed/health").await;
    assert_eq!(health.status, 200, "{:?}", health.body);
}

#[tokio::test]
async fn the_operators_own_kubeconfig_may_still_use_an_exec_plugin() {
    // Server A's embedded cluster, its token handed out by an exec plugin to server B.
    let a = Server::start().await;
    let handed = a.get("/api/v1/clusters/embedded/kubeconfig").await;
    assert_eq!(handed.status, 200, "{:?}", handed.body);
    let kubeconfig = handed.body["kubeconfig"].as_str().expect("kubeconfig");
    let (before, after) = kubeconfig.split_once("    token: ").expect("a token");
    let (token, rest) = after.split_once('\n').expect("token line");
    let scratch = TempDir::new("operator-exec");
    let marker = scratch.path().join("ran");
    let exec = format!(
        "{before}    exec:
      apiVersion: client.authentication.k8s.io/v1
      interactiveMode: Never
      command: sh
      args:
      - -c
      - touch {}; echo '{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"{token}\"}}}}'
{rest}",
        marker.display()
    );
    let file = scratch.path().join("config");
    std::fs::write(&file, exec).expect("kubeconfig file");

    let b = Server::start_with(&["--kubeconfig", file.to_str().expect("utf-8 path")]).await;
    let health = b.get("/api/v1/clusters/default/health").await;
    assert_eq!(health.body["reachable"], true, "{:?}", health.body);
    assert!(marker.exists(), "the operator's exec plugin did not run");
}
