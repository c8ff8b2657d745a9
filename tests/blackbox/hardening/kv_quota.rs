//! Hardening (issue 11): see `mod.rs` for what this file proves.

use std::path::Path;

use serde_json::{Value, json};
use wharf_tests::{Server, fixture};

/// The fixture's manifest asks for a 1 MiB, 1000-key namespace.
const QUOTA_BYTES: u64 = 1024 * 1024;
const QUOTA_KEYS: u64 = 1000;
const VALUE_BYTES: u64 = 256 * 1024;

fn dir_bytes(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&entry.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

async fn fill(server: &Server, id: &str, params: Value) -> Value {
    let reply = server
        .invoke(id, "step.run", json!({"params": params}))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["output"]["outputs"].clone()
}

/// A step that tries to write 2 × 16 MiB into a namespace with a 1 MiB quota gets
/// `limit-exceeded` once the quota is reached; the data directory grows by a fraction of
/// what was attempted, and the usage shows in the REST view and `wharf plugin show`.
#[tokio::test]
async fn a_step_filling_its_kv_namespace_is_stopped_at_the_quota() {
    let server = Server::start().await;
    server.allow_unsigned().await;
    let id = server.install_enabled(&fixture("kv-fill")).await;
    let before = dir_bytes(server.data.path());

    let first = fill(
        &server,
        &id,
        json!({"prefix": "a", "count": 64, "bytes": VALUE_BYTES}),
    )
    .await;
    // "a0" + 256 KiB three times fits in 1 MiB, a fourth does not.
    assert_eq!(
        (first["written"].as_u64(), first["limited"].as_bool()),
        (Some(3), Some(true)),
        "{first:?}"
    );
    let again = fill(
        &server,
        &id,
        json!({"prefix": "b", "count": 64, "bytes": VALUE_BYTES}),
    )
    .await;
    assert_eq!(
        (again["written"].as_u64(), again["limited"].as_bool()),
        (Some(0), Some(true)),
        "{again:?}"
    );

    let grown = dir_bytes(server.data.path()).saturating_sub(before);
    let attempted = 2 * 64 * VALUE_BYTES;
    assert!(
        grown < attempted / 4,
        "the data dir grew by {grown} bytes for {attempted} attempted"
    );

    let view = server.get(&format!("/api/v1/plugins/{id}")).await;
    let stored = 3 * (2 + VALUE_BYTES);
    assert_eq!(
        view.body["kvUsage"],
        json!({"bytes": stored, "keys": 3}),
        "{:?}",
        view.body
    );
    assert_eq!(view.body["limits"]["kvMaxBytes"], QUOTA_BYTES);
    assert_eq!(view.body["limits"]["kvMaxKeys"], QUOTA_KEYS);
    let shown = server.cli(&["plugin", "show", &id]);
    assert!(shown.status.success(), "{shown:?}");
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        text.contains(&format!(
            "{stored} of {QUOTA_BYTES} bytes, 3 of {QUOTA_KEYS} keys"
        )),
        "{text}"
    );
}

/// Eight calls at once, together trying to create 1600 keys in a 1000-key namespace,
/// create exactly 1000: the usage record is updated atomically with every write.
#[tokio::test]
async fn concurrent_writers_share_the_key_quota_exactly() {
    let server = Server::start().await;
    server.allow_unsigned().await;
    let id = server.install_enabled(&fixture("kv-fill")).await;
    let calls = (0..8).map(|writer| {
        fill(
            &server,
            &id,
            json!({"prefix": format!("w{writer}-"), "count": 200, "bytes": 16}),
        )
    });
    let results = futures::future::join_all(calls).await;
    let written: u64 = results
        .iter()
        .map(|r| r["written"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(written, QUOTA_KEYS, "{results:?}");
    assert!(results.iter().any(|r| r["limited"] == true), "{results:?}");
    let view = server.get(&format!("/api/v1/plugins/{id}")).await;
    assert_eq!(view.body["kvUsage"]["keys"], QUOTA_KEYS, "{:?}", view.body);
}
