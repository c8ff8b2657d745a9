//! Hardening (issue 11): see `mod.rs` for what this file proves.

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
