//! Apps of a project and their groups, favourites, copies and the disable flag through
//! REST and the CLI, and seed 004's app details with the caller's rights.

use serde_json::{Value, json};
use wharf_tests::{Reply, Server};

const APPS: &str = "/api/v1/projects/shop/apps";
const GROUPS: &str = "/api/v1/projects/shop/app-groups";

async fn project(server: &Server) {
    let reply = server
        .post("/api/v1/projects", json!({"code": "shop", "name": "Shop"}))
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
}

async fn app(server: &Server, body: Value) -> Value {
    let reply = server.post(APPS, body).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    reply.body
}

async fn group(server: &Server, name: &str) -> String {
    let reply = server.post(GROUPS, json!({"name": name})).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    reply.body["id"].as_str().expect("group id").to_owned()
}

async fn patch(server: &Server, path: &str, body: Value) -> Reply {
    server
        .request("PATCH", path, Some(body), Some(&server.token))
        .await
}

/// Names of the apps a list answers with.
async fn names(server: &Server, query: &str, token: &str) -> Vec<String> {
    let reply = server
        .request("GET", &format!("{APPS}?{query}"), None, Some(token))
        .await;
    assert_eq!(reply.status, 200, "{query}: {:?}", reply.body);
    reply.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|a| a["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn user_id(server: &Server, token: &str) -> String {
    let me = server
        .request("GET", "/api/v1/auth/me", None, Some(token))
        .await;
    me.body["id"].as_str().expect("id").to_owned()
}

/// Creates a user bound to `role` on project `shop`; its token.
async fn member(server: &Server, username: &str, role: &str) -> String {
    let token = server.create_user(username, false).await;
    let id = user_id(server, &token).await;
    let reply = server
        .post(
            "/api/v1/authz/bindings",
            json!({"subject": format!("user:{id}"), "role": role, "scope": "project:shop"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    token
}

#[tokio::test]
async fn apps_check_every_seed_001_field_and_refuse_names_that_clash_in_kubernetes() {
    let server = Server::start().await;
    project(&server).await;
    let base = json!({"name": "cart", "category": "MICRO_SERVICE"});
    let with = |key: &str, value: Value| {
        let mut body = base.clone();
        body[key] = value;
        body
    };
    for (body, field) in [
        (with("name", json!("ca")), "name"),
        (with("name", json!("Cart")), "name"),
        (with("name", json!("1cart")), "name"),
        (with("name", json!("cart-svc")), "name"),
        (with("name", json!("c".repeat(31))), "name"),
        (json!({"category": "GENERAL_APP"}), "name"),
        (with("category", json!("WEB")), "category"),
        (with("description", json!("x".repeat(501))), "description"),
        (
            with("codeReposAddress", json!("ftp://git.example.com/cart")),
            "codeReposAddress",
        ),
        (
            with("codeReposAddress", json!("github.com/acme/cart")),
            "codeReposAddress",
        ),
        (
            with(
                "codeReposAddress",
                json!(format!("https://github.com/{}", "a".repeat(82))),
            ),
            "codeReposAddress",
        ),
        (with("origin", json!("G".repeat(21))), "origin"),
        (with("groupId", json!("nowhere")), "groupId"),
        (with("colour", json!("red")), "colour"),
    ] {
        server.post(APPS, body).await.assert_field(422, field);
    }
    server
        .post("/api/v1/projects/ghost/apps", base.clone())
        .await
        .assert_problem(404, "project-not-found");

    let created = app(
        &server,
        json!({"name": "cartSvc", "category": "MICRO_SERVICE", "description": "Cart",
            "codeReposAddress": "https://github.com/acme/cart", "origin": "GITHUB"}),
    )
    .await;
    let id = created["id"].as_str().expect("id");
    assert!(
        id.len() == 32 && id.chars().all(|c| c.is_ascii_alphanumeric()),
        "{id}"
    );
    for key in ["createdAt", "updatedAt", "createdBy"] {
        assert!(created[key].is_string(), "{key}: {created}");
    }
    assert_eq!(
        (
            created["project"].as_str(),
            created["disabled"].as_bool(),
            created["favourite"].as_bool()
        ),
        (Some("shop"), Some(false), Some(false))
    );
    // A general app is the default (seed 001 5.1.1).
    let general = app(&server, json!({"name": "web"})).await;
    assert_eq!(general["category"], "GENERAL_APP");

    server
        .post(APPS, json!({"name": "cartSvc"}))
        .await
        .assert_problem(409, "app-name-taken");
    let clash = server.post(APPS, json!({"name": "cartsvc"})).await;
    clash.assert_problem(409, "app-name-clash");
    clash.assert_field(409, "name");
}

#[tokio::test]
async fn an_app_is_read_updated_and_deleted_with_before_and_after_audited() {
    let server = Server::start().await;
    project(&server).await;
    let created = app(
        &server,
        json!({"name": "cart", "codeReposAddress": "https://gitee.com/acme/cart", "origin": "GITEE"}),
    )
    .await;
    let got = server.get(&format!("{APPS}/cart")).await;
    assert_eq!(got.status, 200, "{:?}", got.body);
    assert_eq!(got.body["id"], created["id"]);
    server
        .get(&format!("{APPS}/ghost"))
        .await
        .assert_problem(404, "app-not-found");

    let patched = patch(
        &server,
        &format!("{APPS}/cart"),
        json!({"description": "The cart", "category": "MICRO_SERVICE", "codeReposAddress": null}),
    )
    .await;
    assert_eq!(patched.status, 200, "{:?}", patched.body);
    assert_eq!(
        (
            patched.body["description"].as_str(),
            patched.body["category"].as_str(),
            patched.body["codeReposAddress"].is_null(),
            patched.body["origin"].as_str()
        ),
        (Some("The cart"), Some("MICRO_SERVICE"), true, Some("GITEE"))
    );
    for (body, field) in [
        (json!({"description": "x".repeat(501)}), "description"),
        (json!({"codeReposAddress": "nope"}), "codeReposAddress"),
        (json!({"groupId": "nowhere"}), "groupId"),
        (json!({"name": "renamed"}), "name"),
    ] {
        patch(&server, &format!("{APPS}/cart"), body)
            .await
            .assert_field(422, field);
    }
    let audit = server
        .get("/api/v1/audit?action=app.update&outcome=ok")
        .await;
    let record = &audit.body["items"][0];
    assert_eq!(
        (
            record["before"]["category"].as_str(),
            record["after"]["category"].as_str(),
            record["target"].as_str()
        ),
        (
            Some("GENERAL_APP"),
            Some("MICRO_SERVICE"),
            Some("project:shop/app:cart")
        ),
        "{record}"
    );

    // A project that owns apps cannot be deleted.
    server
        .delete("/api/v1/projects/shop")
        .await
        .assert_problem(409, "project-not-empty");
    let deleted = server.delete(&format!("{APPS}/cart")).await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    server
        .get(&format!("{APPS}/cart"))
        .await
        .assert_problem(404, "app-not-found");
    let id = created["id"].as_str().unwrap();
    server
        .get(&format!("/v1/applications/{id}/info"))
        .await
        .assert_problem(404, "app-not-found");
    server
        .delete(&format!("{APPS}/cart"))
        .await
        .assert_problem(404, "app-not-found");
    // The name is free again, under a new id.
    let again = app(&server, json!({"name": "cart"})).await;
    assert_ne!(again["id"], created["id"]);
}

#[tokio::test]
async fn lists_filter_by_name_category_group_and_page_by_name() {
    let server = Server::start().await;
    project(&server).await;
    let backend = group(&server, "backend").await;
    for (name, category, group) in [
        ("orders", "MICRO_SERVICE", Some(&backend)),
        ("cartApi", "MICRO_SERVICE", Some(&backend)),
        ("portal", "GENERAL_APP", None),
        ("adminCart", "GENERAL_APP", None),
        ("billing", "MICRO_SERVICE", None),
    ] {
        let mut body = json!({"name": name, "category": category});
        if let Some(group) = group {
            body["groupId"] = json!(group);
        }
        app(&server, body).await;
    }
    let token = server.token.clone();
    assert_eq!(
        names(&server, "", &token).await,
        ["adminCart", "billing", "cartApi", "orders", "portal"]
    );
    assert_eq!(
        names(&server, "name=CART", &token).await,
        ["adminCart", "cartApi"]
    );
    assert_eq!(
        names(&server, "category=GENERAL_APP", &token).await,
        ["adminCart", "portal"]
    );
    assert_eq!(
        names(&server, &format!("group={backend}"), &token).await,
        ["cartApi", "orders"]
    );
    assert_eq!(
        names(
            &server,
            &format!("group={backend}&name=ord&category=MICRO_SERVICE"),
            &token
        )
        .await,
        ["orders"]
    );
    let page = server.get(&format!("{APPS}?page=2&pageSize=2")).await;
    assert_eq!(page.status, 200, "{:?}", page.body);
    assert_eq!(
        (
            page.body["total"].as_u64(),
            page.body["page"].as_u64(),
            page.body["pageSize"].as_u64()
        ),
        (Some(5), Some(2), Some(2))
    );
    let second: Vec<&str> = page.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert_eq!(second, ["cartApi", "orders"]);
    let grouped = server.get(&format!("{APPS}/orders")).await;
    assert_eq!(grouped.body["groupName"], "backend");

    server
        .get(&format!("{APPS}?category=WEB"))
        .await
        .assert_field(422, "category");
    server
        .get(&format!("{APPS}?favourite=maybe"))
        .await
        .assert_field(422, "favourite");
    server
        .get(&format!("{APPS}?pageSize=501"))
        .await
        .assert_field(422, "pageSize");
    server
        .get("/api/v1/projects/ghost/apps")
        .await
        .assert_problem(404, "project-not-found");
}

#[tokio::test]
async fn groups_have_short_unique_names_and_deleting_one_ungroups_its_apps() {
    let server = Server::start().await;
    project(&server).await;
    server
        .post(GROUPS, json!({"name": "abcdefghijk"}))
        .await
        .assert_field(422, "name");
    server
        .post(GROUPS, json!({"name": ""}))
        .await
        .assert_field(422, "name");
    server
        .post(GROUPS, json!({}))
        .await
        .assert_field(422, "name");
    let backend = group(&server, "backend").await;
    let front = group(&server, "前端").await;
    let taken = server.post(GROUPS, json!({"name": "backend"})).await;
    taken.assert_problem(409, "app-group-name-taken");
    server
        .post("/api/v1/projects/ghost/app-groups", json!({"name": "x"}))
        .await
        .assert_problem(404, "project-not-found");

    app(&server, json!({"name": "orders", "groupId": backend})).await;
    app(&server, json!({"name": "portal"})).await;
    let assigned = server
        .put(&format!("{APPS}/portal/group"), json!({"groupId": backend}))
        .await;
    assert_eq!(assigned.status, 200, "{:?}", assigned.body);
    assert_eq!(assigned.body["groupId"], json!(backend));
    server
        .put(
            &format!("{APPS}/portal/group"),
            json!({"groupId": "nowhere"}),
        )
        .await
        .assert_field(422, "groupId");

    let groups = server.get(GROUPS).await;
    assert_eq!(groups.status, 200, "{:?}", groups.body);
    let counts: Vec<(String, u64)> = groups.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["name"].as_str().unwrap().to_owned(),
                g["appCount"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(counts, [("backend".to_owned(), 2), ("前端".to_owned(), 0)]);

    let renamed = patch(
        &server,
        &format!("{GROUPS}/{backend}"),
        json!({"name": "core"}),
    )
    .await;
    assert_eq!(renamed.status, 200, "{:?}", renamed.body);
    patch(
        &server,
        &format!("{GROUPS}/{front}"),
        json!({"name": "core"}),
    )
    .await
    .assert_problem(409, "app-group-name-taken");
    patch(&server, &format!("{GROUPS}/nowhere"), json!({"name": "x"}))
        .await
        .assert_problem(404, "app-group-not-found");
    assert_eq!(
        server.get(&format!("{APPS}/orders")).await.body["groupName"],
        "core"
    );

    let deleted = server.delete(&format!("{GROUPS}/{backend}")).await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    for name in ["orders", "portal"] {
        let app = server.get(&format!("{APPS}/{name}")).await;
        assert!(app.body["groupId"].is_null(), "{name}: {:?}", app.body);
    }
    assert!(
        names(&server, &format!("group={backend}"), &server.token)
            .await
            .is_empty()
    );
    server
        .delete(&format!("{GROUPS}/{backend}"))
        .await
        .assert_problem(404, "app-group-not-found");
    // Taking an app out of its group.
    let again = group(&server, "again").await;
    server
        .put(&format!("{APPS}/portal/group"), json!({"groupId": again}))
        .await;
    let out = server
        .put(&format!("{APPS}/portal/group"), json!({"groupId": null}))
        .await;
    assert_eq!(out.status, 200, "{:?}", out.body);
    assert!(out.body["groupId"].is_null());
}

#[tokio::test]
async fn a_copy_keeps_category_repository_and_group_under_a_new_name_and_id() {
    let server = Server::start().await;
    project(&server).await;
    let backend = group(&server, "backend").await;
    let source = app(
        &server,
        json!({"name": "cart", "category": "MICRO_SERVICE", "description": "The cart",
            "codeReposAddress": "https://github.com/acme/cart", "origin": "GITHUB", "groupId": backend}),
    )
    .await;
    let copy = server
        .post(&format!("{APPS}/cart/copy"), json!({"name": "cartV2"}))
        .await;
    assert_eq!(copy.status, 201, "{:?}", copy.body);
    assert_ne!(copy.body["id"], source["id"]);
    for key in [
        "category",
        "codeReposAddress",
        "origin",
        "groupId",
        "description",
    ] {
        assert_eq!(copy.body[key], source[key], "{key}");
    }
    assert_eq!(copy.body["name"], "cartV2");
    let described = server
        .post(
            &format!("{APPS}/cart/copy"),
            json!({"name": "cartV3", "description": "Third"}),
        )
        .await;
    assert_eq!(described.body["description"], "Third");
    server
        .post(&format!("{APPS}/cart/copy"), json!({"name": "cartv2"}))
        .await
        .assert_problem(409, "app-name-clash");
    server
        .post(&format!("{APPS}/cart/copy"), json!({"name": "Cart"}))
        .await
        .assert_field(422, "name");
    server
        .post(&format!("{APPS}/ghost/copy"), json!({"name": "ghostCopy"}))
        .await
        .assert_problem(404, "app-not-found");
    let info = server
        .get(&format!(
            "/v1/applications/{}/info",
            copy.body["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(info.body["result"]["name"], "cartV2");
}

#[tokio::test]
async fn favourites_belong_to_each_user() {
    let server = Server::start().await;
    project(&server).await;
    for name in ["cart", "orders", "portal"] {
        app(&server, json!({"name": name})).await;
    }
    let viewer = member(&server, "vera", "viewer").await;
    let marked = server
        .put(&format!("{APPS}/cart/favourite"), json!({}))
        .await;
    assert_eq!(marked.status, 204, "{:?}", marked.body);
    let by_vera = server
        .request(
            "PUT",
            &format!("{APPS}/portal/favourite"),
            None,
            Some(&viewer),
        )
        .await;
    assert_eq!(by_vera.status, 204, "{:?}", by_vera.body);

    let admin = server.token.clone();
    assert_eq!(names(&server, "favourite=true", &admin).await, ["cart"]);
    assert_eq!(names(&server, "favourite=true", &viewer).await, ["portal"]);
    assert_eq!(
        names(&server, "favourite=false", &viewer).await,
        ["cart", "orders"]
    );
    assert_eq!(
        server.get(&format!("{APPS}/cart")).await.body["favourite"],
        true
    );
    let seen_by_vera = server
        .request("GET", &format!("{APPS}/cart"), None, Some(&viewer))
        .await;
    assert_eq!(seen_by_vera.body["favourite"], false);

    let unmarked = server.delete(&format!("{APPS}/cart/favourite")).await;
    assert_eq!(unmarked.status, 204, "{:?}", unmarked.body);
    assert!(names(&server, "favourite=true", &admin).await.is_empty());
    server
        .put(&format!("{APPS}/ghost/favourite"), json!({}))
        .await
        .assert_problem(404, "app-not-found");

    // Deleting an app removes it from everyone's favourites; a new app of that name is
    // nobody's favourite.
    let deleted = server.delete(&format!("{APPS}/portal")).await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    app(&server, json!({"name": "portal"})).await;
    assert!(names(&server, "favourite=true", &viewer).await.is_empty());
}

#[tokio::test]
async fn a_disabled_app_says_so_until_enabled_and_a_viewer_cannot_disable_it() {
    let server = Server::start().await;
    project(&server).await;
    let created = app(&server, json!({"name": "cart"})).await;
    let viewer = member(&server, "vic", "viewer").await;
    server
        .request(
            "POST",
            &format!("{APPS}/cart/disable"),
            Some(json!({})),
            Some(&viewer),
        )
        .await
        .assert_problem(403, "forbidden");
    let disabled = server
        .post(&format!("{APPS}/cart/disable"), json!({}))
        .await;
    assert_eq!(disabled.status, 200, "{:?}", disabled.body);
    assert_eq!(disabled.body["disabled"], true);
    assert_eq!(
        server.get(&format!("{APPS}/cart")).await.body["disabled"],
        true
    );
    let id = created["id"].as_str().unwrap();
    let info = server.get(&format!("/v1/applications/{id}/info")).await;
    assert_eq!(info.body["result"]["is_disable"], true);
    let enabled = server.post(&format!("{APPS}/cart/enable"), json!({})).await;
    assert_eq!(enabled.body["disabled"], false);
    server
        .post(&format!("{APPS}/ghost/disable"), json!({}))
        .await
        .assert_problem(404, "app-not-found");
}

/// Every AppDetailInfo field of seed 004 (the `can_*` flags included).
const DETAIL_FIELDS: &[&str] = &[
    "id",
    "name",
    "region",
    "description",
    "is_disable",
    "create_type",
    "project_id",
    "project_name",
    "slave_cluster_id",
    "is_care",
    "can_modify",
    "can_delete",
    "can_view",
    "can_execute",
    "can_copy",
    "can_manage",
    "can_create_env",
    "can_disable",
    "owner_tenant_id",
    "create_user_id",
    "create_tenant_id",
    "create_time",
    "update_time",
    "permission_level",
    "arrange_infos",
];

const FLAGS: &[&str] = &[
    "can_modify",
    "can_delete",
    "can_view",
    "can_execute",
    "can_copy",
    "can_manage",
    "can_create_env",
    "can_disable",
];

/// GET with seed 004's `X-Auth-Token` header instead of a bearer token.
async fn with_auth_token(server: &Server, path: &str, token: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(format!("{}{path}", server.base))
        .header("X-Auth-Token", token)
        .send()
        .await
        .expect("request sent");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn seed_004_app_details_answer_every_field_with_the_callers_rights() {
    let server = Server::start().await;
    project(&server).await;
    let created = app(
        &server,
        json!({"name": "cart", "description": "The cart", "category": "MICRO_SERVICE"}),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/applications/{id}/info");
    server
        .put(&format!("{APPS}/cart/favourite"), json!({}))
        .await;

    let (status, body) = with_auth_token(&server, &path, &server.token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "success");
    let result = &body["result"];
    for field in DETAIL_FIELDS {
        assert!(result.get(*field).is_some(), "{field} missing: {result}");
    }
    for flag in FLAGS {
        assert_eq!(result[*flag], true, "admin {flag}: {result}");
    }
    assert_eq!(
        (
            result["id"].as_str(),
            result["name"].as_str(),
            result["project_id"].as_str(),
            result["project_name"].as_str(),
            result["is_care"].as_bool(),
            result["is_disable"].as_bool(),
            result["permission_level"].as_str(),
        ),
        (
            Some(id.as_str()),
            Some("cart"),
            Some("shop"),
            Some("Shop"),
            Some(true),
            Some(false),
            Some("instance")
        )
    );
    let time = result["create_time"].as_str().unwrap();
    let shape: String = time
        .chars()
        .map(|c| if c.is_ascii_digit() { 'd' } else { c })
        .collect();
    assert_eq!(shape, "dddd-dd-dd dd:dd:dd", "{time}");
    assert_eq!(result["arrange_infos"], json!([]));
    let admin_id = user_id(&server, &server.token).await;
    assert_eq!(result["create_user_id"], json!(admin_id));

    // A viewer of the project may only view; is_care is the caller's own.
    let viewer = member(&server, "vanya", "viewer").await;
    let (status, body) = with_auth_token(&server, &path, &viewer).await;
    assert_eq!(status, 200, "{body}");
    for flag in FLAGS {
        assert_eq!(
            body["result"][*flag],
            *flag == "can_view",
            "viewer {flag}: {body}"
        );
    }
    assert_eq!(body["result"]["is_care"], false);

    // A user with no binding on the project is refused; so is a missing or forged token.
    let stranger = server.create_user("stan", false).await;
    let (status, _) = with_auth_token(&server, &path, &stranger).await;
    assert_eq!(status, 403);
    let (status, _) = with_auth_token(&server, &path, "wharf_forged").await;
    assert_eq!(status, 401);
    server
        .request("GET", &path, None, None)
        .await
        .assert_problem(401, "unauthenticated");
    server
        .get("/v1/applications/0123456789abcdef0123456789abcdef/info")
        .await
        .assert_problem(404, "app-not-found");
}

fn stdout(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "wharf failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn the_cli_creates_groups_lists_copies_and_shows_seed_004_details() {
    let server = Server::start().await;
    project(&server).await;
    stdout(&server.cli(&["app", "group", "create", "shop", "backend"]));
    let created = stdout(&server.cli(&[
        "app",
        "create",
        "shop",
        "cart",
        "--category",
        "MICRO_SERVICE",
        "--repo",
        "https://github.com/acme/cart",
        "--group",
        "backend",
    ]));
    let created: Value = serde_json::from_str(&created).expect("JSON of the created app");
    assert_eq!(created["groupName"], "backend");
    stdout(&server.cli(&["app", "create", "shop", "portal"]));
    stdout(&server.cli(&["app", "copy", "shop", "cart", "cartCopy"]));
    stdout(&server.cli(&["app", "favourite", "shop", "portal"]));

    let listed = stdout(&server.cli(&["app", "list", "shop"]));
    for name in ["cart", "cartCopy", "portal", "backend", "MICRO_SERVICE"] {
        assert!(listed.contains(name), "{name} not in:\n{listed}");
    }
    let grouped = stdout(&server.cli(&["app", "list", "shop", "--group", "backend", "--json"]));
    let grouped: Value = serde_json::from_str(&grouped).unwrap();
    assert_eq!(grouped["total"], 2, "{grouped}");
    let favourites = stdout(&server.cli(&["app", "list", "shop", "--favourite", "--json"]));
    let favourites: Value = serde_json::from_str(&favourites).unwrap();
    assert_eq!(favourites["items"][0]["name"], "portal", "{favourites}");

    let id = created["id"].as_str().unwrap();
    let info = stdout(&server.cli(&["app", "info", id]));
    let info: Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["result"]["name"], "cart");

    let bad = server.cli(&["app", "create", "shop", "Bad"]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("field name"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    stdout(&server.cli(&["app", "group", "delete", "shop", "backend"]));
    let ungrouped = server.get(&format!("{APPS}/cart")).await;
    assert!(ungrouped.body["groupId"].is_null(), "{:?}", ungrouped.body);
}

/// Every TaskV2Info field of seed 004 (the `can_*` flags included).
const TASK_FIELDS: &[&str] = &[
    "id",
    "name",
    "state",
    "description",
    "owner",
    "steps",
    "project_id",
    "project_name",
    "deploy_system",
    "create_time",
    "update_time",
    "role_id",
    "is_defaut_permission",
    "template_id",
    "nick_name",
    "owner_id",
    "tenant_id",
    "tenant_name",
    "slave_cluster_id",
    "is_care",
    "can_modify",
    "can_delete",
    "can_view",
    "can_execute",
    "can_copy",
    "can_manage",
    "can_create_env",
    "can_disable",
    "app_component_list",
    "release_id",
    "app_id",
    "is_disable",
];

/// Waits (bounded) until a change order reaches `succeeded`.
async fn until_succeeded(server: &Server, accepted: &Reply) {
    assert_eq!(accepted.status, 202, "{:?}", accepted.body);
    let id = accepted.body["changeOrderId"]
        .as_str()
        .expect("changeOrderId");
    let mut last = Value::Null;
    for _ in 0..600 {
        last = server
            .get(&format!("/api/v1/change-orders/{id}"))
            .await
            .body;
        if last["state"] == "succeeded" {
            return;
        }
        assert_ne!(last["state"], "failed", "{last:#}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("change order {id} did not succeed: {last:#}");
}

#[tokio::test]
async fn a_deployed_app_lists_its_deployments_as_seed_004_tasks_and_cannot_be_deleted() {
    let server = Server::start().await;
    project(&server).await;
    let reply = server
        .post(
            "/api/v1/projects/shop/environments",
            json!({"envCode": "dev", "envName": "Development", "envType": "DEVELOP"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let reply = server
        .post(
            "/api/v1/projects/shop/environments/dev/bindings",
            json!({"cluster": "embedded", "namespace": "shop-dev", "createNamespace": true}),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let created = app(
        &server,
        json!({"name": "cart", "category": "MICRO_SERVICE"}),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let deployment = format!("{APPS}/cart/deployments/dev");
    let deployed = server
        .post(
            &format!("{deployment}/deploy"),
            json!({"image": "nginx:1.24", "replicas": 2}),
        )
        .await;
    until_succeeded(&server, &deployed).await;

    let info = server.get(&format!("/v1/applications/{id}/info")).await;
    assert_eq!(info.status, 200, "{:?}", info.body);
    let tasks = info.body["result"]["arrange_infos"]
        .as_array()
        .expect("tasks");
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    let task = &tasks[0];
    for field in TASK_FIELDS {
        assert!(task.get(*field).is_some(), "{field} missing: {task}");
    }
    for flag in FLAGS {
        assert_eq!(task[*flag], true, "admin {flag}: {task}");
    }
    let step = &task["steps"]["step1"];
    assert_eq!(
        (
            task["name"].as_str(),
            task["state"].as_str(),
            task["release_id"].as_u64(),
            task["app_id"].as_str(),
            step["name"].as_str(),
            step["params"]["image"].as_str(),
            step["params"]["replicas"].as_str(),
            step["enable"].as_bool(),
        ),
        (
            Some("cart-dev"),
            Some("SUCCEEDED"),
            Some(1),
            Some(id.as_str()),
            Some("Deploy image"),
            Some("nginx:1.24"),
            Some("2"),
            Some(true)
        ),
        "{task}"
    );
    let viewer = member(&server, "vlad", "viewer").await;
    let seen = server
        .request(
            "GET",
            &format!("/v1/applications/{id}/info"),
            None,
            Some(&viewer),
        )
        .await;
    let task = &seen.body["result"]["arrange_infos"][0];
    for flag in FLAGS {
        assert_eq!(task[*flag], *flag == "can_view", "viewer {flag}: {task}");
    }

    // Deployed somewhere: the app stays. Once the deployment is deleted, the app and its
    // deployment history go.
    server
        .delete(&format!("{APPS}/cart"))
        .await
        .assert_problem(409, "app-has-deployments");
    let removed = server.delete(&deployment).await;
    until_succeeded(&server, &removed).await;
    let deleted = server.delete(&format!("{APPS}/cart")).await;
    assert_eq!(deleted.status, 204, "{:?}", deleted.body);
    app(&server, json!({"name": "cart"})).await;
    server
        .get(&deployment)
        .await
        .assert_problem(404, "deployment-not-found");
}
