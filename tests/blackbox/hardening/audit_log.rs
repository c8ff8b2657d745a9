//! Hardening (issue 11): see `mod.rs` for what this file proves. Finding 7: the audit log
//! could be skipped (the record came after the response; a crash mid-request left none),
//! flooded (one fsync per anonymous 401), read only whole, and it held config values and
//! nothing about the kubeconfig token it handed out.

use std::collections::HashSet;

use serde_json::{Value, json};
use wharf_tests::{Server, eventually, fixture};

/// One page of records.
async fn page(server: &Server, query: &str) -> Value {
    let reply = server.get(&format!("/api/v1/audit?{query}")).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body
}

async fn records(server: &Server, query: &str) -> Vec<Value> {
    page(server, &format!("pageSize=500&{query}")).await["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The export as text.
async fn export(server: &Server, query: &str) -> String {
    let reply = server.get(&format!("/api/v1/audit/export?{query}")).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply
        .body
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| reply.body.to_string())
}

#[tokio::test]
async fn a_mutation_cut_off_by_a_crash_is_on_record_as_interrupted() {
    let mut server = Server::start().await;
    server.allow_unsigned().await;
    let mut spinning = fixture("loop");
    spinning
        .manifest
        .push_str("\n[limits]\ntimeout-ms = 30000\n");
    let id = server.install_enabled(&spinning).await;

    // The call spins for 30 s; the server is killed while it is in flight.
    let (base, token) = (server.base.clone(), server.token.clone());
    let in_flight = tokio::spawn(async move {
        let _ = reqwest::Client::new()
            .post(format!("{base}/api/v1/plugins/{id}/invoke"))
            .bearer_auth(token)
            .json(&json!({"function": "step.run", "input": {"params": {}}}))
            .send()
            .await;
    });
    let query = "action=plugin.invoke&target=plugin:fixture-loop";
    assert!(
        eventually(|| async {
            records(&server, &format!("{query}&outcome=pending"))
                .await
                .len()
                == 1
        })
        .await,
        "the record is written before the handler runs"
    );
    server.kill_and_restart().await;
    in_flight.abort();

    let after = records(&server, query).await;
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[0]["outcome"], "interrupted", "{}", after[0]);
    assert_eq!(after[0]["actor"]["name"], "admin");
    assert!(records(&server, "outcome=pending").await.is_empty());
}

#[tokio::test]
async fn two_hundred_anonymous_requests_leave_a_handful_of_counted_records() {
    let server = Server::start_with(&["--audit-denial-window-secs", "1"]).await;
    let mut sent = 0;
    for i in 0..200 {
        let (method, path) = if i % 2 == 0 {
            ("GET", "/api/v1/plugins")
        } else {
            ("POST", "/api/v1/plugins/hello/disable")
        };
        let token = (i % 4 == 1).then_some("wharf_forged");
        let reply = server.request(method, path, None, token).await;
        reply.assert_problem(401, "unauthenticated");
        sent += 1;
    }
    let counted = |records: &[Value]| -> u64 {
        records
            .iter()
            .map(|r| r["count"].as_u64().unwrap_or(1))
            .sum()
    };
    assert!(
        eventually(|| async {
            counted(&records(&server, "actor=anonymous&outcome=denied").await) == sent
        })
        .await,
        "{:?}",
        records(&server, "actor=anonymous&outcome=denied").await
    );
    let found = records(&server, "actor=anonymous&outcome=denied").await;
    assert!(
        found.len() <= 10,
        "200 denials from one source and two routes leave a handful of records, not {}",
        found.len()
    );
    for record in &found {
        assert_eq!(record["sourceAddress"], "127.0.0.1", "{record}");
        assert_eq!(record["errorCode"], "unauthenticated", "{record}");
    }
    let disables: u64 = counted(
        &found
            .iter()
            .filter(|r| r["action"] == "plugin.disable" && r["target"] == "plugin:hello")
            .cloned()
            .collect::<Vec<_>>(),
    );
    assert_eq!(disables, 100, "{found:?}");
}

