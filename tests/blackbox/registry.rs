//! The OCI registry under `/v2/`: skopeo (Debian's, as a user has it) pushes and pulls
//! through the token flow; basic auth; chunked uploads resumed and refused out of order;
//! manifests whose blobs are missing; pull and push decided on the project.

use std::io::Write as _;
use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use wharf_tests::{Server, TempDir};

use crate::pipelines::member;

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

/// An OCI image layout at `dir` tagged `tag`, with `layers` gzip layers of the given sizes
/// (before compression, of varied bytes); the manifest's digest.
fn image_layout(dir: &Path, tag: &str, layer_sizes: &[usize]) -> String {
    let blobs = dir.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs).expect("layout dir");
    let put = |bytes: &[u8]| {
        let d = digest(bytes);
        std::fs::write(blobs.join(&d["sha256:".len()..]), bytes).expect("blob");
        (d, bytes.len())
    };
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for (i, size) in layer_sizes.iter().enumerate() {
        let raw: Vec<u8> = (0..*size)
            .map(|n| ((n * 31 + i * 7) % 251) as u8 ^ (n / 997) as u8)
            .collect();
        diff_ids.push(digest(&raw));
        let (d, n) = put(&gzip(&raw));
        layers.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": n}));
    }
    let config = json!({"architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids}});
    let (config_digest, config_size) = put(config.to_string().as_bytes());
    let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": layers});
    let (manifest_digest, manifest_size) = put(manifest.to_string().as_bytes());
    let index = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest,
        "size": manifest_size, "annotations": {"org.opencontainers.image.ref.name": tag}}]});
    std::fs::write(dir.join("index.json"), index.to_string()).expect("index");
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).expect("layout");
    manifest_digest
}

/// The manifest digest an OCI layout holds for its one image.
fn layout_digest(dir: &Path) -> String {
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).expect("index"))
            .expect("json");
    index["manifests"][0]["digest"]
        .as_str()
        .expect("digest")
        .to_owned()
}

fn skopeo(args: &[&str]) -> std::process::Output {
    Command::new("timeout")
        .args(["--kill-after=10", "300", "skopeo"])
        .args(args)
        .output()
        .expect("running skopeo (Debian's package; .ci/run installs it)")
}

#[track_caller]
fn assert_ran(output: &std::process::Output) {
    assert!(
        output.status.success(),
        "skopeo failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn host_of(server: &Server) -> String {
    server.base.trim_start_matches("http://").to_owned()
}

fn basic(user: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}"))
    )
}

async fn project(server: &Server) {
    let reply = server
        .post("/api/v1/projects", json!({"code": "shop", "name": "Shop"}))
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
}

