//! After install: an upgrade with one changed, one added and one removed component (its
//! dry run shows exactly that and changes nothing), its rollback, and an uninstall that
//! removes exactly what the install created.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, ListParams};
use serde_json::{Value, json};
use wharf_tests::{Kubectl, Server};

use super::fake_store::FakeStore;
use super::ram::{self, CACHE_KEY, MYSQL_KEY, WEB_KEY, WORKER_KEY};
use super::*;

/// 1.0: mysql, web 1.0, worker. 2.0: mysql (the same), web 2.0, cache (worker gone).
fn versions(store: &FakeStore) {
    store.publish(&ram::template(
        "shop-suite",
        "Shop Suite",
        "1.0",
        vec![ram::mysql(), ram::web("1.0"), ram::worker()],
    ));
    store.publish(&ram::template(
        "shop-suite",
        "Shop Suite",
        "2.0",
        vec![ram::mysql(), ram::web("2.0"), ram::cache()],
    ));
}

fn app_of(install: &Value, key: &str) -> String {
    component(install, key)["app"]
        .as_str()
        .expect("the component's app")
        .to_owned()
}

async fn change_orders(server: &Server) -> u64 {
    let reply = server
        .get("/api/v1/projects/shop/change-orders?pageSize=500")
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["total"].as_u64().expect("total")
}

/// Installs 1.0 with deploy and waits until it runs.
async fn running_install(server: &Server, group: &str) -> Value {
    let reply = server
        .post(
            INSTALLS,
            install_body("hub", "shop-suite", "1.0", group, true),
        )
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let id = reply.body["id"].as_str().expect("id").to_owned();
    until_install(server, &id, all_running).await
}

