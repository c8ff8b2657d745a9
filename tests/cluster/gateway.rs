//! The embedded cluster's gateway from outside: a real `wharf serve`, objects created
//! through kube-rs over the kubeconfig Wharf hands out, plain HTTP requests to the
//! gateway's loopback address, answered by the simulated pods.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};
use wharf_tests::{Kubectl, Server};

use crate::wait_for;

const HOST: &str = "cart.shop.svc";

/// kube-rs access to a namespaced kind by apiVersion, kind and plural.
fn api(client: &kube::Client, api_version: &str, kind: &str, plural: &str) -> Api<DynamicObject> {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let resource =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
    Api::namespaced_with(client.clone(), "shop", &resource)
}

fn plural(kind: &str) -> &'static str {
    match kind {
        "Deployment" => "deployments",
        "Service" => "services",
        "HTTPRoute" => "httproutes",
        "Ingress" => "ingresses",
        other => panic!("no plural for {other}"),
    }
}

fn api_for(client: &kube::Client, object: &Value) -> Api<DynamicObject> {
    let kind = object["kind"].as_str().expect("kind");
    api(
        client,
        object["apiVersion"].as_str().expect("apiVersion"),
        kind,
        plural(kind),
    )
}

async fn create(client: &kube::Client, object: Value) {
    let typed: DynamicObject = serde_json::from_value(object.clone()).expect("an object");
    api_for(client, &object)
        .create(&PostParams::default(), &typed)
        .await
        .unwrap_or_else(|e| panic!("creating {}: {e}", object["metadata"]["name"]));
}

async fn merge_patch(client: &kube::Client, object: Value) {
    let name = object["metadata"]["name"]
        .as_str()
        .expect("name")
        .to_owned();
    api_for(client, &object)
        .patch(&name, &PatchParams::default(), &Patch::Merge(&object))
        .await
        .unwrap_or_else(|e| panic!("patching {name}: {e}"));
}

/// Namespace `shop` with Deployments cart-v1 (2 pods, image cart:1) and cart-v2 (1 pod,
/// image cart:2), Services cart-stable and cart-canary selecting them, all pods ready.
async fn shop(server: &Server) -> kube::Client {
    let client = Kubectl::for_server(server).await.kube_client().await;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "shop"}})).expect("namespace"),
        )
        .await
        .expect("creating namespace shop");
    for (name, version, replicas) in [("cart-v1", "v1", 2), ("cart-v2", "v2", 1)] {
        let labels = json!({"app": "cart", "version": version});
        create(
            &client,
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "namespace": "shop"},
                "spec": {
                    "replicas": replicas,
                    "selector": {"matchLabels": labels},
                    "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                        {"name": "cart", "image": format!("cart:{}", &version[1..])}]}},
                },
            }),
        )
        .await;
    }
    for (name, version) in [("cart-stable", "v1"), ("cart-canary", "v2")] {
        create(
            &client,
            service(name, json!({"app": "cart", "version": version})),
        )
        .await;
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), "shop");
    wait_for("3 ready cart pods", || {
        let pods = pods.clone();
        async move {
            let list = pods.list(&ListParams::default()).await.ok()?;
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
            (ready == 3).then_some(())
        }
    })
    .await;
    client
}

fn service(name: &str, selector: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"selector": selector, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    })
}

/// A client of the gateway: `get(host, path, headers)` → (status, JSON body).
struct Gateway {
    base: String,
    http: reqwest::Client,
}

