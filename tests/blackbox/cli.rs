//! The admin CLI against a running server: the same lifecycle, from a terminal.

use wharf_tests::{ADMIN_PASSWORD, Server, TempDir, fixture, wharf_bin};

fn stdout(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "wharf failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn login_prints_a_token_that_the_plugin_commands_accept() {
    let server = Server::start().await;
    let output = std::process::Command::new(wharf_bin())
        .args(["login", "--username", "admin", "--server", &server.base])
        .env("WHARF_PASSWORD", ADMIN_PASSWORD)
        .output()
        .expect("wharf login");
    let token = stdout(&output).trim().to_owned();
    assert!(token.starts_with("wharf_"), "{token}");
    let list = std::process::Command::new(wharf_bin())
        .args([
            "plugin",
            "list",
            "--server",
            &server.base,
            "--token",
            &token,
        ])
        .output()
        .expect("wharf plugin list");
    let table = stdout(&list);
    assert!(
        table.contains("hello") && table.contains("http-check") && table.contains("enabled"),
        "{table}"
    );
}

#[tokio::test]
async fn the_cli_runs_the_whole_plugin_lifecycle_with_a_signed_package() {
    let server = Server::start().await;
    let dir = TempDir::new("cli");
    let key = dir.path().join("signing.key");
    let public = stdout(&server.cli(&["plugin", "keygen", key.to_str().unwrap()]))
        .trim()
        .to_owned();
    stdout(&server.cli(&["plugin", "trust", "add", "release-team", &public]));
    assert!(stdout(&server.cli(&["plugin", "trust", "list"])).contains("release-team"));

    let package = fixture("noop");
    let manifest = dir.path().join("wharf-plugin.toml");
    let component = dir.path().join("noop.wasm");
    std::fs::write(&manifest, &package.manifest).unwrap();
    std::fs::write(&component, &package.component).unwrap();
    let (m, c, k) = (
        manifest.to_str().unwrap(),
        component.to_str().unwrap(),
        key.to_str().unwrap(),
    );

    let installed = stdout(&server.cli(&[
        "plugin",
        "install",
        "--manifest",
        m,
        "--component",
        c,
        "--sign-with",
        k,
        "--key-id",
        "release-team",
    ]));
    assert!(installed.contains("installed"), "{installed}");
    let id = package.id();
    assert!(stdout(&server.cli(&["plugin", "enable", &id])).contains("enabled"));
    let output = stdout(&server.cli(&["plugin", "invoke", &id, "meta.info"]));
    assert!(output.contains(&id), "{output}");
    assert!(stdout(&server.cli(&["plugin", "show", &id])).contains("noop"));
    let shown = stdout(&server.cli(&["plugin", "show", &id, "--json"]));
    assert!(shown.contains("\"signedBy\": \"release-team\""), "{shown}");
    assert!(stdout(&server.cli(&["plugin", "disable", &id])).contains("disabled"));
    stdout(&server.cli(&["plugin", "uninstall", &id]));
    assert!(!stdout(&server.cli(&["plugin", "list"])).contains(&id));

    let signature = stdout(&server.cli(&[
        "plugin",
        "sign",
        "--key",
        k,
        "--manifest",
        m,
        "--component",
        c,
    ]));
    assert_eq!(signature.trim().len(), 88, "base64 of 64 bytes");
}

#[tokio::test]
async fn the_cli_upgrades_rolls_back_and_reads_logs() {
    let server = Server::start().await;
    stdout(&server.cli(&["plugin", "trust", "allow-unsigned", "true"]));
    let dir = TempDir::new("cli-upgrade");
    let v2 = fixture("hello-v2");
    let manifest = dir.path().join("wharf-plugin.toml");
    let component = dir.path().join("hello.wasm");
    std::fs::write(&manifest, &v2.manifest).unwrap();
    std::fs::write(&component, &v2.component).unwrap();
    let upgraded = stdout(&server.cli(&[
        "plugin",
        "upgrade",
        "hello",
        "--manifest",
        manifest.to_str().unwrap(),
        "--component",
        component.to_str().unwrap(),
    ]));
    assert!(upgraded.contains("0.2.0"), "{upgraded}");
    stdout(&server.cli(&[
        "plugin",
        "invoke",
        "hello",
        "step.run",
        "--input",
        r#"{"params":{"name":"Cli"}}"#,
    ]));
    let logs = stdout(&server.cli(&["plugin", "logs", "hello"]));
    assert!(logs.contains("Cli"), "{logs}");
    let rolled = stdout(&server.cli(&["plugin", "rollback", "hello", "--json"]));
    assert!(rolled.contains("\"activeVersion\": \"0.1.0\""), "{rolled}");

    let failed = server.cli(&["plugin", "enable", "no-such-plugin"]);
    assert!(!failed.status.success());
    assert!(String::from_utf8_lossy(&failed.stderr).contains("not installed"));
}