/// A registry request with `authorization` (if any).
async fn call(
    server: &Server,
    method: reqwest::Method,
    path: &str,
    authorization: Option<&str>,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> reqwest::Response {
    let client = reqwest::Client::new();
    let mut request = client
        .request(method, format!("{}{path}", server.base))
        .body(body);
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("registry request")
}

/// A registry request without a body.
async fn bodiless(
    server: &Server,
    method: reqwest::Method,
    path: &str,
    authorization: Option<&str>,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    call(server, method, path, authorization, headers, Vec::new()).await
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

async fn error_code(response: reqwest::Response) -> String {
    let body: Value = response.json().await.expect("an error body");
    body["errors"][0]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn skopeo_pushes_and_pulls_a_multi_layer_image_with_identical_digests() {
    let server = Server::start().await;
    project(&server).await;
    let source = TempDir::new("image");
    let pushed = image_layout(source.path(), "v1", &[300_000, 2_000_000, 1_000]);
    let registry = host_of(&server);
    let target = format!("docker://{registry}/shop/web:v1");
    let creds = "admin:admin-password-for-tests";

    // skopeo is challenged on /v2/ and fetches a token with the credentials.
    let oci = format!("oci:{}:v1", source.path().display());
    assert_ran(&skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        creds,
        &oci,
        &target,
    ]));
    let pulled = TempDir::new("pulled");
    let into = format!("oci:{}:v1", pulled.path().display());
    assert_ran(&skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--src-creds",
        creds,
        &target,
        &into,
    ]));
    assert_eq!(layout_digest(pulled.path()), pushed);
    for entry in std::fs::read_dir(source.path().join("blobs/sha256")).expect("blobs") {
        let name = entry.expect("entry").file_name();
        let (ours, theirs) = (
            std::fs::read(source.path().join("blobs/sha256").join(&name)).expect("ours"),
            std::fs::read(pulled.path().join("blobs/sha256").join(&name)).expect("pulled back"),
        );
        assert!(ours == theirs, "blob {name:?} came back different");
    }
    let tags = skopeo(&[
        "list-tags",
        "--tls-verify=false",
        "--creds",
        creds,
        &format!("docker://{registry}/shop/web"),
    ]);
    assert_ran(&tags);
    let tags: Value = serde_json::from_slice(&tags.stdout).expect("list-tags prints JSON");
    assert_eq!(tags["Tags"], json!(["v1"]));

    // Seed 001 §5.7 lists the image with the reference to pull it by.
    let images = server
        .get("/v1/product/listImagesPage?projectId=shop&imageName=web")
        .await;
    assert_eq!(images.status, 200, "{:?}", images.body);
    assert_eq!(images.body["data"]["total"], 1, "{:?}", images.body);
    let image = &images.body["data"]["list"][0];
    assert_eq!(image["imageId"], "shop/web:v1");
    assert_eq!(image["imageVer"], "v1");
    assert_eq!(image["imageUrl"], format!("{registry}/shop/web:v1"));
    assert_eq!(image["digest"], pushed.as_str());
    assert_eq!(image["createStaff"], "admin");
    let detail = server.get("/v1/product/getImage?imageId=shop/web:v1").await;
    assert_eq!(detail.status, 200, "{:?}", detail.body);
    assert_eq!(detail.body["data"]["imageName"], "shop/web");
    assert!(
        detail.body["data"]["size"].as_u64() > Some(10_000),
        "the compressed layers count: {:?}",
        detail.body
    );
    let unknown = server.get("/v1/product/getImage?imageId=shop/web:v9").await;
    assert_eq!(unknown.status, 404, "{:?}", unknown.body);

    // The token flow was used, and the push is in the audit log as the user.
    let audit = server
        .get("/api/v1/audit?action=artifact.&pageSize=500")
        .await;
    assert_eq!(audit.status, 200, "{:?}", audit.body);
    let items = audit.body["items"].as_array().expect("items").clone();
    let of = |action: &str| {
        items
            .iter()
            .filter(|r| r["action"] == action && r["outcome"] == "ok")
            .count()
    };
    assert!(of("artifact.token") >= 1, "{items:#?}");
    assert!(
        of("artifact.push") >= 5,
        "3 layers, a config and a manifest: {items:#?}"
    );
    assert!(
        items
            .iter()
            .all(|r| !r.to_string().contains("admin-password-for-tests")),
        "a credential is in the audit log"
    );

    // Basic auth, without the token flow: the same manifest by tag and by digest.
    let auth = basic("admin", "admin-password-for-tests");
    let accept = [("accept", "application/vnd.oci.image.manifest.v1+json")];
    let by_tag = bodiless(
        &server,
        Method::GET,
        "/v2/shop/web/manifests/v1",
        Some(&auth),
        &accept,
    )
    .await;
    assert_eq!(by_tag.status(), 200);
    assert_eq!(header(&by_tag, "docker-content-digest"), pushed);
    let bytes = by_tag.bytes().await.expect("manifest");
    assert_eq!(digest(&bytes), pushed);
    let by_digest = bodiless(
        &server,
        Method::HEAD,
        &format!("/v2/shop/web/manifests/{pushed}"),
        Some(&auth),
        &accept,
    )
    .await;
    assert_eq!(by_digest.status(), 200);
    assert_eq!(
        header(&by_digest, "content-length"),
        bytes.len().to_string()
    );
}