impl Gateway {
    fn of(server: &Server) -> Self {
        Self {
            base: server
                .gateway
                .clone()
                .expect("the server printed its gateway address"),
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(20))
                .build()
                .expect("http client"),
        }
    }

    async fn get(&self, host: &str, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
        let mut request = self
            .http
            .get(format!("{}{path}", self.base))
            .header("host", host);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("the gateway answers");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        assert_eq!(content_type, "application/json", "{path}");
        (status, response.json().await.expect("a JSON body"))
    }

    /// The image of the pod that answered (fails on any status but 200).
    async fn image(&self, headers: &[(&str, &str)]) -> String {
        let (status, body) = self.get(HOST, "/api/cart", headers).await;
        assert_eq!(status, 200, "{body}");
        body["image"].as_str().expect("image").to_owned()
    }

    /// How many of `n` requests the canary (image cart:2) answered.
    async fn canary_count(&self, n: usize, headers: &[(&str, &str)]) -> usize {
        let mut canary = 0;
        for _ in 0..n {
            if self.image(headers).await == "cart:2" {
                canary += 1;
            }
        }
        canary
    }
}

#[tokio::test]
async fn curl_through_the_gateway_reaches_the_canary_an_httproute_names() {
    let server = Server::start().await;
    let client = shop(&server).await;
    let gateway = Gateway::of(&server);
    let route = |canary_weight: u64| {
        json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "cart", "namespace": "shop"},
            "spec": {
                "hostnames": [HOST],
                "rules": [
                    {
                        "matches": [
                            {"path": {"type": "PathPrefix", "value": "/api"},
                             "headers": [{"type": "RegularExpression", "name": "x-user", "value": "^(alice|bob)$"}]},
                            {"path": {"type": "PathPrefix", "value": "/api"},
                             "headers": [{"type": "RegularExpression", "name": "cookie", "value": "^(.*;\\s*)?beta=1(\\s*;.*)?$"}]},
                        ],
                        "backendRefs": [{"name": "cart-canary", "port": 80, "weight": 1, "filters": [
                            {"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "x-gray-tag", "value": "beta"}]}}]}],
                    },
                    {
                        "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                        "backendRefs": [
                            {"name": "cart-stable", "port": 80, "weight": 100 - canary_weight},
                            {"name": "cart-canary", "port": 80, "weight": canary_weight},
                        ],
                    },
                ],
            },
        })
    };
    create(&client, route(0)).await;

    let (status, alice) = gateway
        .get(HOST, "/api/cart?id=7", &[("x-user", "alice")])
        .await;
    assert_eq!(status, 200, "{alice}");
    assert_eq!(alice["image"], "cart:2");
    assert_eq!(alice["namespace"], "shop");
    assert_eq!(alice["labels"]["version"], "v2");
    assert!(
        alice["pod"]
            .as_str()
            .is_some_and(|p| p.starts_with("cart-v2-")),
        "{alice}"
    );
    assert!(
        alice["node"]
            .as_str()
            .is_some_and(|n| n.starts_with("wharf-node-")),
        "{alice}"
    );
    assert_eq!(alice["request"]["method"], "GET");
    assert_eq!(alice["request"]["path"], "/api/cart");
    assert_eq!(alice["request"]["headers"]["x-user"], "alice");
    assert_eq!(
        alice["request"]["headers"]["x-gray-tag"], "beta",
        "the backendRef's filter"
    );

    assert_eq!(gateway.image(&[("cookie", "a=2; beta=1")]).await, "cart:2");
    assert_eq!(gateway.image(&[("cookie", "beta=10")]).await, "cart:1");
    assert_eq!(gateway.image(&[("x-user", "alice2")]).await, "cart:1");
    assert_eq!(
        gateway.canary_count(50, &[("x-user", "carol")]).await,
        0,
        "weight 0 never"
    );
    let (_, stable) = gateway.get(HOST, "/api", &[("x-user", "carol")]).await;
    assert!(
        stable["request"]["headers"].get("x-gray-tag").is_none(),
        "{stable}"
    );
    for path in ["/web", "/apix"] {
        let (status, body) = gateway.get(HOST, path, &[("x-user", "alice")]).await;
        assert_eq!(
            (status, &body["image"]),
            (200, &json!("cart:1")),
            "{path} is not under /api"
        );
    }

    merge_patch(&client, route(20)).await;
    let canary = gateway.canary_count(400, &[("x-user", "carol")]).await;
    assert!((30..=150).contains(&canary), "{canary} of 400 at weight 20");

    merge_patch(&client, route(100)).await;
    assert_eq!(gateway.canary_count(50, &[]).await, 50, "weight 100 always");
}

