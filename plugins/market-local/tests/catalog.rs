//! `market-local` over the harness kv: publish, browse, versions, templates and removal,
//! each market connection its own catalog.

use serde_json::{Value, json};
use wharf_plugin_market_local::{MAX_STORED_BYTES, MarketLocal};
use wharf_sdk::HostError;
use wharf_sdk::harness::{self, Host};
use wharf_sdk::marketplace::{AppQuery, CatalogError, Market, Marketplace, Meta, Template};

fn market(id: &str) -> Market {
    Market {
        id: id.into(),
        url: String::new(),
        domain: String::new(),
        access_key: None,
    }
}

fn ram(app: &str, name: &str, version: &str) -> Value {
    json!({
        "group_key": app, "group_name": name, "group_version": version,
        "annotations": {"version_alias": format!("{version}-alias"), "version_info": format!("notes of {version}"), "describe": format!("about {name}")},
        "apps": [{
            "service_key": "web", "service_id": "w1", "service_cname": "Web",
            "image": format!("registry.local/{app}:{version}"), "extend_method": "stateless",
            "port_map_list": [{"container_port": 8080, "is_inner_service": true}]
        }]
    })
}

fn publish(host: &Host, market_id: &str, doc: &Value) -> Result<Template, CatalogError> {
    host.run(|| MarketLocal::publish(market(market_id), doc.to_string()))
}

fn list(host: &Host, market_id: &str, q: &str, page: u32, page_size: u32) -> (Vec<String>, u32) {
    let page = host
        .run(|| {
            MarketLocal::list_apps(
                market(market_id),
                AppQuery {
                    query: q.into(),
                    page,
                    page_size,
                },
            )
        })
        .expect("listed");
    (page.items.into_iter().map(|a| a.id).collect(), page.total)
}

fn versions(host: &Host, market_id: &str, app: &str) -> Vec<String> {
    host.run(|| MarketLocal::list_versions(market(market_id), app.into()))
        .expect("versions")
        .into_iter()
        .map(|v| v.version)
        .collect()
}

#[test]
fn a_published_version_is_served_as_get_template_will() {
    let host = Host::new();
    let published = publish(&host, "m-1", &ram("hello", "Hello", "1.0")).expect("published");
    assert_eq!(published.app_id, "hello");
    assert_eq!(published.version, "1.0");
    assert_eq!(published.version_alias, "1.0-alias");
    assert_eq!(published.description, "notes of 1.0");
    assert_eq!(published.components[0].image, "registry.local/hello:1.0");
    assert_eq!(
        market_ram::timestamp::normalize(&published.updated_at).as_deref(),
        Some(published.updated_at.as_str()),
        "published-at is RFC 3339 UTC"
    );
    let fetched = host
        .run(|| MarketLocal::get_template(market("m-1"), "hello".into(), "1.0".into()))
        .expect("fetched");
    assert_eq!(fetched, published);

    let page = host
        .run(|| {
            MarketLocal::list_apps(
                market("m-1"),
                AppQuery {
                    query: String::new(),
                    page: 1,
                    page_size: 20,
                },
            )
        })
        .expect("listed");
    assert_eq!(page.total, 1);
    let app = &page.items[0];
    assert_eq!(
        (app.id.as_str(), app.name.as_str(), app.description.as_str()),
        ("hello", "Hello", "about Hello")
    );
    assert_eq!(app.versions[0].version, "1.0");
    assert_eq!(app.versions[0].alias, "1.0-alias");
    assert_eq!(app.versions[0].updated_at, published.updated_at);
}

#[test]
fn the_same_version_again_replaces_it() {
    let host = Host::new();
    publish(&host, "m-1", &ram("hello", "Hello", "1.0")).expect("first");
    let mut changed = ram("hello", "Hello World", "1.0");
    changed["apps"][0]["image"] = json!("registry.local/hello:1.0-patched");
    publish(&host, "m-1", &changed).expect("again");
    assert_eq!(versions(&host, "m-1", "hello"), ["1.0"]);
    let fetched = host
        .run(|| MarketLocal::get_template(market("m-1"), "hello".into(), "1.0".into()))
        .expect("fetched");
    assert_eq!(
        fetched.components[0].image,
        "registry.local/hello:1.0-patched"
    );
    assert_eq!(fetched.app_name, "Hello World");
    assert_eq!(
        list(&host, "m-1", "world", 1, 20),
        (vec!["hello".to_string()], 1)
    );
}

