//! Gray releases end to end: environments name a gray-router plugin as their traffic
//! provider; rules are validated and evaluated as dry runs (REST and CLI); a canary goes
//! out in steps through a change order, with the rendered objects read back from the
//! embedded cluster through kube-rs, and is promoted, aborted, rolled back or resumed
//! after `kill -9`; a third-party router installed at run time takes over an environment.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use serde_json::{Value, json};
use wharf_tests::{Server, TempDir};

use super::rollouts::{cli_ok, count, deploy, pods, shop, strategy, until_state};

const DEPLOY: &str = "/api/v1/projects/shop/apps/cart/deployments/dev";
const ENV: &str = "/api/v1/projects/shop/environments/dev";

/// Seed 001's CONTENT shape: header `x-user` in a list OR cookie `beta=1`.
fn beta_rule() -> Value {
    json!({"grayType": "CONTENT", "content": {"ruleName": "beta users", "tag": "beta",
        "carryData": true,
        "rules": [{"serviceType": "springCloud", "path": "/", "condition": "OR", "conditions": [
            {"type": "header", "param": "x-user", "cond": "in", "value": "alice,bob"},
            {"type": "cookie", "param": "beta", "cond": "=", "value": "1"}]}]}})
}

fn percent_rule(rate: u64) -> Value {
    json!({"grayType": "PERCENT", "percent": [{"tag": "canary", "rate": rate}]})
}

/// `cart` v1 serving 2 replicas behind a Service `cart` (port 80 → 8080).
async fn serving(server: &Server) {
    shop(server, false).await;
    let first = deploy(server, json!({"image": "shop/cart:1", "replicas": 2})).await;
    until_state(server, &first, "succeeded").await;
    let reply = server
        .post(
            &format!("{DEPLOY}/services"),
            json!({"name": "cart", "type": "ClusterIP",
                   "servicesPorts": [{"port": 80, "targetPort": 8080}]}),
        )
        .await;
    assert_eq!(reply.status, 202, "{:?}", reply.body);
    let id = reply.body["changeOrderId"].as_str().expect("id").to_owned();
    until_state(server, &id, "succeeded").await;
}

fn gray_deploy(image: &str, rule: Value) -> Value {
    let mut strategy = strategy(&[1, 1], "MANUAL", None);
    strategy["grayUpdate"] = json!(true);
    strategy["grayRule"] = rule;
    json!({"image": image, "replicas": 2, "deploymentStrategy": strategy})
}

async fn next(server: &Server, id: &str) {
    let reply = server
        .post(&format!("/api/v1/change-orders/{id}/next-batch"), json!({}))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
}

fn http_routes() -> ApiResource {
    ApiResource {
        group: "gateway.networking.k8s.io".into(),
        version: "v1".into(),
        api_version: "gateway.networking.k8s.io/v1".into(),
        kind: "HTTPRoute".into(),
        plural: "httproutes".into(),
    }
}

/// Names of the objects rendered for change order `id`, by kind.
async fn gray_objects(server: &Server, id: &str) -> (Vec<String>, Vec<DynamicObject>) {
    let client = wharf_tests::Kubectl::for_server(server)
        .await
        .kube_client()
        .await;
    let selector = ListParams::default().labels(&format!("wharf.dev/gray-change={id}"));
    let services: Api<Service> = Api::namespaced(client.clone(), "shop-dev");
    let mut names: Vec<String> = services
        .list(&selector)
        .await
        .expect("services")
        .items
        .into_iter()
        .filter_map(|s| s.metadata.name)
        .collect();
    names.sort();
    let routes: Api<DynamicObject> = Api::namespaced_with(client, "shop-dev", &http_routes());
    let routes = routes.list(&selector).await.expect("routes").items;
    (names, routes)
}

async fn workloads(server: &Server) -> Vec<(String, i32)> {
    let client = wharf_tests::Kubectl::for_server(server)
        .await
        .kube_client()
        .await;
    let api: Api<Deployment> = Api::namespaced(client, "shop-dev");
    let mut list: Vec<(String, i32)> = api
        .list(&ListParams::default().labels("app.kubernetes.io/name=cart"))
        .await
        .expect("deployments")
        .items
        .into_iter()
        .map(|d| {
            let replicas = d.spec.and_then(|s| s.replicas).unwrap_or(0);
            (d.metadata.name.unwrap_or_default(), replicas)
        })
        .collect();
    list.sort();
    list
}

