//! Hardening (issue 11): see `mod.rs` for what this file proves.

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
