//! What a kubeconfig Wharf did not get from its operator may carry, and where such a
//! kubeconfig may live on the server. A kubeconfig pasted into the API, or named by a
//! request inside `--kubeconfig-dir`, may hold only inline material (`token`,
//! `username`/`password`, `*-data`): kube-rs runs exec plugins and auth providers and reads
//! `tokenFile`, `client-certificate`, `client-key` and `certificate-authority` files while it
//! builds a client, so those would run or read things as the server's user. The check is an
//! allow-list over the parsed document (kube-rs's own types, re-serialized), so it sees
//! exactly what kube-rs would use, and a field kube-rs learns later is refused until it is
//! added here. Only `wharf serve --kubeconfig` (the operator's own file) skips it.

use std::path::{Path, PathBuf};

use kube::config::Kubeconfig;
use serde_json::Value;

/// The most a kubeconfig from a request (pasted or a file in `--kubeconfig-dir`) may weigh.
pub const MAX_BYTES: usize = 256 * 1024;

/// Why a kubeconfig is refused: the field at fault (a path into the request) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// The fields of each level that only carry data; every other field is refused.
const TOP: &[&str] = &[
    "apiVersion",
    "kind",
    "preferences",
    "clusters",
    "users",
    "contexts",
    "current-context",
    "extensions",
];
const PREFERENCES: &[&str] = &["colors", "extensions"];
const CLUSTER: &[&str] = &[
    "server",
    "certificate-authority-data",
    "insecure-skip-tls-verify",
    "tls-server-name",
    "proxy-url",
    "disable-compression",
    "extensions",
];
const USER: &[&str] = &[
    "token",
    "username",
    "password",
    "client-certificate-data",
    "client-key-data",
    "as",
    "as-uid",
    "as-groups",
    "as-user-extra",
    "extensions",
];
const CONTEXT: &[&str] = &["cluster", "user", "namespace", "extensions"];

/// Why a field outside the allow-list is refused, in the words a user can act on.
fn reason(name: &str) -> String {
    match name {
        "exec" => "an exec credential plugin would run a command on the Wharf server; \
                   paste a `token` or `client-certificate-data`/`client-key-data` instead"
            .into(),
        "auth-provider" => "auth providers run commands or read files on the Wharf server; \
                            paste a `token` instead"
            .into(),
        "tokenFile" => "names a file on the Wharf server; paste the token as `token`".into(),
        "client-certificate" | "client-key" | "certificate-authority" => {
            format!("names a file on the Wharf server; paste its content as `{name}-data`")
        }
        _ => "is not accepted here: a kubeconfig sent to Wharf may carry only inline \
              credentials (`token`, `username`/`password`, `*-data`)"
            .into(),
    }
}

/// Refuses any key of `object` not in `allowed`, naming it under `path`.
fn only(object: &Value, allowed: &[&str], path: &str) -> Result<(), Refusal> {
    let Value::Object(map) = object else {
        return Ok(());
    };
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(name) => Err(Refusal {
            field: format!("{path}.{name}"),
            message: reason(name),
        }),
        None => Ok(()),
    }
}

/// Checks `list[i] = {name, <inner>: {...}}` entries against `allowed` for the inner object.
fn named(
    document: &Value,
    list: &str,
    inner: &str,
    allowed: &[&str],
    root: &str,
) -> Result<(), Refusal> {
    let Some(Value::Array(entries)) = document.get(list) else {
        return Ok(());
    };
    for (i, entry) in entries.iter().enumerate() {
        let path = format!("{root}.{list}[{i}]");
        only(entry, &["name", inner], &path)?;
        if let Some(body) = entry.get(inner) {
            only(body, allowed, &format!("{path}.{inner}"))?;
        }
    }
    Ok(())
}

