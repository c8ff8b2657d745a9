//! Hardening (issue 11): see `mod.rs` for what this file proves.

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
