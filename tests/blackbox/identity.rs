//! Users, sessions and personal tokens.

use serde_json::json;
use wharf_tests::{ADMIN_PASSWORD, Server};

async fn user_id(server: &Server, username: &str) -> String {
    let page = server
        .get(&format!("/api/v1/users?search={username}"))
        .await;
    page.body["items"]
        .as_array()
        .and_then(|items| items.iter().find(|u| u["username"] == username))
        .and_then(|u| u["id"].as_str())
        .expect("user listed")
        .to_owned()
}

#[tokio::test]
async fn an_admin_manages_users_and_a_disabled_user_is_locked_out() {
    let server = Server::start().await;
    let token = server.create_user("ann", false).await;
    let me = server
        .request("GET", "/api/v1/auth/me", None, Some(&token))
        .await;
    assert_eq!(
        (me.body["username"].as_str(), me.body["isAdmin"].as_bool()),
        (Some("ann"), Some(false))
    );

    let id = user_id(&server, "ann").await;
    let shown = server.get(&format!("/api/v1/users/{id}")).await;
    assert_eq!(shown.body["status"], "active");
    assert!(
        shown.body.get("passwordHash").is_none(),
        "no secret is ever returned"
    );
    let updated = server
        .request(
            "PATCH",
            &format!("/api/v1/users/{id}"),
            Some(json!({"displayName": "Ann A.", "email": "ann@example.com"})),
            Some(&server.token),
        )
        .await;
    assert_eq!(updated.body["displayName"], "Ann A.");
    server
        .request(
            "PATCH",
            &format!("/api/v1/users/{id}"),
            Some(json!({"email": "not-an-email"})),
            Some(&server.token),
        )
        .await
        .assert_field(422, "email");
    server
        .post(
            "/api/v1/users",
            json!({"username": "ann", "password": "long-enough"}),
        )
        .await
        .assert_problem(409, "username-taken");
    server
        .post(
            "/api/v1/users",
            json!({"username": "Bad Name", "password": "long-enough"}),
        )
        .await
        .assert_field(422, "username");
    server
        .post(
            "/api/v1/users",
            json!({"username": "shorty", "password": "short"}),
        )
        .await
        .assert_field(422, "password");

    let disabled = server
        .post(&format!("/api/v1/users/{id}/disable"), json!({}))
        .await;
    assert_eq!(disabled.body["status"], "disabled");
    assert_eq!(
        server
            .request("GET", "/api/v1/auth/me", None, Some(&token))
            .await
            .status,
        401,
        "tokens of a disabled user stop working"
    );
    let login = server
        .request(
            "POST",
            "/api/v1/auth/login",
            Some(json!({"username": "ann", "password": "ann-password"})),
            None,
        )
        .await;
    login.assert_problem(401, "invalid-credentials");
    server
        .post(&format!("/api/v1/users/{id}/enable"), json!({}))
        .await;
    server.login("ann", "ann-password").await;

    assert_eq!(
        server.delete(&format!("/api/v1/users/{id}")).await.status,
        204
    );
    server
        .get(&format!("/api/v1/users/{id}"))
        .await
        .assert_problem(404, "user-not-found");
}