/// Parses a kubeconfig from outside and refuses anything that would make the server run
/// or read something; `root` is the request field it came in (`kubeconfig`,
/// `kubeconfigPath`). Nothing is executed or read: this only parses.
pub fn inline_only(text: &str, root: &str) -> Result<Kubeconfig, Refusal> {
    if text.trim().is_empty() || text.len() > MAX_BYTES {
        return Err(Refusal {
            field: root.into(),
            message: format!("must be 1 byte to {} KiB of YAML", MAX_BYTES / 1024),
        });
    }
    let kubeconfig = Kubeconfig::from_yaml(text).map_err(|e| Refusal {
        field: root.into(),
        message: e.to_string(),
    })?;
    let document = serde_json::to_value(&kubeconfig).map_err(|e| Refusal {
        field: root.into(),
        message: e.to_string(),
    })?;
    only(&document, TOP, root)?;
    if let Some(preferences) = document.get("preferences") {
        only(preferences, PREFERENCES, &format!("{root}.preferences"))?;
    }
    named(&document, "clusters", "cluster", CLUSTER, root)?;
    named(&document, "users", "user", USER, root)?;
    named(&document, "contexts", "context", CONTEXT, root)?;
    Ok(kubeconfig)
}

/// The directory the operator lets requests name kubeconfig files in
/// (`wharf serve --kubeconfig-dir`), canonical so a path can be checked against it.
#[derive(Debug, Clone)]
pub struct KubeconfigDir(PathBuf);

impl KubeconfigDir {
    /// Canonicalizes `dir`; it must exist and be a directory.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        let canonical = std::fs::canonicalize(dir)?;
        if !canonical.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{} is not a directory", dir.display()),
            ));
        }
        Ok(Self(canonical))
    }

    /// Resolves a requested path (absolute, or relative to the directory) to the canonical
    /// file it names, refusing anything that leaves the directory through `..` or a symlink.
    pub async fn resolve(&self, requested: &str) -> Result<PathBuf, String> {
        if requested.is_empty() || requested.contains('\0') {
            return Err("must name a file in the kubeconfig directory".into());
        }
        let joined = self.0.join(requested);
        let canonical = tokio::fs::canonicalize(&joined)
            .await
            .map_err(|e| format!("`{requested}` cannot be opened: {e}"))?;
        if !canonical.starts_with(&self.0) {
            return Err(format!(
                "`{requested}` is outside the kubeconfig directory {} (after resolving `..` and symlinks)",
                self.0.display()
            ));
        }
        let metadata = tokio::fs::metadata(&canonical)
            .await
            .map_err(|e| format!("`{requested}` cannot be opened: {e}"))?;
        if !metadata.is_file() {
            return Err(format!("`{requested}` is not a file"));
        }
        if metadata.len() > MAX_BYTES as u64 {
            return Err(format!(
                "`{requested}` is larger than {} KiB",
                MAX_BYTES / 1024
            ));
        }
        Ok(canonical)
    }

    /// Reads and checks a kubeconfig file of the directory (see [`inline_only`]); returns
    /// it with its canonical path. Refusals name `kubeconfigPath`.
    pub async fn load(&self, requested: &str) -> Result<(Kubeconfig, PathBuf), Refusal> {
        let refuse = |message: String| Refusal {
            field: "kubeconfigPath".into(),
            message,
        };
        let path = self.resolve(requested).await.map_err(refuse)?;
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|e| refuse(format!("`{requested}` cannot be read: {e}")))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| refuse(format!("`{requested}` is not UTF-8 text")))?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let kubeconfig = inline_only(text, "kubeconfigPath").map_err(|r| Refusal {
            message: format!("in {}: {}", path.display(), r.message),
            ..r
        })?;
        Ok((kubeconfig, path))
    }
}

