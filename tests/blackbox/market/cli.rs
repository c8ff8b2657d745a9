//! The README's "done" story from a terminal: add a store (its key from an environment
//! variable, never an argument), browse it, install a two-component app with one call of
//! the seed 000 route, see both running, upgrade it (the dry run first), uninstall it.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use wharf_tests::{Server, wharf_bin};

use super::fake_store::FakeStore;
use super::ram::{self, MYSQL_KEY, WEB_KEY};
use super::*;
use crate::rollouts::cli_ok;

/// Runs the CLI with extra environment variables and, optionally, stdin.
fn cli_with(server: &Server, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut command = Command::new(wharf_bin());
    command
        .args(args)
        .env("WHARF_SERVER", &server.base)
        .env("WHARF_TOKEN", &server.token)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("running the wharf CLI");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("writing stdin");
    }
    drop(input);
    child.wait_with_output().expect("the CLI's output")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn json_of(server: &Server, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.push("--json");
    let out = cli_ok(server, &args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {out}"))
}

#[tokio::test]
async fn a_user_adds_a_store_browses_it_installs_with_the_seed_route_upgrades_and_uninstalls_from_the_cli()
 {
    let server = Server::start().await;
    let store = FakeStore::start(ACCESS_KEY, DOMAIN);
    store.publish(&ram::shop("1.0", "1.0"));
    store.publish(&ram::shop("2.0", "2.0"));
    cli_ok(&server, &["project", "create", "shop", "--name", "Shop"]);
    cli_ok(
        &server,
        &[
            "env",
            "create",
            "dev",
            "--project",
            "shop",
            "--name",
            "Development",
            "--type",
            "DEVELOP",
        ],
    );
    cli_ok(
        &server,
        &[
            "env",
            "bind",
            "dev",
            "--project",
            "shop",
            "--namespace",
            NAMESPACE,
            "--create-namespace",
        ],
    );
    cli_ok(&server, &["app", "group", "create", "shop", "mall"]);

    // The key never appears on the command line.
    let added = cli_with(
        &server,
        &[
            "market",
            "add",
            "hub",
            "--url",
            &store.url,
            "--domain",
            DOMAIN,
            "--access-key-env",
            "SHOP_STORE_KEY",
        ],
        &[("SHOP_STORE_KEY", ACCESS_KEY)],
        None,
    );
    assert!(added.status.success(), "{added:?}");
    assert!(stdout(&added).contains("market-rainstore"), "{added:?}");
    let unset = cli_with(
        &server,
        &[
            "market",
            "add",
            "x",
            "--url",
            &store.url,
            "--access-key-env",
            "NOT_SET_ANYWHERE",
        ],
        &[],
        None,
    );
    assert!(!unset.status.success());
    assert!(
        String::from_utf8_lossy(&unset.stderr).contains("NOT_SET_ANYWHERE"),
        "{unset:?}"
    );
    let piped = cli_with(
        &server,
        &[
            "market",
            "add",
            "piped",
            "--url",
            &store.url,
            "--domain",
            DOMAIN,
            "--access-key-stdin",
        ],
        &[],
        Some(&format!("{ACCESS_KEY}\n")),
    );
    assert!(piped.status.success(), "{piped:?}");
    let list = cli_ok(&server, &["market", "list"]);
    assert!(
        list.contains("hub") && list.contains("piped") && list.contains("rainstore"),
        "{list}"
    );
    assert!(!list.contains(ACCESS_KEY), "{list}");

    // Browse.
    let apps = cli_ok(&server, &["market", "apps", "hub", "--query", "shop"]);
    assert!(
        apps.contains("shop-suite") && apps.contains("2.0, 1.0"),
        "{apps}"
    );
    let versions = cli_ok(&server, &["market", "versions", "hub", "shop-suite"]);
    assert!(
        versions.find("2.0") < versions.find("1.0"),
        "newest first: {versions}"
    );
    let show = cli_ok(&server, &["market", "show", "hub", "shop-suite", "1.0"]);
    for expected in [
        MYSQL_KEY,
        WEB_KEY,
        "hub.store.test/market/mysql:8.0",
        "3306/mysql (inner)",
        "8080/http (inner, outer)",
        "500m",
        "1024 MB",
    ] {
        assert!(show.contains(expected), "{expected} missing from:\n{show}");
    }
    let web_row = show
        .lines()
        .find(|l| l.contains(WEB_KEY) && l.contains("web:1.0"))
        .expect("web row");
    assert!(
        web_row.contains(&format!("{MYSQL_KEY} (MySQL)")),
        "depends on: {web_row}"
    );

    // One call of the seed route installs and deploys both.
    let group = server.get("/api/v1/projects/shop/app-groups").await.body["items"][0]["id"]
        .as_str()
        .expect("group id")
        .to_owned();
    let reply = server
        .post(
            &seed_path(&group, true),
            seed_body(&store, "shop-suite", "1.0"),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let installs = json_of(&server, &["market", "installs", "--project", "shop"]);
    let id = installs["items"][0]["id"]
        .as_str()
        .expect("install id")
        .to_owned();
    until_install(&server, &id, all_running).await;
    let table = cli_ok(&server, &["market", "installs", "--project", "shop"]);
    assert!(table.contains(&id) && table.contains("2/2"), "{table}");
    let deployments = cli_ok(&server, &["deployment", "list", "shop", "dev"]);
    let install = get_install(&server, &id).await;
    for (key, pods) in [(MYSQL_KEY, "1/1"), (WEB_KEY, "2/2")] {
        let app = component(&install, key)["app"].as_str().expect("app");
        let row = deployments
            .lines()
            .find(|l| l.contains(app))
            .unwrap_or_else(|| panic!("{app} in {deployments}"));
        assert!(row.contains(pods), "{row}");
    }

    // Upgrade: the dry run names the changed component, then the upgrade is followed
    // (stdout is a pipe here: a line per state change instead of bars).
    let dry = cli_ok(
        &server,
        &[
            "market",
            "upgrade",
            &id,
            "--project",
            "shop",
            "--to",
            "2.0",
            "--dry-run",
        ],
    );
    assert!(
        dry.contains("changed") && dry.contains(WEB_KEY) && dry.contains("web:2.0"),
        "{dry}"
    );
    assert!(dry.contains("0 added, 1 changed, 0 removed"), "{dry}");
    assert_eq!(
        get_install(&server, &id).await["version"],
        "1.0",
        "the dry run changed nothing"
    );
    let upgraded = cli_ok(
        &server,
        &["market", "upgrade", &id, "--project", "shop", "--to", "2.0"],
    );
    assert!(upgraded.contains("all 2 components running"), "{upgraded}");
    let web_app = component(&install, WEB_KEY)["app"]
        .as_str()
        .expect("app")
        .to_owned();
    until_pods(&server, &web_app, 2, "hub.store.test/market/web:2.0").await;

    // Errors: exit 1 with the problem's detail and code.
    let missing = server.cli(&[
        "market",
        "install",
        "hub",
        "no-such-app",
        "1.0",
        "--project",
        "shop",
        "--env",
        "dev",
        "--group",
        "mall",
    ]);
    assert_eq!(missing.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("no-such-app") && stderr.contains("HTTP 404"),
        "{stderr}"
    );

    let gone = cli_ok(&server, &["market", "uninstall", &id, "--project", "shop"]);
    assert!(gone.contains("uninstalled"), "{gone}");
    assert!(group_apps(&server, &group).await.is_empty());
    let after = cli_ok(&server, &["market", "installs", "--project", "shop"]);
    assert!(!after.contains(&id), "{after}");
}

#[tokio::test]
async fn the_cli_installs_with_deploy_and_follows_each_component_until_it_runs() {
    let server = Server::start().await;
    let store = FakeStore::start(ACCESS_KEY, DOMAIN);
    store.publish(&ram::shop("1.0", "1.0"));
    shop_with_group(&server).await;
    let added = cli_with(
        &server,
        &[
            "market",
            "add",
            "hub",
            "--url",
            &store.url,
            "--domain",
            DOMAIN,
            "--access-key-stdin",
        ],
        &[],
        Some(ACCESS_KEY),
    );
    assert!(added.status.success(), "{added:?}");
    let out = cli_ok(
        &server,
        &[
            "market",
            "install",
            "hub",
            "shop-suite",
            "1.0",
            "--project",
            "shop",
            "--env",
            "dev",
            "--group",
            "mall",
            "--deploy",
        ],
    );
    assert!(out.contains("all 2 components running"), "{out}");
    let installs = server.get(INSTALLS).await;
    let install = &installs.body["items"][0];
    for key in [MYSQL_KEY, WEB_KEY] {
        let app = component(install, key)["app"].as_str().expect("app");
        assert!(out.contains(&format!("{app}: Running")), "{app} ran: {out}");
    }
}