#[tokio::test]
async fn curl_through_the_gateway_follows_ingress_nginx_canary_annotations() {
    let server = Server::start().await;
    let client = shop(&server).await;
    let gateway = Gateway::of(&server);
    let ingress = |name: &str, service: &str, annotations: Value| {
        json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "namespace": "shop", "annotations": annotations},
            "spec": {"ingressClassName": "nginx", "rules": [{"host": HOST, "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": service, "port": {"number": 80}}}}]}}]},
        })
    };
    create(&client, ingress("cart", "cart-stable", json!({}))).await;
    let canary = |weight: &str| {
        ingress(
            "cart-canary",
            "cart-canary",
            json!({
                "nginx.ingress.kubernetes.io/canary": "true",
                "nginx.ingress.kubernetes.io/canary-by-header": "x-user",
                "nginx.ingress.kubernetes.io/canary-by-header-pattern": "^(alice|bob)$",
                "nginx.ingress.kubernetes.io/canary-by-cookie": "beta",
                "nginx.ingress.kubernetes.io/canary-weight": weight,
            }),
        )
    };
    assert_eq!(
        gateway.image(&[("x-user", "alice")]).await,
        "cart:1",
        "no canary yet"
    );
    create(&client, canary("0")).await;

    assert_eq!(gateway.image(&[("x-user", "bob")]).await, "cart:2");
    assert_eq!(gateway.image(&[("x-user", "bobby")]).await, "cart:1");
    assert_eq!(gateway.image(&[("cookie", "beta=always")]).await, "cart:2");
    assert_eq!(
        gateway
            .image(&[("x-user", "carol"), ("cookie", "beta=never")])
            .await,
        "cart:1"
    );
    assert_eq!(
        gateway.canary_count(50, &[("cookie", "beta=1")]).await,
        0,
        "weight 0 never"
    );

    merge_patch(&client, canary("30")).await;
    let share = gateway.canary_count(300, &[("x-user", "carol")]).await;
    assert!((40..=160).contains(&share), "{share} of 300 at weight 30");

    api(&client, "networking.k8s.io/v1", "Ingress", "ingresses")
        .delete("cart-canary", &DeleteParams::default())
        .await
        .expect("deleting the canary Ingress");
    assert_eq!(gateway.image(&[("x-user", "alice")]).await, "cart:1");
}

#[tokio::test]
async fn the_gateway_falls_back_to_services_by_cluster_dns_name_then_404_and_503() {
    let server = Server::start().await;
    let client = shop(&server).await;
    let gateway = Gateway::of(&server);

    for host in [
        "cart-canary.shop",
        "cart-canary.shop.svc",
        "cart-canary.shop.svc.cluster.local:80",
    ] {
        let (status, body) = gateway.get(host, "/", &[]).await;
        assert_eq!(
            (status, &body["image"]),
            (200, &json!("cart:2")),
            "{host}: {body}"
        );
    }
    let (status, body) = gateway.get("nowhere.example", "/x", &[]).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "no route for nowhere.example/x");

    create(&client, service("empty", json!({"app": "nothing"}))).await;
    let (status, body) = gateway.get("empty.shop.svc", "/", &[]).await;
    assert_eq!(status, 503);
    assert_eq!(body["error"], "no ready endpoints for service shop/empty");
}

#[tokio::test]
async fn the_gateway_can_be_turned_off() {
    let server = Server::start_with(&["--kube-gateway-listen", "off"]).await;
    assert_eq!(server.gateway, None);
    let kubeconfig = server.get("/api/v1/clusters/embedded/kubeconfig").await;
    assert_eq!(
        kubeconfig.status, 200,
        "the embedded cluster itself still runs"
    );
}