/// Reads the operator's own kubeconfig (`wharf serve --kubeconfig`) on a blocking thread,
/// with kube-rs's rules (relative file references resolved next to it); not checked.
pub async fn read_operator_file(path: &Path) -> Result<Kubeconfig, String> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || Kubeconfig::read_from(&path).map_err(|e| e.to_string()))
        .await
        .map_err(|e| format!("reading the kubeconfig failed: {e}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "apiVersion: v1
kind: Config
clusters:
- name: far
  cluster:
    server: https://127.0.0.1:9
    certificate-authority-data: LS0t
    extensions:
    - name: client.authentication.k8s.io/exec
      extension: {a: b}
users:
- name: robot
  user:
    token: t0ken
- name: basic
  user:
    username: u
    password: p
- name: cert
  user:
    client-certificate-data: LS0t
    client-key-data: LS0t
contexts:
- name: far-ctx
  context:
    cluster: far
    user: robot
    namespace: team
current-context: far-ctx
";

    fn with_user(user: &str) -> String {
        format!(
            "clusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:9\nusers:\n- name: u\n  user:\n{user}\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\n"
        )
    }

    #[test]
    fn inline_material_passes() {
        let parsed = inline_only(GOOD, "kubeconfig").expect("inline kubeconfig");
        assert_eq!(parsed.auth_infos.len(), 3);
    }

    #[test]
    fn anything_that_runs_or_reads_is_refused_by_name() {
        for (user, field) in [
            (
                "    exec:\n      command: sh\n      apiVersion: client.authentication.k8s.io/v1",
                "exec",
            ),
            (
                "    auth-provider:\n      name: gcp\n      config:\n        cmd-path: sh",
                "auth-provider",
            ),
            ("    tokenFile: /etc/hostname", "tokenFile"),
            (
                "    client-certificate: /etc/cert\n    client-key-data: LS0t",
                "client-certificate",
            ),
            (
                "    client-key: /etc/key\n    client-certificate-data: LS0t",
                "client-key",
            ),
            ("    token: t\n    brand-new-field: x", "brand-new-field"),
        ] {
            let refusal = inline_only(&with_user(user), "kubeconfig").unwrap_err();
            assert_eq!(
                refusal.field,
                format!("kubeconfig.users[0].user.{field}"),
                "{user}"
            );
        }
        let ca = "clusters:\n- name: c\n  cluster:\n    server: https://x\n    certificate-authority: /etc/ca\n";
        assert_eq!(
            inline_only(ca, "kubeconfig").unwrap_err().field,
            "kubeconfig.clusters[0].cluster.certificate-authority"
        );
        let top = "clusters: []\nsomething: else\n";
        assert_eq!(
            inline_only(top, "kubeconfigPath").unwrap_err().field,
            "kubeconfigPath.something"
        );
    }

    #[test]
    fn a_second_document_is_checked_too() {
        let text = format!(
            "{GOOD}---\n{}",
            with_user("    tokenFile: /etc/x").replace("name: u", "name: other")
        );
        let refusal = inline_only(&text, "kubeconfig").unwrap_err();
        assert_eq!(refusal.field, "kubeconfig.users[3].user.tokenFile");
    }

    #[test]
    fn empty_and_oversized_documents_are_refused() {
        assert_eq!(
            inline_only("  ", "kubeconfig").unwrap_err().field,
            "kubeconfig"
        );
        let big = "#".repeat(MAX_BYTES + 1);
        assert_eq!(
            inline_only(&big, "kubeconfig").unwrap_err().field,
            "kubeconfig"
        );
    }

    #[tokio::test]
    async fn paths_cannot_leave_the_directory() {
        let base = std::env::temp_dir().join(format!("wharf-kcdir-{}", uuid::Uuid::new_v4()));
        let dir = base.join("configs");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("prod.yaml"), GOOD).unwrap();
        std::fs::write(base.join("outside.yaml"), GOOD).unwrap();
        let allowed = KubeconfigDir::open(&dir).unwrap();
        let inside = allowed.resolve("prod.yaml").await.unwrap();
        assert_eq!(
            inside,
            std::fs::canonicalize(dir.join("prod.yaml")).unwrap()
        );
        assert!(
            allowed
                .resolve(dir.join("prod.yaml").to_str().unwrap())
                .await
                .is_ok()
        );
        assert!(allowed.resolve("../outside.yaml").await.is_err());
        assert!(
            allowed
                .resolve(base.join("outside.yaml").to_str().unwrap())
                .await
                .is_err()
        );
        assert!(allowed.resolve(".").await.is_err());
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(base.join("outside.yaml"), dir.join("link.yaml")).unwrap();
            assert!(allowed.resolve("link.yaml").await.is_err());
        }
        let (parsed, _) = allowed.load("prod.yaml").await.unwrap();
        assert_eq!(parsed.current_context.as_deref(), Some("far-ctx"));
        let _ = std::fs::remove_dir_all(base);
    }
}