#[tokio::test]
async fn a_chunked_upload_resumes_after_an_interruption_and_refuses_a_chunk_out_of_order() {
    let server = Server::start().await;
    project(&server).await;
    let auth = basic("admin", "admin-password-for-tests");
    let content: Vec<u8> = (0..300_000u32).map(|n| (n % 253) as u8).collect();
    let (first, rest) = content.split_at(120_000);

    let started = bodiless(
        &server,
        Method::POST,
        "/v2/shop/chunks/blobs/uploads/",
        Some(&auth),
        &[],
    )
    .await;
    assert_eq!(started.status(), 202);
    let location = header(&started, "location");
    assert!(
        location.starts_with("/v2/shop/chunks/blobs/uploads/"),
        "{location}"
    );
    let range = format!("0-{}", first.len() - 1);
    let chunk = call(
        &server,
        Method::PATCH,
        &location,
        Some(&auth),
        &[
            ("content-range", &range),
            ("content-type", "application/octet-stream"),
        ],
        first.to_vec(),
    )
    .await;
    assert_eq!(chunk.status(), 202);
    assert_eq!(header(&chunk, "range"), range);

    // The client went away; asking where the upload stands tells where to go on.
    let status = bodiless(&server, Method::GET, &location, Some(&auth), &[]).await;
    assert_eq!(status.status(), 204);
    assert_eq!(header(&status, "range"), range);

    // A chunk that skips bytes is refused with where the upload ends.
    let skipped = format!("{}-{}", first.len() + 10, content.len() - 1);
    let refused = call(
        &server,
        Method::PATCH,
        &location,
        Some(&auth),
        &[("content-range", &skipped)],
        rest[10..].to_vec(),
    )
    .await;
    assert_eq!(refused.status(), 416);
    assert_eq!(header(&refused, "range"), range);
    assert_eq!(error_code(refused).await, "BLOB_UPLOAD_INVALID");

    let resumed = format!("{}-{}", first.len(), content.len() - 1);
    let chunk = call(
        &server,
        Method::PATCH,
        &location,
        Some(&auth),
        &[("content-range", &resumed)],
        rest.to_vec(),
    )
    .await;
    assert_eq!(chunk.status(), 202);
    let wrong = bodiless(
        &server,
        Method::PUT,
        &format!("{location}?digest={}", digest(b"other")),
        Some(&auth),
        &[],
    )
    .await;
    assert_eq!(wrong.status(), 400);
    assert_eq!(error_code(wrong).await, "DIGEST_INVALID");

    // A refused digest ends the upload; the same bytes again, closed with the right one.
    let again = bodiless(
        &server,
        Method::POST,
        "/v2/shop/chunks/blobs/uploads/",
        Some(&auth),
        &[],
    )
    .await;
    let location = header(&again, "location");
    call(
        &server,
        Method::PATCH,
        &location,
        Some(&auth),
        &[],
        content.clone(),
    )
    .await;
    let blob = digest(&content);
    let closed = bodiless(
        &server,
        Method::PUT,
        &format!("{location}?digest={blob}"),
        Some(&auth),
        &[],
    )
    .await;
    assert_eq!(closed.status(), 201);
    assert_eq!(header(&closed, "docker-content-digest"), blob);

    let whole = bodiless(
        &server,
        Method::GET,
        &format!("/v2/shop/chunks/blobs/{blob}"),
        Some(&auth),
        &[],
    )
    .await;
    assert_eq!(whole.status(), 200);
    assert!(whole.bytes().await.expect("blob") == content);
    let part = bodiless(
        &server,
        Method::GET,
        &format!("/v2/shop/chunks/blobs/{blob}"),
        Some(&auth),
        &[("range", "bytes=1000-1999")],
    )
    .await;
    assert_eq!(part.status(), 206);
    assert_eq!(
        header(&part, "content-range"),
        format!("bytes 1000-1999/{}", content.len())
    );
    assert!(part.bytes().await.expect("part") == content[1000..2000]);

    // Another repository sees the blob only once it is mounted there.
    let elsewhere = format!("/v2/shop/other/blobs/{blob}");
    let missing = bodiless(&server, Method::HEAD, &elsewhere, Some(&auth), &[]).await;
    assert_eq!(missing.status(), 404);
    let mounted = bodiless(
        &server,
        Method::POST,
        &format!("/v2/shop/other/blobs/uploads/?mount={blob}&from=shop/chunks"),
        Some(&auth),
        &[],
    )
    .await;
    assert_eq!(mounted.status(), 201);
    let present = bodiless(&server, Method::HEAD, &elsewhere, Some(&auth), &[]).await;
    assert_eq!(present.status(), 200);
    assert_eq!(
        header(&present, "content-length"),
        content.len().to_string()
    );
}

