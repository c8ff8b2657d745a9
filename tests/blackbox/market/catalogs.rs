//! Catalog sources beside a remote store: a local catalog teams publish to over REST, a
//! third-party marketplace plugin installed while Wharf runs, and the fence around
//! `market-rainstore` (it reaches its store's URL and nothing else, even when the store
//! redirects it).

use std::collections::BTreeSet;

use serde_json::{Value, json};
use wharf_tests::{Server, fixture};

use super::fake_store::{FakeStore, OtherHost};
use super::ram::{self, MYSQL, MYSQL_KEY, WEB, WEB_KEY};
use super::*;

/// market-static serves its app from inside the plugin; its connection still names a URL
/// (the host requires one for every type but `local`) that nothing is sent to.
const STATIC_URL: &str = "https://static-market.invalid";

fn team_shop(version: &str, tag: &str) -> Value {
    ram::template(
        "team-shop",
        "Team Shop",
        version,
        vec![ram::mysql(), ram::web(tag)],
    )
}

#[tokio::test]
async fn a_team_publishes_to_a_local_catalog_and_installs_from_it() {
    let server = Server::start().await;
    let group = shop_with_group(&server).await;
    let reply = server
        .post("/api/v1/markets", json!({"name": "team", "type": "local"}))
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    assert_eq!(reply.body["plugin"], "market-local");
    assert_eq!(reply.body["hasAccessKey"], false);

    let published = server
        .post("/api/v1/markets/team/apps", team_shop("1.0", "1.0"))
        .await;
    assert_eq!(published.status, 201, "{:?}", published.body);
    assert_eq!(published.body["appId"], "team-shop");
    assert_eq!(published.body["version"], "1.0");
    let keys: Vec<&str> = published.body["components"]
        .as_array()
        .expect("components")
        .iter()
        .filter_map(|c| c["key"].as_str())
        .collect();
    assert_eq!(keys, [MYSQL_KEY, WEB_KEY]);
    let second = server
        .post("/api/v1/markets/team/apps", team_shop("1.1", "1.1"))
        .await;
    assert_eq!(second.status, 201, "{:?}", second.body);
    // An incomplete model is refused naming the field, and not kept.
    let broken = server
        .post(
            "/api/v1/markets/team/apps",
            ram::without(
                ram::without(team_shop("1.2", "1.2"), "/apps/1/share_image"),
                "/apps/1/image",
            ),
        )
        .await;
    assert_refused(&broken, &[422], "apps[1].image");

    let apps = server.get("/api/v1/markets/team/apps").await;
    assert_eq!(apps.status, 200, "{:?}", apps.body);
    assert_eq!(apps.body["total"], 1, "{:?}", apps.body);
    assert_eq!(apps.body["items"][0]["id"], "team-shop");
    let versions = server
        .get("/api/v1/markets/team/apps/team-shop/versions")
        .await;
    let listed: Vec<&str> = versions.body["items"]
        .as_array()
        .expect("versions")
        .iter()
        .filter_map(|v| v["version"].as_str())
        .collect();
    assert_eq!(listed, ["1.1", "1.0"], "newest first, 1.2 was refused");
    let template = server
        .get("/api/v1/markets/team/apps/team-shop/versions/1.0")
        .await;
    assert_eq!(
        template.body, published.body,
        "the preview is what publishing returned"
    );

    let reply = server
        .post(
            INSTALLS,
            install_body("team", "team-shop", "1.0", &group, true),
        )
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let id = reply.body["id"].as_str().expect("id").to_owned();
    let install = until_install(&server, &id, all_running).await;
    for expect in [MYSQL, WEB] {
        let app = component(&install, expect.key)["app"]
            .as_str()
            .expect("app")
            .to_owned();
        until_pods(&server, &app, expect.instances as usize, expect.image).await;
    }
    let web_app = component(&install, WEB_KEY)["app"]
        .as_str()
        .expect("app")
        .to_owned();
    let config = deploy_config(&server, &web_app).await;
    assert_eq!(env_var(&config, "MYSQL_PORT").as_deref(), Some("3306"));

    // Removing a version, then the app.
    let removed = server
        .delete("/api/v1/markets/team/apps/team-shop/versions/1.1")
        .await;
    assert_eq!((removed.status, &removed.body["removed"]), (200, &json!(1)));
    let removed = server.delete("/api/v1/markets/team/apps/team-shop").await;
    assert_eq!((removed.status, &removed.body["removed"]), (200, &json!(1)));
    let gone = server
        .get("/api/v1/markets/team/apps/team-shop/versions")
        .await;
    assert_eq!(gone.status, 404, "{:?}", gone.body);
    // What was installed from it keeps running.
    assert!(all_running(&get_install(&server, &id).await));
}

