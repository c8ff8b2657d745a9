//! The artifact policy decides, the registry executes: the bundled `artifact-policy-default`
//! configured with an immutable tag rule blocks a re-push, a retag and a delete; its
//! retention rules prune old tags (a dry run first, then a run, from REST and the CLI); a
//! third-party policy swaps in at run time and its rules apply at once.

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use wharf_tests::{Server, fixture};

use crate::rollouts::cli_ok;

const POLICY: &str = "artifact-policy-default";

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn basic() -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("admin:admin-password-for-tests")
    )
}

/// Pushes a one-layer image whose layer is `layer` to `shop/web:<tag>`; the response.
async fn push(server: &Server, tag: &str, layer: &[u8]) -> reqwest::Response {
    let client = reqwest::Client::new();
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    for blob in [config.clone(), layer.to_vec()] {
        let pushed = client
            .post(format!(
                "{}/v2/shop/web/blobs/uploads/?digest={}",
                server.base,
                digest(&blob)
            ))
            .header("authorization", basic())
            .body(blob)
            .send()
            .await
            .expect("blob push");
        assert_eq!(pushed.status(), 201);
    }
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": digest(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": digest(layer), "size": layer.len()}],
    })
    .to_string();
    client
        .put(format!("{}/v2/shop/web/manifests/{tag}", server.base))
        .header("authorization", basic())
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest)
        .send()
        .await
        .expect("manifest push")
}

async fn pushed(server: &Server, tag: &str, layer: &[u8]) -> String {
    let response = push(server, tag, layer).await;
    assert_eq!(response.status(), 201, "{tag}: {:?}", response.text().await);
    response.headers()["docker-content-digest"]
        .to_str()
        .expect("digest")
        .to_owned()
}

async fn refused(response: reqwest::Response) -> String {
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.expect("an error body");
    assert_eq!(body["errors"][0]["code"], "DENIED", "{body}");
    body["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn tags(server: &Server) -> Value {
    let listed = reqwest::Client::new()
        .get(format!("{}/v2/shop/web/tags/list", server.base))
        .header("authorization", basic())
        .send()
        .await
        .expect("tags");
    let body: Value = listed.json().await.expect("tags JSON");
    body["tags"].clone()
}

async fn project(server: &Server) {
    let reply = server
        .post("/api/v1/projects", json!({"code": "shop", "name": "Shop"}))
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
}

async fn configure(server: &Server, settings: Value) {
    let reply = server
        .put(&format!("/api/v1/plugins/{POLICY}/config"), settings)
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
}

#[tokio::test]
async fn an_immutable_tag_is_not_pushed_again_moved_or_deleted() {
    let server = Server::start().await;
    project(&server).await;
    let plugin = server.get(&format!("/api/v1/plugins/{POLICY}")).await;
    assert_eq!(
        plugin.body["status"], "enabled",
        "bundled and serving: {:?}",
        plugin.body
    );
    configure(
        &server,
        json!({"immutable": [{"repositories": "shop/*", "tags": "v*"}]}),
    )
    .await;

    let first = pushed(&server, "v1", b"first build").await;
    // The same content again is no change, and allowed.
    assert_eq!(pushed(&server, "v1", b"first build").await, first);
    let why = refused(push(&server, "v1", b"second build").await).await;
    assert!(why.contains("immutable"), "{why}");
    // A retag of another image onto v1 is the same move.
    let other = pushed(&server, "latest", b"second build").await;
    assert_ne!(other, first);
    let retag = refused(push(&server, "v1", b"second build").await).await;
    assert!(retag.contains("immutable"), "{retag}");
    // Nor is it deleted, by tag or with its manifest.
    let client = reqwest::Client::new();
    for reference in ["v1".to_owned(), first.clone()] {
        let deleted = client
            .delete(format!("{}/v2/shop/web/manifests/{reference}", server.base))
            .header("authorization", basic())
            .send()
            .await
            .expect("delete");
        let why = refused(deleted).await;
        assert!(why.contains("immutable"), "{why}");
    }
    let head = client
        .head(format!("{}/v2/shop/web/manifests/v1", server.base))
        .header("authorization", basic())
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .expect("head");
    assert_eq!(head.headers()["docker-content-digest"], first.as_str());
    // A mutable tag moves and goes.
    pushed(&server, "latest", b"third build").await;
    let deleted = client
        .delete(format!("{}/v2/shop/web/manifests/latest", server.base))
        .header("authorization", basic())
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status(), 202);
    assert_eq!(tags(&server).await, json!(["v1"]));

    // The refusals are in the audit log.
    let audit = crate::pipelines::audit(&server, "action=artifact.push").await;
    assert!(
        audit.iter().any(|r| r["outcome"] != "ok"),
        "a refused push is recorded: {audit:?}"
    );
}

