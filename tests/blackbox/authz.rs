//! Authorization by the authorizer plugin: bindings grant, groups carry grants, the policy
//! can be swapped at run time, and a missing or failing authorizer fails closed.

use serde_json::json;
use wharf_host::api::routes::{Access, ROUTES};
use wharf_tests::{Server, eventually, fixture};

use crate::api_surface::{assert_no_server_error, concrete, ends_session};

async fn me_id(server: &Server, token: &str) -> String {
    let me = server
        .request("GET", "/api/v1/auth/me", None, Some(token))
        .await;
    me.body["id"].as_str().expect("id").to_owned()
}

async fn bind(server: &Server, subject: &str, role: &str, scope: &str) -> serde_json::Value {
    let reply = server
        .post(
            "/api/v1/authz/bindings",
            json!({"subject": subject, "role": role, "scope": scope}),
        )
        .await;
    assert_eq!(
        reply.status, 201,
        "binding {subject} to {role} at {scope}: {:?}",
        reply.body
    );
    reply.body
}

#[tokio::test]
async fn a_user_bound_to_a_role_with_every_action_passes_every_route_without_a_5xx() {
    let server = Server::start().await;
    let token = server.create_user("grace", false).await;
    let id = me_id(&server, &token).await;
    bind(&server, &format!("user:{id}"), "system-admin", "system").await;
    for route in ROUTES.iter().filter(|r| r.access != Access::Public) {
        let token = if ends_session(route.action) {
            server.login("grace", "grace-password").await
        } else {
            token.clone()
        };
        let reply = server
            .request(
                route.method,
                &concrete(route.path),
                Some(json!({})),
                Some(&token),
            )
            .await;
        assert_no_server_error(route.method, route.path, &reply);
        assert!(
            ![401, 403].contains(&reply.status),
            "{} {} refused a granted user: {:?}",
            route.method,
            route.path,
            reply.body
        );
    }
}

#[tokio::test]
async fn roles_from_groups_and_scopes_decide_and_the_log_names_the_authorizer() {
    let server = Server::start().await;
    let token = server.create_user("heidi", false).await;
    let id = me_id(&server, &token).await;
    let denied = server
        .request("GET", "/api/v1/plugins", None, Some(&token))
        .await;
    denied.assert_problem(403, "forbidden");
    assert!(
        denied.body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("plugin.list"),
        "{:?}",
        denied.body
    );

    let group = server
        .post("/api/v1/groups", json!({"name": "operators"}))
        .await;
    assert_eq!(group.status, 201, "{:?}", group.body);
    let group_id = group.body["id"].as_str().expect("group id").to_owned();
    let added = server
        .put(
            &format!("/api/v1/groups/{group_id}/members/{id}"),
            json!({}),
        )
        .await;
    assert_eq!(added.body["members"], json!([id]));
    bind(&server, &format!("group:{group_id}"), "viewer", "system").await;

    assert_eq!(
        server
            .request("GET", "/api/v1/plugins", None, Some(&token))
            .await
            .status,
        200,
        "viewer may list"
    );
    server
        .request("POST", "/api/v1/plugins/hello/disable", None, Some(&token))
        .await
        .assert_problem(403, "forbidden");

    let records = server
        .get("/api/v1/audit?outcome=denied&action=plugin.disable")
        .await;
    let record = &records.body["items"][0];
    assert_eq!(record["actor"]["name"], "heidi");
    assert_eq!(record["plugin"], "authz-rbac@0.1.0", "{record}");

    let removed = server
        .request(
            "DELETE",
            &format!("/api/v1/groups/{group_id}/members/{id}"),
            None,
            Some(&server.token),
        )
        .await;
    assert_eq!(removed.status, 200);
    server
        .request("GET", "/api/v1/plugins", None, Some(&token))
        .await
        .assert_problem(403, "forbidden");
}

