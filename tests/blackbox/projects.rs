//! Projects and members: members are bindings, so membership is permission.

use serde_json::json;
use wharf_tests::Server;

async fn me_id(server: &Server, token: &str) -> String {
    let me = server
        .request("GET", "/api/v1/auth/me", None, Some(token))
        .await;
    me.body["id"].as_str().expect("id").to_owned()
}

#[tokio::test]
async fn a_project_lives_with_members_roles_and_permission_flags() {
    let server = Server::start().await;
    let owner_token = server.create_user("olga", false).await;
    let dev_token = server.create_user("dave", false).await;
    let owner = me_id(&server, &owner_token).await;
    let dev = me_id(&server, &dev_token).await;
    let outsider = server.create_user("otto", false).await;

    // Only a holder of project.create may create; the admin gives Olga her own project.
    server
        .request(
            "POST",
            "/api/v1/projects",
            Some(json!({"code": "shop", "name": "Shop"})),
            Some(&owner_token),
        )
        .await
        .assert_problem(403, "forbidden");
    let created = server
        .post(
            "/api/v1/projects",
            json!({"code": "shop", "name": "Shop", "description": "the web shop"}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.body["permissions"]["canManage"], true);
    let added = server
        .post(
            "/api/v1/projects/shop/members",
            json!({"userIds": [owner], "role": "project-owner"}),
        )
        .await;
    assert_eq!(added.status, 200, "{:?}", added.body);

    // The owner adds a developer; the developer sees the project with narrower flags.
    let addable = server
        .request(
            "GET",
            "/api/v1/projects/shop/addable-users?search=da",
            None,
            Some(&owner_token),
        )
        .await;
    assert!(
        addable.body["items"].to_string().contains("dave"),
        "{:?}",
        addable.body
    );
    let added = server
        .request(
            "POST",
            "/api/v1/projects/shop/members",
            Some(json!({"userIds": [dev], "role": "developer"})),
            Some(&owner_token),
        )
        .await;
    assert_eq!(added.status, 200, "{:?}", added.body);
    let seen = server
        .request("GET", "/api/v1/projects/shop", None, Some(&dev_token))
        .await;
    assert_eq!(seen.status, 200, "{:?}", seen.body);
    assert_eq!(
        (
            seen.body["permissions"]["canView"].as_bool(),
            seen.body["permissions"]["canModify"].as_bool()
        ),
        (Some(true), Some(false))
    );
    assert_eq!(
        seen.body["permissions"]["canExecute"], true,
        "a developer may deploy"
    );
    server
        .request(
            "PATCH",
            "/api/v1/projects/shop",
            Some(json!({"name": "x"})),
            Some(&dev_token),
        )
        .await
        .assert_problem(403, "forbidden");

    // Lists show only what the caller may see.
    let mine = server
        .request("GET", "/api/v1/projects", None, Some(&dev_token))
        .await;
    assert_eq!(mine.body["total"], 1);
    let none = server
        .request("GET", "/api/v1/projects", None, Some(&outsider))
        .await;
    assert_eq!(none.body["total"], 0);

    // An owner cannot grant more than it holds; a developer cannot grant at all.
    let too_much = server
        .request(
            "POST",
            "/api/v1/projects/shop/members",
            Some(json!({"userIds": [dev], "role": "system-admin"})),
            Some(&owner_token),
        )
        .await;
    assert_eq!(too_much.status, 200, "already a member: nothing to grant");
    let change = server
        .request(
            "PUT",
            &format!("/api/v1/projects/shop/members/{dev}"),
            Some(json!({"role": "system-admin"})),
            Some(&owner_token),
        )
        .await;
    change.assert_problem(403, "not-allowed");
    let promoted = server
        .request(
            "PUT",
            &format!("/api/v1/projects/shop/members/{dev}"),
            Some(json!({"role": "maintainer"})),
            Some(&owner_token),
        )
        .await;
    assert!(
        promoted.body["items"].to_string().contains("maintainer"),
        "{:?}",
        promoted.body
    );

    // Members list says who can be removed; the last owner is protected.
    let members = server.get("/api/v1/projects/shop/members").await;
    let items = members.body["items"].as_array().expect("items");
    let admin_row = items
        .iter()
        .find(|m| m["username"] == "admin")
        .expect("creator is owner");
    let olga_row = items
        .iter()
        .find(|m| m["username"] == "olga")
        .expect("olga");
    assert_eq!(
        (admin_row["role"].as_str(), olga_row["canRemove"].as_bool()),
        (Some("project-owner"), Some(true))
    );
    let admin_id = admin_row["userId"].as_str().expect("admin id").to_owned();
    assert_eq!(
        server
            .delete(&format!("/api/v1/projects/shop/members/{admin_id}"))
            .await
            .status,
        204
    );
    server
        .delete(&format!("/api/v1/projects/shop/members/{owner}"))
        .await
        .assert_problem(409, "last-owner");
    assert_eq!(
        server
            .request(
                "DELETE",
                &format!("/api/v1/projects/shop/members/{dev}"),
                None,
                Some(&owner_token)
            )
            .await
            .status,
        204
    );
    server
        .request("GET", "/api/v1/projects/shop", None, Some(&dev_token))
        .await
        .assert_problem(403, "forbidden");

    assert_eq!(
        server
            .request("DELETE", "/api/v1/projects/shop", None, Some(&owner_token))
            .await
            .status,
        204
    );
    server
        .get("/api/v1/projects/shop")
        .await
        .assert_problem(404, "project-not-found");
}

#[tokio::test]
async fn project_codes_follow_the_seed_rules() {
    let server = Server::start().await;
    server
        .post("/api/v1/projects", json!({"code": "1bad", "name": "x"}))
        .await
        .assert_field(422, "code");
    server
        .post("/api/v1/projects", json!({"code": "ok-code", "name": ""}))
        .await
        .assert_field(422, "name");
    assert_eq!(
        server
            .post("/api/v1/projects", json!({"code": "ok-code", "name": "Ok"}))
            .await
            .status,
        201
    );
    server
        .post(
            "/api/v1/projects",
            json!({"code": "ok-code", "name": "Again"}),
        )
        .await
        .assert_problem(409, "code-taken");
    server.create_user("rita", false).await;
    server.create_user("sam", false).await;
    let users = server.get("/api/v1/users?pageSize=500").await;
    let id_of = |name: &str| {
        users.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["username"] == name)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let each = server
        .post(
            "/api/v1/projects/ok-code/members",
            json!({"members": [{"userId": id_of("rita"), "role": "viewer"}, {"userId": id_of("sam"), "role": "developer"}]}),
        )
        .await;
    let text = each.body.to_string();
    assert!(
        text.contains("rita")
            && text.contains("viewer")
            && text.contains("sam")
            && text.contains("developer"),
        "{text}"
    );
    server
        .post(
            "/api/v1/projects/ok-code/members",
            json!({"userIds": [id_of("rita")]}),
        )
        .await
        .assert_field(422, "role");
    server
        .post(
            "/api/v1/projects/ok-code/members",
            json!({"members": [{"userId": "ghost", "role": "viewer"}]}),
        )
        .await
        .assert_field(422, "members[0].userId");
    let found = server.get("/api/v1/projects?search=OK").await;
    assert_eq!(found.body["total"], 1);
}