#[tokio::test]
async fn retention_rules_prune_old_tags_after_a_dry_run() {
    let server = Server::start().await;
    project(&server).await;
    configure(
        &server,
        json!({
            "retention": [{"repositories": "shop/**", "tags": "dev-*", "keepMostRecent": 2}],
            "immutable": [{"repositories": "shop/*", "tags": "dev-1"}],
        }),
    )
    .await;
    for n in 0..5 {
        pushed(
            &server,
            &format!("dev-{n}"),
            format!("build {n}").as_bytes(),
        )
        .await;
    }
    pushed(&server, "v1", b"release").await;

    let dry = server
        .post("/api/v1/projects/shop/retention/dry-run", json!({}))
        .await;
    assert_eq!(dry.status, 200, "{:?}", dry.body);
    assert_eq!(dry.body["dryRun"], true);
    assert_eq!(dry.body["policy"], format!("{POLICY}@0.1.0"));
    let picked: Vec<&str> = dry.body["repositories"][0]["deleted"]
        .as_array()
        .expect("deleted")
        .iter()
        .filter_map(|t| t["tag"].as_str())
        .collect();
    let mut sorted = picked.clone();
    sorted.sort_unstable();
    // dev-4 and dev-3 are the two newest; dev-1 is immutable; v1 matches no rule.
    assert_eq!(sorted, ["dev-0", "dev-2"], "{:?}", dry.body);
    assert_eq!(
        tags(&server).await.as_array().map(Vec::len),
        Some(6),
        "a dry run deletes nothing"
    );

    let out = cli_ok(&server, &["image", "retention", "--project", "shop"]);
    assert!(out.contains("deleted 2 tag(s)"), "{out}");
    assert_eq!(
        tags(&server).await,
        json!(["dev-1", "dev-3", "dev-4", "v1"])
    );
    let again = server
        .post("/api/v1/projects/shop/retention/runs", json!({}))
        .await;
    assert_eq!(again.body["deleted"], 0, "{:?}", again.body);
    let audit = crate::pipelines::audit(&server, "action=artifact.delete").await;
    assert!(
        audit
            .iter()
            .any(|r| r["after"]["deleted"] == 2 && r["actor"]["name"] == "admin"),
        "{audit:?}"
    );

    // The images list shows what is left, with pull references.
    let listed = cli_ok(&server, &["image", "list", "--project", "shop"]);
    assert!(
        listed.contains("/shop/web:dev-4") && !listed.contains("dev-0"),
        "{listed}"
    );

    // A viewer may look at a dry run but not run retention.
    let viewer = crate::pipelines::member(&server, "vic", "viewer", "project:shop").await;
    let looked = server
        .request(
            "POST",
            "/api/v1/projects/shop/retention/dry-run",
            Some(json!({})),
            Some(&viewer),
        )
        .await;
    assert_eq!(looked.status, 200, "{:?}", looked.body);
    let ran = server
        .request(
            "POST",
            "/api/v1/projects/shop/retention/runs",
            Some(json!({})),
            Some(&viewer),
        )
        .await;
    assert_eq!(ran.status, 403, "{:?}", ran.body);
}

#[tokio::test]
async fn a_third_party_policy_swaps_in_at_run_time() {
    let server = Server::start().await;
    project(&server).await;
    configure(
        &server,
        json!({"immutable": [{"repositories": "shop/*", "tags": "v*"}]}),
    )
    .await;
    pushed(&server, "v1", b"first").await;
    pushed(&server, "latest", b"first").await;

    server.allow_unsigned().await;
    let swapped = server.install_enabled(&fixture("policy-no-latest")).await;
    let default = server.get(&format!("/api/v1/plugins/{POLICY}")).await;
    assert_eq!(default.body["status"], "disabled", "{:?}", default.body);
    assert!(
        default.body["disabledReason"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!("replaced by artifact policy `{swapped}`")),
        "{:?}",
        default.body
    );
    // The new policy's rules apply, the old one's no longer do.
    let why = refused(push(&server, "latest", b"second").await).await;
    assert!(why.contains("pinned tag"), "{why}");
    pushed(&server, "v1", b"second").await;
    let dry = server
        .post("/api/v1/projects/shop/retention/dry-run", json!({}))
        .await;
    assert_eq!(
        dry.body["policy"],
        format!("{swapped}@0.1.0"),
        "{:?}",
        dry.body
    );

    // Without any policy everything is allowed and retention says why it cannot run.
    let disabled = server
        .post(&format!("/api/v1/plugins/{swapped}/disable"), json!({}))
        .await;
    assert_eq!(disabled.status, 200, "{:?}", disabled.body);
    pushed(&server, "latest", b"third").await;
    server
        .post("/api/v1/projects/shop/retention/dry-run", json!({}))
        .await
        .assert_problem(409, "no-artifact-policy");
}