#[tokio::test]
async fn an_environment_names_a_gray_router_plugin_as_its_traffic_provider() {
    let server = Server::start().await;
    shop(&server, false).await;
    let env = server.get(ENV).await;
    assert_eq!(env.body["trafficProvider"], "gray-gateway-api");
    let patch = |provider: &str| {
        let server = &server;
        let body = json!({"trafficProvider": provider});
        async move {
            server
                .request("PATCH", ENV, Some(body), Some(&server.token))
                .await
        }
    };
    let unknown = patch("gray-istio").await;
    unknown.assert_field(422, "trafficProvider");
    assert!(
        unknown.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("gray-istio")),
        "{:?}",
        unknown.body
    );
    let not_a_router = patch("hello").await;
    not_a_router.assert_field(422, "trafficProvider");
    assert!(
        not_a_router.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("step")),
        "{:?}",
        not_a_router.body
    );
    let swapped = patch("gray-nginx-ingress").await;
    assert_eq!(swapped.status, 200, "{:?}", swapped.body);
    assert_eq!(swapped.body["trafficProvider"], "gray-nginx-ingress");

    let reply = server
        .post("/api/v1/plugins/gray-gateway-api/disable", json!({}))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let disabled = patch("gray-gateway-api").await;
    disabled.assert_field(422, "trafficProvider");
    assert!(
        disabled.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("not enabled")),
        "{:?}",
        disabled.body
    );

    let audit = server
        .get("/api/v1/audit?action=env.update&pageSize=10")
        .await;
    let swap = audit.body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["outcome"] == "ok")
        .cloned()
        .unwrap_or_else(|| panic!("no audited env.update: {:?}", audit.body));
    assert_eq!(swap["before"]["trafficProvider"], "gray-gateway-api");
    assert_eq!(swap["after"]["trafficProvider"], "gray-nginx-ingress");
}