#[tokio::test]
async fn market_rainstore_cannot_reach_a_host_other_than_its_stores() {
    let server = Server::start().await;
    let group = shop_with_group(&server).await;
    let store = FakeStore::start(ACCESS_KEY, DOMAIN);
    store.publish(&ram::shop("1.0", "1.0"));
    let other = OtherHost::start();
    connect(&server, &store, "hub").await;
    store.redirect_everything_to(&other.url);

    let reply = server
        .post(
            INSTALLS,
            install_body("hub", "shop-suite", "1.0", &group, false),
        )
        .await;
    let other_address = other.url.trim_start_matches("http://");
    assert_refused(&reply, &[403, 502, 503], other_address);
    let browse = server.get("/api/v1/markets/hub/apps").await;
    assert_refused(&browse, &[403, 502, 503], other_address);
    assert!(
        !store.requests().is_empty(),
        "the store was asked and redirected"
    );
    assert_eq!(other.hits(), 0, "the other host was never reached");
    assert!(group_apps(&server, &group).await.is_empty());

    // A second connection pointing at the other host directly is its own store: the
    // fence is per connection, not a fixed list.
    let reply = server
        .post(
            "/api/v1/markets",
            json!({"name": "other", "url": other.url, "domain": DOMAIN, "accessKey": ACCESS_KEY}),
        )
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let listed = server.get("/api/v1/markets/other/apps").await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    assert!(other.hits() > 0);
    let log = store.requests();
    assert!(
        log.iter()
            .all(|r| r.authorization.as_deref() == Some(ACCESS_KEY)),
        "{log:?}"
    );
}

#[tokio::test]
async fn a_marketplace_plugin_installed_at_run_time_serves_a_new_market_without_restart() {
    let server = Server::start().await;
    let group = shop_with_group(&server).await;
    let package = fixture("market-static");
    let id = package.id();
    let early = server
        .post(
            "/api/v1/markets",
            json!({"name": "static", "type": id, "url": STATIC_URL}),
        )
        .await;
    early.assert_field(422, "type");

    server.allow_unsigned().await;
    server.install_enabled(&package).await;
    let reply = server
        .post(
            "/api/v1/markets",
            json!({"name": "static", "type": id, "url": STATIC_URL}),
        )
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    assert_eq!(reply.body["plugin"], id.as_str());

    let apps = server.get("/api/v1/markets/static/apps").await;
    assert_eq!(apps.status, 200, "{:?}", apps.body);
    let app = apps.body["items"][0].clone();
    let app_id = app["id"]
        .as_str()
        .expect("an app of the static market")
        .to_owned();
    let version = app["versions"][0]["version"]
        .as_str()
        .expect("a version")
        .to_owned();
    let template = server
        .get(&format!(
            "/api/v1/markets/static/apps/{app_id}/versions/{version}"
        ))
        .await;
    assert_eq!(template.status, 200, "{:?}", template.body);
    let count = template.body["components"].as_array().map_or(0, Vec::len);
    assert!(count > 0, "{:?}", template.body);

    let reply = server
        .post(
            INSTALLS,
            install_body("static", &app_id, &version, &group, true),
        )
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let install_id = reply.body["id"].as_str().expect("id").to_owned();
    let install = until_install(&server, &install_id, all_running).await;
    let apps: BTreeSet<String> = install["components"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["app"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(apps.len(), count);
    assert_eq!(group_apps(&server, &group).await, apps);
    let records = audit(
        &server,
        action_of("POST", "/api/v1/projects/{code}/installs"),
    )
    .await;
    assert!(
        records.iter().any(|r| r["plugin"]
            .as_str()
            .is_some_and(|p| p.starts_with(&format!("{id}@")))),
        "the install names the third-party plugin: {records:#?}"
    );
}
