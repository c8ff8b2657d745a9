//! The HTTP surface every later feature relies on: auth, problems, paging, health,
//! metrics, OpenAPI.

use serde_json::json;
use wharf_host::api::routes::{Access, ROUTES, find};
use wharf_tests::Server;

#[tokio::test]
async fn health_and_readiness_need_no_token() {
    let server = Server::start().await;
    let health = server.request("GET", "/healthz", None, None).await;
    assert_eq!(health.status, 200);
    let ready = server.request("GET", "/readyz", None, None).await;
    assert_eq!(
        (ready.status, ready.body["status"].as_str()),
        (200, Some("ready"))
    );
}

/// A concrete path for a route template.
pub fn concrete(path: &str) -> String {
    path.replace("{id}", "hello")
        .replace("{code}", "shop")
        .replace("{user}", "nobody")
        .replace("{cluster}", "embedded")
        .replace("{namespace}", "nowhere")
        .replace("{node}", "nowhere")
        .replace("{env}", "dev")
        .replace("{name}", "app-config")
        .replace("{region}", "nowhere")
        .replace("{pool}", "nowhere")
        .replace("{service}", "nowhere")
        .replace("{app}", "cart")
        .replace("{group}", "nowhere")
        .replace("{app_id}", "nowhere")
        .replace("{config}", "nowhere")
        .replace("{pod}", "nowhere")
}

#[tokio::test]
async fn every_served_route_is_in_the_route_table_and_the_other_way_round() {
    let server = Server::start().await;
    let doc = server
        .request("GET", "/api/v1/openapi.json", None, None)
        .await;
    let mut served = Vec::new();
    for (path, item) in doc.body["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            served.push((method.to_uppercase(), path.clone()));
        }
    }
    for (method, path) in &served {
        assert!(
            find(method, path).is_some(),
            "{method} {path} is served but not in the route table"
        );
    }
    for route in ROUTES {
        let documented = served
            .iter()
            .any(|(m, p)| m == route.method && p == route.path);
        assert!(
            documented || route.path == "/api/v1/openapi.json",
            "{} {} is in the route table but not served/documented",
            route.method,
            route.path
        );
    }
}

/// Routes that may answer a 5xx to the sweeps' `{}` bodies, with the reason. Any other 5xx
/// is a server fault: bad input gets a 4xx.
pub const EXPECTED_5XX: &[(&str, &str, u16, &str)] = &[];

/// Fails unless `reply` is below 500 or the route is listed in [`EXPECTED_5XX`].
#[track_caller]
pub fn assert_no_server_error(method: &str, route_path: &str, reply: &wharf_tests::Reply) {
    let listed = EXPECTED_5XX
        .iter()
        .any(|(m, p, status, _)| *m == method && *p == route_path && *status == reply.status);
    assert!(
        reply.status < 500 || listed,
        "{method} {route_path} answered {}: {:?}",
        reply.status,
        reply.body
    );
}

/// Routes that end the session they are called with get a throwaway session.
pub fn ends_session(action: &str) -> bool {
    matches!(action, "session.delete" | "session.refresh")
}

#[tokio::test]
async fn every_route_answers_401_without_a_token_403_without_the_right_and_serves_with_it_without_a_5xx()
 {
    let server = Server::start().await;
    let user = server.create_user("mallory", false).await;
    for route in ROUTES {
        let path = concrete(route.path);
        let anonymous = server
            .request(route.method, &path, Some(json!({})), None)
            .await;
        assert_no_server_error(route.method, route.path, &anonymous);
        if route.access == Access::Public {
            assert_ne!(anonymous.status, 401, "{} {path} is public", route.method);
            continue;
        }
        anonymous.assert_problem(401, "unauthenticated");
        let forged = server
            .request(route.method, &path, Some(json!({})), Some("wharf_forged"))
            .await;
        assert_no_server_error(route.method, route.path, &forged);
        assert_eq!(
            forged.status, 401,
            "{} {path} with a forged token",
            route.method
        );

        let user_token = if ends_session(route.action) {
            server.login("mallory", "mallory-password").await
        } else {
            user.clone()
        };
        let as_user = server
            .request(route.method, &path, Some(json!({})), Some(&user_token))
            .await;
        assert_no_server_error(route.method, route.path, &as_user);
        if route.access == Access::Granted {
            as_user.assert_problem(403, "forbidden");
        } else {
            // Self-service routes pass the guard for any user; an administration rule
            // inside the policy (e.g. who may create roles) answers `not-allowed`.
            let guard_refused = as_user.status == 401
                || (as_user.status == 403 && as_user.body["code"] != "not-allowed");
            assert!(
                !guard_refused,
                "{} {path} refused a user: {:?}",
                route.method, as_user.body
            );
        }

        let admin_token = if ends_session(route.action) {
            server.login("admin", wharf_tests::ADMIN_PASSWORD).await
        } else {
            server.token.clone()
        };
        let admin = server
            .request(route.method, &path, Some(json!({})), Some(&admin_token))
            .await;
        assert_no_server_error(route.method, route.path, &admin);
        assert!(
            ![401, 403].contains(&admin.status),
            "{} {path} refused the admin: {:?}",
            route.method,
            admin.body
        );
    }
}