#[tokio::test]
async fn a_rule_is_validated_and_its_sample_requests_evaluated_before_any_release() {
    let server = Server::start().await;
    let invalid = json!({"grayType": "CONTENT", "content": {"tag": "beta", "rules": [
        {"serviceType": "springCloud", "conditions": [
            {"type": "header", "param": "x-user", "cond": "mod", "value": "3"}]}]}});
    let report = server
        .post("/api/v1/gray/validate", json!({"rule": invalid}))
        .await;
    assert_eq!(report.status, 200, "{:?}", report.body);
    assert_eq!(report.body["valid"], false);
    let fields: Vec<&str> = report.body["violations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["field"].as_str())
        .collect();
    for expected in [
        "rule.content.rules[0].path",
        "rule.content.rules[0].conditions[0].operator",
    ] {
        assert!(
            fields.contains(&expected),
            "{expected} missing from {fields:?}"
        );
    }

    let report = server
        .post("/api/v1/gray/validate", json!({"rule": beta_rule()}))
        .await;
    assert_eq!(
        (
            report.body["valid"].as_bool(),
            report.body["supported"].as_bool()
        ),
        (Some(true), Some(true)),
        "{:?}",
        report.body
    );
    let nginx = server
        .post(
            "/api/v1/gray/validate",
            json!({"rule": beta_rule(), "provider": "gray-nginx-ingress"}),
        )
        .await;
    assert_eq!(nginx.body["valid"], true, "{:?}", nginx.body);
    assert_eq!(nginx.body["supported"], false, "{:?}", nginx.body);
    server
        .post(
            "/api/v1/gray/validate",
            json!({"rule": beta_rule(), "provider": "gray-istio"}),
        )
        .await
        .assert_field(422, "provider");

    let requests = json!([
        {"headers": {"X-User": "alice"}},
        {"headers": {"x-user": "carol"}},
        {"cookies": {"beta": "1"}},
        {"headers": {"cookie": "theme=dark; beta=1"}},
        {"path": "/cart", "query": {"beta": "1"}},
    ]);
    let evaluated = server
        .post(
            "/api/v1/gray/evaluate",
            json!({"rule": beta_rule(), "requests": requests}),
        )
        .await;
    assert_eq!(evaluated.status, 200, "{:?}", evaluated.body);
    let shares: Vec<u64> = evaluated.body["evaluations"]
        .as_array()
        .expect("evaluations")
        .iter()
        .map(|e| e["canaryShare"].as_u64().expect("share"))
        .collect();
    assert_eq!(shares, [100, 0, 100, 100, 0]);
    assert_eq!(evaluated.body["toCanary"], 3);
    let decided: Vec<&str> = evaluated.body["evaluations"]
        .as_array()
        .expect("evaluations")
        .iter()
        .map(|e| e["decidedBy"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(decided[0], "content.rules[0].conditions[0]");
    assert_eq!(decided[2], "content.rules[0].conditions[1]");

    let bad = server
        .post(
            "/api/v1/gray/evaluate",
            json!({"rule": invalid, "requests": [{}]}),
        )
        .await;
    bad.assert_problem(422, "invalid-gray-rule");
    assert!(
        bad.body["violations"]
            .as_array()
            .is_some_and(|v| v.len() >= 2)
    );
    server
        .post(
            "/api/v1/gray/evaluate",
            json!({"rule": beta_rule(), "requests": []}),
        )
        .await
        .assert_field(422, "requests");

    // The CLI: a table of request → destination and the deciding condition.
    let dir = TempDir::new("gray-cli");
    let rule_file = dir.path().join("rule.json");
    let requests_file = dir.path().join("requests.json");
    std::fs::write(&rule_file, beta_rule().to_string()).expect("rule file");
    std::fs::write(&requests_file, requests.to_string()).expect("requests file");
    let rule_path = rule_file.display().to_string();
    let output = server.cli(&["gray", "validate", &rule_path]);
    assert!(output.status.success(), "{output:?}");
    let output = server.cli(&[
        "gray",
        "validate",
        &rule_path,
        "--provider",
        "gray-nginx-ingress",
    ]);
    assert!(
        !output.status.success(),
        "nginx cannot express a cookie `=1`"
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("cannot express"),
        "{output:?}"
    );
    let output = server.cli(&[
        "gray",
        "evaluate",
        &rule_path,
        "--requests",
        &requests_file.display().to_string(),
    ]);
    assert!(output.status.success(), "{output:?}");
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(table.contains("canary (beta)"), "{table}");
    assert!(table.contains("content.rules[0].conditions[1]"), "{table}");
    assert!(
        table.contains("3 of 5 requests reach the canary"),
        "{table}"
    );
}

#[tokio::test]
async fn a_gray_deploy_is_refused_with_the_reason_before_anything_runs() {
    let server = Server::start().await;
    shop(&server, false).await;
    // No revision serves yet: a canary needs something beside it.
    let first = server
        .post(
            &format!("{DEPLOY}/deploy"),
            gray_deploy("shop/cart:1", beta_rule()),
        )
        .await;
    first.assert_field(422, "deploymentStrategy.grayUpdate");
    let id = deploy(&server, json!({"image": "shop/cart:1", "replicas": 2})).await;
    until_state(&server, &id, "succeeded").await;
    let no_service = server
        .post(
            &format!("{DEPLOY}/deploy"),
            gray_deploy("shop/cart:2", beta_rule()),
        )
        .await;
    no_service.assert_field(422, "deploymentStrategy.grayUpdate");

    let mut broken = beta_rule();
    broken["content"]["rules"][0]["conditions"][0]["cond"] = json!("like");
    let invalid = server
        .post(
            &format!("{DEPLOY}/deploy"),
            gray_deploy("shop/cart:2", broken),
        )
        .await;
    invalid.assert_problem(422, "invalid-gray-rule");
    assert_eq!(
        invalid.body["field"],
        "deploymentStrategy.grayRule.content.rules[0].conditions[0].cond"
    );

    let reply = server
        .request(
            "PATCH",
            ENV,
            Some(json!({"trafficProvider": "gray-nginx-ingress"})),
            Some(&server.token),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let unsupported = server
        .post(
            &format!("{DEPLOY}/deploy"),
            gray_deploy("shop/cart:2", beta_rule()),
        )
        .await;
    unsupported.assert_problem(422, "gray-rule-unsupported");
    assert!(
        unsupported.body["violations"][0]["field"]
            .as_str()
            .is_some_and(|f| f.starts_with("deploymentStrategy.grayRule.content")),
        "{:?}",
        unsupported.body
    );

    let reply = server
        .post("/api/v1/plugins/gray-nginx-ingress/disable", json!({}))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let disabled = server
        .post(
            &format!("{DEPLOY}/deploy"),
            gray_deploy("shop/cart:2", percent_rule(20)),
        )
        .await;
    disabled.assert_problem(409, "traffic-provider-unavailable");
    assert!(
        disabled.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("gray-nginx-ingress")),
        "{:?}",
        disabled.body
    );
    // Nothing was opened along the way: v1 still serves alone.
    let record = server.get(DEPLOY).await;
    assert_eq!(
        record.body["activeChange"],
        Value::Null,
        "{:?}",
        record.body
    );
    assert_eq!(workloads(&server).await, [("cart-v1".to_owned(), 2)]);
}

#[tokio::test]
async fn a_canary_goes_out_in_two_steps_and_is_promoted() {
    let server = Server::start().await;
    serving(&server).await;
    let bad = server
        .request(
            "PATCH",
            ENV,
            Some(json!({"trafficGateway": "public"})),
            Some(&server.token),
        )
        .await;
    bad.assert_field(422, "trafficGateway");
    let reply = server
        .request(
            "PATCH",
            ENV,
            Some(json!({"trafficGateway": "infra/public"})),
            Some(&server.token),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let id = deploy(&server, gray_deploy("shop/cart:2", beta_rule())).await;
    let paused = until_state(&server, &id, "paused_between_batches").await;
    assert_eq!(paused["gray"]["provider"], "gray-gateway-api");
    assert_eq!(paused["gray"]["tag"], "beta");
    // The canary runs beside the stable revision, which keeps both its pods.
    assert_eq!(
        workloads(&server).await,
        [("cart-v1".to_owned(), 2), ("cart-v2".to_owned(), 1)]
    );
    let (services, routes) = gray_objects(&server, &id).await;
    assert_eq!(services, ["cart-gray-canary", "cart-gray-stable"]);
    assert_eq!(routes.len(), 1, "{routes:?}");
    let route = &routes[0].data;
    assert_eq!(route["spec"]["hostnames"], json!(["cart.shop-dev.svc"]));
    assert_eq!(
        route["spec"]["parentRefs"],
        json!([{"name": "public", "namespace": "infra"}]),
        "the route attaches to the environment's Gateway"
    );
    let yaml_noted = paused["timeline"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|s| {
            s["message"]
                .as_str()
                .is_some_and(|m| m.contains("kind: HTTPRoute"))
        });
    assert!(
        yaml_noted,
        "the timeline shows the rendered objects: {paused:#}"
    );
    let canary_pods = pods(&server).await;
    assert_eq!(count(&canary_pods, 2), 1, "{canary_pods:?}");

    next(&server, &id).await;
    let paused = until_state(&server, &id, "paused_between_batches").await;
    assert_eq!(paused["batches"][1]["state"], "succeeded", "{paused:#}");
    assert_eq!(
        workloads(&server).await,
        [("cart-v1".to_owned(), 2), ("cart-v2".to_owned(), 2)]
    );
    let evaluated = server
        .post(
            "/api/v1/gray/evaluate",
            json!({"changeOrderId": id, "requests": [{"headers": {"x-user": "bob"}}, {}]}),
        )
        .await;
    assert_eq!(evaluated.status, 200, "{:?}", evaluated.body);
    assert_eq!(evaluated.body["toCanary"], 1);

    next(&server, &id).await;
    let done = until_state(&server, &id, "succeeded").await;
    assert!(
        done["timeline"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| s["message"]
                .as_str()
                .is_some_and(|m| m.contains("canary promoted"))),
        "{done:#}"
    );
    let (services, routes) = gray_objects(&server, &id).await;
    assert!(
        services.is_empty() && routes.is_empty(),
        "{services:?} {routes:?}"
    );
    assert_eq!(workloads(&server).await, [("cart-v2".to_owned(), 2)]);
    let record = server.get(DEPLOY).await;
    assert_eq!(record.body["stableRevision"], 2);
}

#[tokio::test]
async fn aborting_or_rolling_back_a_canary_leaves_the_stable_version_serving_alone() {
    let server = Server::start().await;
    serving(&server).await;
    let id = deploy(&server, gray_deploy("shop/cart:2", percent_rule(40))).await;
    let paused = until_state(&server, &id, "paused_between_batches").await;
    // A PERCENT share grows with the canary: 1 of 2 replicas → half of the 40 %.
    assert_eq!(paused["gray"]["weight"], 20, "{paused:#}");
    let (_, routes) = gray_objects(&server, &id).await;
    let weights: Vec<u64> = routes[0].data["spec"]["rules"][0]["backendRefs"]
        .as_array()
        .expect("backendRefs")
        .iter()
        .map(|b| b["weight"].as_u64().expect("weight"))
        .collect();
    assert_eq!(weights, [80, 20]);

    let reply = server
        .post(&format!("/api/v1/change-orders/{id}/abort"), json!({}))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    until_state(&server, &id, "aborted").await;
    let (services, routes) = gray_objects(&server, &id).await;
    assert!(
        services.is_empty() && routes.is_empty(),
        "{services:?} {routes:?}"
    );
    assert_eq!(workloads(&server).await, [("cart-v1".to_owned(), 2)]);

    let id = deploy(&server, gray_deploy("shop/cart:3", beta_rule())).await;
    until_state(&server, &id, "paused_between_batches").await;
    let reply = server
        .post(&format!("/api/v1/change-orders/{id}/rollback"), json!({}))
        .await;
    assert!(
        reply.status == 200 || reply.status == 202,
        "{:?}",
        reply.body
    );
    until_state(&server, &id, "rolled_back").await;
    let (services, routes) = gray_objects(&server, &id).await;
    assert!(
        services.is_empty() && routes.is_empty(),
        "{services:?} {routes:?}"
    );
    assert_eq!(workloads(&server).await, [("cart-v1".to_owned(), 2)]);
    let record = server.get(DEPLOY).await;
    assert_eq!(record.body["stableRevision"], 1);
}

#[tokio::test]
async fn a_canary_resumes_where_it_stood_after_kill_9() {
    let mut server = Server::start().await;
    serving(&server).await;
    let id = deploy(&server, gray_deploy("shop/cart:2", beta_rule())).await;
    until_state(&server, &id, "paused_between_batches").await;
    next(&server, &id).await;
    server.kill_and_restart().await;
    let paused = until_state(&server, &id, "paused_between_batches").await;
    assert_eq!(paused["batches"][1]["state"], "succeeded", "{paused:#}");
    let (services, routes) = gray_objects(&server, &id).await;
    assert_eq!(services.len(), 2, "{services:?}");
    assert_eq!(routes.len(), 1);
    server.kill_and_restart().await;
    next(&server, &id).await;
    until_state(&server, &id, "succeeded").await;
    let (services, routes) = gray_objects(&server, &id).await;
    assert!(
        services.is_empty() && routes.is_empty(),
        "{services:?} {routes:?}"
    );
    assert_eq!(workloads(&server).await, [("cart-v2".to_owned(), 2)]);
}

#[tokio::test]
async fn a_third_party_router_installed_at_run_time_takes_over_an_environment() {
    let server = Server::start().await;
    serving(&server).await;
    server.allow_unsigned().await;
    let id = server
        .install_enabled(&wharf_tests::fixture("gray-weighted"))
        .await;
    let reply = server
        .request(
            "PATCH",
            ENV,
            Some(json!({"trafficProvider": id})),
            Some(&server.token),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    // It splits by weight only, and says so.
    let refused = server
        .post(
            &format!("{DEPLOY}/deploy"),
            gray_deploy("shop/cart:2", beta_rule()),
        )
        .await;
    refused.assert_problem(422, "gray-rule-unsupported");
    let change_id = deploy(&server, gray_deploy("shop/cart:2", percent_rule(50))).await;
    let paused = until_state(&server, &change_id, "paused_between_batches").await;
    assert_eq!(paused["gray"]["provider"], "gray-weighted");
    let (_, routes) = gray_objects(&server, &change_id).await;
    assert_eq!(
        routes[0]
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("gray.example.com/rendered-by")),
        Some(&"gray-weighted".to_owned())
    );
    next(&server, &change_id).await;
    until_state(&server, &change_id, "paused_between_batches").await;
    next(&server, &change_id).await;
    until_state(&server, &change_id, "succeeded").await;
    assert_eq!(workloads(&server).await, [("cart-v2".to_owned(), 2)]);
}

/// A deterministic stream of pseudo-random numbers (xorshift), so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        items[(self.0 % items.len() as u64) as usize]
    }
}

/// A request as both readings see it: path, query and headers (the cookie header too).
struct Probe {
    path: &'static str,
    query: Vec<(&'static str, &'static str)>,
    headers: Vec<(&'static str, &'static str)>,
}

impl Probe {
    fn generate(rng: &mut Rng) -> Probe {
        let mut headers = Vec::new();
        let user = rng.pick(&["alice", "bob", "carol", "dave", "", ""]);
        if !user.is_empty() {
            headers.push(("x-user", user));
        }
        let cookie = rng.pick(&["beta=1", "beta=0", "theme=dark; beta=1", "theme=dark", ""]);
        if !cookie.is_empty() {
            headers.push(("cookie", cookie));
        }
        let region = rng.pick(&["eu-west-1", "us-east-1", ""]);
        if !region.is_empty() {
            headers.push(("x-region", region));
        }
        let mut query = Vec::new();
        let channel = rng.pick(&["app", "web", ""]);
        if !channel.is_empty() {
            query.push(("channel", channel));
        }
        Probe {
            path: rng.pick(&["/", "/api", "/api/cart", "/apix", "/shop"]),
            query,
            headers,
        }
    }

    fn sample(&self) -> Value {
        let map = |pairs: &[(&str, &str)]| -> Value {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), json!(v)))
                .collect::<serde_json::Map<_, _>>()
                .into()
        };
        json!({"path": self.path, "query": map(&self.query), "headers": map(&self.headers)})
    }

    /// The revision of the pod the gateway routed the request to.
    async fn through_gateway(
        &self,
        http: &reqwest::Client,
        gateway: &str,
        host: &str,
    ) -> (u64, Value) {
        // The generated values are plain words: nothing to escape.
        let query: Vec<String> = self.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let url = match query.is_empty() {
            true => format!("{gateway}{}", self.path),
            false => format!("{gateway}{}?{}", self.path, query.join("&")),
        };
        let mut request = http.get(url).header("host", host);
        for (name, value) in &self.headers {
            request = request.header(*name, *value);
        }
        let reply = request.send().await.expect("gateway answered");
        assert_eq!(reply.status().as_u16(), 200, "{}", self.path);
        let body: Value = reply.json().await.expect("pod answer");
        let revision = body["labels"]["wharf.dev/revision"]
            .as_str()
            .and_then(|r| r.parse().ok())
            .unwrap_or_else(|| panic!("no revision label: {body}"));
        (revision, body)
    }
}

