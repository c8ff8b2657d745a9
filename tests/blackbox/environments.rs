//! Environments, their cluster + namespace bindings and resources, and config items, through
//! REST and the CLI, on the embedded cluster (reached only through Wharf's API).

use serde_json::{Value, json};
use wharf_tests::Server;

fn stdout(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "wharf failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

const ENVS: &str = "/api/v1/projects/shop/environments";

async fn project(server: &Server) {
    let reply = server
        .post("/api/v1/projects", json!({"code": "shop", "name": "Shop"}))
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
}

async fn env(server: &Server, code: &str) -> Value {
    let reply = server
        .post(
            ENVS,
            json!({"envCode": code, "envName": format!("Env {code}"), "envType": "DEVELOP"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    reply.body
}

async fn bind_new(server: &Server, env: &str, namespace: &str) {
    let reply = server
        .post(
            &format!("{ENVS}/{env}/bindings"),
            json!({"cluster": "embedded", "namespace": namespace, "createNamespace": true}),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
}

#[tokio::test]
async fn environments_check_every_field_and_answer_404_and_409() {
    let server = Server::start().await;
    project(&server).await;
    let base = json!({"envCode": "dev", "envName": "Development", "envType": "DEVELOP"});
    let with = |key: &str, value: Value| {
        let mut body = base.clone();
        body[key] = value;
        body
    };
    for (body, field) in [
        (with("envCode", json!("De")), "envCode"),
        (with("envCode", json!("1dev")), "envCode"),
        (with("envCode", json!("dev_1")), "envCode"),
        (with("envCode", json!("d".repeat(31))), "envCode"),
        (with("envName", json!("ab")), "envName"),
        (with("envName", json!("x".repeat(31))), "envName"),
        (with("envType", json!("devops")), "envType"),
        (with("trafficProvider", json!("nginx")), "trafficProvider"),
        (with("approvalRequired", json!("yes")), "approvalRequired"),
        (with("resourcePool", json!("nowhere")), "resourcePool"),
        (with("description", json!("x".repeat(501))), "description"),
        (with("colour", json!("red")), "colour"),
        (
            json!({"envName": "Development", "envType": "TEST"}),
            "envCode",
        ),
    ] {
        server.post(ENVS, body).await.assert_field(422, field);
    }
    server
        .raw("POST", ENVS, b"{nope".to_vec(), "application/json")
        .await
        .assert_problem(400, "malformed-json");
    server
        .post("/api/v1/projects/ghost/environments", base.clone())
        .await
        .assert_problem(404, "project-not-found");

    let created = server
        .post(
            ENVS,
            with("resourcePool", json!("local"))
                .as_object()
                .cloned()
                .map(|mut m| {
                    m.insert("approvalRequired".into(), json!(true));
                    m.insert("trafficProvider".into(), json!("gray-nginx-ingress"));
                    Value::Object(m)
                })
                .unwrap_or_default(),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    for key in ["id", "createdAt", "updatedAt", "createdBy"] {
        assert!(created.body[key].is_string(), "{key}: {:?}", created.body);
    }
    assert_eq!(created.body["approvalRequired"], true);
    assert_eq!(created.body["trafficProvider"], "gray-nginx-ingress");
    server
        .post(ENVS, base.clone())
        .await
        .assert_problem(409, "env-code-taken");
    server
        .get(&format!("{ENVS}/nope"))
        .await
        .assert_problem(404, "env-not-found");

    let patched = server
        .request(
            "PATCH",
            &format!("{ENVS}/dev"),
            Some(json!({"envType": "ONLINE", "approvalRequired": false, "envName": "Prod-like"})),
            Some(&server.token),
        )
        .await;
    assert_eq!(patched.status, 200, "{:?}", patched.body);
    assert_eq!(
        (
            patched.body["envType"].as_str(),
            patched.body["approvalRequired"].as_bool()
        ),
        (Some("ONLINE"), Some(false))
    );
    server
        .request(
            "PATCH",
            &format!("{ENVS}/dev"),
            Some(json!({"envType": "LIVE"})),
            Some(&server.token),
        )
        .await
        .assert_field(422, "envType");
    let audit = server
        .get("/api/v1/audit?action=env.update&outcome=ok")
        .await;
    let record = &audit.body["items"][0];
    assert_eq!(
        (
            record["before"]["envType"].as_str(),
            record["after"]["envType"].as_str()
        ),
        (Some("DEVELOP"), Some("ONLINE")),
        "{record}"
    );

    // Bindings: the input is checked before any cluster is asked.
    let bindings = format!("{ENVS}/dev/bindings");
    for (body, field) in [
        (
            json!({"cluster": "nowhere", "namespace": "shop-dev"}),
            "cluster",
        ),
        (
            json!({"cluster": "embedded", "namespace": "Shop_Dev"}),
            "namespace",
        ),
        (json!({"cluster": "embedded"}), "namespace"),
        (json!({"namespace": "shop-dev"}), "cluster"),
        (
            json!({"cluster": "embedded", "namespace": "shop-dev", "createNamespace": "yes"}),
            "createNamespace",
        ),
    ] {
        server.post(&bindings, body).await.assert_field(422, field);
    }
    server
        .delete(&format!("{bindings}/embedded/shop-dev"))
        .await
        .assert_problem(404, "binding-not-found");
    server
        .get(&format!("{ENVS}/nope/resources"))
        .await
        .assert_problem(404, "env-not-found");
    server
        .get(&format!("{ENVS}/nope/config-items"))
        .await
        .assert_problem(404, "env-not-found");
    server
        .post(
            &format!("{ENVS}/dev/config-items"),
            json!({"name": "app", "items": [{"name": "a", "value": "b"}]}),
        )
        .await
        .assert_field(422, "namespace");

    let listed = server.get(&format!("{ENVS}?search=prod")).await;
    assert_eq!(listed.body["total"], 1, "{:?}", listed.body);
    let out = stdout(&server.cli(&["env", "list", "--project", "shop"]));
    assert!(out.contains("dev") && out.contains("ONLINE"), "{out}");
    assert_eq!(server.delete(&format!("{ENVS}/dev")).await.status, 204);
    assert_eq!(server.get(ENVS).await.body["total"], 0);
}

#[tokio::test]
async fn an_admin_creates_an_environment_on_the_embedded_cluster_with_a_config_item() {
    let server = Server::start().await;
    project(&server).await;
    env(&server, "dev").await;
    bind_new(&server, "dev", "shop-dev").await;
    let namespaces = server.get("/api/v1/clusters/embedded/namespaces").await;
    assert!(
        namespaces.body["items"].to_string().contains("shop-dev"),
        "{:?}",
        namespaces.body
    );

    let created = server
        .post(
            &format!("{ENVS}/dev/config-items"),
            json!({"name": "app-config", "items": [
                {"name": "application.yaml", "value": "server:\n  port: 8080\n"},
                {"name": "LOG_LEVEL", "value": "info"}
            ]}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(
        (
            created.body["cluster"].as_str(),
            created.body["namespace"].as_str()
        ),
        (Some("embedded"), Some("shop-dev"))
    );

    let read = server
        .get(&format!("{ENVS}/dev/config-items/app-config"))
        .await;
    assert_eq!(read.status, 200, "{:?}", read.body);
    assert_eq!(read.body["clusterState"], "in-sync", "{:?}", read.body);
    assert_eq!(read.body["items"][0]["value"], "server:\n  port: 8080\n");
    assert_eq!(
        read.body["items"][0]["storagePath"],
        "/etc/config/app-config/application.yaml"
    );
    for key in ["id", "createdAt", "updatedAt", "createdBy"] {
        assert!(read.body[key].is_string(), "{key}: {:?}", read.body);
    }

    let resources = server.get(&format!("{ENVS}/dev/resources")).await;
    assert_eq!(resources.status, 200, "{:?}", resources.body);
    let configmap = resources.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|o| o["kind"] == "ConfigMap" && o["name"] == "app-config")
        .cloned();
    assert!(configmap.is_some_and(|c| c["cluster"] == "embedded" && c["namespace"] == "shop-dev"));
    let out = stdout(&server.cli(&[
        "env",
        "resources",
        "dev",
        "--project",
        "shop",
        "--kind",
        "ConfigMap",
    ]));
    assert!(out.contains("app-config"), "{out}");

    let cli = stdout(&server.cli(&[
        "config-item",
        "get",
        "app-config",
        "--project",
        "shop",
        "--env",
        "dev",
    ]));
    assert!(
        cli.contains("LOG_LEVEL")
            && cli.contains("/etc/config/app-config/LOG_LEVEL")
            && cli.contains("in-sync"),
        "{cli}"
    );
    let json_out = stdout(&server.cli(&[
        "config-item",
        "get",
        "app-config",
        "--project",
        "shop",
        "--env",
        "dev",
        "--json",
    ]));
    let parsed: Value = serde_json::from_str(&json_out).expect("--json prints JSON");
    assert_eq!(parsed["items"][1]["value"], "info");
}

#[tokio::test]
async fn the_cli_creates_binds_and_fills_an_environment() {
    let server = Server::start().await;
    project(&server).await;
    stdout(&server.cli(&[
        "env",
        "create",
        "stage",
        "--project",
        "shop",
        "--name",
        "Quality",
        "--type",
        "TEST",
        "--approval-required",
        "--traffic-provider",
        "gray-nginx-ingress",
    ]));
    let out = stdout(&server.cli(&[
        "env",
        "bind",
        "stage",
        "--project",
        "shop",
        "--namespace",
        "shop-stage",
        "--create-namespace",
    ]));
    assert!(out.contains("shop-stage"), "{out}");
    let dir = wharf_tests::TempDir::new("config-item");
    let file = dir.path().join("nginx.conf");
    std::fs::write(&file, "worker_processes 2;\n").expect("file");
    stdout(&server.cli(&[
        "config-item",
        "create",
        "web",
        "--project",
        "shop",
        "--env",
        "stage",
        "--item",
        "MODE=stage",
        "--from-file",
        &format!("nginx.conf={}", file.display()),
    ]));
    let listed =
        stdout(&server.cli(&["config-item", "list", "--project", "shop", "--env", "stage"]));
    assert!(
        listed.contains("web") && listed.contains("nginx.conf"),
        "{listed}"
    );
    stdout(&server.cli(&[
        "config-item",
        "update",
        "web",
        "--project",
        "shop",
        "--env",
        "stage",
        "--item",
        "MODE=strict",
    ]));
    let read = server.get(&format!("{ENVS}/stage/config-items/web")).await;
    assert_eq!(
        read.body["items"].as_array().map(Vec::len),
        Some(1),
        "{:?}",
        read.body
    );
    assert_eq!(read.body["updatedBy"], "admin");
    let env = server.get(&format!("{ENVS}/stage")).await;
    assert_eq!(
        (
            env.body["envType"].as_str(),
            env.body["approvalRequired"].as_bool(),
            env.body["trafficProvider"].as_str()
        ),
        (Some("TEST"), Some(true), Some("gray-nginx-ingress"))
    );
    let refused = server.cli(&["env", "delete", "stage", "--project", "shop"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("has-config-items"));
    stdout(&server.cli(&[
        "config-item",
        "delete",
        "web",
        "--project",
        "shop",
        "--env",
        "stage",
    ]));
    stdout(&server.cli(&[
        "env",
        "unbind",
        "stage",
        "--project",
        "shop",
        "--namespace",
        "shop-stage",
    ]));
    stdout(&server.cli(&["env", "delete", "stage", "--project", "shop"]));
}

#[tokio::test]
async fn config_items_check_names_and_size_and_audit_before_and_after() {
    let server = Server::start().await;
    project(&server).await;
    env(&server, "dev").await;
    bind_new(&server, "dev", "shop-dev").await;
    let items = format!("{ENVS}/dev/config-items");
    let item = |name: &str| json!({"name": name, "items": [{"name": "k", "value": "v"}]});
    for (body, field) in [
        (item("App"), "name"),
        (item("a.b.c"), "name"),
        (item("-app"), "name"),
        (item("app_config"), "name"),
        (json!({"name": "app", "items": []}), "items"),
        (json!({"name": "app"}), "items"),
        (
            json!({"name": "app", "items": [{"name": "a/b", "value": "v"}]}),
            "items[0].name",
        ),
        (
            json!({"name": "app", "items": [{"name": "k", "value": "1"}, {"name": "k", "value": "2"}]}),
            "items[1].name",
        ),
        (
            json!({"name": "app", "items": [{"name": "k"}]}),
            "items[0].value",
        ),
        (
            json!({"name": "app", "items": [{"name": "k", "value": "v"}], "namespace": "elsewhere"}),
            "namespace",
        ),
        (
            json!({"name": "app", "items": [{"name": "k", "value": "v"}], "cluster": "other"}),
            "cluster",
        ),
        (
            json!({"name": "app", "items": [{"name": "k", "value": "x".repeat(1024 * 1024)}]}),
            "items",
        ),
    ] {
        server.post(&items, body).await.assert_field(422, field);
    }
    let created = server.post(&items, item("app.conf")).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    server
        .post(&items, item("app.conf"))
        .await
        .assert_problem(409, "config-item-exists");
    server
        .get(&format!("{items}/missing"))
        .await
        .assert_problem(404, "config-item-not-found");
    server
        .put(
            &format!("{items}/missing"),
            json!({"items": [{"name": "k", "value": "v"}]}),
        )
        .await
        .assert_problem(404, "config-item-not-found");
    server
        .put(&format!("{items}/app.conf"), json!({"items": []}))
        .await
        .assert_field(422, "items");

    // Search and paging.
    for name in ["db-a", "db-b", "cache"] {
        assert_eq!(server.post(&items, item(name)).await.status, 201);
    }
    let found = server
        .get(&format!("{items}?search=db&pageSize=1&page=2"))
        .await;
    assert_eq!(
        (
            found.body["total"].as_u64(),
            found.body["items"][0]["name"].as_str()
        ),
        (Some(2), Some("db-b")),
        "{:?}",
        found.body
    );
    server
        .get(&format!("{items}?pageSize=0"))
        .await
        .assert_field(422, "pageSize");

    // Updates are audited with before and after.
    let updated = server
        .put(
            &format!("{items}/app.conf"),
            json!({"items": [{"name": "k", "value": "v2"}, {"name": "extra", "value": "x"}]}),
        )
        .await;
    assert_eq!(updated.status, 200, "{:?}", updated.body);
    let audit = server
        .get("/api/v1/audit?action=config.update&outcome=ok")
        .await;
    let record = &audit.body["items"][0];
    assert_eq!(
        record["target"], "project:shop/env:dev/config:app.conf",
        "{record}"
    );
    // Values are audited as their sha256 only (hardening/audit_log.rs).
    assert_eq!(
        record["before"]["items"][0]["sha256"],
        "4c94485e0c21ae6c41ce1dfe7b6bfaceea5ab68e40a2476f50208e526f506080",
        "{record}"
    );
    assert_eq!(
        record["after"]["items"][0]["sha256"],
        "fb04dcb6970e4c3d1873de51fd5a50d7bb46b3383113602665c350ec40b5f990",
        "{record}"
    );
    let create_record = &server
        .get("/api/v1/audit?action=config.create&outcome=ok")
        .await
        .body["items"][0];
    assert!(
        create_record["after"]["items"].is_array(),
        "{create_record}"
    );

    // The binding and the environment keep their config items.
    server
        .delete(&format!("{ENVS}/dev/bindings/embedded/shop-dev"))
        .await
        .assert_problem(409, "has-config-items");
    server
        .delete(&format!("{ENVS}/dev"))
        .await
        .assert_problem(409, "has-config-items");
    assert_eq!(
        server.delete(&format!("{items}/app.conf")).await.status,
        204
    );
    let deleted = server
        .get("/api/v1/audit?action=config.delete&outcome=ok")
        .await;
    assert_eq!(deleted.body["items"][0]["before"]["name"], "app.conf");
    let resources = server
        .get(&format!("{ENVS}/dev/resources?kind=ConfigMap"))
        .await;
    assert!(
        !resources.body["items"].to_string().contains("app.conf"),
        "{:?}",
        resources.body
    );
}

#[tokio::test]
async fn a_namespace_belongs_to_one_environment_and_roles_decide_who_changes_config() {
    let server = Server::start().await;
    project(&server).await;
    env(&server, "dev").await;
    env(&server, "test").await;
    bind_new(&server, "dev", "shop-dev").await;
    let again = server
        .post(
            &format!("{ENVS}/dev/bindings"),
            json!({"cluster": "embedded", "namespace": "shop-dev"}),
        )
        .await;
    again.assert_problem(409, "binding-exists");
    let taken = server
        .post(
            &format!("{ENVS}/test/bindings"),
            json!({"cluster": "embedded", "namespace": "shop-dev"}),
        )
        .await;
    taken.assert_problem(409, "namespace-bound");
    server
        .post(
            &format!("{ENVS}/test/bindings"),
            json!({"cluster": "embedded", "namespace": "not-there-yet"}),
        )
        .await
        .assert_field(422, "namespace");
    let listed = server.get(&format!("{ENVS}/dev/bindings")).await;
    assert_eq!(
        listed.body["items"][0]["namespace"], "shop-dev",
        "{:?}",
        listed.body
    );

    // A developer reads environments and config items but does not change them.
    let dev_token = server.create_user("dora", false).await;
    let me = server
        .request("GET", "/api/v1/auth/me", None, Some(&dev_token))
        .await;
    let id = me.body["id"].as_str().expect("id").to_owned();
    let added = server
        .post(
            "/api/v1/projects/shop/members",
            json!({"userIds": [id], "role": "developer"}),
        )
        .await;
    assert_eq!(added.status, 200, "{:?}", added.body);
    let read = server
        .request("GET", &format!("{ENVS}/dev"), None, Some(&dev_token))
        .await;
    assert_eq!(read.status, 200, "{:?}", read.body);
    let list = server
        .request(
            "GET",
            &format!("{ENVS}/dev/config-items"),
            None,
            Some(&dev_token),
        )
        .await;
    assert_eq!(list.status, 200, "{:?}", list.body);
    server
        .request(
            "POST",
            &format!("{ENVS}/dev/config-items"),
            Some(json!({"name": "x", "items": [{"name": "k", "value": "v"}]})),
            Some(&dev_token),
        )
        .await
        .assert_problem(403, "forbidden");
    server
        .request("DELETE", &format!("{ENVS}/dev"), None, Some(&dev_token))
        .await
        .assert_problem(403, "forbidden");
    server
        .request("GET", "/api/v1/clusters", None, Some(&dev_token))
        .await
        .assert_problem(403, "forbidden");
}

/// kubectl to look with: `$WHARF_TEST_KUBECTL`, else the one on PATH.
fn kubectl(kubeconfig: &std::path::Path, args: &[&str]) -> String {
    let binary = wharf_tests::kubectl_binary();
    let output = std::process::Command::new(&binary)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--request-timeout", "20s"])
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("running {binary:?} failed ({e}); install kubectl or set WHARF_TEST_KUBECTL")
        });
    stdout(&output)
}

#[tokio::test]
async fn kubectl_sees_the_namespace_and_config_items_of_an_environment_made_with_the_cli() {
    let server = Server::start().await;
    stdout(&server.cli(&["project", "create", "shop", "--name", "Shop"]));
    stdout(&server.cli(&[
        "env",
        "create",
        "dev",
        "--project",
        "shop",
        "--name",
        "Development",
        "--type",
        "DEVELOP",
    ]));
    stdout(&server.cli(&[
        "env",
        "bind",
        "dev",
        "--project",
        "shop",
        "--namespace",
        "shop-dev",
        "--create-namespace",
    ]));
    stdout(&server.cli(&[
        "config-item",
        "create",
        "app-config",
        "--project",
        "shop",
        "--env",
        "dev",
        "--item",
        "LOG_LEVEL=debug",
    ]));
    let dir = wharf_tests::TempDir::new("kubeconfig");
    let kubeconfig = dir.path().join("config");
    std::fs::write(&kubeconfig, stdout(&server.cli(&["cluster", "kubeconfig"])))
        .expect("kubeconfig");

    let namespaces = kubectl(&kubeconfig, &["get", "namespaces"]);
    assert!(namespaces.contains("shop-dev"), "{namespaces}");
    let configmap = kubectl(
        &kubeconfig,
        &[
            "get",
            "configmap",
            "app-config",
            "-n",
            "shop-dev",
            "-o",
            "yaml",
        ],
    );
    assert!(
        configmap.contains("LOG_LEVEL: debug") && configmap.contains("wharf.dev/env: dev"),
        "{configmap}"
    );
}

#[tokio::test]
async fn environments_config_items_and_sealed_credentials_survive_kill_9() {
    let mut server = Server::start().await;
    project(&server).await;
    env(&server, "dev").await;
    bind_new(&server, "dev", "shop-dev").await;
    let created = server
        .post(
            &format!("{ENVS}/dev/config-items"),
            json!({"name": "app", "items": [{"name": "k", "value": "v"}]}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let kubeconfig = "apiVersion: v1
kind: Config
clusters: [{name: far, cluster: {server: 'https://127.0.0.1:9'}}]
users: [{name: u, user: {token: sealed-token}}]
contexts: [{name: c, context: {cluster: far, user: u}}]
current-context: c
";
    let far = server
        .post(
            "/api/v1/clusters",
            json!({"id": "far", "kind": "kubeconfig", "kubeconfig": kubeconfig}),
        )
        .await;
    assert_eq!(far.status, 201, "{:?}", far.body);

    server.kill_and_restart().await;
    let read = server.get(&format!("{ENVS}/dev/config-items/app")).await;
    assert_eq!(read.status, 200, "{:?}", read.body);
    assert_eq!(read.body["clusterState"], "in-sync", "{:?}", read.body);
    let env = server.get(&format!("{ENVS}/dev")).await;
    assert_eq!(
        env.body["bindings"][0]["namespace"], "shop-dev",
        "{:?}",
        env.body
    );
    // The sealed kubeconfig still opens: the cluster is unreachable, not misconfigured.
    server
        .get("/api/v1/clusters/far/namespaces")
        .await
        .assert_problem(503, "cluster-unreachable");
    let clusters = server.get("/api/v1/clusters").await;
    assert_eq!(clusters.body["total"], 2, "{:?}", clusters.body);
}

#[tokio::test]
async fn a_project_with_environments_cannot_be_deleted_until_they_are_gone() {
    let server = Server::start().await;
    project(&server).await;
    env(&server, "dev").await;
    server
        .delete("/api/v1/projects/shop")
        .await
        .assert_problem(409, "project-not-empty");
    let removed = server.delete(&format!("{ENVS}/dev")).await;
    assert!(
        removed.status == 204 || removed.status == 200,
        "{:?}",
        removed.body
    );
    let deleted = server.delete("/api/v1/projects/shop").await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
}
