//! Hardening (issue 11): see `mod.rs` for what this file proves.

use serde_json::{Value, json};
use wharf_tests::Server;

async fn created(server: &Server, path: &str, body: Value) {
    let reply = server.post(path, body).await;
    assert_eq!(reply.status, 201, "POST {path}: {:?}", reply.body);
}

/// The project `shop` with the environment `prod` and the app `cart`.
async fn shop_with_cart_and_prod(server: &Server) {
    created(
        server,
        "/api/v1/projects",
        json!({"code": "shop", "name": "Shop"}),
    )
    .await;
    created(
        server,
        "/api/v1/projects/shop/environments",
        json!({"envCode": "prod", "envName": "Production", "envType": "DEVELOP"}),
    )
    .await;
    created(
        server,
        "/api/v1/projects/shop/apps",
        json!({"name": "cart", "category": "MICRO_SERVICE"}),
    )
    .await;
}

/// The scopes of `subject`'s bindings, sorted.
async fn bound_scopes(server: &Server, subject: &str) -> Vec<String> {
    let reply = server
        .get(&format!("/api/v1/authz/bindings?subject={subject}"))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let mut scopes: Vec<String> = reply.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|b| b["scope"].as_str().expect("scope").to_owned())
        .collect();
    scopes.sort();
    scopes
}

async fn deleted(server: &Server, path: &str) {
    let reply = server.delete(path).await;
    assert_eq!(reply.status, 204, "DELETE {path}: {:?}", reply.body);
}

#[tokio::test]
async fn deleting_an_environment_app_or_project_takes_its_grants_so_recreating_the_names_grants_nothing()
 {
    let server = Server::start().await;
    shop_with_cart_and_prod(&server).await;
    created(
        &server,
        "/api/v1/projects",
        json!({"code": "shopping", "name": "Shopping"}),
    )
    .await;
    let bob_token = server.create_user("bob", false).await;
    let me = server
        .request("GET", "/api/v1/auth/me", None, Some(&bob_token))
        .await;
    let bob = format!("user:{}", me.body["id"].as_str().expect("id"));
    let env_scope = "project:shop/app:cart/env:prod";
    for (role, scope) in [
        ("viewer", "project:shop"),
        ("developer", "project:shop/app:cart"),
        ("maintainer", env_scope),
        // A project whose code merely starts with `shop` is not below `project:shop`.
        ("viewer", "project:shopping"),
    ] {
        created(
            &server,
            "/api/v1/authz/bindings",
            json!({"subject": bob, "role": role, "scope": scope}),
        )
        .await;
    }

    // A refused delete (the project still owns an app and an environment) keeps them all.
    server
        .delete("/api/v1/projects/shop")
        .await
        .assert_problem(409, "project-not-empty");
    assert_eq!(bound_scopes(&server, &bob).await.len(), 4);

    deleted(&server, "/api/v1/projects/shop/environments/prod").await;
    assert_eq!(
        bound_scopes(&server, &bob).await,
        ["project:shop", "project:shop/app:cart", "project:shopping"],
        "deleting the environment takes the bindings in it"
    );
    deleted(&server, "/api/v1/projects/shop/apps/cart").await;
    assert_eq!(
        bound_scopes(&server, &bob).await,
        ["project:shop", "project:shopping"],
        "deleting the app takes the bindings at and below it"
    );
    deleted(&server, "/api/v1/projects/shop").await;
    assert_eq!(
        bound_scopes(&server, &bob).await,
        ["project:shopping"],
        "deleting the project takes every binding at and below it, and only those"
    );

    // Someone else creates the same names: bob gets nothing back.
    shop_with_cart_and_prod(&server).await;
    assert_eq!(bound_scopes(&server, &bob).await, ["project:shopping"]);
    server
        .request("GET", "/api/v1/projects/shop", None, Some(&bob_token))
        .await
        .assert_problem(403, "forbidden");
    let checks = server
        .request(
            "POST",
            "/api/v1/authz/check",
            Some(json!({"requests": [
                {"action": "project.read", "resource": "project:shop"},
                {"action": "app.update", "resource": "project:shop/app:cart"},
                {"action": "deploy.create", "resource": env_scope},
                {"action": "project.read", "resource": "project:shopping"},
            ]})),
            Some(&bob_token),
        )
        .await;
    assert_eq!(checks.status, 200, "{:?}", checks.body);
    let allowed: Vec<bool> = checks.body["decisions"]
        .as_array()
        .expect("decisions")
        .iter()
        .map(|d| d["allow"].as_bool().expect("allow"))
        .collect();
    assert_eq!(allowed, [false, false, false, true]);
}