/// The rules the agreement is checked on: the golden cases of `gray-gateway-api`.
fn agreement_rules() -> Vec<(&'static str, Value)> {
    vec![
        ("percent", percent_rule(40)),
        (
            "header AND query",
            json!({"grayType": "CONTENT", "content": {"tag": "beta", "rules": [{
                "serviceType": "springCloud", "path": "/api", "condition": "AND", "conditions": [
                    {"type": "header", "param": "x-user", "cond": "=", "value": "alice"},
                    {"type": "param", "param": "channel", "cond": "=", "value": "app"}]}]}}),
        ),
        (
            "cookie",
            json!({"grayType": "CONTENT", "content": {"tag": "beta", "rules": [{
                "serviceType": "springCloud", "path": "/", "conditions": [
                    {"type": "cookie", "param": "beta", "cond": "=", "value": "1"}]}]}}),
        ),
        ("header in-list OR cookie", beta_rule()),
        (
            "OR across rules, regex",
            json!({"grayType": "CONTENT", "content": {"tag": "beta", "rules": [
                {"serviceType": "springCloud", "path": "/shop", "conditions": [
                    {"type": "header", "param": "x-region", "cond": "regex", "value": "eu-.*"}]},
                {"serviceType": "springCloud", "path": "/api", "conditions": [
                    {"type": "param", "param": "channel", "cond": "in", "value": "web,app"}]}]}}),
        ),
    ]
}

