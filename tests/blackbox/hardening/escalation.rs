//! Hardening (issue 11): see `mod.rs` for what this file proves.

use serde_json::json;
use wharf_tests::{ADMIN_PASSWORD, Server};

async fn user_id(server: &Server, token: &str) -> String {
    let me = server
        .request("GET", "/api/v1/auth/me", None, Some(token))
        .await;
    me.body["id"].as_str().expect("id").to_owned()
}

#[tokio::test]
async fn a_custom_role_holding_user_create_cannot_make_an_admin_nor_take_over_one() {
    let server = Server::start().await;
    let role = server
        .post(
            "/api/v1/authz/roles",
            json!({"name": "user-maker", "actions": [
                "user.create", "user.list", "user.read", "user.update",
                "user.reset-password", "user.disable", "plugin.invoke"
            ]}),
        )
        .await;
    assert_eq!(role.status, 201, "{:?}", role.body);
    let mallory = server.create_user("mallory", false).await;
    let mallory_id = user_id(&server, &mallory).await;
    let bound = server
        .post(
            "/api/v1/authz/bindings",
            json!({"subject": format!("user:{mallory_id}"), "role": "user-maker", "scope": "system"}),
        )
        .await;
    assert_eq!(bound.status, 201, "{:?}", bound.body);

    let plain = server
        .request(
            "POST",
            "/api/v1/users",
            Some(json!({"username": "helper", "password": "helper-password"})),
            Some(&mallory),
        )
        .await;
    assert_eq!(
        plain.status, 201,
        "the role does grant user.create: {:?}",
        plain.body
    );

    let admin = server
        .request(
            "POST",
            "/api/v1/users",
            Some(json!({"username": "mallory-root", "password": "mallory-password", "isAdmin": true})),
            Some(&mallory),
        )
        .await;
    admin.assert_problem(403, "admin-required");
    assert_eq!(admin.body["field"], "isAdmin");
    assert_eq!(
        server.get("/api/v1/users?search=mallory-root").await.body["total"],
        0,
        "no admin account was created"
    );

    let promoted = server
        .request(
            "PATCH",
            &format!("/api/v1/users/{mallory_id}"),
            Some(json!({"isAdmin": true})),
            Some(&mallory),
        )
        .await;
    assert!(
        !(200..300).contains(&promoted.status),
        "a user cannot promote itself: {:?}",
        promoted.body
    );
    let me = server
        .request("GET", "/api/v1/auth/me", None, Some(&mallory))
        .await;
    assert_eq!(me.body["isAdmin"], false);

    let admin_id = user_id(&server, &server.token).await;
    server
        .request(
            "PUT",
            &format!("/api/v1/users/{admin_id}/password"),
            Some(json!({"password": "taken-over-password"})),
            Some(&mallory),
        )
        .await
        .assert_problem(403, "admin-required");
    server
        .request(
            "POST",
            &format!("/api/v1/users/{admin_id}/disable"),
            Some(json!({})),
            Some(&mallory),
        )
        .await
        .assert_problem(403, "admin-required");
    server.login("admin", ADMIN_PASSWORD).await;
}

#[tokio::test]
async fn a_token_scoped_plugin_read_cannot_read_plugin_logs() {
    let server = Server::start().await;
    let token = |scope: &str| {
        let scope = scope.to_owned();
        let server = &server;
        async move {
            let created = server
                .post(
                    "/api/v1/auth/tokens",
                    json!({"name": scope, "expiresInDays": 1, "scope": [scope]}),
                )
                .await;
            assert_eq!(created.status, 201, "{:?}", created.body);
            created.body["token"].as_str().expect("token").to_owned()
        }
    };
    let read = token("plugin.read").await;
    let reply = server
        .request("GET", "/api/v1/plugins/hello", None, Some(&read))
        .await;
    assert_eq!(reply.status, 200, "in scope: {:?}", reply.body);
    server
        .request("GET", "/api/v1/plugins/hello/logs", None, Some(&read))
        .await
        .assert_problem(403, "forbidden");

    let whole = token("plugin").await;
    let reply = server
        .request("GET", "/api/v1/plugins/hello/logs", None, Some(&whole))
        .await;
    assert_eq!(
        reply.status, 200,
        "`plugin` covers every plugin.*: {:?}",
        reply.body
    );

    server
        .post(
            "/api/v1/auth/tokens",
            json!({"name": "typo", "expiresInDays": 1, "scope": ["plugin.rea"]}),
        )
        .await
        .assert_field(422, "scope[0]");
}

/// A user whose custom role grants `plugin.invoke` calls the authorizer's `manage` through
/// the plugin console with a forged admin subject, to bind itself `system-admin`: the
/// subject is the caller, so the plugin refuses, and the user stays an ordinary user.
#[tokio::test]
async fn plugin_invoke_cannot_bind_the_caller_system_admin() {
    use serde_json::json;
    use wharf_tests::Server;

    let server = Server::start().await;
    let token = server.create_user("mallory", false).await;
    let me = server
        .request("GET", "/api/v1/auth/me", None, Some(&token))
        .await;
    let id = me.body["id"].as_str().expect("id").to_owned();
    let role = server
        .post(
            "/api/v1/authz/roles",
            json!({"name": "console-user", "actions": ["plugin.invoke"]}),
        )
        .await;
    assert_eq!(role.status, 201, "{:?}", role.body);
    let bound = server
        .post(
            "/api/v1/authz/bindings",
            json!({"subject": format!("user:{id}"), "role": "console-user", "scope": "system"}),
        )
        .await;
    assert_eq!(bound.status, 201, "{:?}", bound.body);

    let forged = json!({
        "function": "authorize.manage",
        "input": {
            "subject": {"id": id, "username": "mallory", "groups": [], "isAdmin": true},
            "operation": "binding.create",
            "input": {"subject": format!("user:{id}"), "role": "system-admin", "scope": "system"},
        },
    });
    let reply = server
        .request(
            "POST",
            "/api/v1/plugins/authz-rbac/invoke",
            Some(forged),
            Some(&token),
        )
        .await;
    assert!(
        reply.status == 403 || reply.body["output"]["error"]["kind"] == "forbidden",
        "the forged admin subject was honoured: {} {:?}",
        reply.status,
        reply.body
    );
    let users = server
        .request("GET", "/api/v1/users", None, Some(&token))
        .await;
    assert_eq!(users.status, 403, "mallory became admin: {:?}", users.body);
    let bindings = server
        .get(&format!("/api/v1/authz/bindings?subject=user:{id}"))
        .await;
    assert!(
        !bindings.body.to_string().contains("system-admin"),
        "{:?}",
        bindings.body
    );
}
