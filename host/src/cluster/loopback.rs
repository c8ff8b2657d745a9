//! The embedded cluster's door for kubectl: the simulator's router served over HTTPS on
//! a loopback address, behind a bearer token. kubectl sends credentials only over TLS,
//! so the endpoint generates its own CA and server certificate (kept in the data
//! directory with the token, so a kubeconfig stays valid across restarts) and
//! [`LoopbackEndpoint::kubeconfig`] hands out both.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use sha2::{Digest, Sha256};

/// Where kubectl reaches the embedded cluster, and with what.
#[derive(Clone)]
pub struct LoopbackEndpoint {
    inner: Arc<Credentials>,
    address: SocketAddr,
}

struct Credentials {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
    token: String,
}

impl LoopbackEndpoint {
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn server_url(&self) -> String {
        format!("https://{}", self.address)
    }

    /// The PEM of the CA that signed the server certificate.
    pub fn ca_pem(&self) -> &str {
        &self.inner.ca_pem
    }

    /// A kubeconfig with the CA, the server and the token, context `wharf-embedded`.
    pub fn kubeconfig(&self) -> String {
        let ca = base64::engine::general_purpose::STANDARD.encode(self.inner.ca_pem.as_bytes());
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: wharf-embedded\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: wharf-admin\n  user:\n    token: {token}\ncontexts:\n- name: wharf-embedded\n  context:\n    cluster: wharf-embedded\n    user: wharf-admin\n    namespace: default\ncurrent-context: wharf-embedded\n",
            server = self.server_url(),
            token = self.inner.token,
        )
    }
}

/// Binds `address`, then serves `router` there over TLS until the process ends.
pub async fn serve(
    router: Router,
    address: SocketAddr,
    dir: &Path,
) -> anyhow::Result<LoopbackEndpoint> {
    let credentials = Arc::new(load_or_create(dir)?);
    let tls = axum_server::tls_rustls::RustlsConfig::from_pem(
        credentials.cert_pem.clone().into_bytes(),
        credentials.key_pem.clone().into_bytes(),
    )
    .await
    .context("loading the embedded cluster's TLS certificate")?;
    let listener = std::net::TcpListener::bind(address)
        .with_context(|| format!("listening for kubectl on {address}"))?;
    listener.set_nonblocking(true)?;
    let address = listener.local_addr()?;
    let guarded = router.layer(middleware::from_fn_with_state(
        credentials.clone(),
        require_token,
    ));
    let server = axum_server::tls_rustls::from_tcp_rustls(listener, tls)?;
    tokio::spawn(async move {
        if let Err(error) = server.serve(guarded.into_make_service()).await {
            tracing::error!(%error, "the embedded cluster's HTTPS endpoint stopped");
        }
    });
    Ok(LoopbackEndpoint {
        inner: credentials,
        address,
    })
}

async fn require_token(
    State(credentials): State<Arc<Credentials>>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Compare digests so the time taken says nothing about the token.
    if Sha256::digest(presented.as_bytes()) == Sha256::digest(credentials.token.as_bytes()) {
        next.run(request).await
    } else {
        super::sim::unauthorized().into_response()
    }
}

fn load_or_create(dir: &Path) -> anyhow::Result<Credentials> {
    let files = ["ca.pem", "server.pem", "server-key.pem", "token"].map(|name| dir.join(name));
    if files.iter().all(|f| f.exists()) {
        let read = |i: usize| {
            std::fs::read_to_string(&files[i])
                .with_context(|| format!("reading {}", files[i].display()))
        };
        return Ok(Credentials {
            ca_pem: read(0)?,
            cert_pem: read(1)?,
            key_pem: read(2)?,
            token: read(3)?.trim().to_owned(),
        });
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let credentials = generate()?;
    for (file, content) in files.iter().zip([
        &credentials.ca_pem,
        &credentials.cert_pem,
        &credentials.key_pem,
        &credentials.token,
    ]) {
        write_private(file, content)?;
    }
    Ok(credentials)
}

fn write_private(path: &Path, content: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(content.as_bytes())?;
    Ok(())
}

fn generate() -> anyhow::Result<Credentials> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Wharf embedded cluster CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ])?;
    params
        .distinguished_name
        .push(DnType::CommonName, "wharf-embedded-apiserver");
    let server_cert = params.signed_by(&server_key, &issuer)?;
    let token = {
        use rand::RngCore as _;
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        hex::encode(bytes)
    };
    Ok(Credentials {
        ca_pem: ca_cert.pem(),
        cert_pem: server_cert.pem(),
        key_pem: server_key.serialize_pem(),
        token,
    })
}