#[tokio::test]
async fn the_plugins_evaluation_and_the_gateways_routing_agree_on_1000_requests_per_rule() {
    let server = Server::start().await;
    serving(&server).await;
    let gateway = server.gateway.clone().expect("the embedded gateway runs");
    let http = reqwest::Client::new();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for (name, rule) in agreement_rules() {
        let id = deploy(&server, gray_deploy("shop/cart:2", rule)).await;
        until_state(&server, &id, "paused_between_batches").await;
        next(&server, &id).await;
        let paused = until_state(&server, &id, "paused_between_batches").await;
        let rate = paused["gray"]["rate"].as_u64();
        let canary_revision = paused["targetRevision"].as_u64().expect("targetRevision");
        let probes: Vec<Probe> = (0..1000).map(|_| Probe::generate(&mut rng)).collect();
        let evaluated = server
            .post(
                "/api/v1/gray/evaluate",
                json!({"changeOrderId": id, "requests": probes.iter().map(Probe::sample).collect::<Vec<_>>()}),
            )
            .await;
        assert_eq!(evaluated.status, 200, "{name}: {:?}", evaluated.body);
        let evaluations = evaluated.body["evaluations"]
            .as_array()
            .expect("evaluations")
            .clone();
        let mut to_canary = 0;
        for (probe, evaluation) in probes.iter().zip(&evaluations) {
            let (revision, answer) = probe
                .through_gateway(&http, &gateway, "cart.shop-dev.svc")
                .await;
            let share = evaluation["canaryShare"].as_u64().expect("share");
            if revision == canary_revision {
                to_canary += 1;
            }
            if rate.is_none() {
                assert_eq!(
                    revision == canary_revision,
                    share == 100,
                    "{name}: {} decided {:?} but the gateway sent it to revision {revision}: {answer}",
                    probe.sample(),
                    evaluation
                );
            }
        }
        if let Some(rate) = rate {
            // A split is random per request: 1,000 draws at p = 0.4 stay within ±8 %
            // of 400 except with odds far below one in a million.
            let expected = rate as i64 * 10;
            assert!(
                (to_canary as i64 - expected).abs() <= 80,
                "{name}: {to_canary} of 1000 reached the canary at {rate} %"
            );
        }
        let reply = server
            .post(&format!("/api/v1/change-orders/{id}/abort"), json!({}))
            .await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        until_state(&server, &id, "aborted").await;
    }
}