#[tokio::test]
async fn a_manifest_whose_blobs_are_missing_is_refused_and_stores_nothing() {
    let server = Server::start().await;
    project(&server).await;
    let auth = basic("admin", "admin-password-for-tests");
    let config = b"{}".to_vec();
    let config_digest = digest(&config);
    let pushed = call(
        &server,
        Method::POST,
        &format!("/v2/shop/web/blobs/uploads/?digest={config_digest}"),
        Some(&auth),
        &[],
        config,
    )
    .await;
    assert_eq!(pushed.status(), 201);
    let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest(b"never pushed"), "size": 12}]})
    .to_string();
    let content_type = [("content-type", "application/vnd.oci.image.manifest.v1+json")];
    let refused = call(
        &server,
        Method::PUT,
        "/v2/shop/web/manifests/v1",
        Some(&auth),
        &content_type,
        manifest.clone().into_bytes(),
    )
    .await;
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.expect("error body");
    assert_eq!(body["errors"][0]["code"], "MANIFEST_BLOB_UNKNOWN", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains(&digest(b"never pushed"))
    );

    let read = bodiless(
        &server,
        Method::GET,
        "/v2/shop/web/manifests/v1",
        Some(&auth),
        &[],
    )
    .await;
    assert_eq!(read.status(), 404);
    assert_eq!(error_code(read).await, "MANIFEST_UNKNOWN");
    let by_digest = format!("/v2/shop/web/manifests/{}", digest(manifest.as_bytes()));
    let read = bodiless(&server, Method::HEAD, &by_digest, Some(&auth), &[]).await;
    assert_eq!(read.status(), 404);
    let tags = bodiless(
        &server,
        Method::GET,
        "/v2/shop/web/tags/list",
        Some(&auth),
        &[],
    )
    .await;
    assert_eq!(tags.status(), 200);
    let tags: Value = tags.json().await.expect("tags");
    assert_eq!(tags["tags"], json!([]));
    // Nor is a malformed one, whose error names what is wrong.
    let malformed = call(
        &server,
        Method::PUT,
        "/v2/shop/web/manifests/v2",
        Some(&auth),
        &content_type,
        b"{\"layers\": 3}".to_vec(),
    )
    .await;
    assert_eq!(malformed.status(), 400);
    assert_eq!(error_code(malformed).await, "MANIFEST_INVALID");
}

