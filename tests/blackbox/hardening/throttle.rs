//! Hardening (issue 11): see `mod.rs` for what this file proves.

use std::net::IpAddr;

use futures::future::join_all;
use serde_json::json;
use wharf_tests::{ADMIN_PASSWORD, Server};

/// The throttle's limit of attempts per username from one source.
const LIMIT: usize = 5;

#[tokio::test]
async fn forty_parallel_wrong_passwords_get_at_most_five_checks_and_the_admin_still_logs_in_elsewhere()
 {
    let server = Server::start().await;
    let guesses = (0..40).map(|i| {
        server.request(
            "POST",
            "/api/v1/auth/login",
            Some(json!({"username": "admin", "password": format!("guess-{i}")})),
            None,
        )
    });
    let replies = join_all(guesses).await;
    let checked = replies.iter().filter(|r| r.status == 401).count();
    let throttled: Vec<_> = replies.iter().filter(|r| r.status == 429).collect();
    assert!(
        checked <= LIMIT,
        "{checked} of 40 parallel guesses had their password checked; the limit is {LIMIT}"
    );
    assert_eq!(
        checked + throttled.len(),
        40,
        "every other guess is throttled"
    );
    for reply in throttled {
        reply.assert_problem(429, "login-throttled");
    }

    let here = server
        .request(
            "POST",
            "/api/v1/auth/login",
            Some(json!({"username": "admin", "password": ADMIN_PASSWORD})),
            None,
        )
        .await;
    here.assert_problem(429, "login-throttled");

    let elsewhere: IpAddr = "127.0.0.2".parse().expect("address");
    let login = server
        .request_from(
            elsewhere,
            "POST",
            "/api/v1/auth/login",
            Some(json!({"username": "admin", "password": ADMIN_PASSWORD})),
            None,
        )
        .await;
    assert_eq!(
        login.status, 200,
        "the real admin, from another address, is not locked out: {:?}",
        login.body
    );
}

#[tokio::test]
async fn changing_ones_own_password_ends_the_other_sessions_and_keeps_this_one() {
    let server = Server::start().await;
    let here = server.create_user("pat", false).await;
    let laptop = server.login("pat", "pat-password").await;
    let personal = server
        .request(
            "POST",
            "/api/v1/auth/tokens",
            Some(json!({"name": "ci", "expiresInDays": 30})),
            Some(&laptop),
        )
        .await;
    assert_eq!(personal.status, 201, "{:?}", personal.body);
    let personal = personal.body["token"].as_str().expect("token").to_owned();

    let changed = server
        .request(
            "PUT",
            "/api/v1/auth/password",
            Some(json!({"oldPassword": "pat-password", "newPassword": "pat-new-password"})),
            Some(&here),
        )
        .await;
    assert_eq!(changed.status, 204, "{:?}", changed.body);

    for (what, token) in [
        ("the other session", &laptop),
        ("the personal token", &personal),
    ] {
        let reply = server
            .request("GET", "/api/v1/auth/me", None, Some(token))
            .await;
        assert_eq!(
            reply.status, 401,
            "{what} still works after the password changed"
        );
    }
    let me = server
        .request("GET", "/api/v1/auth/me", None, Some(&here))
        .await;
    assert_eq!(
        me.status, 200,
        "the session that changed it stays: {:?}",
        me.body
    );
    server.login("pat", "pat-new-password").await;
}