#[tokio::test]
async fn a_user_tries_a_rule_releases_it_in_two_steps_curls_the_canary_promotes_it_and_swaps_providers()
 {
    let server = Server::start().await;
    serving(&server).await;
    let gateway = server.gateway.clone().expect("the embedded gateway runs");
    let dir = TempDir::new("gray-story");
    let rule = dir.path().join("rule.json");
    let samples = dir.path().join("samples.json");
    std::fs::write(&rule, beta_rule().to_string()).expect("rule");
    let probes = [
        ("alice", ""),
        ("carol", ""),
        ("", "beta=1"),
        ("dave", "beta=0"),
    ];
    let sample_list: Vec<Value> = probes
        .iter()
        .map(|(user, cookie)| {
            let mut headers = serde_json::Map::new();
            if !user.is_empty() {
                headers.insert("x-user".into(), json!(user));
            }
            if !cookie.is_empty() {
                headers.insert("cookie".into(), json!(cookie));
            }
            json!({"headers": headers})
        })
        .collect();
    std::fs::write(&samples, Value::Array(sample_list).to_string()).expect("samples");
    let rule_path = rule.display().to_string();
    let table = cli_ok(
        &server,
        &[
            "gray",
            "evaluate",
            &rule_path,
            "--requests",
            &samples.display().to_string(),
        ],
    );
    assert!(
        table.contains("2 of 4 requests reach the canary"),
        "{table}"
    );

    let out = cli_ok(
        &server,
        &[
            "deploy",
            "shop",
            "cart",
            "dev",
            "--image",
            "shop/cart:2",
            "--replicas",
            "2",
            "--batch-list",
            "1,1",
            "--gray-rule",
            &rule_path,
        ],
    );
    let id = out
        .split_whitespace()
        .nth(2)
        .expect("change order <id>")
        .to_owned();
    until_state(&server, &id, "paused_between_batches").await;
    cli_ok(&server, &["change", "next-batch", &id]);
    until_state(&server, &id, "paused_between_batches").await;

    let http = reqwest::Client::new();
    // The routing follows the canary's readiness; the embedded cluster's endpoints settle
    // a moment after the change order pauses.
    let alice = Probe {
        path: "/",
        query: Vec::new(),
        headers: vec![("x-user", "alice")],
    };
    let routed = wharf_tests::eventually(|| {
        let (alice, http, gateway) = (&alice, &http, &gateway);
        async move {
            alice
                .through_gateway(http, gateway, "cart.shop-dev.svc")
                .await
                .0
                == 2
        }
    })
    .await;
    assert!(
        routed,
        "alice reaches the canary once its routing is in place"
    );
    for (user, cookie) in probes {
        let probe = Probe {
            path: "/",
            query: Vec::new(),
            headers: [("x-user", user), ("cookie", cookie)]
                .into_iter()
                .filter(|(_, v)| !v.is_empty())
                .collect(),
        };
        let (revision, answer) = probe
            .through_gateway(&http, &gateway, "cart.shop-dev.svc")
            .await;
        let canary = user == "alice" || cookie == "beta=1";
        assert_eq!(revision == 2, canary, "{user} {cookie}: {answer}");
        if canary {
            assert_eq!(answer["labels"]["wharf.dev/gray-tag"], "beta", "{answer}");
            // carryData: the canary sees the tag in a header.
            assert_eq!(
                answer["request"]["headers"]["x-gray-tag"], "beta",
                "{answer}"
            );
        }
    }

    cli_ok(&server, &["change", "next-batch", &id]);
    until_state(&server, &id, "succeeded").await;
    let plain = Probe {
        path: "/",
        query: Vec::new(),
        headers: Vec::new(),
    };
    // The old revision's endpoints leave the Service as its pods go, one by one, which the
    // embedded cluster's controllers finish shortly after the change order does: promoted
    // once ten requests in a row reach the new version.
    let promoted = wharf_tests::eventually(|| {
        let (plain, http, gateway) = (&plain, &http, &gateway);
        async move {
            for _ in 0..10 {
                if plain
                    .through_gateway(http, gateway, "cart.shop-dev.svc")
                    .await
                    .0
                    != 2
                {
                    return false;
                }
            }
            true
        }
    })
    .await;
    assert!(promoted, "after promotion everyone gets the new version");
    for _ in 0..5 {
        let (revision, _) = plain
            .through_gateway(&http, &gateway, "cart.shop-dev.svc")
            .await;
        assert_eq!(revision, 2, "after promotion the new version keeps serving");
    }

    server.allow_unsigned().await;
    let id = server
        .install_enabled(&wharf_tests::fixture("gray-weighted"))
        .await;
    cli_ok(
        &server,
        &[
            "env",
            "update",
            "dev",
            "--project",
            "shop",
            "--traffic-provider",
            &id,
        ],
    );
    let env = server.get(ENV).await;
    assert_eq!(env.body["trafficProvider"], "gray-weighted");
}
