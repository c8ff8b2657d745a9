//! Regions, resource pools, clusters (embedded, kubeconfig), health, namespaces and nodes,
//! through REST and the CLI. The embedded cluster is reached only through Wharf's API.

use serde_json::{Value, json};
use wharf_tests::{Server, eventually};

fn stdout(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "wharf failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A kubeconfig for a server nobody listens on, carrying `token`.
fn kubeconfig(token: &str) -> String {
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
    token: {token}
contexts:
- name: far-ctx
  context:
    cluster: far
    user: robot
current-context: far-ctx
"
    )
}

async fn patch(server: &Server, path: &str, body: Value) -> wharf_tests::Reply {
    server
        .request("PATCH", path, Some(body), Some(&server.token))
        .await
}

#[tokio::test]
async fn regions_pools_and_clusters_form_a_hierarchy_with_checked_input() {
    let server = Server::start().await;
    let embedded = server.get("/api/v1/clusters/embedded").await;
    assert_eq!(embedded.status, 200, "{:?}", embedded.body);
    assert_eq!(
        (
            embedded.body["kind"].as_str(),
            embedded.body["resourcePool"].as_str(),
            embedded.body["region"].as_str()
        ),
        (Some("embedded"), Some("local"), Some("local"))
    );
    assert!(embedded.body["createdAt"].is_string() && embedded.body["createdBy"] == "wharf");

    // Regions.
    for (body, field) in [
        (json!({"id": "H", "name": "North"}), "id"),
        (json!({"id": "h", "name": "North"}), "id"),
        (json!({"id": "hb", "name": ""}), "name"),
        (
            json!({"id": "hb", "name": "North", "description": "x".repeat(501)}),
            "description",
        ),
        (json!({"id": "hb"}), "name"),
        (
            json!({"id": "hb", "name": "North", "colour": "red"}),
            "colour",
        ),
    ] {
        server
            .post("/api/v1/regions", body)
            .await
            .assert_field(422, field);
    }
    let region = server
        .post("/api/v1/regions", json!({"id": "hb", "name": "North"}))
        .await;
    assert_eq!(region.status, 201, "{:?}", region.body);
    server
        .post("/api/v1/regions", json!({"id": "hb", "name": "Again"}))
        .await
        .assert_problem(409, "region-exists");
    server
        .get("/api/v1/regions/nowhere")
        .await
        .assert_problem(404, "region-not-found");
    let renamed = patch(
        &server,
        "/api/v1/regions/hb",
        json!({"name": "North China"}),
    )
    .await;
    assert_eq!(renamed.body["name"], "North China", "{:?}", renamed.body);

    // Resource pools.
    server
        .post(
            "/api/v1/resource-pools",
            json!({"id": "devxb", "name": "Dev", "region": "nowhere"}),
        )
        .await
        .assert_field(422, "region");
    let pool = server
        .post(
            "/api/v1/resource-pools",
            json!({"id": "devxb", "name": "Dev", "region": "hb"}),
        )
        .await;
    assert_eq!(pool.status, 201, "{:?}", pool.body);
    let pools = server.get("/api/v1/resource-pools?region=hb").await;
    assert_eq!(pools.body["total"], 1, "{:?}", pools.body);
    let region = server.get("/api/v1/regions/hb").await;
    assert_eq!(
        region.body["resourcePools"][0]["id"], "devxb",
        "{:?}",
        region.body
    );
    server
        .delete("/api/v1/regions/hb")
        .await
        .assert_problem(409, "region-in-use");
    server
        .get("/api/v1/resource-pools/nowhere")
        .await
        .assert_problem(404, "resource-pool-not-found");

    // Clusters: every field checked.
    let good = kubeconfig("t0ken");
    for (body, field) in [
        (
            json!({"id": "Prod", "kind": "kubeconfig", "kubeconfig": good}),
            "id",
        ),
        (json!({"id": "prod", "kind": "kubeconfig"}), "kubeconfig"),
        (
            json!({"id": "prod", "kind": "kubeconfig", "kubeconfig": "not: [yaml"}),
            "kubeconfig",
        ),
        (
            json!({"id": "prod", "kind": "kubeconfig", "kubeconfig": good, "context": "nope"}),
            "context",
        ),
        (
            json!({"id": "prod", "kind": "kubeconfig", "kubeconfigPath": "relative/path"}),
            "kubeconfigPath",
        ),
        (
            json!({"id": "prod", "kind": "kubeconfig", "kubeconfigPath": "/does/not/exist"}),
            "kubeconfigPath",
        ),
        (json!({"id": "prod", "kind": "embedded"}), "kind"),
        // Outside a pod there is no service account to use.
        (json!({"id": "prod", "kind": "in-cluster"}), "kind"),
        (json!({"id": "prod", "kind": "spaceship"}), "kind"),
        (
            json!({"id": "prod", "kind": "kubeconfig", "kubeconfig": good, "resourcePool": "nowhere"}),
            "resourcePool",
        ),
        (
            json!({"id": "prod", "kind": "kubeconfig", "kubeconfig": good, "name": ""}),
            "name",
        ),
    ] {
        if body["kind"] == "in-cluster" && std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
            continue;
        }
        server
            .post("/api/v1/clusters", body)
            .await
            .assert_field(422, field);
    }
    let prod = server
        .post(
            "/api/v1/clusters",
            json!({"id": "prod", "kind": "kubeconfig", "kubeconfig": good, "context": "far-ctx", "resourcePool": "devxb"}),
        )
        .await;
    assert_eq!(prod.status, 201, "{:?}", prod.body);
    assert_eq!(prod.body["region"], "hb");
    assert_eq!(prod.body["server"], "https://127.0.0.1:9");
    server
        .post(
            "/api/v1/clusters",
            json!({"id": "prod", "kind": "kubeconfig", "kubeconfig": good}),
        )
        .await
        .assert_problem(409, "cluster-exists");
    let in_pool = server.get("/api/v1/clusters?resourcePool=devxb").await;
    assert_eq!(in_pool.body["total"], 1, "{:?}", in_pool.body);
    server
        .delete("/api/v1/resource-pools/devxb")
        .await
        .assert_problem(409, "resource-pool-in-use");

    // Unreachable clusters report it in their health, with a 200.
    let health = server.get("/api/v1/clusters/prod/health").await;
    assert_eq!(health.status, 200, "{:?}", health.body);
    assert_eq!(health.body["reachable"], false, "{:?}", health.body);
    assert!(health.body["error"].is_string());
    server
        .get("/api/v1/clusters/nowhere/health")
        .await
        .assert_problem(404, "cluster-not-found");
    server
        .get("/api/v1/clusters/prod/namespaces")
        .await
        .assert_problem(503, "cluster-unreachable");

    // The embedded cluster stays; others go, then their pool and region.
    server
        .delete("/api/v1/clusters/embedded")
        .await
        .assert_problem(409, "cluster-embedded");
    assert_eq!(server.delete("/api/v1/clusters/prod").await.status, 204);
    server
        .get("/api/v1/clusters/prod")
        .await
        .assert_problem(404, "cluster-not-found");
    assert_eq!(
        server.delete("/api/v1/resource-pools/devxb").await.status,
        204
    );
    assert_eq!(server.delete("/api/v1/regions/hb").await.status, 204);
}