#[tokio::test]
async fn pull_and_push_are_decided_on_the_project_and_a_token_grants_only_what_was_allowed() {
    let server = Server::start().await;
    project(&server).await;
    let admin = basic("admin", "admin-password-for-tests");
    let blob = b"layer".to_vec();
    let blob_digest = digest(&blob);
    let push_path = format!("/v2/shop/web/blobs/uploads/?digest={blob_digest}");
    let pushed = call(
        &server,
        Method::POST,
        &push_path,
        Some(&admin),
        &[],
        blob.clone(),
    )
    .await;
    assert_eq!(pushed.status(), 201);

    // No credentials: the challenge names the token endpoint and the scope.
    let anonymous = bodiless(
        &server,
        Method::GET,
        &format!("/v2/shop/web/blobs/{blob_digest}"),
        None,
        &[],
    )
    .await;
    assert_eq!(anonymous.status(), 401);
    let challenge = header(&anonymous, "www-authenticate");
    assert!(
        challenge.starts_with("Bearer realm=\"http://"),
        "{challenge}"
    );
    assert!(challenge.contains("/v2/token\""), "{challenge}");
    assert!(
        challenge.contains("scope=\"repository:shop/web:pull\""),
        "{challenge}"
    );

    // A user with no role in the project may neither pull nor push.
    server.create_user("olga", false).await;
    let olga = basic("olga", "olga-password");
    let denied = bodiless(
        &server,
        Method::GET,
        &format!("/v2/shop/web/blobs/{blob_digest}"),
        Some(&olga),
        &[],
    )
    .await;
    assert_eq!(denied.status(), 403);
    assert_eq!(error_code(denied).await, "DENIED");
    let token = bodiless(
        &server,
        Method::GET,
        "/v2/token?service=wharf&scope=repository:shop/web:pull,push",
        Some(&olga),
        &[],
    )
    .await;
    assert_eq!(token.status(), 200);
    let token: Value = token.json().await.expect("token");
    let bearer = format!("Bearer {}", token["token"].as_str().expect("token"));
    let denied = bodiless(
        &server,
        Method::HEAD,
        &format!("/v2/shop/web/blobs/{blob_digest}"),
        Some(&bearer),
        &[],
    )
    .await;
    assert_eq!(
        denied.status(),
        401,
        "a token granting nothing sends the client back for a wider one"
    );

    // A viewer pulls but may not push; a developer pushes.
    let viewer = member(&server, "vera", "viewer", "project:shop").await;
    let _ = viewer;
    let vera = basic("vera", "vera-password");
    let pulled = bodiless(
        &server,
        Method::GET,
        &format!("/v2/shop/web/blobs/{blob_digest}"),
        Some(&vera),
        &[],
    )
    .await;
    assert_eq!(pulled.status(), 200);
    let refused = bodiless(
        &server,
        Method::POST,
        "/v2/shop/web/blobs/uploads/",
        Some(&vera),
        &[],
    )
    .await;
    assert_eq!(refused.status(), 403);
    let token = bodiless(
        &server,
        Method::GET,
        "/v2/token?service=wharf&scope=repository:shop/web:pull,push",
        Some(&vera),
        &[],
    )
    .await;
    let token: Value = token.json().await.expect("token");
    let bearer = format!("Bearer {}", token["token"].as_str().expect("token"));
    let pulled = bodiless(
        &server,
        Method::HEAD,
        &format!("/v2/shop/web/blobs/{blob_digest}"),
        Some(&bearer),
        &[],
    )
    .await;
    assert_eq!(pulled.status(), 200);
    let push = bodiless(
        &server,
        Method::POST,
        "/v2/shop/web/blobs/uploads/",
        Some(&bearer),
        &[],
    )
    .await;
    assert_eq!(push.status(), 401, "the token grants pull only");
    // A registry token cannot be traded for a wider one.
    let widened = bodiless(
        &server,
        Method::GET,
        "/v2/token?service=wharf&scope=repository:shop/web:pull,push,delete",
        Some(&bearer),
        &[],
    )
    .await;
    assert_eq!(widened.status(), 401);
    // The token is for shop/web alone.
    let other = bodiless(
        &server,
        Method::GET,
        "/v2/shop/other/tags/list",
        Some(&bearer),
        &[],
    )
    .await;
    assert_eq!(other.status(), 401);

    member(&server, "dev", "developer", "project:shop").await;
    let dev = basic("dev", "dev-password");
    let pushed = call(
        &server,
        Method::POST,
        &format!("/v2/shop/api/blobs/uploads/?digest={blob_digest}"),
        Some(&dev),
        &[],
        blob,
    )
    .await;
    assert_eq!(pushed.status(), 201);

    // The catalog crosses projects: administrators only.
    let catalog = bodiless(&server, Method::GET, "/v2/_catalog", Some(&dev), &[]).await;
    assert_eq!(catalog.status(), 403);
    let catalog = bodiless(&server, Method::GET, "/v2/_catalog", Some(&admin), &[]).await;
    assert_eq!(catalog.status(), 200);
    let catalog: Value = catalog.json().await.expect("catalog");
    assert_eq!(catalog["repositories"], json!(["shop/api", "shop/web"]));
}
