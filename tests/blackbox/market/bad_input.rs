//! Bad input to an install: each refusal is a problem+json naming its cause, is audited,
//! and leaves nothing behind — no app, no install, no deployment, no market.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use wharf_tests::{Reply, Server};

use super::fake_store::{FakeStore, closed_port_url};
use super::ram;
use super::*;

const INSTALL_ROUTE: &str = "/api/v1/projects/{code}/installs";
const SEED_ROUTE: &str = "/openapi/v1/teams/{team_id}/regions/{region_name}/apps/{app_id}/install";

/// A server with the shop, its group and a store holding `shop-suite` 1.0.
struct Setup {
    server: Server,
    store: FakeStore,
    group: String,
}

async fn setup() -> Setup {
    let server = Server::start().await;
    let store = FakeStore::start(ACCESS_KEY, DOMAIN);
    store.publish(&ram::shop("1.0", "1.0"));
    let group = shop_with_group(&server).await;
    Setup {
        server,
        store,
        group,
    }
}

impl Setup {
    async fn install(&self, market: &str, app: &str, version: &str) -> Reply {
        self.server
            .post(
                INSTALLS,
                install_body(market, app, version, &self.group, true),
            )
            .await
    }

    /// Nothing of the attempt exists: the project holds only `cart`, no install, nothing
    /// deployed, the group is empty.
    async fn assert_nothing_created(&self) {
        let server = &self.server;
        assert_eq!(
            project_apps(server).await,
            BTreeSet::from(["cart".to_owned()])
        );
        assert!(group_apps(server, &self.group).await.is_empty());
        let installs = server.get(INSTALLS).await;
        assert_eq!(installs.status, 200, "{:?}", installs.body);
        assert!(
            installs.body["items"].as_array().is_some_and(Vec::is_empty),
            "{:?}",
            installs.body
        );
        assert!(deployed(server).await.is_empty());
    }
}

/// The refusal is in the audit log under the route's action, with its error code.
async fn assert_audited(server: &Server, route: (&str, &str), reply: &Reply) -> Value {
    let action = action_of(route.0, route.1);
    let records = audit(server, action).await;
    records
        .into_iter()
        .find(|r| r["errorCode"] == reply.body["code"] && r["outcome"] != "ok")
        .unwrap_or_else(|| panic!("no refused {action} audited for {:?}", reply.body))
}

