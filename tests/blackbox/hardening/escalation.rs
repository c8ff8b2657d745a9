//! Hardening (issue 11): see `mod.rs` for what this file proves.

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