#[tokio::test]
async fn the_last_admin_is_protected() {
    let server = Server::start().await;
    let admin = user_id(&server, "admin").await;
    server
        .post(&format!("/api/v1/users/{admin}/disable"), json!({}))
        .await
        .assert_problem(409, "refused");
    server
        .delete(&format!("/api/v1/users/{admin}"))
        .await
        .assert_problem(409, "refused");
    server.create_user("second-admin", true).await;
    assert_eq!(
        server
            .post(&format!("/api/v1/users/{admin}/disable"), json!({}))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn passwords_change_with_the_old_one_and_resets_revoke_sessions() {
    let server = Server::start().await;
    let token = server.create_user("bob", false).await;
    let wrong = server
        .request(
            "PUT",
            "/api/v1/auth/password",
            Some(json!({"oldPassword": "nope", "newPassword": "new-password-1"})),
            Some(&token),
        )
        .await;
    wrong.assert_field(422, "oldPassword");
    let ok = server
        .request(
            "PUT",
            "/api/v1/auth/password",
            Some(json!({"oldPassword": "bob-password", "newPassword": "new-password-1"})),
            Some(&token),
        )
        .await;
    assert_eq!(ok.status, 204);
    let fresh = server.login("bob", "new-password-1").await;

    let id = user_id(&server, "bob").await;
    assert_eq!(
        server
            .put(
                &format!("/api/v1/users/{id}/password"),
                json!({"password": "reset-password-2"})
            )
            .await
            .status,
        204
    );
    assert_eq!(
        server
            .request("GET", "/api/v1/auth/me", None, Some(&fresh))
            .await
            .status,
        401
    );
    server.login("bob", "reset-password-2").await;
}

#[tokio::test]
async fn logout_and_refresh_retire_the_old_token() {
    let server = Server::start().await;
    let first = server.login("admin", ADMIN_PASSWORD).await;
    let refreshed = server
        .request("POST", "/api/v1/auth/refresh", None, Some(&first))
        .await;
    let second = refreshed.body["token"]
        .as_str()
        .expect("new token")
        .to_owned();
    assert_eq!(
        server
            .request("GET", "/api/v1/auth/me", None, Some(&first))
            .await
            .status,
        401
    );
    assert_eq!(
        server
            .request("GET", "/api/v1/auth/me", None, Some(&second))
            .await
            .status,
        200
    );
    assert_eq!(
        server
            .request("POST", "/api/v1/auth/logout", None, Some(&second))
            .await
            .status,
        204
    );
    assert_eq!(
        server
            .request("GET", "/api/v1/auth/me", None, Some(&second))
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn personal_tokens_are_shown_once_narrowed_by_scope_and_revocable() {
    let server = Server::start().await;
    let created = server
        .post(
            "/api/v1/auth/tokens",
            json!({"name": "ci", "expiresInDays": 30, "scope": ["plugin.read"]}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let secret = created.body["token"].as_str().expect("secret").to_owned();
    let token_id = created.body["id"].as_str().expect("id").to_owned();

    let listed = server.get("/api/v1/auth/tokens").await;
    let text = listed.body.to_string();
    assert!(
        text.contains("\"ci\"") && !text.contains(&secret),
        "the secret is never listed"
    );

    let read = server
        .request("GET", "/api/v1/plugins/hello", None, Some(&secret))
        .await;
    assert_eq!(read.status, 200, "in scope");
    let list = server
        .request("GET", "/api/v1/plugins", None, Some(&secret))
        .await;
    list.assert_problem(403, "forbidden");
    let wider = server
        .request(
            "POST",
            "/api/v1/auth/tokens",
            Some(json!({"name": "x", "expiresInDays": 1, "scope": ["plugin."]})),
            Some(&secret),
        )
        .await;
    wider.assert_problem(403, "forbidden");

    server
        .post(
            "/api/v1/auth/tokens",
            json!({"name": "x", "expiresInDays": 0}),
        )
        .await
        .assert_field(422, "expiresInDays");
    assert_eq!(
        server
            .delete(&format!("/api/v1/auth/tokens/{token_id}"))
            .await
            .status,
        204
    );
    assert_eq!(
        server
            .request("GET", "/api/v1/plugins/hello", None, Some(&secret))
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn repeated_failed_logins_are_throttled() {
    let server = Server::start().await;
    for _ in 0..5 {
        let reply = server
            .request(
                "POST",
                "/api/v1/auth/login",
                Some(json!({"username": "admin", "password": "guess"})),
                None,
            )
            .await;
        assert_eq!(reply.status, 401);
    }
    let locked = server
        .request(
            "POST",
            "/api/v1/auth/login",
            Some(json!({"username": "admin", "password": ADMIN_PASSWORD})),
            None,
        )
        .await;
    locked.assert_problem(429, "login-throttled");
}

#[tokio::test]
async fn registration_waits_for_an_admin_and_is_off_by_default() {
    let closed = Server::start().await;
    let refused = closed
        .request(
            "POST",
            "/api/v1/auth/register",
            Some(json!({"username": "cyd", "password": "cyd-password"})),
            None,
        )
        .await;
    refused.assert_problem(403, "forbidden");

    let server = Server::start_with(&["--allow-registration"]).await;
    let registered = server
        .request(
            "POST",
            "/api/v1/auth/register",
            Some(json!({"username": "cyd", "password": "cyd-password", "isAdmin": true})),
            None,
        )
        .await;
    assert_eq!(registered.status, 201, "{:?}", registered.body);
    assert_eq!(
        (
            registered.body["status"].as_str(),
            registered.body["isAdmin"].as_bool()
        ),
        (Some("pending"), Some(false))
    );
    let early = server
        .request(
            "POST",
            "/api/v1/auth/login",
            Some(json!({"username": "cyd", "password": "cyd-password"})),
            None,
        )
        .await;
    assert_eq!(early.status, 401, "a pending user cannot log in");
    let pending = server.get("/api/v1/users?status=pending").await;
    assert_eq!(pending.body["total"], 1);
    let id = registered.body["id"].as_str().expect("id");
    assert_eq!(
        server
            .post(&format!("/api/v1/users/{id}/approve"), json!({}))
            .await
            .body["status"],
        "active"
    );
    server.login("cyd", "cyd-password").await;
    server
        .post(&format!("/api/v1/users/{id}/approve"), json!({}))
        .await
        .assert_problem(409, "not-pending");
}