#[test]
fn versions_are_newest_first_by_rainbonds_order() {
    let host = Host::new();
    for v in ["1.9", "1.10", "1.2", "2.0-beta", "2.0"] {
        publish(&host, "m-1", &ram("hello", "Hello", v)).expect("published");
    }
    // `2.0-beta` has a non-numeric part: it sorts below every number at that place.
    assert_eq!(
        versions(&host, "m-1", "hello"),
        ["2.0", "2.0-beta", "1.10", "1.9", "1.2"]
    );
}

#[test]
fn markets_are_separate_catalogs() {
    let host = Host::new();
    publish(&host, "m-1", &ram("hello", "Hello", "1.0")).expect("published");
    assert_eq!(list(&host, "m-2", "", 1, 20), (vec![], 0));
    let elsewhere =
        host.run(|| MarketLocal::get_template(market("m-2"), "hello".into(), "1.0".into()));
    assert_eq!(
        elsewhere,
        Err(CatalogError::NotFound(
            "app `hello` not found in this market".into()
        ))
    );
    // A market id with a slash cannot reach into another market's keys.
    assert_eq!(list(&host, "m", "", 1, 20), (vec![], 0));
    publish(&host, "m/1", &ram("other", "Other", "1.0")).expect("published");
    assert_eq!(list(&host, "m", "", 1, 20), (vec![], 0));
    assert_eq!(list(&host, "m-1", "", 1, 20).0, ["hello"]);
    let nameless = host.run(|| {
        MarketLocal::list_apps(
            market(" "),
            AppQuery {
                query: String::new(),
                page: 1,
                page_size: 1,
            },
        )
    });
    assert!(matches!(nameless, Err(CatalogError::Unavailable(_))));
}

#[test]
fn listing_filters_by_id_or_name_and_pages() {
    let host = Host::new();
    for (id, name) in [
        ("wp", "WordPress"),
        ("ghost", "Ghost Blog"),
        ("redis", "Redis"),
        ("pg", "PostgreSQL"),
    ] {
        publish(&host, "m-1", &ram(id, name, "1.0")).expect("published");
    }
    // Sorted by name.
    assert_eq!(
        list(&host, "m-1", "", 1, 20).0,
        ["ghost", "pg", "redis", "wp"]
    );
    assert_eq!(
        list(&host, "m-1", "BLOG", 1, 20),
        (vec!["ghost".to_string()], 1)
    );
    assert_eq!(list(&host, "m-1", "wp", 1, 20), (vec!["wp".to_string()], 1));
    assert_eq!(
        list(&host, "m-1", "es", 1, 20),
        (vec!["pg".to_string(), "wp".to_string()], 2)
    );
    assert_eq!(list(&host, "m-1", "", 2, 3), (vec!["wp".to_string()], 4));
    assert_eq!(list(&host, "m-1", "", 3, 3), (vec![], 4));
    // Page 0 reads as page 1; page sizes are held to 1–500.
    assert_eq!(list(&host, "m-1", "", 0, 0), (vec!["ghost".to_string()], 4));
}

#[test]
fn listing_follows_kv_cursors_past_one_page() {
    // More apps than one kv page (1000 keys) holds.
    let mut host = Host::new();
    for i in 0..1203 {
        let record = json!({"id": format!("app-{i:04}"), "name": format!("App {i:04}"), "description": "",
            "versions": [{"version": "1.0", "alias": "", "description": "", "updatedAt": ""}]});
        host = host.kv(&format!("app/m-1/app-{i:04}"), record.to_string());
    }
    let (ids, total) = list(&host, "m-1", "", 3, 500);
    assert_eq!(total, 1203);
    assert_eq!(ids.len(), 203);
    assert_eq!(ids.last().map(String::as_str), Some("app-1202"));
}

fn violations(result: Result<Template, CatalogError>) -> Vec<(String, String)> {
    match result {
        Err(CatalogError::InvalidTemplate(v)) => {
            v.into_iter().map(|v| (v.field, v.message)).collect()
        }
        other => panic!("expected invalid-template, got {other:?}"),
    }
}

#[test]
fn publishing_validates_the_template() {
    let host = Host::new();
    let mut anonymous = ram("hello", "Hello", "1.0");
    anonymous.as_object_mut().map(|o| o.remove("group_key"));
    assert_eq!(
        violations(publish(&host, "m-1", &anonymous)),
        [("group_key".to_string(), "is required".to_string())]
    );
    let mut broken = ram("hello", "Hello", "1.0");
    broken["apps"][0]["port_map_list"][0]["container_port"] = json!(0);
    let fields: Vec<String> = violations(publish(&host, "m-1", &broken))
        .into_iter()
        .map(|(f, _)| f)
        .collect();
    assert_eq!(fields, ["apps[0].port_map_list[0].container_port"]);
    let not_json = host.run(|| MarketLocal::publish(market("m-1"), "{".into()));
    assert_eq!(violations(not_json)[0].0, "");
    let long_id = ram(&"x".repeat(65), "Hello", "1.0");
    assert_eq!(
        violations(publish(&host, "m-1", &long_id))[0].0,
        "group_key"
    );
    assert!(
        host.kv_keys().is_empty(),
        "nothing is stored for a refused template"
    );
}

