//! Hardening (issue 11, finding 5): uniqueness and rules spanning entities hold when many
//! requests race, because they rest on the store's conditional batches, not on a read
//! followed by a write or an in-process lock.

use futures::future::join_all;
use serde_json::{Value, json};
use wharf_tests::Server;

/// Sends `n` copies of one POST at once; the statuses, sorted.
async fn race(server: &Server, n: usize, path: &str, body: Value) -> Vec<u16> {
    let replies = join_all((0..n).map(|_| server.post(path, body.clone()))).await;
    let mut statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    statuses.sort();
    statuses
}

fn one_201_rest_409(statuses: &[u16]) -> bool {
    statuses.iter().filter(|s| **s == 201).count() == 1
        && statuses.iter().all(|s| *s == 201 || *s == 409)
}

#[tokio::test]
async fn fifty_concurrent_creates_of_one_project_code_give_one_201() {
    let server = Server::start().await;
    let statuses = race(
        &server,
        50,
        "/api/v1/projects",
        json!({"code": "shop", "name": "Shop"}),
    )
    .await;
    assert!(one_201_rest_409(&statuses), "{statuses:?}");
    let list = server.get("/api/v1/projects").await;
    let shops = list.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|p| p["code"] == "shop")
        .count();
    assert_eq!(shops, 1, "{:?}", list.body);
}

#[tokio::test]
async fn concurrent_creates_of_one_app_name_and_its_case_variants_give_one_app() {
    let server = Server::start().await;
    let project = server
        .post("/api/v1/projects", json!({"code": "shop", "name": "Shop"}))
        .await;
    assert_eq!(project.status, 201, "{:?}", project.body);
    let names = ["cart", "carT", "cArt", "caRt"];
    let replies = join_all((0..40).map(|i| {
        server.post(
            "/api/v1/projects/shop/apps",
            json!({"name": names[i % names.len()]}),
        )
    }))
    .await;
    let created = replies.iter().filter(|r| r.status == 201).count();
    assert_eq!(
        created,
        1,
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let odd: Vec<_> = replies
        .iter()
        .filter(|r| r.status != 201 && r.status != 409)
        .map(|r| (r.status, &r.body))
        .collect();
    assert!(odd.is_empty(), "{odd:?}");
    let apps = server.get("/api/v1/projects/shop/apps").await;
    assert_eq!(apps.body["total"], 1, "{:?}", apps.body);
}

#[tokio::test]
async fn two_environments_racing_for_one_namespace_bind_it_once() {
    let server = Server::start().await;
    let project = server
        .post("/api/v1/projects", json!({"code": "shop", "name": "Shop"}))
        .await;
    assert_eq!(project.status, 201, "{:?}", project.body);
    let envs = ["dev", "test", "stage", "perf"];
    for env in envs {
        let created = server
            .post(
                "/api/v1/projects/shop/environments",
                json!({"envCode": env, "envName": format!("Env {env}"), "envType": "DEVELOP"}),
            )
            .await;
        assert_eq!(created.status, 201, "{:?}", created.body);
    }
    let paths: Vec<String> = (0..20)
        .map(|i| {
            format!(
                "/api/v1/projects/shop/environments/{}/bindings",
                envs[i % envs.len()]
            )
        })
        .collect();
    let replies = join_all(paths.iter().map(|path| {
        server.post(
            path,
            json!({"cluster": "embedded", "namespace": "shared", "createNamespace": true}),
        )
    }))
    .await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201 || **s == 200).count(),
        1,
        "{statuses:?} {:?}",
        replies.iter().map(|r| &r.body).collect::<Vec<_>>()
    );
    assert!(statuses.iter().all(|s| *s < 500), "{statuses:?}");
    let mut holders = 0;
    for env in envs {
        let bindings = server
            .get(&format!(
                "/api/v1/projects/shop/environments/{env}/bindings"
            ))
            .await;
        holders += bindings.body["items"]
            .as_array()
            .map(|b| b.len())
            .unwrap_or(0);
    }
    assert_eq!(holders, 1, "one environment binds the namespace");
}

#[tokio::test]
async fn an_app_created_while_its_project_is_deleted_never_outlives_it() {
    let server = Server::start().await;
    for round in 0..10 {
        let code = format!("race{round}");
        let project = server
            .post("/api/v1/projects", json!({"code": code, "name": "Race"}))
            .await;
        assert_eq!(project.status, 201, "{:?}", project.body);
        let apps = format!("/api/v1/projects/{code}/apps");
        let project_path = format!("/api/v1/projects/{code}");
        let (deleted, created) = tokio::join!(
            server.delete(&project_path),
            server.post(&apps, json!({"name": "cart"}))
        );
        assert!(deleted.status < 500 && created.status < 500);
        let project_there = server.get(&project_path).await.status == 200;
        let app_there = server.get(&format!("{apps}/cart")).await.status == 200;
        // Either the app won (the project stays, refusing the delete) or the delete won
        // (no app was created): never an app in a deleted project.
        assert_eq!(
            (project_there, app_there),
            if created.status == 201 {
                (true, true)
            } else {
                (false, false)
            },
            "round {round}: delete {} {:?}, create {} {:?}",
            deleted.status,
            deleted.body,
            created.status,
            created.body
        );
        if created.status == 201 {
            deleted.assert_problem(409, "project-not-empty");
        }
    }
}