#[tokio::test]
async fn the_cli_adds_outbound_hosts_when_enabling() {
    let server = Server::start().await;
    let enabled = stdout(&server.cli(&[
        "plugin",
        "enable",
        "http-check",
        "--allow-http",
        "https://api.example.com:443",
        "--json",
    ]));
    assert!(enabled.contains("https://api.example.com:443"), "{enabled}");
    let refused = server.cli(&[
        "plugin",
        "enable",
        "http-check",
        "--allow-http",
        "ftp://nope",
    ]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("grants.http.allow[0]"));
}

#[tokio::test]
async fn the_cli_manages_users_tokens_and_sessions() {
    let server = Server::start().await;
    let created = stdout(&server.cli(&[
        "user",
        "create",
        "dora",
        "--password",
        "dora-password",
        "--email",
        "dora@example.com",
    ]));
    assert!(
        created.contains("dora") && created.contains("active"),
        "{created}"
    );
    assert!(stdout(&server.cli(&["user", "list", "--search", "dor"])).contains("dora@example.com"));
    assert!(
        stdout(&server.cli(&["user", "update", "dora", "--display-name", "Dora D."]))
            .contains("Dora D.")
    );
    assert!(stdout(&server.cli(&["user", "disable", "dora"])).contains("disabled"));
    assert!(
        stdout(&server.cli(&["user", "enable", "dora", "--json"]))
            .contains("\"status\": \"active\"")
    );
    stdout(&server.cli(&[
        "user",
        "reset-password",
        "dora",
        "--password",
        "dora-password-2",
    ]));
    let dora = server.login("dora", "dora-password-2").await;

    let secret = stdout(&server.cli(&[
        "token",
        "create",
        "deploy-bot",
        "--days",
        "7",
        "--scope",
        "plugin.read",
    ]))
    .trim()
    .to_owned();
    assert!(secret.starts_with("wharf_"), "{secret}");
    let listed = stdout(&server.cli(&["token", "list"]));
    assert!(
        listed.contains("deploy-bot")
            && listed.contains("plugin.read")
            && !listed.contains(&secret),
        "{listed}"
    );

    let logout = std::process::Command::new(wharf_bin())
        .args(["logout", "--server", &server.base, "--token", &dora])
        .output()
        .expect("wharf logout");
    stdout(&logout);
    assert_eq!(
        server
            .request("GET", "/api/v1/auth/me", None, Some(&dora))
            .await
            .status,
        401
    );

    stdout(&server.cli(&["user", "delete", "dora"]));
    assert!(!stdout(&server.cli(&["user", "list"])).contains("dora"));
    let refused = server.cli(&["user", "disable", "admin"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("last active admin"));
}

#[tokio::test]
async fn the_cli_manages_projects_members_groups_and_bindings() {
    let server = Server::start().await;
    server.create_user("pia", false).await;
    stdout(&server.cli(&["project", "create", "shop", "--name", "Shop"]));
    assert!(stdout(&server.cli(&["project", "list"])).contains("shop"));
    let members = stdout(&server.cli(&[
        "project",
        "add-member",
        "shop",
        "--user",
        "pia",
        "--role",
        "developer",
    ]));
    assert!(
        members.contains("pia") && members.contains("developer"),
        "{members}"
    );
    assert!(
        stdout(&server.cli(&["project", "set-role", "shop", "pia", "maintainer"]))
            .contains("maintainer")
    );
    assert!(stdout(&server.cli(&["project", "show", "shop"])).contains("\"canManage\": true"));

    stdout(&server.cli(&["group", "create", "ops"]));
    stdout(&server.cli(&["group", "add", "ops", "pia"]));
    let bound = stdout(&server.cli(&["authz", "bind", "group:ops", "viewer", "system"]));
    assert!(bound.contains("viewer"), "{bound}");
    assert!(stdout(&server.cli(&["authz", "bindings", "--scope", "system"])).contains("viewer"));
    assert!(
        stdout(&server.cli(&["authz", "what-can", "user:pia", "project:shop/app:cart"]))
            .contains("app.")
    );
    assert_eq!(
        stdout(&server.cli(&["authz", "check", "plugin.enable", "plugin:hello"])).trim(),
        "allowed"
    );
    assert!(stdout(&server.cli(&["authz", "roles"])).contains("project-owner"));
    assert!(stdout(&server.cli(&["authz", "active"])).contains("authz-rbac"));

    stdout(&server.cli(&["project", "remove-member", "shop", "pia"]));
    assert!(!stdout(&server.cli(&["project", "members", "shop"])).contains("pia"));
    stdout(&server.cli(&["project", "delete", "shop"]));
    stdout(&server.cli(&["group", "remove", "ops", "pia"]));
    stdout(&server.cli(&["group", "delete", "ops"]));
}