#[test]
fn a_template_bigger_than_a_kv_value_is_refused_with_its_size_and_the_cap() {
    let host = Host::new();
    let mut big = ram("hello", "Hello", "1.0");
    big["apps"][0]["service_volume_map_list"] = json!([{
        "volume_name": "conf", "volume_path": "/etc/big.conf", "volume_type": "config-file",
        "file_content": "x".repeat(MAX_STORED_BYTES)
    }]);
    let refused = violations(publish(&host, "m-1", &big));
    assert_eq!(refused.len(), 1);
    let (field, message) = &refused[0];
    assert_eq!(field, "");
    assert!(message.contains("262144 bytes (256 KiB"), "{message}");
    let stored: usize = message
        .strip_prefix("the template takes ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no size in {message}"));
    assert!(
        stored > MAX_STORED_BYTES && stored >= big.to_string().len(),
        "{message}"
    );
    assert!(host.kv_keys().is_empty());
}

#[test]
fn removing_one_version_or_the_whole_app() {
    let host = Host::new();
    for v in ["1.0", "1.1", "2.0"] {
        publish(&host, "m-1", &ram("hello", "Hello", v)).expect("published");
    }
    publish(&host, "m-1", &ram("other", "Other", "1.0")).expect("published");
    let removed =
        host.run(|| MarketLocal::remove(market("m-1"), "hello".into(), Some("1.1".into())));
    assert_eq!(removed, Ok(1));
    assert_eq!(versions(&host, "m-1", "hello"), ["2.0", "1.0"]);
    let gone = host.run(|| MarketLocal::get_template(market("m-1"), "hello".into(), "1.1".into()));
    assert_eq!(
        gone,
        Err(CatalogError::NotFound(
            "version `1.1` of app `hello` not found in this market".into()
        ))
    );
    let again = host.run(|| MarketLocal::remove(market("m-1"), "hello".into(), Some("1.1".into())));
    assert_eq!(
        again,
        Err(CatalogError::NotFound(
            "version `1.1` of app `hello` not found in this market".into()
        ))
    );
    let all = host.run(|| MarketLocal::remove(market("m-1"), "hello".into(), None));
    assert_eq!(all, Ok(2));
    assert_eq!(list(&host, "m-1", "", 1, 20).0, ["other"]);
    assert!(
        host.kv_keys().iter().all(|k| !k.contains("hello")),
        "{:?}",
        host.kv_keys()
    );
    let unknown = host.run(|| MarketLocal::remove(market("m-1"), "hello".into(), None));
    assert_eq!(
        unknown,
        Err(CatalogError::NotFound(
            "app `hello` not found in this market".into()
        ))
    );
    let versions_of_unknown = host.run(|| MarketLocal::list_versions(market("m-1"), "nope".into()));
    assert_eq!(
        versions_of_unknown,
        Err(CatalogError::NotFound(
            "app `nope` not found in this market".into()
        ))
    );
}

#[test]
fn the_last_version_removed_removes_the_app() {
    let host = Host::new();
    publish(&host, "m-1", &ram("hello", "Hello", "1.0")).expect("published");
    let removed =
        host.run(|| MarketLocal::remove(market("m-1"), "hello".into(), Some("1.0".into())));
    assert_eq!(removed, Ok(1));
    assert_eq!(list(&host, "m-1", "", 1, 20), (vec![], 0));
    assert!(host.kv_keys().is_empty());
}

#[test]
fn storage_failures_are_unavailable() {
    let host = Host::new().fail_kv(HostError::Unavailable("store offline".into()));
    let listed = host.run(|| {
        MarketLocal::list_apps(
            market("m-1"),
            AppQuery {
                query: String::new(),
                page: 1,
                page_size: 20,
            },
        )
    });
    assert!(matches!(listed, Err(CatalogError::Unavailable(m)) if m.contains("store offline")));
    let published = publish(&host, "m-1", &ram("hello", "Hello", "1.0"));
    assert!(matches!(published, Err(CatalogError::Unavailable(m)) if m.contains("storage failed")));
}

#[test]
fn manifest_matches_info() {
    let manifest = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/wharf-plugin.toml"));
    harness::assert_manifest_matches(manifest, &MarketLocal::info());
}