/// Like `assert_refused`, for causes a store may word in more than one way.
#[track_caller]
fn assert_refused_naming(reply: &Reply, statuses: &[u16], any_of: &[&str]) {
    let detail = reply.body["detail"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase();
    let cause = any_of
        .iter()
        .find(|c| detail.contains(&c.to_lowercase()))
        .unwrap_or_else(|| panic!("the detail names none of {any_of:?}: {:?}", reply.body));
    assert_refused(reply, statuses, cause);
}

#[tokio::test]
async fn an_unknown_market_type_is_refused_naming_the_type() {
    let s = setup().await;
    let reply = s
        .server
        .post(
            "/api/v1/markets",
            json!({"name": "ftp", "url": s.store.url, "type": "ftp-store"}),
        )
        .await;
    reply.assert_field(422, "type");
    assert_refused(&reply, &[422], "ftp-store");
    assert_audited(&s.server, ("POST", "/api/v1/markets"), &reply).await;
    let markets = s.server.get("/api/v1/markets").await;
    assert!(
        markets.body["items"].as_array().is_some_and(Vec::is_empty),
        "{:?}",
        markets.body
    );

    // The seed route names the type in its body.
    let mut body = seed_body(&s.store, "shop-suite", "1.0");
    body["market_type"] = json!("ftp-store");
    let reply = s.server.post(&seed_path(&s.group, true), body).await;
    reply.assert_field(422, "market_type");
    assert_refused(&reply, &[422], "ftp-store");
    assert_audited(&s.server, ("POST", SEED_ROUTE), &reply).await;
    s.assert_nothing_created().await;
    let markets = s.server.get("/api/v1/markets").await;
    assert!(
        markets.body["items"].as_array().is_some_and(Vec::is_empty),
        "{:?}",
        markets.body
    );
}

#[tokio::test]
async fn an_unreachable_store_is_refused_naming_its_address() {
    let s = setup().await;
    let url = closed_port_url();
    let reply = s
        .server
        .post(
            "/api/v1/markets",
            json!({"name": "gone", "url": url, "domain": DOMAIN, "accessKey": ACCESS_KEY}),
        )
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let reply = s.install("gone", "shop-suite", "1.0").await;
    assert_refused(&reply, &[502, 503, 504], url.trim_start_matches("http://"));
    let record = assert_audited(&s.server, ("POST", INSTALL_ROUTE), &reply).await;
    assert!(
        record["plugin"]
            .as_str()
            .is_some_and(|p| p.starts_with("market-rainstore@")),
        "{record:#}"
    );
    s.assert_nothing_created().await;
}

#[tokio::test]
async fn a_wrong_access_key_is_refused_as_the_store_answers_403() {
    let s = setup().await;
    let reply = s
        .server
        .post(
            "/api/v1/markets",
            json!({"name": "hub", "url": s.store.url, "domain": DOMAIN,
                   "accessKey": "ffffffffffffffffffffffffffffffff"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let reply = s.install("hub", "shop-suite", "1.0").await;
    assert_refused_naming(&reply, &[401, 403, 502], &["access key", "no perm", "403"]);
    assert_ne!(
        reply.body["code"], "forbidden",
        "not Wharf's own authorization: {:?}",
        reply.body
    );
    assert!(
        s.store
            .requests()
            .iter()
            .all(|r| r.authorization.as_deref() == Some("ffffffffffffffffffffffffffffffff")),
        "the plugin sent the connection's key as is"
    );
    assert_audited(&s.server, ("POST", INSTALL_ROUTE), &reply).await;
    s.assert_nothing_created().await;

    // Without any key the store answers 401.
    let reply = s
        .server
        .post(
            "/api/v1/markets",
            json!({"name": "keyless", "url": s.store.url, "domain": DOMAIN}),
        )
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    assert_eq!(reply.body["hasAccessKey"], false);
    let reply = s.install("keyless", "shop-suite", "1.0").await;
    assert_refused_naming(
        &reply,
        &[401, 403, 502],
        &["access key", "auth token", "401"],
    );
    s.assert_nothing_created().await;
}

#[tokio::test]
async fn a_store_failing_with_5xx_is_refused_as_unavailable() {
    let s = setup().await;
    connect(&s.server, &s.store, "hub").await;
    s.store.fail_next(1000, 500);
    let reply = s.install("hub", "shop-suite", "1.0").await;
    assert_refused(&reply, &[502, 503], "500");
    assert_audited(&s.server, ("POST", INSTALL_ROUTE), &reply).await;
    s.assert_nothing_created().await;
}

#[tokio::test]
async fn a_template_that_is_not_json_is_refused_as_invalid() {
    let s = setup().await;
    connect(&s.server, &s.store, "hub").await;
    s.store
        .set_template_text("shop-suite", "1.0", "{\"apps\": [ not json");
    let reply = s.install("hub", "shop-suite", "1.0").await;
    assert_refused(&reply, &[422], "template");
    assert_audited(&s.server, ("POST", INSTALL_ROUTE), &reply).await;
    s.assert_nothing_created().await;
}

#[tokio::test]
async fn an_incomplete_template_is_refused_naming_the_missing_field() {
    let s = setup().await;
    connect(&s.server, &s.store, "hub").await;
    for (pointer, field) in [
        ("/apps/1/image", "apps[1].image"),
        (
            "/apps/0/port_map_list/0/container_port",
            "apps[0].port_map_list[0].container_port",
        ),
        ("/apps", "apps"),
    ] {
        // `share_image` stands in for a missing `image`: both go for the image case.
        let mut broken = ram::shop("1.0", "1.0");
        if pointer.ends_with("/image") {
            broken = ram::without(broken, &pointer.replace("/image", "/share_image"));
        }
        s.store.publish(&ram::without(broken, pointer));
        let reply = s.install("hub", "shop-suite", "1.0").await;
        assert_refused(&reply, &[422], field);
        let named = reply.body["field"].as_str().unwrap_or_default().to_owned();
        let listed = reply.body["violations"].to_string();
        assert!(
            named.ends_with(field) || listed.contains(field),
            "{pointer}: the problem names {field}: {:?}",
            reply.body
        );
        assert_audited(&s.server, ("POST", INSTALL_ROUTE), &reply).await;
        s.assert_nothing_created().await;
    }
}

#[tokio::test]
async fn an_unknown_app_or_version_is_refused_as_not_found() {
    let s = setup().await;
    connect(&s.server, &s.store, "hub").await;
    let reply = s.install("hub", "no-such-app", "1.0").await;
    assert_refused(&reply, &[404], "no-such-app");
    assert_audited(&s.server, ("POST", INSTALL_ROUTE), &reply).await;
    let reply = s.install("hub", "shop-suite", "9.9").await;
    assert_refused(&reply, &[404], "9.9");
    assert_audited(&s.server, ("POST", INSTALL_ROUTE), &reply).await;
    let reply = s.install("no-such-market", "shop-suite", "1.0").await;
    assert_refused(&reply, &[404, 422], "no-such-market");
    s.assert_nothing_created().await;
    let seed = s
        .server
        .post(
            &seed_path(&s.group, true),
            seed_body(&s.store, "shop-suite", "9.9"),
        )
        .await;
    assert_refused(&seed, &[404], "9.9");
    s.assert_nothing_created().await;
}

#[tokio::test]
async fn a_user_without_a_binding_may_not_install_into_the_project() {
    let s = setup().await;
    connect(&s.server, &s.store, "hub").await;
    let dora = s.server.create_user("dora", false).await;
    let body = install_body("hub", "shop-suite", "1.0", &s.group, true);
    let reply = s
        .server
        .request("POST", INSTALLS, Some(body), Some(&dora))
        .await;
    reply.assert_problem(403, "forbidden");
    let record = assert_audited(&s.server, ("POST", INSTALL_ROUTE), &reply).await;
    assert_eq!(record["outcome"], "denied");
    assert_eq!(record["actor"]["name"], "dora");
    let seed = s
        .server
        .request(
            "POST",
            &seed_path(&s.group, true),
            Some(seed_body(&s.store, "shop-suite", "1.0")),
            Some(&dora),
        )
        .await;
    seed.assert_problem(403, "forbidden");
    assert_audited(&s.server, ("POST", SEED_ROUTE), &seed).await;
    assert!(
        s.store
            .requests()
            .iter()
            .all(|r| r.path != "/app-server/openapi/apps/shop-suite/versions/1.0"),
        "nothing was fetched for a caller who may not install"
    );
    s.assert_nothing_created().await;
}