fn entries(diff: &Value, list: &str) -> Vec<(String, String)> {
    diff[list]
        .as_array()
        .unwrap_or_else(|| panic!("no {list} in {diff:#}"))
        .iter()
        .map(|c| {
            (
                c["key"].as_str().unwrap_or_default().to_owned(),
                c["name"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn an_upgrade_shows_its_diff_as_a_dry_run_then_applies_it_and_rolls_back() {
    let server = Server::start().await;
    let store = FakeStore::start(ACCESS_KEY, DOMAIN);
    versions(&store);
    connect(&server, &store, "hub").await;
    let group = shop_with_group(&server).await;
    let installed = running_install(&server, &group).await;
    let id = installed["id"].as_str().expect("id").to_owned();
    let upgrade = format!("{INSTALLS}/{id}/upgrade");
    let apps_before = group_apps(&server, &group).await;
    let orders_before = change_orders(&server).await;

    let dry = server
        .post(&upgrade, json!({"version": "2.0", "dryRun": true}))
        .await;
    assert_eq!(dry.status, 200, "{:?}", dry.body);
    let diff = dry.body;
    assert_eq!(
        (&diff["from"], &diff["to"]),
        (&json!("1.0"), &json!("2.0")),
        "{diff:#}"
    );
    assert_eq!(
        entries(&diff, "added"),
        [(CACHE_KEY.to_owned(), "Cache".to_owned())]
    );
    assert_eq!(
        entries(&diff, "removed"),
        [(WORKER_KEY.to_owned(), "Worker".to_owned())]
    );
    assert_eq!(
        entries(&diff, "changed"),
        [(WEB_KEY.to_owned(), "Web".to_owned())],
        "mysql is unchanged"
    );
    let fields = diff["changed"][0]["fields"].as_array().expect("fields");
    let image = fields
        .iter()
        .find(|f| f["field"].as_str().is_some_and(|n| n.contains("image")))
        .unwrap_or_else(|| panic!("no image change in {fields:?}"));
    assert_eq!(
        (&image["from"], &image["to"]),
        (
            &json!("hub.store.test/market/web:1.0"),
            &json!("hub.store.test/market/web:2.0")
        )
    );
    assert!(
        fields.iter().all(|f| f["from"] != f["to"]),
        "only fields that differ: {fields:?}"
    );
    // The dry run changed nothing.
    let after_dry = get_install(&server, &id).await;
    assert_eq!(after_dry["version"], "1.0");
    assert_eq!(keys(&after_dry), keys(&installed));
    assert_eq!(group_apps(&server, &group).await, apps_before);
    assert_eq!(change_orders(&server).await, orders_before);
    let unknown = server
        .post(&upgrade, json!({"version": "9.9", "dryRun": true}))
        .await;
    assert_refused(&unknown, &[404], "9.9");

    // Apply: worker goes, cache comes, web runs 2.0.
    let worker_app = app_of(&installed, WORKER_KEY);
    let reply = server
        .post(&upgrade, json!({"version": "2.0", "dryRun": false}))
        .await;
    assert_eq!(reply.status, 202, "{:?}", reply.body);
    let wanted: BTreeSet<String> = [MYSQL_KEY, WEB_KEY, CACHE_KEY].map(String::from).into();
    let upgraded = until_install(&server, &id, |i| {
        i["version"] == "2.0" && keys(i) == wanted && all_running(i)
    })
    .await;
    let web_app = app_of(&upgraded, WEB_KEY);
    assert_eq!(
        web_app,
        app_of(&installed, WEB_KEY),
        "a changed component keeps its app"
    );
    until_pods(&server, &web_app, 2, "hub.store.test/market/web:2.0").await;
    let cache_app = app_of(&upgraded, CACHE_KEY);
    until_pods(&server, &cache_app, 1, "hub.store.test/market/redis:7").await;
    until_no_pods(&server, &worker_app).await;
    let worker = server
        .get(&format!("/api/v1/projects/shop/apps/{worker_app}"))
        .await;
    assert_eq!(
        worker.status, 404,
        "the removed component's app is gone: {:?}",
        worker.body
    );
    assert_eq!(
        group_apps(&server, &group).await,
        BTreeSet::from([
            app_of(&upgraded, MYSQL_KEY),
            web_app.clone(),
            cache_app.clone()
        ])
    );

    // Roll back: 1.0 again, worker back, cache gone.
    let reply = server
        .post(&format!("{INSTALLS}/{id}/rollback"), json!({}))
        .await;
    assert_eq!(reply.status, 202, "{:?}", reply.body);
    let first = keys(&installed);
    let back = until_install(&server, &id, |i| {
        i["version"] == "1.0" && keys(i) == first && all_running(i)
    })
    .await;
    until_pods(&server, &web_app, 2, "hub.store.test/market/web:1.0").await;
    let worker_again = app_of(&back, WORKER_KEY);
    until_pods(
        &server,
        &worker_again,
        1,
        "hub.store.test/market/worker:1.0",
    )
    .await;
    until_no_pods(&server, &cache_app).await;
    assert_eq!(
        server
            .get(&format!("/api/v1/projects/shop/apps/{cache_app}"))
            .await
            .status,
        404
    );
    assert_eq!(group_apps(&server, &group).await.len(), 3);
}

#[tokio::test]
async fn uninstall_removes_exactly_what_the_install_created() {
    let server = Server::start().await;
    let store = FakeStore::start(ACCESS_KEY, DOMAIN);
    store.publish(&ram::shop("1.0", "1.0"));
    connect(&server, &store, "hub").await;
    let group = shop_with_group(&server).await;
    // Beside the install: `cart` deployed outside the group, `notes` inside it.
    let cart =
        crate::rollouts::deploy(&server, json!({"image": "nginx:1.24", "replicas": 1})).await;
    crate::rollouts::until_state(&server, &cart, "succeeded").await;
    let notes = server
        .post(
            "/api/v1/projects/shop/apps",
            json!({"name": "notes", "category": "MICRO_SERVICE", "groupId": group}),
        )
        .await;
    assert_eq!(notes.status, 201, "{:?}", notes.body);
    let services_before = service_names(&server).await;

    let reply = server
        .post(
            INSTALLS,
            install_body("hub", "shop-suite", "1.0", &group, true),
        )
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let id = reply.body["id"].as_str().expect("id").to_owned();
    let install = until_install(&server, &id, all_running).await;
    let created: BTreeSet<String> = [MYSQL_KEY, WEB_KEY]
        .iter()
        .map(|k| app_of(&install, k))
        .collect();
    for app in &created {
        assert!(pods_of(&server, app).await.0 > 0, "{app} runs");
    }
    let services_installed = service_names(&server).await;
    assert!(
        services_installed.len() > services_before.len(),
        "{services_installed:?}"
    );

    let reply = server.delete(&format!("{INSTALLS}/{id}")).await;
    assert_eq!(reply.status, 202, "{:?}", reply.body);
    assert_eq!(reply.body["state"], "Uninstalling", "{:?}", reply.body);
    assert!(
        wharf_tests::eventually(|| async {
            server.get(&format!("{INSTALLS}/{id}")).await.status == 404
        })
        .await,
        "the install record goes"
    );
    for app in &created {
        let reply = server
            .get(&format!("/api/v1/projects/shop/apps/{app}"))
            .await;
        assert_eq!(reply.status, 404, "{app}: {:?}", reply.body);
        until_no_pods(&server, app).await;
    }
    assert!(
        wharf_tests::eventually(|| async { service_names(&server).await == services_before }).await,
        "its Services went, no others: {:?} vs {services_before:?}",
        service_names(&server).await
    );
    // What was there before is untouched.
    assert_eq!(
        project_apps(&server).await,
        BTreeSet::from(["cart".to_owned(), "notes".to_owned()])
    );
    assert_eq!(
        group_apps(&server, &group).await,
        BTreeSet::from(["notes".to_owned()])
    );
    assert_eq!(pods_of(&server, "cart").await.0, 1);
    assert_eq!(deployed(&server).await, BTreeSet::from(["cart".to_owned()]));
    let groups = server.get("/api/v1/projects/shop/app-groups").await;
    assert_eq!(
        groups.body["items"][0]["id"],
        group.as_str(),
        "the group stays"
    );
    assert!(
        server.get(INSTALLS).await.body["items"]
            .as_array()
            .is_some_and(Vec::is_empty)
    );
}

async fn service_names(server: &Server) -> BTreeSet<String> {
    let client = Kubectl::for_server(server).await.kube_client().await;
    let api: Api<Service> = Api::namespaced(client, NAMESPACE);
    api.list(&ListParams::default())
        .await
        .expect("services")
        .items
        .into_iter()
        .filter_map(|s| s.metadata.name)
        .collect()
}
