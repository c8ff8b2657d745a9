//! Test support for Wharf's black-box tests: start a real server in a temporary data
//! directory, log in, send requests, restart it (gracefully or with `kill -9`), and load
//! the plugin fixtures the host build compiled.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

pub use wharf_host::artifacts::{BUNDLED, FIXTURES};

pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

/// The `wharf` binary built for these tests: cargo builds this package's
/// `wharf-under-test` bin next to the test executable's `deps/` directory.
pub fn wharf_bin() -> PathBuf {
    if let Ok(path) = std::env::var("WHARF_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("current test executable");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    profile_dir.join(format!("wharf-under-test{}", std::env::consts::EXE_SUFFIX))
}

/// kubectl for tests that look at the embedded cluster from outside: `$WHARF_TEST_KUBECTL`
/// (`.ci/run` points it at Debian's kubernetes-client 1.20), else `kubectl` on PATH.
pub fn kubectl_binary() -> PathBuf {
    std::env::var_os("WHARF_TEST_KUBECTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("kubectl"))
}

/// kubectl (and a kube-rs client) pointed at a server's embedded cluster with the
/// kubeconfig Wharf hands out, with a discovery cache of its own.
pub struct Kubectl {
    pub kubeconfig: PathBuf,
    cache: TempDir,
    _dir: TempDir,
}

impl Kubectl {
    pub async fn for_server(server: &Server) -> Self {
        let reply = server.get("/api/v1/clusters/embedded/kubeconfig").await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        let dir = TempDir::new("kubeconfig");
        let kubeconfig = dir.path().join("config");
        std::fs::write(&kubeconfig, reply.body["kubeconfig"].as_str().unwrap()).unwrap();
        Self {
            kubeconfig,
            cache: TempDir::new("kube-cache"),
            _dir: dir,
        }
    }

    /// Runs kubectl; (succeeded, stdout, stderr).
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        let mut command = Command::new(kubectl_binary());
        command
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.cache.path())
            .args(["--request-timeout", "20s"])
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("running {:?} failed ({e}); install Debian's kubernetes-client or set WHARF_TEST_KUBECTL", kubectl_binary()));
        if let Some(input) = stdin {
            use std::io::Write as _;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        } else {
            drop(child.stdin.take());
        }
        let output = child.wait_with_output().unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// Wharf's own kube-rs client, configured from the same kubeconfig.
    pub async fn kube_client(&self) -> kube::Client {
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.kubeconfig).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .unwrap();
        kube::Client::try_from(config).unwrap()
    }

    /// Runs kubectl and fails the test unless it succeeds; stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args, None);
        assert!(ok, "kubectl {args:?} failed: {err}\n{out}");
        out
    }
}

/// A directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("wharf-test-{label}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&path).expect("creating a temp dir");
        Self(path)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Compiled plugins are cached by digest and engine, so every test server shares one cache.
fn shared_cache_dir() -> PathBuf {
    let dir = std::env::temp_dir().join("wharf-test-cwasm-cache");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// A running `wharf serve`.
pub struct Server {
    child: Option<Child>,
    pub base: String,
    /// The embedded cluster's gateway (`http://127.0.0.1:port`), when one was started.
    pub gateway: Option<String>,
    pub data: TempDir,
    pub token: String,
    extra_args: Vec<String>,
    http: reqwest::Client,
}

/// A response: status and JSON body (Null when empty or not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub content_type: String,
    pub headers: reqwest::header::HeaderMap,
}

impl Reply {
    /// Asserts a problem response with this status and `code`.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.body["code"].as_str()),
            (status, Some(code)),
            "{:?}",
            self.body
        );
        assert_eq!(self.content_type, "application/problem+json");
    }

    /// Asserts a problem response with this status naming `field`.
    #[track_caller]
    pub fn assert_field(&self, status: u16, field: &str) {
        assert_eq!(
            (self.status, self.body["field"].as_str()),
            (status, Some(field)),
            "{:?}",
            self.body
        );
        assert_eq!(self.content_type, "application/problem+json");
    }
}