#[tokio::test]
async fn concurrent_creates_of_one_username_give_one_201() {
    use futures::future::join_all;
    use serde_json::json;
    use wharf_tests::Server;

    let server = Server::start().await;
    let creates = (0..50).map(|i| {
        server.post(
            "/api/v1/users",
            json!({"username": "twin", "password": format!("twin-password-{i}")}),
        )
    });
    let replies = join_all(creates).await;
    let created = replies.iter().filter(|r| r.status == 201).count();
    assert_eq!(created, 1, "one username, one account");
    for reply in replies.iter().filter(|r| r.status != 201) {
        reply.assert_problem(409, "username-taken");
    }
    assert_eq!(
        server.get("/api/v1/users?search=twin").await.body["total"],
        1
    );
}

#[tokio::test]
async fn concurrent_removals_of_the_last_two_owners_refuse_one() {
    use serde_json::json;
    use wharf_tests::{Reply, Server};

    let server = Server::start().await;
    let mut owners = Vec::new();
    for name in ["olga", "omar"] {
        let token = server.create_user(name, false).await;
        let me = server
            .request("GET", "/api/v1/auth/me", None, Some(&token))
            .await;
        owners.push(me.body["id"].as_str().expect("id").to_owned());
    }
    let remove = |code: String, user: String| {
        let server = &server;
        async move {
            server
                .delete(&format!("/api/v1/projects/{code}/members/{user}"))
                .await
        }
    };
    let demote = |code: String, user: String| {
        let server = &server;
        async move {
            server
                .put(
                    &format!("/api/v1/projects/{code}/members/{user}"),
                    json!({"role": "maintainer"}),
                )
                .await
        }
    };
    // Each way of losing the owner role, raced against each: removal, demotion, both.
    for round in 0..9 {
        let code = format!("race-{round}");
        let created = server
            .post("/api/v1/projects", json!({"code": code, "name": code}))
            .await;
        assert_eq!(created.status, 201, "{:?}", created.body);
        let added = server
            .post(
                &format!("/api/v1/projects/{code}/members"),
                json!({"userIds": owners, "role": "project-owner"}),
            )
            .await;
        assert_eq!(added.status, 200, "{:?}", added.body);
        // The admin created the project, so it is an owner too: it leaves, two remain.
        let members = server
            .get(&format!("/api/v1/projects/{code}/members"))
            .await;
        let admin = members.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|m| m["username"] == "admin")
            .and_then(|m| m["userId"].as_str())
            .expect("admin is a member")
            .to_owned();
        let left = server
            .delete(&format!("/api/v1/projects/{code}/members/{admin}"))
            .await;
        assert_eq!(left.status, 204, "{:?}", left.body);

        let (a, b) = (owners[0].clone(), owners[1].clone());
        let (first, second): (Reply, Reply) = match round % 3 {
            0 => tokio::join!(remove(code.clone(), a), remove(code.clone(), b)),
            1 => tokio::join!(demote(code.clone(), a), demote(code.clone(), b)),
            _ => tokio::join!(remove(code.clone(), a), demote(code.clone(), b)),
        };
        let mut answers = [first, second];
        answers.sort_by_key(|r| r.status);
        assert!(
            matches!(answers[0].status, 200 | 204),
            "round {round}: one change goes through: {answers:?}"
        );
        answers[1].assert_problem(409, "last-owner");

        let members = server
            .get(&format!("/api/v1/projects/{code}/members"))
            .await;
        let owners_left = members.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|m| m["role"] == "project-owner")
            .count();
        assert_eq!(owners_left, 1, "round {round}: {:?}", members.body);
    }
}

#[tokio::test]
async fn concurrent_creates_of_one_cluster_id_give_one_201() {
    use serde_json::json;
    use wharf_tests::Server;

    let server = Server::start().await;
    let kubeconfig = "apiVersion: v1
clusters:
- name: far
  cluster:
    server: https://127.0.0.1:9
users:
- name: robot
  user:
    token: t0ken
contexts:
- name: far-ctx
  context:
    cluster: far
    user: robot
current-context: far-ctx
";
    let statuses = |replies: Vec<wharf_tests::Reply>| {
        let created = replies.iter().filter(|r| r.status == 201).count();
        let conflicts = replies.iter().filter(|r| r.status == 409).count();
        let others: Vec<_> = replies
            .iter()
            .filter(|r| r.status != 201 && r.status != 409)
            .map(|r| (r.status, r.body.clone()))
            .collect();
        (created, conflicts, others)
    };

    // One region id, one pool id in it, one cluster id in that pool: 50 racers each.
    let regions = futures::future::join_all((0..50).map(|i| {
        server.post(
            "/api/v1/regions",
            json!({"id": "race", "name": format!("Racer {i}")}),
        )
    }))
    .await;
    assert_eq!(statuses(regions), (1, 49, vec![]));
    let pools = futures::future::join_all((0..50).map(|i| {
        server.post(
            "/api/v1/resource-pools",
            json!({"id": "race-pool", "name": format!("Racer {i}"), "region": "race"}),
        )
    }))
    .await;
    assert_eq!(statuses(pools), (1, 49, vec![]));
    let clusters = futures::future::join_all((0..50).map(|i| {
        server.post(
            "/api/v1/clusters",
            json!({"id": "race", "name": format!("Racer {i}"), "kind": "kubeconfig",
                   "kubeconfig": kubeconfig, "resourcePool": "race-pool"}),
        )
    }))
    .await;
    assert_eq!(statuses(clusters), (1, 49, vec![]));
    let listed = server.get("/api/v1/clusters?resourcePool=race-pool").await;
    assert_eq!(listed.body["total"], 1, "{:?}", listed.body);
}