#[tokio::test]
async fn pasted_credentials_are_encrypted_at_rest_and_never_returned() {
    let server = Server::start().await;
    let secret = format!("secret-{}", uuid::Uuid::new_v4());
    let created = server
        .post(
            "/api/v1/clusters",
            json!({"id": "vault", "kind": "kubeconfig", "kubeconfig": kubeconfig(&secret)}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["hasCredentials"], true);
    assert!(
        created.body.get("kubeconfig").is_none(),
        "{:?}",
        created.body
    );

    let replaced = patch(
        &server,
        "/api/v1/clusters/vault",
        json!({"kubeconfig": kubeconfig(&format!("{secret}-2")), "name": "Vault"}),
    )
    .await;
    assert_eq!(replaced.status, 200, "{:?}", replaced.body);
    patch(
        &server,
        "/api/v1/clusters/vault",
        json!({"context": "missing"}),
    )
    .await
    .assert_field(422, "context");

    let mut seen = Vec::new();
    for path in [
        "/api/v1/clusters/vault",
        "/api/v1/clusters",
        "/api/v1/clusters/vault/health",
        "/api/v1/audit?pageSize=500&target=cluster:vault",
    ] {
        let reply = server.get(path).await;
        assert_eq!(reply.status, 200, "{path}: {:?}", reply.body);
        seen.push(reply.body.to_string());
    }
    let cli = stdout(&server.cli(&["cluster", "get", "vault"]));
    seen.push(cli);
    seen.push(stdout(&server.cli(&["cluster", "list"])));
    for text in &seen {
        assert!(!text.contains(&secret), "the secret leaked: {text}");
    }
    assert!(seen[0].contains("\"hasCredentials\":true"), "{}", seen[0]);

    // Nothing in the data directory holds the secret in clear; the key file is owner-only.
    let mut stack = vec![server.data.path().to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("data dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                if !path.ends_with("cache") {
                    stack.push(path);
                }
            } else if let Ok(bytes) = std::fs::read(&path) {
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "{} holds the secret in clear",
                    path.display()
                );
            }
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let key = server.data.path().join("cluster-credentials.key");
        let mode = std::fs::metadata(&key)
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[tokio::test]
async fn the_embedded_cluster_is_healthy_and_lists_nodes_with_capacity() {
    let server = Server::start().await;
    let health = server.get("/api/v1/clusters/embedded/health").await;
    assert_eq!(health.body["reachable"], true, "{:?}", health.body);
    assert!(
        health.body["serverVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with('v')),
        "{:?}",
        health.body
    );
    assert!(health.body["latencyMs"].is_u64());
    let out = stdout(&server.cli(&["cluster", "health", "embedded"]));
    assert!(out.contains("reachable"), "{out}");

    let nodes = server.get("/api/v1/clusters/embedded/nodes").await;
    assert_eq!(nodes.status, 200, "{:?}", nodes.body);
    let first = &nodes.body["items"][0];
    assert!(first["capacity"]["cpu"].is_string(), "{first}");
    assert!(first["capacity"]["memory"].is_string(), "{first}");
    let node = first["name"].as_str().expect("node name").to_owned();

    // Labels: add, change, remove; reserved prefixes and bad syntax name the field.
    let path = format!("/api/v1/clusters/embedded/nodes/{node}/labels");
    let labelled = patch(
        &server,
        &path,
        json!({"labels": {"disktype": "ssd", "wharf.dev/zone": "a"}}),
    )
    .await;
    assert_eq!(labelled.status, 200, "{:?}", labelled.body);
    assert_eq!(labelled.body["labels"]["disktype"], "ssd");
    let changed = patch(
        &server,
        &path,
        json!({"labels": {"disktype": "hdd", "wharf.dev/zone": null}}),
    )
    .await;
    assert_eq!(changed.body["labels"]["disktype"], "hdd");
    assert!(
        changed.body["labels"].get("wharf.dev/zone").is_none(),
        "{:?}",
        changed.body
    );
    let reserved = patch(
        &server,
        &path,
        json!({"labels": {"kubernetes.io/hostname": "x"}}),
    )
    .await;
    reserved.assert_field(422, "labels.kubernetes.io/hostname");
    assert!(
        reserved.body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("reserved")
    );
    patch(&server, &path, json!({"labels": {"bad key": "x"}}))
        .await
        .assert_field(422, "labels.bad key");
    patch(&server, &path, json!({"labels": {"ok": "bad value"}}))
        .await
        .assert_field(422, "labels.ok");
    patch(&server, &path, json!({"labels": {}}))
        .await
        .assert_field(422, "labels");
    patch(
        &server,
        "/api/v1/clusters/embedded/nodes/no-such-node/labels",
        json!({"labels": {"a": "b"}}),
    )
    .await
    .assert_problem(404, "node-not-found");

    let out = stdout(&server.cli(&["node", "label", &node, "team=web", "disktype-"]));
    assert!(
        out.contains("team=web") && !out.contains("disktype"),
        "{out}"
    );
    let listed = stdout(&server.cli(&["node", "list"]));
    assert!(
        listed.contains(&node) && listed.contains("team=web"),
        "{listed}"
    );
    let audit = server
        .get("/api/v1/audit?action=node.label&outcome=ok")
        .await;
    let record = &audit.body["items"][0];
    assert_eq!(record["after"]["team"], "web", "{record}");
    assert_eq!(record["before"]["disktype"], "hdd", "{record}");
}

#[tokio::test]
async fn namespaces_are_unique_and_bound_ones_cannot_be_deleted() {
    let server = Server::start().await;
    let ns = "/api/v1/clusters/embedded/namespaces";
    for (name, field) in [
        ("Team", "name"),
        ("-team", "name"),
        ("a".repeat(64).as_str(), "name"),
    ] {
        server
            .post(ns, json!({"name": name}))
            .await
            .assert_field(422, field);
    }
    server.post(ns, json!({})).await.assert_field(422, "name");
    server
        .post(
            "/api/v1/clusters/nowhere/namespaces",
            json!({"name": "team-a"}),
        )
        .await
        .assert_problem(404, "cluster-not-found");
    let created = server.post(ns, json!({"name": "team-a"})).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    server
        .post(ns, json!({"name": "team-a"}))
        .await
        .assert_problem(409, "namespace-exists");
    let listed = server.get(ns).await;
    assert!(
        listed.body["items"].to_string().contains("team-a"),
        "{:?}",
        listed.body
    );
    assert!(stdout(&server.cli(&["namespace", "list"])).contains("team-a"));

    server
        .delete(&format!("{ns}/kube-system"))
        .await
        .assert_problem(409, "namespace-in-use");
    server
        .delete(&format!("{ns}/never-made"))
        .await
        .assert_problem(404, "namespace-not-found");

    // Bound by an environment: refused until unbound.
    let project = server
        .post("/api/v1/projects", json!({"code": "shop", "name": "Shop"}))
        .await;
    assert_eq!(project.status, 201, "{:?}", project.body);
    let env = server
        .post(
            "/api/v1/projects/shop/environments",
            json!({"envCode": "dev", "envName": "Development", "envType": "DEVELOP"}),
        )
        .await;
    assert_eq!(env.status, 201, "{:?}", env.body);
    let bound = server
        .post(
            "/api/v1/projects/shop/environments/dev/bindings",
            json!({"cluster": "embedded", "namespace": "team-a"}),
        )
        .await;
    assert_eq!(bound.status, 200, "{:?}", bound.body);
    let refused = server.delete(&format!("{ns}/team-a")).await;
    refused.assert_problem(409, "namespace-in-use");
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("shop/dev")
    );
    server
        .delete("/api/v1/clusters/embedded")
        .await
        .assert_problem(409, "cluster-embedded");
    let unbound = server
        .delete("/api/v1/projects/shop/environments/dev/bindings/embedded/team-a")
        .await;
    assert_eq!(unbound.status, 200, "{:?}", unbound.body);
    assert_eq!(server.delete(&format!("{ns}/team-a")).await.status, 204);
    assert!(
        eventually(|| async {
            !server.get(ns).await.body["items"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|n| n["name"] == "team-a" && n["phase"] == "Active")
        })
        .await
    );
    let out = stdout(&server.cli(&["namespace", "create", "team-b"]));
    assert!(out.contains("team-b"), "{out}");
}

#[tokio::test]
async fn a_kubeconfig_cluster_is_driven_like_the_embedded_one() {
    // Server A's embedded cluster, reached over HTTPS with the kubeconfig A hands out.
    let a = Server::start().await;
    let handed = a.get("/api/v1/clusters/embedded/kubeconfig").await;
    assert_eq!(handed.status, 200, "{:?}", handed.body);
    let kubeconfig = handed.body["kubeconfig"]
        .as_str()
        .expect("kubeconfig")
        .to_owned();

    // Pasted into A itself: a second cluster, reachable with a version and a latency.
    let pasted = a
        .post(
            "/api/v1/clusters",
            json!({"id": "loopback", "kind": "kubeconfig", "kubeconfig": kubeconfig}),
        )
        .await;
    assert_eq!(pasted.status, 201, "{:?}", pasted.body);
    let health = a.get("/api/v1/clusters/loopback/health").await;
    assert_eq!(health.body["reachable"], true, "{:?}", health.body);

    // Server B started with `--kubeconfig`: no embedded cluster, the file is cluster `default`.
    let dir = wharf_tests::TempDir::new("kubeconfig");
    let path = dir.path().join("config");
    std::fs::write(&path, &kubeconfig).expect("kubeconfig file");
    let b = Server::start_with(&["--kubeconfig", path.to_str().expect("utf-8 path")]).await;
    let default = b.get("/api/v1/clusters/default").await;
    assert_eq!(
        (
            default.body["kind"].as_str(),
            default.body["hasCredentials"].as_bool(),
            default.body["kubeconfigPath"].as_str()
        ),
        (Some("kubeconfig"), Some(false), path.to_str()),
        "{:?}",
        default.body
    );
    b.get("/api/v1/clusters/embedded")
        .await
        .assert_problem(404, "cluster-not-found");
    let health = b.get("/api/v1/clusters/default/health").await;
    assert_eq!(health.body["reachable"], true, "{:?}", health.body);

    // The same environment story on B lands in A's cluster.
    assert_eq!(
        b.post("/api/v1/projects", json!({"code": "shop", "name": "Shop"}))
            .await
            .status,
        201
    );
    let env = b
        .post(
            "/api/v1/projects/shop/environments",
            json!({"envCode": "far", "envName": "Far away", "envType": "TEST"}),
        )
        .await;
    assert_eq!(env.status, 201, "{:?}", env.body);
    let bound = b
        .post(
            "/api/v1/projects/shop/environments/far/bindings",
            json!({"cluster": "default", "namespace": "from-b", "createNamespace": true}),
        )
        .await;
    assert_eq!(bound.status, 200, "{:?}", bound.body);
    let item = b
        .post(
            "/api/v1/projects/shop/environments/far/config-items",
            json!({"name": "settings", "items": [{"name": "k", "value": "v"}]}),
        )
        .await;
    assert_eq!(item.status, 201, "{:?}", item.body);
    let resources = b
        .get("/api/v1/projects/shop/environments/far/resources?kind=ConfigMap")
        .await;
    assert!(
        resources.body["items"].to_string().contains("settings"),
        "{:?}",
        resources.body
    );
    let in_a = a.get("/api/v1/clusters/embedded/namespaces").await;
    assert!(
        in_a.body["items"].to_string().contains("from-b"),
        "{:?}",
        in_a.body
    );
}