#[tokio::test]
async fn batch_checks_and_who_can_what_can_answer_from_the_policy() {
    let server = Server::start().await;
    let token = server.create_user("ivan", false).await;
    let id = me_id(&server, &token).await;
    bind(&server, &format!("user:{id}"), "developer", "project:shop").await;
    let check = server
        .request(
            "POST",
            "/api/v1/authz/check",
            Some(json!({"requests": [
                {"action": "app.deploy", "resource": "project:shop/app:cart/env:prod"},
                {"action": "app.deploy", "resource": "project:other/app:cart"},
                {"action": "app.delete", "resource": "project:shop/app:cart"},
            ]})),
            Some(&token),
        )
        .await;
    assert_eq!(check.status, 200, "{:?}", check.body);
    let allowed: Vec<bool> = check.body["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["allow"].as_bool().unwrap())
        .collect();
    assert_eq!(allowed, [true, false, false]);

    let who = server
        .post(
            "/api/v1/authz/who-can",
            json!({"action": "app.deploy", "resource": "project:shop/app:cart"}),
        )
        .await;
    assert!(
        who.body.to_string().contains(&format!("user:{id}")),
        "{:?}",
        who.body
    );
    let what = server
        .post(
            "/api/v1/authz/what-can",
            json!({"subject": format!("user:{id}"), "resource": "project:shop/app:cart"}),
        )
        .await;
    assert!(
        what.body.to_string().contains("app.deploy"),
        "{:?}",
        what.body
    );

    let role = server
        .post(
            "/api/v1/authz/roles",
            json!({"name": "app-flags", "actions": ["app.read", "app.view-log"]}),
        )
        .await;
    assert_eq!(role.status, 201, "{:?}", role.body);
    let unknown = server
        .post(
            "/api/v1/authz/roles",
            json!({"name": "bad-role", "actions": ["spaceship.launch"]}),
        )
        .await;
    unknown.assert_problem(422, "unknown-permission");
    let not_allowed = server
        .request("POST", "/api/v1/authz/bindings", Some(json!({"subject": format!("user:{id}"), "role": "project-owner", "scope": "project:shop"})), Some(&token))
        .await;
    not_allowed.assert_problem(403, "not-allowed");
    let active = server.get("/api/v1/authz").await;
    assert_eq!(active.body["plugin"], "authz-rbac");
}

#[tokio::test]
async fn swapping_the_authorizer_changes_decisions_at_once_and_is_audited() {
    let server = Server::start().await;
    let token = server.create_user("judy", false).await;
    server
        .request("GET", "/api/v1/plugins", None, Some(&token))
        .await
        .assert_problem(403, "forbidden");

    let swapped = server
        .post("/api/v1/plugins/authz-read-only/enable", json!({}))
        .await;
    assert_eq!(swapped.status, 200, "{:?}", swapped.body);
    assert_eq!(
        server.get("/api/v1/plugins/authz-rbac").await.body["status"],
        "disabled"
    );
    assert_eq!(
        server.get("/api/v1/authz").await.body["plugin"],
        "authz-read-only"
    );

    assert_eq!(
        server
            .request("GET", "/api/v1/plugins", None, Some(&token))
            .await
            .status,
        200,
        "reads are open now"
    );
    let write = server
        .request("POST", "/api/v1/plugins/hello/disable", None, Some(&token))
        .await;
    write.assert_problem(403, "forbidden");
    assert!(
        write.body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("read-only"),
        "{:?}",
        write.body
    );

    let enabled = server
        .get("/api/v1/audit?action=plugin.enable&target=plugin:authz-read-only")
        .await;
    assert_eq!(enabled.body["items"][0]["actor"]["name"], "admin");
    let retired = server
        .get("/api/v1/audit?action=plugin.disable&target=plugin:authz-rbac")
        .await;
    assert!(
        retired.body["items"][0]["after"]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("authz-read-only"),
        "{:?}",
        retired.body
    );

    let back = server
        .post("/api/v1/plugins/authz-rbac/enable", json!({}))
        .await;
    assert_eq!(back.status, 200);
    server
        .request("GET", "/api/v1/plugins", None, Some(&token))
        .await
        .assert_problem(403, "forbidden");
}

#[tokio::test]
async fn without_an_authorizer_everything_fails_closed_but_the_admin_can_recover() {
    let server = Server::start().await;
    let token = server.create_user("ken", false).await;
    assert_eq!(
        server
            .post("/api/v1/plugins/authz-rbac/disable", json!({}))
            .await
            .status,
        200
    );
    server
        .request("GET", "/api/v1/auth/me", None, Some(&token))
        .await
        .assert_problem(503, "no-authorizer");
    server
        .get("/api/v1/users")
        .await
        .assert_problem(503, "no-authorizer");
    let recovered = server
        .post("/api/v1/plugins/authz-rbac/enable", json!({}))
        .await;
    assert_eq!(
        recovered.status, 200,
        "the admin may still administer plugins: {:?}",
        recovered.body
    );
    assert_eq!(
        server
            .request("GET", "/api/v1/auth/me", None, Some(&token))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn a_trapping_authorizer_fails_closed() {
    let server = Server::start().await;
    server.allow_unsigned().await;
    let token = server.create_user("liam", false).await;
    server.install_enabled(&fixture("authz-panic")).await;
    server
        .request("GET", "/api/v1/auth/me", None, Some(&token))
        .await
        .assert_problem(503, "authorizer-unavailable");
    let path = "/api/v1/plugins/authz-rbac/enable";
    // A failing authorizer is never switched off, but while it fails the built-in admin
    // may still manage plugins, so the admin can enable a working one in its place.
    assert!(eventually(|| async { server.post(path, json!({})).await.status == 200 }).await);
    assert_eq!(
        server
            .request("GET", "/api/v1/auth/me", None, Some(&token))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn a_revoked_binding_takes_effect_on_the_next_request() {
    let server = Server::start().await;
    let token = server.create_user("mona", false).await;
    let id = me_id(&server, &token).await;
    let binding = bind(&server, &format!("user:{id}"), "viewer", "system").await;
    for _ in 0..3 {
        assert_eq!(
            server
                .request("GET", "/api/v1/plugins", None, Some(&token))
                .await
                .status,
            200
        );
    }
    let binding_id = binding["id"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| binding["id"].to_string());
    assert_eq!(
        server
            .delete(&format!("/api/v1/authz/bindings/{binding_id}"))
            .await
            .status,
        204
    );
    server
        .request("GET", "/api/v1/plugins", None, Some(&token))
        .await
        .assert_problem(403, "forbidden");
}

#[tokio::test]
async fn a_user_defined_pipeline_stops_project_permissions_at_its_door() {
    let server = Server::start().await;
    let token = server.create_user("nina", false).await;
    let id = me_id(&server, &token).await;
    bind(&server, &format!("user:{id}"), "developer", "project:shop").await;
    let pipeline = "project:shop/pipeline:release";
    let can_run = || async {
        let answer = server
            .request(
                "POST",
                "/api/v1/authz/check",
                Some(json!({"requests": [{"action": "pipeline.run", "resource": pipeline}]})),
                Some(&token),
            )
            .await;
        answer.body["decisions"][0]["allow"] == true
    };
    assert!(
        can_run().await,
        "DEFAULT: the project's developers may run it"
    );
    let refused = server
        .request(
            "PUT",
            "/api/v1/authz/pipeline-mode",
            Some(json!({"scope": pipeline, "mode": "USER_DEFINED"})),
            Some(&token),
        )
        .await;
    refused.assert_problem(403, "not-allowed");
    let set = server
        .put(
            "/api/v1/authz/pipeline-mode",
            json!({"scope": pipeline, "mode": "USER_DEFINED"}),
        )
        .await;
    assert_eq!(set.body["mode"], "USER_DEFINED", "{:?}", set.body);
    assert!(
        !can_run().await,
        "USER_DEFINED: only bindings at the pipeline count"
    );
    bind(&server, &format!("user:{id}"), "developer", pipeline).await;
    assert!(can_run().await);
    let mode = server
        .get(&format!("/api/v1/authz/pipeline-mode?scope={pipeline}"))
        .await;
    assert_eq!(mode.body["mode"], "USER_DEFINED");
    server
        .put(
            "/api/v1/authz/pipeline-mode",
            json!({"scope": "project:shop", "mode": "DEFAULT"}),
        )
        .await
        .assert_field(422, "scope");
}