impl Server {
    /// Starts a server with a fresh data directory and logs in as admin.
    pub async fn start() -> Server {
        Self::start_with(&[]).await
    }

    /// Starts a server with extra `wharf serve` flags.
    pub async fn start_with(extra: &[&str]) -> Server {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let data = TempDir::new("data");
        let mut server = Server {
            child: None,
            base: String::new(),
            gateway: None,
            data,
            token: String::new(),
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("http client"),
        };
        server.boot().await;
        server
    }

    async fn boot(&mut self) {
        let mut command = Command::new(wharf_bin());
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(self.data.path());
        if !self.extra_args.iter().any(|a| a == "--cache-dir") {
            command.arg("--cache-dir").arg(shared_cache_dir());
        }
        // Tests run many servers at once and want rollouts to finish on the next tick.
        if !self.extra_args.iter().any(|a| a == "--kube-listen") {
            command.args(["--kube-listen", "127.0.0.1:0"]);
        }
        if !self.extra_args.iter().any(|a| a == "--kube-gateway-listen") {
            command.args(["--kube-gateway-listen", "127.0.0.1:0"]);
        }
        if !self.extra_args.iter().any(|a| a == "--kube-time-scale") {
            command.args(["--kube-time-scale", "0"]);
        }
        let mut child = command
            .args(&self.extra_args)
            .env("WHARF_LOG", "warn")
            .env("WHARF_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting wharf serve");
        let stdout = child.stdout.take().expect("stdout");
        // The gateway's line, when there is one, comes before the API's.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut gateway = None;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("embedded cluster gateway listening on ") {
                    gateway = Some(addr.trim().to_owned());
                }
                if let Some(addr) = line.strip_prefix("wharf listening on ") {
                    let _ = tx.send((addr.trim().to_owned(), gateway.clone()));
                }
            }
        });
        let (base, gateway) = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("wharf printed where it listens");
        self.child = Some(child);
        self.base = base;
        self.gateway = gateway;
        for _ in 0..600 {
            if let Ok(r) = self.http.get(format!("{}/readyz", self.base)).send().await
                && r.status().as_u16() == 200
            {
                self.token = self.login("admin", ADMIN_PASSWORD).await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("wharf did not become ready");
    }

    /// `kill -9`, then start again on the same data directory.
    pub async fn kill_and_restart(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill -9");
            let _ = child.wait();
        }
        self.boot().await;
    }

    pub async fn login(&self, username: &str, password: &str) -> String {
        let reply = self
            .request(
                "POST",
                "/api/v1/auth/login",
                Some(json!({"username": username, "password": password})),
                None,
            )
            .await;
        assert_eq!(reply.status, 200, "login failed: {:?}", reply.body);
        reply.body["token"].as_str().expect("token").to_owned()
    }

    /// Sends a request with an explicit token (None: no Authorization header).
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request sent");
        Self::reply(resp).await
    }

    /// Sends a request from another loopback source address (e.g. `127.0.0.2`), as a
    /// different machine would: a client of its own bound to `source`.
    pub async fn request_from(
        &self,
        source: std::net::IpAddr,
        method: &str,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> Reply {
        let client = reqwest::Client::builder()
            .local_address(source)
            .timeout(Duration::from_secs(60))
            .build()
            .expect("http client bound to a source address");
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request sent");
        Self::reply(resp).await
    }

    pub async fn raw(&self, method: &str, path: &str, body: Vec<u8>, content_type: &str) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let resp = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request sent");
        Self::reply(resp).await
    }

    async fn reply(resp: reqwest::Response) -> Reply {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let text = resp.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(if text.is_empty() {
            Value::Null
        } else {
            Value::String(text)
        });
        Reply {
            status,
            body,
            content_type,
            headers,
        }
    }

    /// As the admin.
    pub async fn get(&self, path: &str) -> Reply {
        self.request("GET", path, None, Some(&self.token)).await
    }
    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.request("POST", path, Some(body), Some(&self.token))
            .await
    }
    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.request("PUT", path, Some(body), Some(&self.token))
            .await
    }
    pub async fn delete(&self, path: &str) -> Reply {
        self.request("DELETE", path, None, Some(&self.token)).await
    }

    /// Creates a user (password `<username>-password`) and returns a session token for it.
    pub async fn create_user(&self, username: &str, is_admin: bool) -> String {
        let password = format!("{username}-password");
        let reply = self
            .post(
                "/api/v1/users",
                json!({"username": username, "password": password, "isAdmin": is_admin}),
            )
            .await;
        assert_eq!(reply.status, 201, "creating {username}: {:?}", reply.body);
        self.login(username, &password).await
    }

    /// Lets the server accept unsigned packages.
    pub async fn allow_unsigned(&self) {
        let reply = self
            .put(
                "/api/v1/plugin-trust/settings",
                json!({"allowUnsigned": true}),
            )
            .await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
    }

    /// Installs a fixture unsigned (call `allow_unsigned` first) and returns the reply.
    pub async fn install(&self, package: &Package) -> Reply {
        self.post("/api/v1/plugins", package.body()).await
    }

    /// Installs and enables a fixture with the grants it requests.
    pub async fn install_enabled(&self, package: &Package) -> String {
        let reply = self.install(package).await;
        assert_eq!(
            reply.status,
            201,
            "install {}: {:?}",
            package.id(),
            reply.body
        );
        let id = package.id();
        let reply = self
            .post(&format!("/api/v1/plugins/{id}/enable"), json!({}))
            .await;
        assert_eq!(reply.status, 200, "enable {id}: {:?}", reply.body);
        id
    }

    pub async fn invoke(&self, id: &str, function: &str, input: Value) -> Reply {
        self.post(
            &format!("/api/v1/plugins/{id}/invoke"),
            json!({"function": function, "input": input}),
        )
        .await
    }

    /// Runs the CLI against this server, killed after five minutes (coreutils' `timeout`)
    /// so a CLI that never returns fails its test instead of hanging the suite.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new("timeout")
            .args(["--kill-after=10", "300"])
            .arg(wharf_bin())
            .args(args)
            .env("WHARF_SERVER", &self.base)
            .env("WHARF_TOKEN", &self.token)
            .output()
            .expect("running the wharf CLI")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A plugin package: manifest text and component bytes.
