//! Generic packages (seed 001 §5.7): a jar uploaded with the CLI and downloaded again with
//! the same sha256, through REST and the seed's routes; listing by app, group and name;
//! what an upload refuses (and that a refused upload keeps nothing); who may upload, read
//! and delete; a project holding packages cannot be deleted.

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use wharf_tests::{Reply, Server, TempDir};

use crate::pipelines::member;
use crate::rollouts::cli_ok;

const PACKAGES: &str = "/api/v1/projects/shop/packages";

async fn project(server: &Server) {
    let reply = server
        .post("/api/v1/projects", json!({"code": "shop", "name": "Shop"}))
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Content that is not all one byte, so a truncation or reordering changes its digest.
fn content(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|n| (n.wrapping_mul(31).wrapping_add(seed) % 251) as u8)
        .collect()
}

/// A raw upload with `token`.
async fn upload(server: &Server, query: &str, body: Vec<u8>, token: &str) -> Reply {
    let response = reqwest::Client::new()
        .post(format!("{}{PACKAGES}?{query}", server.base))
        .bearer_auth(token)
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .await
        .expect("upload sent");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    Reply {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        content_type: String::new(),
        headers: Default::default(),
    }
}

async fn download(
    server: &Server,
    path: &str,
    token: &str,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let response = reqwest::Client::new()
        .get(format!("{}{path}", server.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("download sent");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("download body").to_vec();
    (status, headers, bytes)
}

#[tokio::test]
async fn a_jar_uploaded_with_the_cli_downloads_with_the_same_sha256() {
    let server = Server::start().await;
    project(&server).await;
    let group = server
        .post(
            "/api/v1/projects/shop/app-groups",
            json!({"name": "backend"}),
        )
        .await;
    assert_eq!(group.status, 201, "{:?}", group.body);
    let group = group.body["id"].as_str().expect("group id").to_owned();
    let app = server
        .post(
            "/api/v1/projects/shop/apps",
            json!({"name": "orders", "groupId": group}),
        )
        .await;
    assert_eq!(app.status, 201, "{:?}", app.body);
    let app_id = app.body["id"].as_str().expect("app id").to_owned();

    // Several MiB, so the stream spans many chunks on both sides.
    let dir = TempDir::new("packages");
    let jar = content(5 * 1024 * 1024 + 17, 7);
    let file = dir.path().join("orders.jar");
    std::fs::write(&file, &jar).expect("write jar");
    let file_arg = file.to_string_lossy().into_owned();
    let out = cli_ok(
        &server,
        &[
            "package",
            "upload",
            &file_arg,
            "--project",
            "shop",
            "--name",
            "orders-api",
            "--version",
            "1.4.0",
            "--app",
            "orders",
            "--branch",
            "release/1.4",
            "--official",
            "--json",
        ],
    );
    let uploaded: Value = serde_json::from_str(&out).expect("upload answer is JSON");
    let id = uploaded["id"].as_str().expect("package id").to_owned();
    assert_eq!(uploaded["type"], "jar", "the type comes from the extension");
    assert_eq!(uploaded["size"], jar.len());
    assert_eq!(uploaded["sha256"], sha256(&jar));
    assert_eq!(uploaded["source"], "USER_UPLOAD");
    assert_eq!(
        uploaded["appGroup"],
        group.as_str(),
        "filed under the app's group"
    );
    assert_eq!(uploaded["createdBy"], "admin");

    // The CLI downloads it, checks it and writes it under its own name.
    let target = dir.path().join("downloaded.jar");
    let target_arg = target.to_string_lossy().into_owned();
    let said = cli_ok(
        &server,
        &[
            "package",
            "download",
            &id,
            "--project",
            "shop",
            "-o",
            &target_arg,
        ],
    );
    assert!(said.contains(&sha256(&jar)), "{said}");
    assert_eq!(std::fs::read(&target).expect("downloaded"), jar);

    // REST: the same bytes, named and checksummed.
    let (status, headers, bytes) =
        download(&server, &format!("{PACKAGES}/{id}/content"), &server.token).await;
    assert_eq!(status, 200);
    assert_eq!(sha256(&bytes), sha256(&jar));
    assert_eq!(headers["x-checksum-sha256"], sha256(&jar).as_str());
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"orders-api-1.4.0.jar\""
    );

    // Seed 001 §5.7: detail, list by app and by group, download.
    let detail = server
        .get(&format!("/v1/product/getPackage?packageId={id}"))
        .await;
    assert_eq!(detail.status, 200, "{:?}", detail.body);
    assert_eq!(detail.body["code"], "200");
    let data = &detail.body["data"];
    assert_eq!(data["packageId"], id.as_str());
    assert_eq!(data["packageName"], "orders-api");
    assert_eq!(data["packageVer"], "1.4.0");
    assert_eq!(data["packageType"], "jar");
    assert_eq!(data["packageSource"], "USER_UPLOAD");
    assert_eq!(data["packageSize"], jar.len());
    assert_eq!(data["branchName"], "release/1.4");
    assert_eq!(data["isOfficial"], true);
    assert_eq!(data["createStaff"], "admin");
    for query in [
        format!("projectId=shop&appId={app_id}"),
        format!("projectId=shop&appGroupId={group}"),
        "projectId=shop&packageName=ORDERS".to_owned(),
    ] {
        let page = server
            .get(&format!("/v1/product/listPackagesPage?{query}"))
            .await;
        assert_eq!(page.status, 200, "{query}: {:?}", page.body);
        assert_eq!(page.body["data"]["total"], 1, "{query}: {:?}", page.body);
        assert_eq!(page.body["data"]["list"][0]["packageId"], id.as_str());
    }
    let none = server
        .get("/v1/product/listPackagesPage?projectId=shop&packageName=billing")
        .await;
    assert_eq!(none.body["data"]["total"], 0, "{:?}", none.body);
    let missing = server.get("/v1/product/listPackagesPage").await;
    assert_eq!(missing.status, 422, "{:?}", missing.body);
    assert!(
        missing.body["msg"]
            .as_str()
            .unwrap_or_default()
            .contains("projectId"),
        "{:?}",
        missing.body
    );
    let (status, _, bytes) = download(
        &server,
        &format!("/v1/product/downloadPackage?packageId={id}"),
        &server.token,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(sha256(&bytes), sha256(&jar));
    let unknown = server
        .get("/v1/product/downloadPackage?packageId=0000")
        .await;
    assert_eq!(unknown.status, 404, "{:?}", unknown.body);

    // The CLI's list shows it; the upload and the delete are audited.
    let listed = cli_ok(&server, &["package", "list", "--project", "shop"]);
    assert!(
        listed.contains("orders-api") && listed.contains("1.4.0"),
        "{listed}"
    );
    cli_ok(&server, &["package", "delete", &id, "--project", "shop"]);
    server
        .get(&format!("{PACKAGES}/{id}"))
        .await
        .assert_problem(404, "package-not-found");
    let audit = crate::pipelines::audit(&server, "action=artifact.").await;
    let actions: Vec<&str> = audit.iter().filter_map(|r| r["action"].as_str()).collect();
    assert!(actions.contains(&"artifact.push"), "{actions:?}");
    assert!(actions.contains(&"artifact.delete"), "{actions:?}");
}

#[tokio::test]
async fn an_upload_refuses_bad_metadata_a_wrong_sha256_and_a_second_copy_of_a_version() {
    let server = Server::start().await;
    project(&server).await;
    let body = content(70_000, 3);
    let digest = sha256(&body);
    let token = server.token.clone();

    for (query, field) in [
        ("version=1&type=zip", "name"),
        ("name=tool&type=zip", "version"),
        ("name=tool&version=1", "type"),
        ("name=tool&version=1&type=exe", "type"),
        ("name=../tool&version=1&type=zip", "name"),
        ("name=tool&version=1/2&type=zip", "version"),
        ("name=tool&version=1&type=zip&source=ELSEWHERE", "source"),
        ("name=tool&version=1&type=zip&app=ghost", "app"),
        ("name=tool&version=1&type=zip&appGroup=ghost", "appGroup"),
        ("name=tool&version=1&type=zip&sha256=xyz", "sha256"),
        ("name=tool&version=1&type=zip&official=maybe", "official"),
    ] {
        let reply = upload(&server, query, body.clone(), &token).await;
        assert_eq!(reply.status, 422, "{query}: {:?}", reply.body);
        assert_eq!(reply.body["field"], field, "{query}: {:?}", reply.body);
    }
    let ghost = reqwest::Client::new()
        .post(format!(
            "{}/api/v1/projects/ghost/packages?name=tool&version=1&type=zip",
            server.base
        ))
        .bearer_auth(&token)
        .body(body.clone())
        .send()
        .await
        .expect("sent");
    assert_eq!(ghost.status(), 404);

    // A body that is not what the client hashed is refused and nothing is kept.
    let wrong = upload(
        &server,
        &format!("name=tool&version=1&type=tgz&sha256={}", sha256(b"other")),
        body.clone(),
        &token,
    )
    .await;
    assert_eq!(wrong.status, 422, "{:?}", wrong.body);
    assert_eq!(wrong.body["code"], "digest-mismatch");
    let page = server.get(PACKAGES).await;
    assert_eq!(page.body["total"], 0, "{:?}", page.body);

    let first = upload(
        &server,
        &format!("name=tool&version=1&type=tgz&sha256=sha256:{digest}"),
        body.clone(),
        &token,
    )
    .await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    assert_eq!(first.body["type"], "tar.gz");
    let again = upload(
        &server,
        "name=tool&version=1&type=tar.gz",
        content(10, 1),
        &token,
    )
    .await;
    assert_eq!(again.status, 409, "{:?}", again.body);
    assert_eq!(again.body["code"], "package-version-exists");
    // Another type or version of the same name is another package.
    let rpm = upload(
        &server,
        "name=tool&version=1&type=rpm",
        body.clone(),
        &token,
    )
    .await;
    assert_eq!(rpm.status, 201, "{:?}", rpm.body);
    let page = server.get(PACKAGES).await;
    assert_eq!(page.body["total"], 2, "{:?}", page.body);

    // Concurrent uploads of one new version: exactly one wins.
    let mut racers = Vec::new();
    for n in 0..6u32 {
        let server_base = server.base.clone();
        let token = token.clone();
        racers.push(tokio::spawn(async move {
            reqwest::Client::new()
                .post(format!(
                    "{server_base}{PACKAGES}?name=race&version=9&type=zip"
                ))
                .bearer_auth(&token)
                .body(content(50_000, n))
                .send()
                .await
                .expect("sent")
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for racer in racers {
        statuses.push(racer.await.expect("racer"));
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409, 409, 409, 409, 409], "{statuses:?}");

    // A project holding packages cannot be deleted.
    server
        .delete("/api/v1/projects/shop")
        .await
        .assert_problem(409, "project-not-empty");
}

#[tokio::test]
async fn developers_upload_viewers_read_and_outsiders_see_nothing() {
    let server = Server::start().await;
    project(&server).await;
    let developer = member(&server, "dora", "developer", "project:shop").await;
    let viewer = member(&server, "vic", "viewer", "project:shop").await;
    let outsider = server.create_user("olga", false).await;
    let body = content(20_000, 9);

    let refused = upload(
        &server,
        "name=web&version=2&type=war",
        body.clone(),
        &viewer,
    )
    .await;
    assert_eq!(refused.status, 403, "{:?}", refused.body);
    let pushed = upload(
        &server,
        "name=web&version=2&type=war",
        body.clone(),
        &developer,
    )
    .await;
    assert_eq!(pushed.status, 201, "{:?}", pushed.body);
    assert_eq!(
        pushed.body["createdBy"], "dora",
        "identity comes from the token"
    );
    let id = pushed.body["id"].as_str().expect("id").to_owned();

    let (status, _, bytes) = download(&server, &format!("{PACKAGES}/{id}/content"), &viewer).await;
    assert_eq!(status, 200);
    assert_eq!(bytes, body);
    let seed = server
        .request(
            "GET",
            &format!("/v1/product/getPackage?packageId={id}"),
            None,
            Some(&viewer),
        )
        .await;
    assert_eq!(seed.status, 200, "{:?}", seed.body);

    for path in [
        format!("{PACKAGES}/{id}/content"),
        format!("/v1/product/downloadPackage?packageId={id}"),
        format!("/v1/product/getPackage?packageId={id}"),
        "/v1/product/listPackagesPage?projectId=shop".to_owned(),
    ] {
        let (status, _, _) = download(&server, &path, &outsider).await;
        assert_eq!(status, 403, "{path}");
    }
    let delete = server
        .request(
            "DELETE",
            &format!("{PACKAGES}/{id}"),
            None,
            Some(&developer),
        )
        .await;
    assert_eq!(
        delete.status, 403,
        "developers do not delete: {:?}",
        delete.body
    );
    let delete = server
        .request(
            "DELETE",
            &format!("{PACKAGES}/{id}"),
            None,
            Some(&server.token),
        )
        .await;
    assert_eq!(delete.status, 204, "{:?}", delete.body);
}

#[tokio::test]
async fn a_pipeline_step_publishes_a_build_output_as_a_package_of_its_app() {
    let server = Server::start().await;
    crate::pipelines::shop(&server).await;
    server.allow_unsigned().await;
    let kind = server
        .install_enabled(&wharf_tests::fixture("step-publish"))
        .await;
    let pipeline_publishing = |name: &'static str, text: &'static str| {
        let step = crate::pipelines::step_def(
            "publish",
            &kind,
            json!({"project": "shop", "file": "cart.war", "version": "2.0.0", "text": text}),
        );
        let definition = crate::pipelines::definition(
            name,
            vec![crate::pipelines::stage_def(
                "package",
                "PACKAGE_PUBLISH",
                vec![step],
            )],
        );
        crate::pipelines::create_id(&server, definition)
    };
    let pipeline = pipeline_publishing("build", "built bytes").await;
    let run = crate::pipelines::start(&server, &pipeline).await;
    let done = crate::pipelines::finished(&server, &pipeline, &run, "Succeeded").await;
    let package = &crate::pipelines::step_of(&done, "publish")["outputs"]["package"];
    assert_eq!(package["name"], "cart", "{done:#}");
    assert_eq!(package["type"], "war");
    assert_eq!(package["source"], "CODE_GENERATE");
    assert_eq!(package["app"], "cart", "filed under the run's app");
    assert_eq!(package["sha256"], sha256(b"built bytes"));
    let id = package["id"].as_str().expect("package id");
    let (status, _, bytes) =
        download(&server, &format!("{PACKAGES}/{id}/content"), &server.token).await;
    assert_eq!(status, 200);
    assert_eq!(bytes, b"built bytes");
    let listed = server
        .get("/v1/product/listPackagesPage?projectId=shop&packageName=cart")
        .await;
    assert_eq!(
        listed.body["data"]["list"][0]["packageSource"],
        "CODE_GENERATE"
    );

    // The same content again answers the package already stored; other content under
    // the same version is refused, and the step says why.
    let again = crate::pipelines::start(&server, &pipeline).await;
    let same = crate::pipelines::finished(&server, &pipeline, &again, "Succeeded").await;
    assert_eq!(
        crate::pipelines::step_of(&same, "publish")["outputs"]["package"]["id"],
        id
    );
    let other = pipeline_publishing("rebuild", "other bytes").await;
    let again = crate::pipelines::start(&server, &other).await;
    let failed = crate::pipelines::finished(&server, &other, &again, "Failed").await;
    let reason = crate::pipelines::step_of(&failed, "publish").to_string();
    assert!(reason.contains("already published"), "{failed:#}");
}
