//! Hardening (issue 11): see `mod.rs` for what this file proves.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use wharf_host::runtime::trust::sha256_hex;
use wharf_tests::{Server, TempDir, fixture};

async fn audit_records(server: &Server, query: &str) -> Vec<Value> {
    let reply = server
        .get(&format!("/api/v1/audit?pageSize=500&{query}"))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["items"].as_array().cloned().unwrap_or_default()
}

/// Re-uploading an installed version with the same component but other limits is refused
/// instead of silently switching to the stored manifest.
#[tokio::test]
async fn an_upgrade_to_a_known_component_with_a_changed_manifest_is_refused() {
    let server = Server::start().await;
    server.allow_unsigned().await;
    let v2 = fixture("hello-v2");
    let up = server
        .post("/api/v1/plugins/hello/upgrade", v2.body())
        .await;
    assert_eq!(up.status, 200, "{:?}", up.body);
    let back = server
        .post("/api/v1/plugins/hello/rollback", json!({}))
        .await;
    assert_eq!(back.status, 200, "{:?}", back.body);
    let mut changed = v2.clone();
    changed.manifest = changed
        .manifest
        .replace("memory-mib = 16", "memory-mib = 8");
    assert_ne!(changed.manifest, v2.manifest);
    let again = server
        .post("/api/v1/plugins/hello/upgrade", changed.body())
        .await;
    again.assert_problem(409, "version-conflict");
    let view = server.get("/api/v1/plugins/hello").await;
    assert_eq!(view.body["activeVersion"], "0.1.0", "{:?}", view.body);
}

/// `meta.info` of an uploaded package runs at install before any grant is approved: its
/// kv write is refused, so nothing it wrote is there once the plugin is enabled.
#[tokio::test]
async fn meta_info_at_install_runs_without_any_grant() {
    let server = Server::start().await;
    server.allow_unsigned().await;
    let id = server.install_enabled(&fixture("kv-in-meta")).await;
    let reply = server.invoke(&id, "step.run", json!({"params": {}})).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(
        reply.body["output"]["outputs"]["metaWrote"], false,
        "meta.info wrote to kv at install: {:?}",
        reply.body
    );
}

/// `wharf plugin keygen` writes the secret key readable by its owner only and never
/// replaces an existing key file.
#[tokio::test]
async fn keygen_writes_an_owner_only_key_and_never_overwrites_one() {
    use std::os::unix::fs::PermissionsExt;

    let server = Server::start().await;
    let dir = TempDir::new("keygen");
    let path = dir.path().join("signing.key");
    let path_text = path.to_str().expect("utf-8 path");
    let first = server.cli(&["plugin", "keygen", path_text]);
    assert!(first.status.success(), "{first:?}");
    let mode = std::fs::metadata(&path)
        .expect("key file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "key file mode {:o}", mode & 0o777);
    let key = std::fs::read(&path).expect("key");
    let second = server.cli(&["plugin", "keygen", path_text]);
    assert!(!second.status.success(), "keygen overwrote the key");
    assert_eq!(std::fs::read(&path).expect("key"), key);
}

/// A "signature" that verifies for any message under a small-order public key (the
/// identity point, with R = identity and s = 0) passes a plain ed25519 check; strict
/// verification refuses it.
#[tokio::test]
async fn a_signature_under_a_weak_key_is_refused() {
    let server = Server::start().await;
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let trusted = server
        .post(
            "/api/v1/plugin-trust/keys",
            json!({"id": "weak-key", "publicKey": B64.encode(identity)}),
        )
        .await;
    assert_eq!(trusted.status, 201, "{:?}", trusted.body);
    let mut forged = [0u8; 64];
    forged[0] = 1;
    let mut body = fixture("noop").body();
    body["signature"] = json!({"keyId": "weak-key", "signature": B64.encode(forged)});
    let reply = server.post("/api/v1/plugins", body).await;
    reply.assert_problem(422, "bad-signature");
}

/// Settings appear in the audit log as a sha256 per key; a key the manifest marks secret
/// is shown neither in the API nor in the audit log, not even as a digest.
#[tokio::test]
async fn plugin_settings_are_audited_as_digests_and_secret_ones_not_at_all() {
    let server = Server::start().await;
    server.allow_unsigned().await;
    let mut package = fixture("noop");
    package
        .manifest
        .push_str("\n[config]\nsecret-keys = [\"token\"]\n");
    let id = server.install_enabled(&package).await;
    let (url, token) = ("https://registry.example", "hunter2-registry-token");
    let configured = server
        .put(
            &format!("/api/v1/plugins/{id}/config"),
            json!({"url": url, "token": token}),
        )
        .await;
    assert_eq!(configured.status, 200, "{:?}", configured.body);
    assert_eq!(configured.body["config"], json!({"url": url}));
    assert_eq!(configured.body["secretKeysSet"], json!(["token"]));
    let view = server.get(&format!("/api/v1/plugins/{id}")).await;
    assert!(!view.body.to_string().contains(token), "{:?}", view.body);

    let records = audit_records(
        &server,
        &format!("action=plugin.configure&target=plugin:{id}"),
    )
    .await;
    assert_eq!(records.len(), 1, "{records:?}");
    let text = records[0].to_string();
    for leaked in [
        token.to_owned(),
        url.to_owned(),
        sha256_hex(token.as_bytes()),
        sha256_hex(json!(token).to_string().as_bytes()),
    ] {
        assert!(
            !text.contains(&leaked),
            "the audit record holds {leaked}: {text}"
        );
    }
    assert_eq!(
        records[0]["after"]["config"]["url"],
        format!("sha256:{}", sha256_hex(json!(url).to_string().as_bytes()))
    );
}