#[derive(Clone)]
pub struct Package {
    pub manifest: String,
    pub component: Vec<u8>,
}

impl Package {
    pub fn id(&self) -> String {
        self.manifest
            .lines()
            .find_map(|l| l.trim().strip_prefix("id").map(|r| r.trim_start()))
            .and_then(|r| r.strip_prefix('='))
            .map(|v| v.trim().trim_matches('"').to_owned())
            .expect("manifest id")
    }

    /// The JSON upload body.
    pub fn body(&self) -> Value {
        json!({"manifest": self.manifest, "component": B64.encode(&self.component)})
    }

    /// The same package with one manifest line replaced (`key = ...`).
    pub fn with_manifest_line(&self, key: &str, line: &str) -> Package {
        let manifest = self
            .manifest
            .lines()
            .map(|l| {
                if l.trim_start().starts_with(&format!("{key} "))
                    || l.trim_start().starts_with(&format!("{key}="))
                {
                    line.to_owned()
                } else {
                    l.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        Package {
            manifest,
            component: self.component.clone(),
        }
    }
}

/// A test fixture from plugins/fixtures/<name>.
pub fn fixture(name: &str) -> Package {
    let f = FIXTURES
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no fixture named {name}"));
    Package {
        manifest: std::fs::read_to_string(f.manifest_path).expect("fixture manifest"),
        component: std::fs::read(f.component_path).expect("fixture component"),
    }
}

/// A bundled plugin from plugins/<name>.
pub fn bundled(name: &str) -> Package {
    let b = BUNDLED
        .iter()
        .find(|b| b.name == name)
        .unwrap_or_else(|| panic!("no bundled plugin named {name}"));
    Package {
        manifest: b.manifest.to_owned(),
        component: b.component.to_vec(),
    }
}

/// Polls `check` (bounded) until it returns true.
pub async fn eventually<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}
