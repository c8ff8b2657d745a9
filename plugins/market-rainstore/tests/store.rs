//! `market-rainstore` against a stubbed store: each route with its query, the raw
//! `Authorization` header, every error mapping, redirects and percent-encoding.

use serde_json::json;
use wharf_plugin_market_rainstore::MarketRainstore;
use wharf_sdk::harness::{self, Host};
use wharf_sdk::http::{HttpError, Request, Response};
use wharf_sdk::marketplace::{AppQuery, CatalogError, Market, Marketplace, Meta, Violation};

const STORE: &str = "http://store.test:8080";
const KEY: &str = "0123456789abcdef0123456789abcdef";

fn market(key: Option<&str>) -> Market {
    Market {
        id: "m-1".into(),
        url: format!("{STORE}/"),
        domain: "rainbond".into(),
        access_key: key.map(str::to_string),
    }
}

fn route(path_and_query: &str) -> String {
    format!("{STORE}/app-server/openapi/{path_and_query}")
}

fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn query(q: &str, page: u32, page_size: u32) -> AppQuery {
    AppQuery {
        query: q.into(),
        page,
        page_size,
    }
}

fn template_json() -> String {
    json!({
        "group_key": "wp", "group_name": "WordPress (template)", "group_version": "6.4",
        "apps": [
            {"service_key": "web", "service_id": "w1", "service_cname": "Web", "image": "wordpress:6.4",
             "extend_method": "stateless", "port_map_list": [{"container_port": 80, "is_outer_service": true}],
             "dep_service_map_list": [{"dep_service_key": "db+d1"}]},
            {"service_key": "db", "service_id": "d1", "service_share_uuid": "db+d1", "image": "mysql:8",
             "extend_method": "state_singleton", "port_map_list": [{"container_port": 3306, "port_alias": "MYSQL", "is_inner_service": true}]}
        ]
    })
    .to_string()
}

fn detail_body() -> String {
    json!({"appKeyID": "wp", "name": "WordPress", "desc": "Blog", "versions": [
        {"appKeyID": "wp", "appVersion": "6.4", "updateTime": "2024-01-10T20:00:00+08:00"}
    ]})
    .to_string()
}

fn version_body(template: &str) -> String {
    json!({
        "appKeyID": "wp", "appName": "WordPress", "version": "6.4", "versionAlias": "stable",
        "description": "6.4 with MySQL", "templateType": "RAM", "template": template,
        "updateTime": "2024-01-10T20:00:00.25+08:00", "is_plugin": false
    })
    .to_string()
}

const DETAIL: &str = "apps/wp?marketDomain=rainbond";
const VERSION: &str = "apps/wp/versions/6.4?marketDomain=rainbond&forInstall=true&getTemplate=true";

fn store_with_template(template: &str) -> Host {
    Host::new()
        .stub_http(&route(DETAIL), 200, detail_body())
        .stub_http(&route(VERSION), 200, version_body(template))
}

#[test]
fn lists_apps_with_the_query_paging_and_raw_access_key() {
    let body = json!({"page": 2, "pageSize": 10, "total": 11, "apps": [
        {"appKeyID": "wp", "name": "WordPress", "desc": "Blog", "logo": "https://img/wp.png",
         "tags": ["cms", "php"], "isOfficial": true, "createTime": "2023-01-01T00:00:00Z",
         "versions": [
            {"appVersion": "6.3", "appVersionAlias": "old", "desc": "", "updateTime": "2023-09-01T00:00:00Z"},
            {"appVersion": "6.10", "appVersionAlias": "new", "desc": "latest", "updateTime": "2024-02-01T08:00:00+08:00"},
            {"appVersion": "6.4", "appVersionAlias": null, "desc": null, "updateTime": null}
         ]},
        {"appKeyID": "ghost", "name": "Ghost", "desc": null, "logo": null, "tags": null, "versions": null}
    ]});
    let url = route("apps?marketDomain=rainbond&query=word%20press&page=2&pageSize=10");
    let host = Host::new().stub_http(&url, 200, body.to_string());
    let page = host
        .run(|| MarketRainstore::list_apps(market(Some(KEY)), query("word press", 2, 10)))
        .expect("listed");
    assert_eq!(page.total, 11);
    assert_eq!(page.items.len(), 2);
    let wp = &page.items[0];
    assert_eq!(
        (wp.id.as_str(), wp.name.as_str(), wp.description.as_str()),
        ("wp", "WordPress", "Blog")
    );
    assert_eq!(wp.logo, "https://img/wp.png");
    assert_eq!(wp.tags, ["cms", "php"]);
    let versions: Vec<(&str, &str, &str)> = wp
        .versions
        .iter()
        .map(|v| (v.version.as_str(), v.alias.as_str(), v.updated_at.as_str()))
        .collect();
    assert_eq!(
        versions,
        [
            ("6.10", "new", "2024-02-01T00:00:00Z"),
            ("6.4", "", ""),
            ("6.3", "old", "2023-09-01T00:00:00Z")
        ]
    );
    assert!(page.items[1].versions.is_empty() && page.items[1].tags.is_empty());

    let requests = host.http_requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].url, url);
    assert_eq!(header(&requests[0], "Authorization"), Some(KEY));
}

