//! What was acknowledged survives `kill -9`; a warm restart serves the same plugins.

use serde_json::json;
use std::collections::BTreeMap;
use std::time::SystemTime;

use wharf_tests::{Server, TempDir, fixture};

#[tokio::test]
async fn acknowledged_plugin_changes_survive_kill_9() {
    let mut server = Server::start().await;
    server.allow_unsigned().await;
    let id = server.install_enabled(&fixture("noop")).await;
    let config = server
        .put("/api/v1/plugins/hello/config", json!({"greeting": "Hej"}))
        .await;
    assert_eq!(config.status, 200);
    let counted = server
        .invoke("hello", "step.run", json!({"params": {"name": "Eve"}}))
        .await;
    assert_eq!(counted.body["output"]["outputs"]["count"], 1);
    let upgraded = server
        .post("/api/v1/plugins/hello/upgrade", fixture("hello-v2").body())
        .await;
    assert_eq!(upgraded.status, 200);
    let disabled = server
        .post("/api/v1/plugins/http-check/disable", json!({}))
        .await;
    assert_eq!(disabled.status, 200);

    server.kill_and_restart().await;

    let noop = server.get(&format!("/api/v1/plugins/{id}")).await;
    assert_eq!(noop.body["status"], "enabled", "{:?}", noop.body);
    assert_eq!(server.invoke(&id, "meta.info", json!({})).await.status, 200);
    let hello = server
        .invoke("hello", "step.run", json!({"params": {"name": "Eve"}}))
        .await;
    assert_eq!(
        hello.body["output"]["outputs"]["message"], "Hej, Eve!",
        "{:?}",
        hello.body
    );
    assert_eq!(
        hello.body["output"]["outputs"]["count"], 2,
        "plugin kv survived"
    );
    assert_eq!(
        server.get("/api/v1/plugins/hello").await.body["activeVersion"],
        "0.2.0"
    );
    assert_eq!(
        server.get("/api/v1/plugins/http-check").await.body["status"],
        "disabled"
    );
    let settings = server.get("/api/v1/plugin-trust/settings").await;
    assert_eq!(settings.body["allowUnsigned"], true);
}

#[tokio::test]
async fn an_uninstalled_bundled_plugin_stays_uninstalled_after_restart() {
    let mut server = Server::start().await;
    assert_eq!(
        server.delete("/api/v1/plugins/http-check").await.status,
        204
    );
    server.kill_and_restart().await;
    assert_eq!(server.get("/api/v1/plugins/http-check").await.status, 404);
    assert_eq!(server.get("/api/v1/plugins/hello").await.status, 200);
}

fn cache_files(dir: &std::path::Path) -> BTreeMap<String, SystemTime> {
    std::fs::read_dir(dir)
        .expect("cache dir")
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().and_then(|m| m.modified()).expect("mtime"),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_restart_with_a_warm_cache_loads_plugins_without_recompiling() {
    let cache = TempDir::new("cache");
    let cache_arg = cache.path().to_str().expect("utf-8 path").to_owned();
    let mut server = Server::start_with(&["--cache-dir", &cache_arg]).await;
    let compiled = cache_files(cache.path());
    assert_eq!(compiled.len(), wharf_tests::BUNDLED.len(), "{compiled:?}");
    assert!(compiled.keys().all(|name| name.ends_with(".cwasm")));

    server.kill_and_restart().await;
    let hello = server.invoke("hello", "meta.info", json!({})).await;
    assert_eq!(hello.status, 200);
    assert_eq!(
        cache_files(cache.path()),
        compiled,
        "a warm restart wrote to the cache, so it recompiled"
    );

    std::fs::remove_dir_all(cache.path()).expect("clear cache");
    server.kill_and_restart().await;
    assert_eq!(
        server.invoke("hello", "meta.info", json!({})).await.status,
        200
    );
    let enabled = server.get("/api/v1/plugins?status=enabled").await.body["total"]
        .as_u64()
        .unwrap_or(0);
    let recompiled = cache_files(cache.path());
    assert_eq!(
        recompiled.len() as u64,
        enabled,
        "a cold restart compiles every enabled plugin again"
    );
    assert!(
        recompiled.keys().all(|name| compiled.contains_key(name)),
        "same digests, same engine, same names"
    );
}
