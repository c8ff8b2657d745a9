//! Deploy configs (seed 001 §5.5) through REST and the CLI, a deploy that starts from
//! one, the deploy spec's validation as a deploy request meets it, and the rendered
//! objects as kubectl applies them to the embedded cluster.

use std::time::Duration;

use serde_json::{Value, json};
use wharf_tests::{Kubectl, Server};

const CONFIGS: &str = "/api/v1/projects/shop/apps/cart/deploy-configs";
const DEPLOY: &str = "/api/v1/projects/shop/apps/cart/deployments/dev";

fn stdout(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "wharf failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Project `shop` with app `cart`, environment `dev` bound to namespace `shop-dev` with
/// config item `app-config` (key `level`), and an unbound environment `prod`.
async fn shop(server: &Server) {
    let created = [
        (
            "/api/v1/projects",
            json!({"code": "shop", "name": "Shop"}),
            201,
        ),
        (
            "/api/v1/projects/shop/environments",
            json!({"envCode": "dev", "envName": "Development", "envType": "DEVELOP"}),
            201,
        ),
        (
            "/api/v1/projects/shop/environments",
            json!({"envCode": "prod", "envName": "Production", "envType": "ONLINE"}),
            201,
        ),
        (
            "/api/v1/projects/shop/environments/dev/bindings",
            json!({"cluster": "embedded", "namespace": "shop-dev", "createNamespace": true}),
            200,
        ),
        (
            "/api/v1/projects/shop/environments/dev/config-items",
            json!({"name": "app-config", "items": [{"name": "level", "value": "debug"}]}),
            201,
        ),
        (
            "/api/v1/projects/shop/apps",
            json!({"name": "cart", "category": "MICRO_SERVICE"}),
            201,
        ),
    ];
    for (path, body, status) in created {
        let reply = server.post(path, body).await;
        assert_eq!(reply.status, status, "{path}: {:?}", reply.body);
    }
}

fn base_config() -> Value {
    json!({
        "name": "base",
        "env": "dev",
        "envVariableList": [
            {"name": "MODE", "type": "CUSTOM", "value": "debug"},
            {"name": "LEVEL", "type": "CONFIG_ITEM", "configItem": "app-config", "key": "level"}
        ],
        "lifeCycleMgt": {
            "readiness": {"enabled": true, "mode": "HTTP_GET", "httpGet": {"path": "/ready", "port": 8080}}
        },
        "podResourceSpec": {"cpuRequest": 250, "cpuLimit": 500, "memoryRequest": 256, "memoryLimit": 512},
        "startCommand": {"command": "nginx -g", "args": ["daemon off;"]}
    })
}

async fn audit(server: &Server, action: &str) -> Vec<Value> {
    let reply = server
        .get(&format!("/api/v1/audit?pageSize=500&action={action}"))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_deploy_config_is_created_listed_read_changed_in_parts_and_deleted() {
    let server = Server::start().await;
    shop(&server).await;

    let created = server.post(CONFIGS, base_config()).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let config = created.body;
    let id = config["id"].as_str().expect("id").to_owned();
    assert_eq!(id.len(), 32);
    assert_eq!(
        (
            &config["project"],
            &config["app"],
            &config["env"],
            &config["name"]
        ),
        (
            &json!("shop"),
            &json!("cart"),
            &json!("dev"),
            &json!("base")
        )
    );
    assert_eq!(config["createdBy"], "admin");
    assert!(config["createdAt"].is_string() && config["updatedAt"].is_string());
    assert_eq!(config["envVariableList"][1]["configItem"], "app-config");
    assert_eq!(config["podResourceSpec"]["cpuLimit"], 500);

    // Names are unique per app × environment: taken in dev, free in prod.
    server
        .post(CONFIGS, base_config())
        .await
        .assert_problem(409, "deploy-config-name-taken");
    let mut in_prod = base_config();
    in_prod["env"] = json!("prod");
    // prod has no config item `app-config`: the reference is checked per environment.
    server
        .post(CONFIGS, in_prod.clone())
        .await
        .assert_field(422, "envVariableList[1].configItem");
    in_prod["envVariableList"] = json!([{"name": "MODE", "value": "quiet"}]);
    let prod = server.post(CONFIGS, in_prod).await;
    assert_eq!(prod.status, 201, "{:?}", prod.body);
    let prod_id = prod.body["id"].as_str().expect("id").to_owned();

    let all = server.get(CONFIGS).await;
    assert_eq!(all.body["total"], 2, "{:?}", all.body);
    assert_eq!(all.body["items"][0]["id"], id.as_str());
    let dev_only = server.get(&format!("{CONFIGS}?env=dev")).await;
    assert_eq!(dev_only.body["total"], 1);
    assert_eq!(dev_only.body["items"][0]["id"], id.as_str());
    server
        .get(&format!("{CONFIGS}?env=nowhere"))
        .await
        .assert_problem(404, "env-not-found");

    // By id; by name only while one config of the app has it.
    let read = server.get(&format!("{CONFIGS}/{id}")).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.body, config);
    server
        .get(&format!("{CONFIGS}/base"))
        .await
        .assert_problem(409, "deploy-config-ambiguous");
    let renamed = server
        .request(
            "PATCH",
            &format!("{CONFIGS}/{prod_id}"),
            Some(json!({"name": "prod defaults", "lifeCycleMgt": null})),
            Some(&server.token),
        )
        .await;
    assert_eq!(renamed.status, 200, "{:?}", renamed.body);
    assert_eq!(renamed.body["name"], "prod defaults");
    assert!(renamed.body["lifeCycleMgt"].is_null());
    assert_eq!(
        renamed.body["podResourceSpec"]["cpuLimit"], 500,
        "untouched"
    );
    let by_name = server.get(&format!("{CONFIGS}/base")).await;
    assert_eq!(by_name.body["id"], id.as_str());

    // Seed 5.5.5: replace the env vars; 5.5.6: replace the pod resources.
    let vars = server
        .put(
            &format!("{CONFIGS}/{id}/env-vars"),
            json!({"envVariableList": [{"name": "ONLY", "value": "1"}]}),
        )
        .await;
    assert_eq!(vars.status, 200, "{:?}", vars.body);
    assert_eq!(
        vars.body["envVariableList"],
        json!([{"name": "ONLY", "type": "CUSTOM", "value": "1"}])
    );
    assert_eq!(
        vars.body["startCommand"]["command"], "nginx -g",
        "untouched"
    );
    let resources = server
        .put(
            &format!("{CONFIGS}/{id}/pod-resources"),
            json!({"cpuRequest": 100, "cpuLimit": 1000, "memoryRequest": 128, "memoryLimit": 1024}),
        )
        .await;
    assert_eq!(resources.status, 200, "{:?}", resources.body);
    assert_eq!(resources.body["podResourceSpec"]["cpuLimit"], 1000);
    assert_eq!(
        resources.body["envVariableList"][0]["name"], "ONLY",
        "untouched"
    );
    server
        .put(
            &format!("{CONFIGS}/{id}/pod-resources"),
            json!({"cpuRequest": 2000, "cpuLimit": 1000, "memoryRequest": 128, "memoryLimit": 1024}),
        )
        .await
        .assert_field(422, "cpuRequest");
    server
        .put(
            &format!("{CONFIGS}/{id}/pod-resources"),
            json!({"cpuRequest": 100, "cpuLimit": 1000}),
        )
        .await
        .assert_field(422, "memoryRequest");

    // Every change is audited with before and after.
    let updates = audit(&server, "deploy-config.update").await;
    let pod_resources = updates
        .iter()
        .find(|r| r["outcome"] == "ok" && r["after"]["podResourceSpec"]["cpuLimit"] == 1000)
        .expect("the pod-resources change is audited");
    assert_eq!(pod_resources["before"]["podResourceSpec"]["cpuLimit"], 500);
    assert_eq!(audit(&server, "deploy-config.create").await.len(), 4);
    let accepted = audit(&server, "deploy-config.create&outcome=ok").await;
    assert_eq!(accepted.len(), 2);
    assert!(accepted.iter().all(|r| r["after"]["id"].is_string()));

    let deleted = server.delete(&format!("{CONFIGS}/{id}")).await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    server
        .get(&format!("{CONFIGS}/{id}"))
        .await
        .assert_problem(404, "deploy-config-not-found");
    let removed = audit(&server, "deploy-config.delete").await;
    assert_eq!(removed[0]["before"]["id"], id.as_str());
    assert_eq!(server.get(CONFIGS).await.body["total"], 1);
}

#[tokio::test]
async fn deploy_configs_refuse_bad_fields_and_missing_apps_environments_and_items() {
    let server = Server::start().await;
    shop(&server).await;
    let with = |path: &str, value: Value| {
        let mut body = base_config();
        let mut at = &mut body;
        let parts: Vec<&str> = path.split('.').collect();
        for part in &parts[..parts.len() - 1] {
            at = &mut at[*part];
        }
        at[parts[parts.len() - 1]] = value;
        body
    };
    for (body, field) in [
        (with("name", json!("")), "name"),
        (with("name", json!("x".repeat(51))), "name"),
        (with("colour", json!("red")), "colour"),
        (
            with("envVariableList", json!([{"name": "9LIVES", "value": "x"}])),
            "envVariableList[0].name",
        ),
        (
            with(
                "envVariableList",
                json!([{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]),
            ),
            "envVariableList[1].name",
        ),
        (
            with(
                "envVariableList",
                json!([{"name": "A", "type": "CONFIG_ITEM", "configItem": "missing", "key": "k"}]),
            ),
            "envVariableList[0].configItem",
        ),
        (
            with(
                "envVariableList",
                json!([{"name": "A", "type": "SECRET", "secret": "db"}]),
            ),
            "envVariableList[0].key",
        ),
        (
            with("lifeCycleMgt.readiness.httpGet.port", json!(0)),
            "lifeCycleMgt.readiness.httpGet.port",
        ),
        (
            with("lifeCycleMgt.readiness.mode", json!("TCP_SOCKET")),
            "lifeCycleMgt.readiness.httpGet",
        ),
        (
            with("podResourceSpec.memoryRequest", json!(1024)),
            "podResourceSpec.memoryRequest",
        ),
        (
            with("startCommand.command", json!("  ")),
            "startCommand.command",
        ),
    ] {
        let reply = server.post(CONFIGS, body.clone()).await;
        reply.assert_field(422, field);
    }
    server
        .post(CONFIGS, with("env", json!("nowhere")))
        .await
        .assert_problem(404, "env-not-found");
    server
        .post(
            "/api/v1/projects/shop/apps/ghost/deploy-configs",
            base_config(),
        )
        .await
        .assert_problem(404, "app-not-found");
    server
        .get("/api/v1/projects/nope/apps/cart/deploy-configs")
        .await
        .assert_problem(404, "project-not-found");
    server
        .get(&format!("{CONFIGS}/nowhere"))
        .await
        .assert_problem(404, "deploy-config-not-found");
    assert_eq!(server.get(CONFIGS).await.body["total"], 0);
}

#[tokio::test]
async fn a_developer_reads_deploy_configs_but_only_maintainers_change_them() {
    let server = Server::start().await;
    shop(&server).await;
    let created = server.post(CONFIGS, base_config()).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["id"].as_str().expect("id").to_owned();
    let mut tokens = Vec::new();
    for (name, role) in [("dave", "developer"), ("mia", "maintainer")] {
        let token = server.create_user(name, false).await;
        let me = server
            .request("GET", "/api/v1/auth/me", None, Some(&token))
            .await;
        let added = server
            .post(
                "/api/v1/projects/shop/members",
                json!({"userIds": [me.body["id"]], "role": role}),
            )
            .await;
        assert_eq!(added.status, 200, "{:?}", added.body);
        tokens.push(token);
    }
    let (dev, maintainer) = (&tokens[0], &tokens[1]);
    let read = server
        .request("GET", &format!("{CONFIGS}/{id}"), None, Some(dev))
        .await;
    assert_eq!(read.status, 200, "{:?}", read.body);
    let listed = server.request("GET", CONFIGS, None, Some(dev)).await;
    assert_eq!(listed.body["total"], 1, "{:?}", listed.body);
    let body = json!({"envVariableList": []});
    server
        .request(
            "PUT",
            &format!("{CONFIGS}/{id}/env-vars"),
            Some(body.clone()),
            Some(dev),
        )
        .await
        .assert_problem(403, "forbidden");
    let changed = server
        .request(
            "PUT",
            &format!("{CONFIGS}/{id}/env-vars"),
            Some(body),
            Some(maintainer),
        )
        .await;
    assert_eq!(changed.status, 200, "{:?}", changed.body);
    let changed_by = changed.body["updatedBy"].as_str().expect("updatedBy");
    assert_eq!(changed_by, "mia");
}

#[tokio::test]
async fn the_cli_manages_deploy_configs_from_flags_and_files() {
    let server = Server::start().await;
    shop(&server).await;
    let app = ["--project", "shop", "--app", "cart"];
    let created = stdout(
        &server.cli(
            &[
                &["deploy-config", "create", "base"][..],
                &app,
                &[
                    "--env",
                    "dev",
                    "--var",
                    "MODE=debug",
                    "--config-var",
                    "LEVEL=app-config/level",
                    "--cpu-request",
                    "250",
                    "--cpu-limit",
                    "500",
                    "--memory-request",
                    "256",
                    "--memory-limit",
                    "512",
                    "--command",
                    "nginx",
                    "--arg",
                    "-g",
                    "--arg",
                    "daemon off;",
                ],
            ]
            .concat(),
        ),
    );
    let created: Value = serde_json::from_str(&created).expect("the created config as JSON");
    assert_eq!(
        created["envVariableList"],
        json!([{"name": "MODE", "type": "CUSTOM", "value": "debug"},
               {"name": "LEVEL", "type": "CONFIG_ITEM", "configItem": "app-config", "key": "level"}])
    );
    assert_eq!(
        created["startCommand"],
        json!({"command": "nginx", "args": ["-g", "daemon off;"]})
    );
    assert_eq!(created["podResourceSpec"]["memoryLimit"], 512);

    let dir = wharf_tests::TempDir::new("deploy-config");
    let file = dir.path().join("prod.json");
    std::fs::write(
        &file,
        json!({"lifeCycleMgt": {"liveness": {"mode": "TCP_SOCKET", "tcpSocket": {"port": 80}}},
               "envVariableList": [{"name": "MODE", "value": "from-file"}]})
        .to_string(),
    )
    .expect("writing the file");
    let from_file = stdout(
        &server.cli(
            &[
                &["deploy-config", "create", "prod"][..],
                &app,
                &["--env", "prod", "--file", file.to_str().expect("path")],
            ]
            .concat(),
        ),
    );
    let from_file: Value = serde_json::from_str(&from_file).expect("JSON");
    assert_eq!(
        from_file["lifeCycleMgt"]["liveness"]["tcpSocket"]["port"],
        80
    );
    assert_eq!(from_file["envVariableList"][0]["value"], "from-file");

    let table = stdout(&server.cli(&[&["deploy-config", "list"][..], &app].concat()));
    assert!(
        table.contains("base") && table.contains("prod") && table.contains("MODE, LEVEL"),
        "{table}"
    );
    let dev_only = stdout(
        &server.cli(
            &[
                &["deploy-config", "list", "--json", "--env", "dev"][..],
                &app,
            ]
            .concat(),
        ),
    );
    let dev_only: Value = serde_json::from_str(&dev_only).expect("JSON");
    assert_eq!(dev_only["total"], 1);

    stdout(
        &server.cli(
            &[
                &["deploy-config", "set-env", "base", "--var", "ONLY=1"][..],
                &app,
            ]
            .concat(),
        ),
    );
    stdout(
        &server.cli(
            &[
                &["deploy-config", "set-resources", "base"][..],
                &app,
                &[
                    "--cpu-request",
                    "100",
                    "--cpu-limit",
                    "100",
                    "--memory-request",
                    "64",
                    "--memory-limit",
                    "64",
                ],
            ]
            .concat(),
        ),
    );
    stdout(
        &server.cli(
            &[
                &["deploy-config", "update", "base", "--name", "dev-base"][..],
                &app,
            ]
            .concat(),
        ),
    );
    let shown: Value = serde_json::from_str(&stdout(
        &server.cli(&[&["deploy-config", "get", "dev-base"][..], &app].concat()),
    ))
    .expect("JSON");
    assert_eq!(
        shown["envVariableList"],
        json!([{"name": "ONLY", "type": "CUSTOM", "value": "1"}])
    );
    assert_eq!(shown["podResourceSpec"]["cpuLimit"], 100);

    let refused = server.cli(
        &[
            &["deploy-config", "set-resources", "dev-base"][..],
            &app,
            &[
                "--cpu-request",
                "200",
                "--cpu-limit",
                "100",
                "--memory-request",
                "64",
                "--memory-limit",
                "64",
            ],
        ]
        .concat(),
    );
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("cpuRequest"), "{message}");

    stdout(&server.cli(&[&["deploy-config", "delete", "dev-base"][..], &app].concat()));
    assert_eq!(server.get(CONFIGS).await.body["total"], 1);
}

async fn until_state(server: &Server, id: &str, state: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..600 {
        last = server
            .get(&format!("/api/v1/change-orders/{id}"))
            .await
            .body;
        if last["state"] == state {
            return last;
        }
        assert!(last["state"] != "failed", "change order failed: {last:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("change order {id} never reached {state}: {last:#}");
}

#[tokio::test]
async fn a_deploy_starts_from_a_config_and_runs_what_was_rendered() {
    let server = Server::start().await;
    shop(&server).await;
    let created = server.post(CONFIGS, base_config()).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["id"].as_str().expect("id");

    let accepted = server
        .post(
            &format!("{DEPLOY}/deploy"),
            json!({"image": "nginx:1.25", "replicas": 2, "deployConfig": id,
                   "envVariableList": [{"name": "MODE", "value": "release"}],
                   "ports": [{"containerPort": 8080}]}),
        )
        .await;
    assert_eq!(accepted.status, 202, "{:?}", accepted.body);
    let change = accepted.body["changeOrderId"]
        .as_str()
        .expect("changeOrderId");
    let done = until_state(&server, change, "succeeded").await;
    let yaml = done["resources"][0]["yaml"]
        .as_str()
        .expect("rendered YAML");
    assert!(
        yaml.contains("configMapKeyRef") && yaml.contains("250m"),
        "{yaml}"
    );

    // What runs is what the change order shows: the config's parts, the request's MODE.
    let kubectl = Kubectl::for_server(&server).await;
    let live: Value = serde_json::from_str(&kubectl.ok(&[
        "get",
        "deployment",
        "cart-v1",
        "-n",
        "shop-dev",
        "-o",
        "json",
    ]))
    .expect("JSON");
    let container = &live["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["env"],
        json!([
            {"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "level"}}},
            {"name": "MODE", "value": "release"}
        ])
    );
    assert_eq!(
        container["resources"]["limits"],
        json!({"cpu": "500m", "memory": "512Mi"})
    );
    assert_eq!(container["command"], json!(["nginx", "-g"]));
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/ready");
    assert_eq!(live["metadata"]["labels"]["wharf.dev/revision"], "1");
}

#[tokio::test]
async fn a_deploy_request_is_checked_field_by_field() {
    let server = Server::start().await;
    shop(&server).await;
    let deploy = |body: Value| {
        let server = &server;
        async move { server.post(&format!("{DEPLOY}/deploy"), body).await }
    };
    let batches = |list: Value| json!({"image": "nginx", "replicas": 3, "deploymentStrategy": {"batchList": list}});
    for (body, field) in [
        (json!({"replicas": 1}), "image"),
        (
            json!({"image": "nginx", "replicas": 1, "replcias": 2}),
            "replcias",
        ),
        (
            batches(json!([{"batchSeq": 1, "instNum": 1}, {"batchSeq": 2, "instNum": 1}])),
            "deploymentStrategy.batchList",
        ),
        (
            batches(json!([{"batchSeq": 1, "instNum": 3}, {"batchSeq": 3, "instNum": 0}])),
            "deploymentStrategy.batchList[1].batchSeq",
        ),
        (
            json!({"image": "nginx", "replicas": 1, "deploymentStrategy": {"grayUpdate": true}}),
            "deploymentStrategy.grayRule",
        ),
        (
            json!({"image": "nginx", "replicas": 1,
                   "lifeCycleMgt": {"liveness": {"mode": "HTTP_GET", "httpGet": {"path": "/"}}}}),
            "lifeCycleMgt.liveness.httpGet.port",
        ),
        (
            json!({"image": "nginx", "replicas": 1, "labels": {"wharf.dev/revision": "9"}}),
            "labels.wharf.dev/revision",
        ),
        (
            json!({"image": "nginx", "replicas": 1,
                   "configMgtList": [{"mountSource": "not-there"}]}),
            "configMgtList[0].mountSource",
        ),
    ] {
        deploy(body).await.assert_field(422, field);
    }
    let gray = deploy(json!({"image": "nginx", "replicas": 1,
        "deploymentStrategy": {"grayRule": {"grayType": "PERCENT", "percent": {"tag": "canary", "rate": 10}}}}))
    .await;
    gray.assert_field(422, "deploymentStrategy.grayUpdate");
    let detail = gray.body["detail"].as_str().expect("detail");
    assert!(detail.contains("only used with grayUpdate"), "{detail}");
}

#[tokio::test]
async fn rendered_yaml_applies_with_kubectl_and_autoscalers_are_listed() {
    use wharf_host::domain::render::{self, Workload};
    use wharf_host::domain::spec::{DeploySpec, ServiceSpec};

    let server = Server::start().await;
    shop(&server).await;
    let spec: DeploySpec = serde_json::from_value(json!({
        "image": "nginx:1.25", "replicas": 2,
        "podResourceSpec": {"cpuRequest": 100, "cpuLimit": 200, "memoryRequest": 64, "memoryLimit": 128},
        "envVariableList": [{"name": "PORT", "value": "8080"}, {"name": "DEBUG", "value": "true"},
                            {"name": "LEVEL", "type": "CONFIG_ITEM", "configItem": "app-config", "key": "level"}],
        "configMgtList": [{"mountSource": "app-config", "mountConfigList": [{"name": "level", "mountPath": "/etc/app/level"}]}],
        "lifeCycleMgt": {"liveness": {"mode": "EXEC", "exec": {"command": ["true"]}}},
        "ports": [{"name": "http", "containerPort": 8080}],
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0},
        "hpa": {"minReplicas": 2, "maxReplicas": 4, "targetCPUUtilization": 60}
    }))
    .expect("spec");
    spec.validate().expect("valid");
    let service: ServiceSpec = serde_json::from_value(json!({"name": "cart", "type": "ClusterIP",
        "servicesPorts": [{"port": 80, "targetPort": 8080}]}))
    .expect("service");
    let w = Workload {
        project: "shop",
        app: "cart",
        env: "dev",
        workload: "cart",
        namespace: "shop-dev",
        revision: 1,
        change_order: "by-hand",
    };
    let documents = [
        render::to_yaml(&render::deployment(&spec, &w, 2)),
        render::to_yaml(&render::hpa(&spec, &w).expect("hpa")),
        render::to_yaml(&render::service(&service, &w)),
    ]
    .join("---\n");
    let kubectl = Kubectl::for_server(&server).await;
    let (ok, out, err) = kubectl.run(&["apply", "-f", "-"], Some(&documents));
    assert!(ok, "kubectl apply failed: {err}\n{out}\n{documents}");

    let hpas: Value =
        serde_json::from_str(&kubectl.ok(&["get", "hpa", "-n", "shop-dev", "-o", "json"]))
            .expect("JSON");
    let hpa = &hpas["items"][0];
    assert_eq!(hpa["metadata"]["name"], "cart-v1");
    assert_eq!(hpa["spec"]["scaleTargetRef"]["name"], "cart-v1");
    assert_eq!(hpa["spec"]["maxReplicas"], 4);
    let table = kubectl.ok(&[
        "get",
        "horizontalpodautoscalers.autoscaling",
        "-n",
        "shop-dev",
    ]);
    assert!(table.contains("cart-v1"), "{table}");

    let live: Value = serde_json::from_str(&kubectl.ok(&[
        "get",
        "deployment",
        "cart-v1",
        "-n",
        "shop-dev",
        "-o",
        "json",
    ]))
    .expect("JSON");
    let container = &live["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["env"][0],
        json!({"name": "PORT", "value": "8080"})
    );
    assert_eq!(
        container["env"][1],
        json!({"name": "DEBUG", "value": "true"})
    );
    assert_eq!(
        container["volumeMounts"][0],
        json!({"name": "config-0", "mountPath": "/etc/app/level", "subPath": "level", "readOnly": true})
    );
    let svc: Value = serde_json::from_str(
        &kubectl.ok(&["get", "service", "cart", "-n", "shop-dev", "-o", "json"]),
    )
    .expect("JSON");
    assert_eq!(
        svc["spec"]["selector"],
        json!({"app.kubernetes.io/name": "cart", "app.kubernetes.io/managed-by": "wharf"})
    );
    kubectl.ok(&["delete", "hpa", "cart-v1", "-n", "shop-dev"]);
    let after = kubectl.ok(&["get", "hpa", "-n", "shop-dev", "-o", "name"]);
    assert!(after.trim().is_empty(), "{after}");
}