#[tokio::test]
async fn login_refuses_a_wrong_password_and_the_token_identifies_the_admin() {
    let server = Server::start().await;
    let wrong = server
        .request(
            "POST",
            "/api/v1/auth/login",
            Some(json!({"username": "admin", "password": "nope"})),
            None,
        )
        .await;
    wrong.assert_problem(401, "invalid-credentials");
    let unknown = server
        .request(
            "POST",
            "/api/v1/auth/login",
            Some(json!({"username": "ghost", "password": "nope"})),
            None,
        )
        .await;
    assert_eq!(unknown.status, 401);
    let me = server.get("/api/v1/auth/me").await;
    assert_eq!(
        (me.body["username"].as_str(), me.body["isAdmin"].as_bool()),
        (Some("admin"), Some(true))
    );
    let missing = server
        .request(
            "POST",
            "/api/v1/auth/login",
            Some(json!({"username": "admin"})),
            None,
        )
        .await;
    missing.assert_field(422, "password");
}

#[tokio::test]
async fn malformed_and_invalid_input_are_problems_not_server_errors() {
    let server = Server::start().await;
    let malformed = server
        .raw(
            "POST",
            "/api/v1/plugins",
            b"{not json".to_vec(),
            "application/json",
        )
        .await;
    malformed.assert_problem(400, "malformed-json");
    assert_eq!(malformed.content_type, "application/problem+json");

    let wrong_type = server
        .post("/api/v1/plugins", json!({"manifest": 5, "component": ""}))
        .await;
    wrong_type.assert_field(422, "manifest");

    let bad_base64 = server
        .post(
            "/api/v1/plugins",
            json!({"manifest": "id = \"x\"", "component": "***"}),
        )
        .await;
    bad_base64.assert_field(422, "component");

    let bad_manifest = server
        .post("/api/v1/plugins", json!({"manifest": "id = \"Bad Id\"\nversion = \"1.0.0\"\nworld = \"step\"", "component": "AAAA"}))
        .await;
    bad_manifest.assert_field(422, "manifest.id");

    let bad_page = server.get("/api/v1/plugins?pageSize=501").await;
    bad_page.assert_field(422, "pageSize");
    let bad_page = server.get("/api/v1/plugins?page=0").await;
    bad_page.assert_field(422, "page");
    let bad_status = server.get("/api/v1/plugins?status=sleeping").await;
    bad_status.assert_field(422, "status");

    let unknown_route = server.get("/api/v1/nothing-here").await;
    unknown_route.assert_problem(404, "route-not-found");

    let huge = server
        .raw(
            "POST",
            "/api/v1/auth/login",
            vec![b' '; 2 * 1024 * 1024],
            "application/json",
        )
        .await;
    huge.assert_problem(413, "body-too-large");
}

#[tokio::test]
async fn lists_page_with_items_and_total() {
    let server = Server::start().await;
    let all = server.get("/api/v1/plugins").await;
    let total = all.body["total"].as_u64().expect("total");
    assert!(total >= 2, "{:?}", all.body);
    let first = server.get("/api/v1/plugins?page=1&pageSize=1").await;
    assert_eq!(first.body["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(first.body["total"].as_u64(), Some(total));
    let beyond = server
        .get(&format!("/api/v1/plugins?page={}&pageSize=1", total + 1))
        .await;
    assert_eq!(beyond.body["items"].as_array().map(Vec::len), Some(0));
}

#[tokio::test]
async fn responses_carry_a_request_id() {
    let server = Server::start().await;
    let reply = server.get("/api/v1/plugins").await;
    assert!(reply.headers.get("x-request-id").is_some());
}

#[tokio::test]
async fn metrics_count_requests_and_plugin_calls() {
    let server = Server::start().await;
    let call = server
        .invoke("hello", "step.run", json!({"params": {"name": "Metrics"}}))
        .await;
    assert_eq!(call.status, 200, "{:?}", call.body);
    let metrics = server.request("GET", "/metrics", None, None).await;
    let text = metrics.body.as_str().expect("text exposition").to_owned();
    assert!(text.contains("wharf_http_requests_total"), "{text}");
    assert!(
        text.contains("wharf_http_request_duration_seconds"),
        "{text}"
    );
    assert!(
        text.contains("wharf_plugin_calls_total{plugin=\"hello\",outcome=\"ok\"}"),
        "{text}"
    );
}

#[tokio::test]
async fn openapi_describes_the_routes_as_3_1() {
    let server = Server::start().await;
    let doc = server
        .request("GET", "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(doc.status, 200);
    assert!(
        doc.body["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc.body["openapi"]
    );
    let paths = doc.body["paths"].as_object().expect("paths");
    for path in [
        "/api/v1/plugins",
        "/api/v1/plugins/{id}",
        "/api/v1/plugins/{id}/enable",
        "/api/v1/plugins/{id}/disable",
        "/api/v1/plugins/{id}/upgrade",
        "/api/v1/plugins/{id}/rollback",
        "/api/v1/plugins/{id}/logs",
        "/api/v1/plugins/{id}/config",
        "/api/v1/plugins/{id}/invoke",
        "/api/v1/auth/login",
        "/api/v1/plugin-trust/keys",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(paths.contains_key(path), "OpenAPI lacks {path}");
    }
}