#[tokio::test]
async fn a_config_item_value_is_audited_only_as_its_key_and_a_sha256() {
    let server = Server::start().await;
    let envs = "/api/v1/projects/shop/environments";
    let made = server
        .post("/api/v1/projects", json!({"code": "shop", "name": "Shop"}))
        .await;
    assert_eq!(made.status, 201, "{:?}", made.body);
    let made = server
        .post(
            envs,
            json!({"envCode": "dev", "envName": "Dev", "envType": "DEVELOP"}),
        )
        .await;
    assert_eq!(made.status, 201, "{:?}", made.body);
    let bound = server
        .post(
            &format!("{envs}/dev/bindings"),
            json!({"cluster": "embedded", "namespace": "shop-dev", "createNamespace": true}),
        )
        .await;
    assert_eq!(bound.status, 200, "{:?}", bound.body);

    let items = format!("{envs}/dev/config-items");
    let (secret, rotated) = ("db-password-Zq8v1xT4", "db-password-Wm3k9pR7");
    let created = server
        .post(
            &items,
            json!({"name": "db", "items": [
                {"name": "password", "value": secret},
                {"name": "replica-password", "value": secret},
            ]}),
        )
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let updated = server
        .put(
            &format!("{items}/db"),
            json!({"items": [
                {"name": "password", "value": rotated},
                {"name": "replica-password", "value": secret},
            ]}),
        )
        .await;
    assert_eq!(updated.status, 200, "{:?}", updated.body);
    assert_eq!(server.delete(&format!("{items}/db")).await.status, 204);

    let log = export(&server, "action=config.").await;
    assert_eq!(log.lines().count(), 3, "{log}");
    assert!(
        !log.contains(secret) && !log.contains(rotated),
        "a value reached the audit log: {log}"
    );
    let hash = |item: &Value| item["sha256"].as_str().unwrap_or_default().to_owned();
    let update = &records(&server, "action=config.update&outcome=ok").await[0];
    let (before, after) = (&update["before"]["items"], &update["after"]["items"]);
    for entry in before
        .as_array()
        .into_iter()
        .chain(after.as_array())
        .flatten()
    {
        assert!(entry.get("value").is_none(), "{entry}");
        let sha = hash(entry);
        assert!(
            sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()),
            "{entry}"
        );
    }
    assert_eq!(before[0]["name"], "password");
    assert_eq!(hash(&before[0]), hash(&before[1]), "same value, same hash");
    assert_ne!(hash(&before[0]), hash(&after[0]), "the rotation shows");
    assert_eq!(hash(&before[1]), hash(&after[1]), "the unchanged key shows");
}

#[tokio::test]
async fn the_audit_log_pages_by_cursor_and_returns_each_record_once() {
    let server = Server::start().await;
    for i in 0..23 {
        let reply = server
            .put(
                "/api/v1/plugins/hello/config",
                json!({"greeting": format!("Hi {i}")}),
            )
            .await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
    }
    let filter = "action=plugin.configure&target=plugin:hello";
    let (mut seen, mut times, mut cursor) = (Vec::new(), Vec::new(), None::<String>);
    for _ in 0..10 {
        let query = match &cursor {
            Some(c) => format!("pageSize=5&{filter}&cursor={c}"),
            None => format!("pageSize=5&{filter}"),
        };
        let body = page(&server, &query).await;
        let items = body["items"].as_array().cloned().unwrap_or_default();
        assert!(items.len() <= 5, "{body}");
        for item in &items {
            seen.push(item["id"].as_str().unwrap_or_default().to_owned());
            times.push(item["time"].as_str().unwrap_or_default().to_owned());
        }
        match body["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        seen.len(),
        23,
        "every record once across the pages: {seen:?}"
    );
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 23, "no repeats");
    let mut newest_first = times.clone();
    newest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, newest_first, "newest first");
    let exported = export(&server, filter).await;
    assert_eq!(exported.lines().count(), 23);

    server
        .get("/api/v1/audit?cursor=..%2F..%2Fusers")
        .await
        .assert_field(422, "cursor");
    server
        .get("/api/v1/audit?page=2")
        .await
        .assert_field(422, "page");
    let cli = server.cli(&[
        "audit",
        "list",
        "--action",
        "plugin.configure",
        "--limit",
        "0",
    ]);
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    let table = String::from_utf8_lossy(&cli.stdout);
    assert_eq!(
        table.matches("plugin.configure").count(),
        23,
        "the CLI follows the cursors: {table}"
    );
}

#[tokio::test]
async fn handing_out_the_kubeconfig_is_audited_without_the_token() {
    let server = Server::start().await;
    let reply = server.get("/api/v1/clusters/embedded/kubeconfig").await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let kubeconfig = reply.body["kubeconfig"].as_str().expect("kubeconfig");
    let token = kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("token:"))
        .map(|t| t.trim().trim_matches('"').to_owned())
        .expect("the kubeconfig carries a token");
    assert!(token.len() >= 16, "{token}");

    let user = server.create_user("carol", false).await;
    let refused = server
        .request(
            "GET",
            "/api/v1/clusters/embedded/kubeconfig",
            None,
            Some(&user),
        )
        .await;
    refused.assert_problem(403, "forbidden");

    let handed = records(&server, "action=cluster.kubeconfig").await;
    let outcomes: Vec<(&str, &str)> = handed
        .iter()
        .map(|r| {
            (
                r["actor"]["name"].as_str().unwrap_or_default(),
                r["outcome"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        vec![("carol", "denied"), ("admin", "ok")],
        "{handed:?}"
    );
    assert_eq!(handed[1]["target"], "cluster:embedded");
    let log = export(&server, "").await;
    assert!(!log.contains(&token), "the token reached the audit log");
}