#[test]
fn no_authorization_header_without_a_key() {
    let url = route("apps?marketDomain=rainbond&query=&page=1&pageSize=20");
    for key in [None, Some("")] {
        let host = Host::new().stub_http(&url, 200, r#"{"apps": [], "total": 0}"#);
        let page = host
            .run(|| MarketRainstore::list_apps(market(key), query("", 1, 20)))
            .expect("listed");
        assert_eq!((page.items.len(), page.total), (0, 0));
        assert_eq!(
            header(&host.http_requests()[0], "Authorization"),
            None,
            "{key:?}"
        );
    }
}

#[test]
fn lists_versions_newest_first() {
    let url = route("apps/wp/versions?marketDomain=rainbond");
    let body = json!({"versions": [
        {"appVersion": "1.9", "updateTime": "2024-01-01T00:00:00Z"},
        {"appVersion": "1.10", "appVersionAlias": "ten", "desc": "d", "updateTime": "2023-01-01T00:00:00Z"},
        {"appVersion": "1.9", "updateTime": "2024-03-01T00:00:00Z"},
        {"appVersion": "", "updateTime": "2024-03-01T00:00:00Z"},
    ]});
    let host = Host::new().stub_http(&url, 200, body.to_string());
    let versions = host
        .run(|| MarketRainstore::list_versions(market(Some(KEY)), "wp".into()))
        .expect("versions");
    let order: Vec<(&str, &str)> = versions
        .iter()
        .map(|v| (v.version.as_str(), v.updated_at.as_str()))
        .collect();
    assert_eq!(
        order,
        [
            ("1.10", "2023-01-01T00:00:00Z"),
            ("1.9", "2024-03-01T00:00:00Z"),
            ("1.9", "2024-01-01T00:00:00Z")
        ]
    );
    assert_eq!(header(&host.http_requests()[0], "Authorization"), Some(KEY));
}

#[test]
fn a_template_is_the_app_detail_then_the_version_with_its_template_string() {
    let host = store_with_template(&template_json());
    let template = host
        .run(|| MarketRainstore::get_template(market(Some(KEY)), "wp".into(), "6.4".into()))
        .expect("template");
    assert_eq!(template.app_id, "wp");
    assert_eq!(template.app_name, "WordPress");
    assert_eq!(template.version, "6.4");
    assert_eq!(template.version_alias, "stable");
    assert_eq!(template.description, "6.4 with MySQL");
    assert_eq!(template.updated_at, "2024-01-10T12:00:00.25Z");
    let keys: Vec<&str> = template.components.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(keys, ["web", "db"]);
    assert_eq!(template.components[0].depends_on, ["db"]);
    assert!(template.components[1].stateful);

    let urls: Vec<String> = host.http_requests().into_iter().map(|r| r.url).collect();
    assert_eq!(urls, [route(DETAIL), route(VERSION)]);
    assert!(
        host.http_requests()
            .iter()
            .all(|r| header(r, "Authorization") == Some(KEY))
    );
}

#[test]
fn a_template_without_its_own_identity_takes_the_stores() {
    let bare = json!({"apps": [{"service_key": "web", "service_id": "w1", "image": "nginx", "extend_method": "stateless"}]});
    let version = json!({"appKeyID": "wp", "version": "6.4", "template": bare.to_string()});
    let host = Host::new()
        .stub_http(&route(DETAIL), 200, detail_body())
        .stub_http(&route(VERSION), 200, version.to_string());
    let template = host
        .run(|| MarketRainstore::get_template(market(None), "wp".into(), "6.4".into()))
        .expect("template");
    assert_eq!(
        (template.app_id.as_str(), template.version.as_str()),
        ("wp", "6.4")
    );
    // The version names no app: the app detail does. No time on the version: the listed one.
    assert_eq!(template.app_name, "WordPress");
    assert_eq!(template.updated_at, "2024-01-10T12:00:00Z");
}

#[test]
fn path_segments_are_percent_encoded() {
    let host = Host::new()
        .stub_http(&route("apps/..%2Fx?marketDomain=rainbond"), 200, r#"{"appKeyID": "../x"}"#)
        .stub_http(
            &route("apps/..%2Fx/versions/1.0%20beta%2F2?marketDomain=rainbond&forInstall=true&getTemplate=true"),
            200,
            version_body(&template_json()),
        )
        .stub_http(&route("apps/a%3Fb%23c/versions?marketDomain=rainbond"), 200, r#"{"versions": []}"#);
    let template = host
        .run(|| MarketRainstore::get_template(market(None), "../x".into(), "1.0 beta/2".into()));
    assert!(template.is_ok(), "{template:?}");
    let versions = host.run(|| MarketRainstore::list_versions(market(None), "a?b#c".into()));
    assert_eq!(versions, Ok(vec![]));
    assert!(host.denied_urls().is_empty(), "{:?}", host.denied_urls());
    // `.` and `..` cannot be a segment at all: nothing is sent.
    let dots = Host::new();
    let result = dots.run(|| MarketRainstore::get_template(market(None), "..".into(), "1".into()));
    assert!(matches!(result, Err(CatalogError::NotFound(m)) if m.contains("app `..`")));
    let result = dots.run(|| MarketRainstore::get_template(market(None), "wp".into(), ".".into()));
    assert!(matches!(result, Err(CatalogError::NotFound(m)) if m.contains("version `.`")));
    assert!(dots.http_requests().is_empty());
}

/// The error `list-apps` gets when the store answers `status` with `body`.
fn list_error(status: u16, body: &str) -> CatalogError {
    let url = route("apps?marketDomain=rainbond&query=&page=1&pageSize=20");
    let host = Host::new().stub_http(&url, status, body);
    match host.run(|| MarketRainstore::list_apps(market(Some(KEY)), query("", 1, 20))) {
        Ok(page) => panic!("expected an error for {status}, got {page:?}"),
        Err(e) => e,
    }
}

#[test]
fn store_statuses_map_to_typed_errors_with_the_stores_message() {
    assert_eq!(
        list_error(401, r#"{"code": 401, "msg": "token required"}"#),
        CatalogError::Unauthorized(
            "the store needs an access key: give the market connection one (store: token required)"
                .into()
        )
    );
    assert_eq!(
        list_error(403, r#"{"code": 403, "msg": "No perm"}"#),
        CatalogError::Unauthorized("the store refused the access key (store: No perm)".into())
    );
    assert_eq!(
        list_error(404, r#"{"code": 404, "msg": "market not found"}"#),
        CatalogError::NotFound(
            "market domain `rainbond` not found on the store (store: market not found)".into()
        )
    );
    let bad_request = list_error(400, r#"{"code": 400, "msg": "Field validation"}"#);
    assert!(
        matches!(&bad_request, CatalogError::Unavailable(m) if m.starts_with("store answered 400: Field validation")),
        "{bad_request:?}"
    );
    let down = list_error(503, r#"{"code": 500, "msg": "server failure"}"#);
    assert!(
        matches!(&down, CatalogError::Unavailable(m) if m.starts_with("store answered 503: server failure")),
        "{down:?}"
    );
    let gateway = list_error(502, "<html>Bad Gateway</html>");
    assert!(
        matches!(&gateway, CatalogError::Unavailable(m) if m.contains("502: <html>Bad Gateway</html>"))
    );
}

#[test]
fn not_found_says_whether_the_app_or_the_version_is_missing() {
    let host = Host::new().stub_http(&route(DETAIL), 404, r#"{"code": 404, "msg": "No found"}"#);
    let result =
        host.run(|| MarketRainstore::get_template(market(Some(KEY)), "wp".into(), "6.4".into()));
    assert_eq!(
        result,
        Err(CatalogError::NotFound(
            "app `wp` not found in market domain `rainbond` (store: No found)".into()
        ))
    );
    // The version call's errors are not swallowed into "version not found" either.
    let host = Host::new()
        .stub_http(&route(DETAIL), 200, detail_body())
        .stub_http(&route(VERSION), 404, r#"{"code": 404, "msg": "No found"}"#);
    let result =
        host.run(|| MarketRainstore::get_template(market(Some(KEY)), "wp".into(), "6.4".into()));
    assert_eq!(
        result,
        Err(CatalogError::NotFound(
            "version `6.4` of app `wp` not found in market domain `rainbond` (store: No found)"
                .into()
        ))
    );
    let host = Host::new()
        .stub_http(&route(DETAIL), 200, detail_body())
        .stub_http(
            &route(VERSION),
            500,
            r#"{"code": 500, "msg": "server failure"}"#,
        );
    let result =
        host.run(|| MarketRainstore::get_template(market(Some(KEY)), "wp".into(), "6.4".into()));
    assert!(
        matches!(result, Err(CatalogError::Unavailable(m)) if m.starts_with("store answered 500: server failure"))
    );
    let host = Host::new().stub_http(&route("apps/nope/versions?marketDomain=rainbond"), 404, "");
    let result = host.run(|| MarketRainstore::list_versions(market(None), "nope".into()));
    assert_eq!(
        result,
        Err(CatalogError::NotFound(
            "app `nope` not found in market domain `rainbond`".into()
        ))
    );
}

#[test]
fn an_unreachable_store_and_a_denied_url_are_unavailable() {
    let url = route("apps?marketDomain=rainbond&query=&page=1&pageSize=20");
    let host = Host::new().fail_http(&url, HttpError::Transport("connection refused".into()));
    let result = host.run(|| MarketRainstore::list_apps(market(None), query("", 1, 20)));
    assert_eq!(
        result,
        Err(CatalogError::Unavailable(format!(
            "the store at {url} could not be reached: connection refused"
        )))
    );
    // No stub: the harness denies the URL as the host does off the allow-list.
    let host = Host::new();
    let result = host.run(|| MarketRainstore::list_apps(market(None), query("", 1, 20)));
    assert_eq!(
        result,
        Err(CatalogError::Unavailable(format!(
            "the request to {url} was denied: the host allows this plugin only the market's own URL (http://store.test:8080)"
        )))
    );
    // A market without a usable URL never sends anything.
    for bad in ["", "store.test", "ftp://store.test"] {
        let host = Host::new();
        let result = host.run(|| {
            MarketRainstore::list_apps(
                Market {
                    url: bad.into(),
                    ..market(None)
                },
                query("", 1, 20),
            )
        });
        assert!(matches!(result, Err(CatalogError::Unavailable(_))), "{bad}");
        assert!(host.http_requests().is_empty());
    }
}

#[test]
fn answers_that_are_not_the_protocols_are_unavailable() {
    for (body, why) in [
        ("<html>welcome</html>", "the body is not JSON"),
        ("[]", "the body is not a JSON object"),
        (r#"{"items": []}"#, "the answer has no `apps`"),
        (r#"{"apps": "many"}"#, "invalid type"),
        (
            r#"{"apps": [{"name": "no id"}]}"#,
            "apps[0] has no appKeyID",
        ),
    ] {
        let error = list_error(200, body);
        assert!(
            matches!(&error, CatalogError::Unavailable(m) if m.contains("not a rainstore answer") && m.contains(why)),
            "{body}: {error:?}"
        );
    }
    // A version answer whose template is not a string is not the protocol's either.
    let object_template = json!({"version": "6.4", "template": {"apps": []}});
    let host = Host::new()
        .stub_http(&route(DETAIL), 200, detail_body())
        .stub_http(&route(VERSION), 200, object_template.to_string());
    let result =
        host.run(|| MarketRainstore::get_template(market(None), "wp".into(), "6.4".into()));
    assert!(
        matches!(result, Err(CatalogError::Unavailable(m)) if m.contains("not a rainstore answer"))
    );
}

fn template_error(template: &str) -> Vec<Violation> {
    let host = store_with_template(template);
    match host.run(|| MarketRainstore::get_template(market(None), "wp".into(), "6.4".into())) {
        Err(CatalogError::InvalidTemplate(violations)) => violations,
        other => panic!("expected invalid-template, got {other:?}"),
    }
}

#[test]
fn a_broken_template_is_invalid_at_its_path_under_template() {
    let not_json = template_error("{\"apps\": [");
    assert_eq!(not_json.len(), 1);
    assert_eq!(not_json[0].field, "template");
    assert!(not_json[0].message.starts_with("is not valid JSON"));
    let fields: Vec<String> = template_error(
        &json!({"apps": [{"service_key": "web", "service_id": "1", "image": "x", "extend_method": "stateless",
            "port_map_list": [{"container_port": 0}], "dep_service_map_list": [{"dep_service_key": "gone"}]}]})
        .to_string(),
    )
    .into_iter()
    .map(|v| v.field)
    .collect();
    assert_eq!(
        fields,
        [
            "template.apps[0].port_map_list[0].container_port",
            "template.apps[0].dep_service_map_list[0].dep_service_key",
        ]
    );
    let empty = template_error("");
    assert_eq!(
        empty,
        vec![Violation::new(
            "template",
            "is empty: the store sent no template for this version"
        )]
    );
}

fn redirect(status: u16, location: &str) -> Response {
    Response {
        status,
        headers: vec![("Location".into(), location.into())],
        body: Vec::new(),
    }
}

#[test]
fn redirects_are_followed_and_the_key_stays_with_the_market() {
    let first = route("apps/wp/versions?marketDomain=rainbond");
    let host = Host::new()
        .stub_http_response(&first, redirect(302, "/v2/apps/wp/versions"))
        .stub_http_response(
            &format!("{STORE}/v2/apps/wp/versions"),
            redirect(307, "https://cdn.test/wp/versions"),
        )
        .stub_http(
            "https://cdn.test/wp/versions",
            200,
            r#"{"versions": [{"appVersion": "1.0"}]}"#,
        );
    let versions = host
        .run(|| MarketRainstore::list_versions(market(Some(KEY)), "wp".into()))
        .expect("followed");
    assert_eq!(versions[0].version, "1.0");
    let sent: Vec<(String, Option<String>)> = host
        .http_requests()
        .iter()
        .map(|r| {
            (
                r.url.clone(),
                header(r, "Authorization").map(str::to_string),
            )
        })
        .collect();
    assert_eq!(
        sent,
        [
            (first, Some(KEY.to_string())),
            (
                format!("{STORE}/v2/apps/wp/versions"),
                Some(KEY.to_string())
            ),
            ("https://cdn.test/wp/versions".to_string(), None),
        ]
    );
}

#[test]
fn a_redirect_off_the_market_is_denied_and_loops_end() {
    let first = route("apps/wp/versions?marketDomain=rainbond");
    let host = Host::new().stub_http_response(&first, redirect(301, "http://evil.test/steal"));
    let result = host.run(|| MarketRainstore::list_versions(market(Some(KEY)), "wp".into()));
    assert!(
        matches!(&result, Err(CatalogError::Unavailable(m)) if m.contains("http://evil.test/steal was denied")),
        "{result:?}"
    );
    assert_eq!(header(&host.http_requests()[1], "Authorization"), None);

    let looping = Host::new().stub_http_response(&first, redirect(302, &first));
    let result = looping.run(|| MarketRainstore::list_versions(market(None), "wp".into()));
    assert!(
        matches!(&result, Err(CatalogError::Unavailable(m)) if m.contains("more than 5 times")),
        "{result:?}"
    );
    assert_eq!(looping.http_requests().len(), 6);

    let nowhere = Host::new().stub_http(&first, 302, "");
    let result = nowhere.run(|| MarketRainstore::list_versions(market(None), "wp".into()));
    assert!(
        matches!(&result, Err(CatalogError::Unavailable(m)) if m.contains("without a usable Location"))
    );
}

#[test]
fn publishing_and_removing_belong_to_the_store() {
    let host = Host::new();
    let published = host.run(|| MarketRainstore::publish(market(Some(KEY)), template_json()));
    assert!(
        matches!(published, Err(CatalogError::Unsupported(m)) if m.contains("published to from the store itself"))
    );
    let removed = host.run(|| MarketRainstore::remove(market(Some(KEY)), "wp".into(), None));
    assert!(matches!(removed, Err(CatalogError::Unsupported(_))));
    assert!(host.http_requests().is_empty());
}

#[test]
fn manifest_matches_info() {
    let manifest = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/wharf-plugin.toml"));
    harness::assert_manifest_matches(manifest, &MarketRainstore::info());
}
