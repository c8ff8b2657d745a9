//! Rolling a run back: each succeeded step is compensated in reverse order of completion
//! and the compensation is recorded in the run; the deploys it made are undone (an app
//! deployed before goes back to its previous image, one that was not is removed).

use serde_json::{Value, json};
use wharf_tests::Server;

use super::*;

fn deploy_step(id: &str, app: &str) -> Value {
    step_def(
        id,
        "image-deploy",
        json!({"project": "shop", "app": app, "env": "dev", "image": "nginx:1.25",
               "replicas": 1}),
    )
}

/// The change order an `image-deploy` step opened.
fn change_of(run: &Value, step: &str) -> String {
    let outputs = &step_of(run, step)["outputs"];
    outputs["changeOrder"]
        .as_str()
        .or_else(|| outputs["changeOrder"]["id"].as_str())
        .unwrap_or_else(|| panic!("no change order in {outputs}"))
        .to_owned()
}

#[tokio::test]
async fn a_rollback_compensates_the_steps_in_reverse_order_and_undoes_the_deploys() {
    let server = Server::start().await;
    shop(&server).await;
    let reply = server
        .post(
            "/api/v1/projects/shop/apps",
            json!({"name": "web", "category": "MICRO_SERVICE"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let stamp = install_stamp(&server).await;
    // cart already serves nginx:1.24; web was never deployed.
    let first =
        crate::rollouts::deploy(&server, json!({"image": "nginx:1.24", "replicas": 1})).await;
    crate::rollouts::until_state(&server, &first, "succeeded").await;

    let id = create_id(
        &server,
        definition(
            "release",
            vec![
                stage_def(
                    "mark",
                    "CODE_BUILD",
                    vec![step_def("mark", &stamp, json!({"text": "release"}))],
                ),
                stage_def(
                    "ship",
                    "IMAGE_DEPLOY",
                    vec![deploy_step("cart", "cart"), deploy_step("web", "web")],
                ),
            ],
        ),
    )
    .await;
    let run = start(&server, &id).await;
    let done = finished(&server, &id, &run, "Succeeded").await;
    let order: Vec<u64> = ["mark", "cart", "web"]
        .iter()
        .map(|s| step_of(&done, s)["completedOrder"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(order, [1, 2, 3], "{done:#}");
    crate::market::until_pods(&server, "cart", 1, "nginx:1.25").await;
    crate::market::until_pods(&server, "web", 1, "nginx:1.25").await;
    let (cart_change, web_change) = (change_of(&done, "cart"), change_of(&done, "web"));

    let reply = server
        .post(&format!("{}/rollback", run_path(&id, &run)), json!({}))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert!(
        ["RollingBack", "RolledBack"].contains(&reply.body["status"].as_str().unwrap_or_default()),
        "{:?}",
        reply.body
    );
    let rolled = finished(&server, &id, &run, "RolledBack").await;
    for name in ["mark", "cart", "web"] {
        let step = step_of(&rolled, name);
        assert_eq!(step["status"], "Compensated", "{step:#}");
        // image-deploy's compensation waits for its rollback change order: pending, then done.
        let compensations = executions(step, "compensate");
        assert_eq!(
            compensations.last().map(|e| &e["outcome"]),
            Some(&json!("done")),
            "{step:#}"
        );
        assert!(
            compensations[..compensations.len() - 1]
                .iter()
                .all(|e| e["outcome"] == "pending"),
            "{step:#}"
        );
        // Its run finished once: a deploy waits (pending) and then is done, never run again.
        let runs = executions(step, "run");
        assert_eq!(
            runs.iter().filter(|e| e["outcome"] == "done").count(),
            1,
            "{step:#}"
        );
        assert_eq!(runs.last().map(|e| &e["outcome"]), Some(&json!("done")));
    }
    for name in ["cart", "web"] {
        assert_metered(
            executions(step_of(&rolled, name), "compensate")[0],
            "image-deploy",
        );
    }

    // The deploys are undone: cart serves its previous image again, web is removed.
    crate::market::until_pods(&server, "cart", 1, "nginx:1.24").await;
    crate::market::until_no_pods(&server, "web").await;
    // Reverse order: web (completed last) was rolled back first. Change orders of the
    // project are listed newest first.
    let changes = server
        .get("/api/v1/projects/shop/change-orders?pageSize=500")
        .await;
    assert_eq!(changes.status, 200, "{:?}", changes.body);
    let items = changes.body["items"].as_array().expect("items");
    let rollback_of = |target: &str| {
        items
            .iter()
            .position(|c| c["kind"] == "ROLLBACK" && c["rollbackOf"] == target)
            .unwrap_or_else(|| panic!("no rollback of {target} in {items:#?}"))
    };
    let (cart_undone, web_undone) = (rollback_of(&cart_change), rollback_of(&web_change));
    assert!(
        cart_undone < web_undone,
        "web's deploy must be undone before cart's: {items:#?}"
    );
    for undone in [cart_undone, web_undone] {
        assert_eq!(items[undone]["state"], "succeeded", "{:#}", items[undone]);
        assert_eq!(items[undone]["requestedBy"], "admin");
    }

    // There is nothing left to roll back.
    let again = server
        .post(&format!("{}/rollback", run_path(&id, &run)), json!({}))
        .await;
    assert_eq!(again.status, 409, "{:?}", again.body);
}
