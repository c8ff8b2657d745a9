//! Clusters as resources (seed 001 §5.4): regions → resource pools → clusters, stored at
//! `v1/regions/<id>`, `v1/resource-pools/<id>` and `v1/clusters/<id>`. A cluster is the
//! embedded simulator (registered at start), a kubeconfig (a file on the server, or pasted
//! content kept encrypted) or the service account Wharf runs under. Credentials are sealed
//! with ChaCha20-Poly1305 under a key file in the data directory and never leave this
//! module in clear except to build a client. Every client is a [`ClusterClient`].
//!
//! A kubeconfig from a request (pasted, or a file it names in `--kubeconfig-dir`) passes
//! [`kubeconfig::inline_only`] whenever it is loaded: at create, at update and at every
//! client rebuild, so a record stored before that rule is refused too. Only the operator's
//! `serve --kubeconfig` file is read as kube-rs reads it (exec plugins included).
//!
//! Ids are unique and parents exist because every write is one conditional [`Batch`]; a
//! region or pool is deleted only while it has no children, which a per-parent counter
//! (bumped by each child attached) makes safe against a child attached meanwhile.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::cluster::Simulator;
use kube::config::Kubeconfig;

use crate::cluster::client::{ClusterClient, ClusterError};
use crate::cluster::kubeconfig::{self, KubeconfigDir, Refusal};
use crate::store::{Batch, Store, StoreError};

/// The id of the cluster Wharf registers for its embedded simulator.
pub const EMBEDDED: &str = "embedded";
/// The region and pool the embedded cluster is placed in when first registered.
pub const LOCAL: &str = "local";
/// The id of the cluster registered from `wharf serve --kubeconfig`.
pub const DEFAULT: &str = "default";

/// A region (seed 001 `areaCode`/`areaName`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Region {
    /// 2–30 characters, a lowercase letter first, then `[a-z0-9-]`; never changes.
    pub id: String,
    pub name: String,
    pub description: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub updated_at: OffsetDateTime,
    pub created_by: String,
}

/// A resource pool of a region (seed 001 `resPoolCode`/`resPoolName`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourcePool {
    pub id: String,
    pub name: String,
    pub region: String,
    pub description: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub updated_at: OffsetDateTime,
    pub created_by: String,
}

/// How Wharf reaches a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ClusterKind {
    /// The in-process simulator (registered by Wharf itself).
    Embedded,
    /// A kubeconfig: a file on the server or pasted content.
    Kubeconfig,
    /// The service account of the pod Wharf runs in.
    InCluster,
}

/// A cluster as the API shows it: never its credentials.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    /// 3–30 characters, a lowercase letter first, then `[a-z0-9-]`; never changes.
    pub id: String,
    pub name: String,
    pub description: String,
    pub kind: ClusterKind,
    pub resource_pool: Option<String>,
    /// The region of the resource pool.
    pub region: Option<String>,
    /// For a kubeconfig kept on the server.
    pub kubeconfig_path: Option<String>,
    /// The kubeconfig context used (its current context when unset).
    pub context: Option<String>,
    /// The API server URL the kubeconfig points at (not secret).
    pub server: Option<String>,
    /// Whether encrypted credentials (pasted kubeconfig) are stored; they are never returned.
    pub has_credentials: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub updated_at: OffsetDateTime,
    pub created_by: String,
}

/// The stored form: the public record plus the sealed kubeconfig.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredCluster {
    #[serde(flatten)]
    cluster: Cluster,
    /// base64 of nonce ‖ ciphertext, bound to the cluster id.
    sealed_kubeconfig: Option<String>,
}

/// What a new cluster is made of.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewCluster {
    pub id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    /// `kubeconfig` or `in-cluster` (`embedded` is registered by Wharf itself).
    pub kind: ClusterKind,
    pub resource_pool: Option<String>,
    /// Pasted kubeconfig YAML (stored encrypted).
    pub kubeconfig: Option<String>,
    /// A kubeconfig file on the server.
    pub kubeconfig_path: Option<String>,
    pub context: Option<String>,
}

/// Changes to a cluster; absent fields stay. An empty `resourcePool` takes it out of its pool.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub resource_pool: Option<String>,
    /// Replaces the pasted kubeconfig (kubeconfig clusters only).
    pub kubeconfig: Option<String>,
    pub kubeconfig_path: Option<String>,
    pub context: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClustersError {
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("region `{0}` does not exist")]
    RegionNotFound(String),
    #[error("resource pool `{0}` does not exist")]
    PoolNotFound(String),
    #[error("cluster `{0}` does not exist")]
    ClusterNotFound(String),
    #[error("a {what} with id `{id}` exists")]
    Exists { what: &'static str, id: String },
    #[error("{what} `{id}` is still used by {by}")]
    InUse {
        what: &'static str,
        id: String,
        by: String,
    },
    #[error("the embedded cluster is registered by Wharf and cannot be removed")]
    Embedded,
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

type Result<T> = std::result::Result<T, ClustersError>;

fn invalid(field: &str, message: impl Into<String>) -> ClustersError {
    ClustersError::Invalid {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// `min`–30 characters, a lowercase letter first, then `[a-z0-9-]`.
pub fn validate_id(field: &str, id: &str, min: usize) -> Result<()> {
    let mut chars = id.chars();
    let ok = (min..=30).contains(&id.len())
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("use {min}-30 characters: a lowercase letter first, then a-z, 0-9 or -"),
        ))
    }
}

fn validate_name(name: &str) -> Result<()> {
    if name.trim().is_empty() || name.chars().count() > 50 {
        return Err(invalid("name", "must be 1 to 50 characters"));
    }
    Ok(())
}

fn validate_description(description: &str) -> Result<()> {
    if description.chars().count() > 500 {
        return Err(invalid("description", "must be at most 500 characters"));
    }
    Ok(())
}

fn region_key(id: &str) -> String {
    Store::key(&["regions", id])
}
fn pool_key(id: &str) -> String {
    Store::key(&["resource-pools", id])
}
fn cluster_key(id: &str) -> String {
    Store::key(&["clusters", id])
}
fn prefix(kind: &str) -> String {
    format!("{}/", Store::key(&[kind]))
}

/// The counter of children attached to a region or pool (`parent` = `region` or `pool`).
fn children_key(parent: &str, id: &str) -> String {
    Store::key(&["cluster-tree", parent, id])
}

/// Adds to `batch`: the parent at `parent_key` exists, and its children counter (read as
/// `read`) moves on by one. Deleting the parent checks the counter unchanged, so a child
/// attached between its "no children" check and its write makes it retry.
fn attach(batch: Batch, parent_key: &str, counter_key: &str, read: Option<Vec<u8>>) -> Batch {
    let next = read
        .as_deref()
        .and_then(|bytes| std::str::from_utf8(bytes).ok())
        .and_then(|text| text.parse::<u64>().ok())
        .unwrap_or(0)
        + 1;
    batch
        .present(parent_key)
        .unchanged(counter_key, read)
        .put_raw(counter_key, next.to_string().into_bytes())
}

fn decode<T: serde::de::DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| {
        StoreError::Corrupt {
            key: key.to_owned(),
            reason: e.to_string(),
        }
        .into()
    })
}

/// A kubeconfig connection as requested or stored.
#[derive(Clone, Copy)]
enum KubeconfigRef<'a> {
    Pasted(&'a str),
    /// A file on the server: the operator's `--kubeconfig`, or one in `--kubeconfig-dir`.
    File(&'a str),
}

impl KubeconfigRef<'_> {
    fn field(self) -> &'static str {
        match self {
            KubeconfigRef::Pasted(_) => "kubeconfig",
            KubeconfigRef::File(_) => "kubeconfigPath",
        }
    }
}

/// Seals and opens credentials with a key kept in the data directory.
struct Sealer {
    cipher: ChaCha20Poly1305,
}

/// The key file: 32 random bytes, created owner-only.
const KEY_FILE: &str = "cluster-credentials.key";

impl Sealer {
    fn open(data_dir: &Path) -> anyhow::Result<Self> {
        let path = data_dir.join(KEY_FILE);
        let key = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::create_key(&path)?,
            Err(e) => return Err(anyhow::anyhow!("reading {}: {e}", path.display())),
        };
        anyhow::ensure!(
            key.len() == 32,
            "{} must hold 32 bytes, it holds {}",
            path.display(),
            key.len()
        );
        Ok(Self {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
        })
    }

    fn create_key(path: &Path) -> anyhow::Result<Vec<u8>> {
        let mut key = vec![0u8; 32];
        rand::rng().fill_bytes(&mut key);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(path)
            .map_err(|e| anyhow::anyhow!("creating {}: {e}", path.display()))?;
        file.write_all(&key)?;
        file.sync_all()?;
        Ok(key)
    }

    fn seal(&self, aad: &str, secret: &str) -> Result<String> {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| StoreError::Backend("sealing credentials failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(B64.encode(out))
    }

    fn unseal(&self, aad: &str, sealed: &str) -> Result<String> {
        let corrupt = || {
            ClusterError::Config(format!(
                "the stored credentials of cluster `{aad}` cannot be decrypted (was the key file {KEY_FILE} replaced?)"
            ))
        };
        let bytes = B64.decode(sealed).map_err(|_| corrupt())?;
        if bytes.len() < 12 {
            return Err(corrupt().into());
        }
        let (nonce, body) = bytes.split_at(12);
        let clear = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| corrupt())?;
        String::from_utf8(clear).map_err(|_| corrupt().into())
    }
}

/// Regions, resource pools and clusters over the host store, with a client per cluster.
#[derive(Clone)]
pub struct Clusters {
    store: Store,
    simulator: Option<Simulator>,
    sealer: Arc<Sealer>,
    clients: Arc<Mutex<HashMap<String, ClusterClient>>>,
    /// `serve --kubeconfig`: the one kubeconfig read as kube-rs reads it.
    operator_kubeconfig: Option<PathBuf>,
    /// `serve --kubeconfig-dir`: where requests may name kubeconfig files.
    kubeconfig_dir: Option<KubeconfigDir>,
}

impl Clusters {
    /// Seals a secret of another record (a market's access key) with the host's credential
    /// key; `owner` (e.g. `market:<id>`) binds it to that record, so it opens nowhere else.
    pub fn seal_secret(&self, owner: &str, secret: &str) -> Result<String> {
        self.sealer.seal(owner, secret)
    }

    /// Opens what [`Clusters::seal_secret`] sealed for `owner`.
    pub fn unseal_secret(&self, owner: &str, sealed: &str) -> Result<String> {
        self.sealer.unseal(owner, sealed)
    }
    /// Opens the registry; registers the embedded cluster (in region and pool `local`)
    /// when a simulator runs, and a `--kubeconfig` file as cluster `default`.
    /// `kubeconfig_dir` (`--kubeconfig-dir`) is where requests may name kubeconfig files.
    pub async fn open(
        store: Store,
        simulator: Option<Simulator>,
        data_dir: &Path,
        kubeconfig: Option<&Path>,
        kubeconfig_dir: Option<&Path>,
    ) -> anyhow::Result<Self> {
        let kubeconfig_dir = kubeconfig_dir
            .map(|dir| {
                KubeconfigDir::open(dir)
                    .map_err(|e| anyhow::anyhow!("--kubeconfig-dir {}: {e}", dir.display()))
            })
            .transpose()?;
        let clusters = Self {
            store,
            sealer: Arc::new(Sealer::open(data_dir)?),
            simulator,
            clients: Arc::default(),
            operator_kubeconfig: kubeconfig.map(Path::to_path_buf),
            kubeconfig_dir,
        };
        if clusters.simulator.is_some() && clusters.stored(EMBEDDED)?.is_none() {
            clusters.register_embedded().await?;
        }
        if let Some(path) = kubeconfig
            && clusters.stored(DEFAULT)?.is_none()
        {
            let new = NewCluster {
                id: DEFAULT.into(),
                name: Some("Default".into()),
                description: Some("the cluster of `wharf serve --kubeconfig`".into()),
                kind: ClusterKind::Kubeconfig,
                resource_pool: None,
                kubeconfig: None,
                kubeconfig_path: Some(path.display().to_string()),
                context: None,
            };
            if let Err(error) = clusters.create(new, "wharf").await {
                tracing::error!(%error, "registering the --kubeconfig cluster failed");
            }
        }
        Ok(clusters)
    }

    async fn register_embedded(&self) -> Result<()> {
        let now = OffsetDateTime::now_utc();
        let region = Region {
            id: LOCAL.into(),
            name: "Local".into(),
            description: "this machine".into(),
            created_at: now,
            updated_at: now,
            created_by: "wharf".into(),
        };
        // Another host may register them at the same moment: whoever comes second keeps
        // the first one's records.
        let key = region_key(LOCAL);
        let _ = self
            .store
            .apply(&Batch::new().absent(&key).put_json(&key, &region)?)?;
        let pool = ResourcePool {
            id: LOCAL.into(),
            name: "Local".into(),
            region: LOCAL.into(),
            description: "the embedded cluster".into(),
            created_at: now,
            updated_at: now,
            created_by: "wharf".into(),
        };
        self.insert_pool(&pool).await.or_else(|e| match e {
            ClustersError::Exists { .. } => Ok(()),
            other => Err(other),
        })?;
        let cluster = Cluster {
            id: EMBEDDED.into(),
            name: "Embedded".into(),
            description: "the Kubernetes API simulator inside Wharf".into(),
            kind: ClusterKind::Embedded,
            resource_pool: Some(LOCAL.into()),
            region: Some(LOCAL.into()),
            kubeconfig_path: None,
            context: None,
            server: None,
            has_credentials: false,
            created_at: now,
            updated_at: now,
            created_by: "wharf".into(),
        };
        self.insert_cluster(&cluster, None)
            .await
            .or_else(|e| match e {
                ClustersError::Exists { .. } => Ok(()),
                other => Err(other),
            })?;
        self.store.commit().await?;
        Ok(())
    }

    // Regions.

    pub fn regions(&self) -> Result<Vec<Region>> {
        Ok(self.store.list_json(&prefix("regions"))?)
    }

    pub fn region(&self, id: &str) -> Result<Region> {
        self.store
            .get_json(&region_key(id))?
            .ok_or_else(|| ClustersError::RegionNotFound(id.to_owned()))
    }

    pub async fn create_region(
        &self,
        id: String,
        name: String,
        description: Option<String>,
        actor: &str,
    ) -> Result<Region> {
        validate_id("id", &id, 2)?;
        validate_name(&name)?;
        let description = description.unwrap_or_default();
        validate_description(&description)?;
        let now = OffsetDateTime::now_utc();
        let region = Region {
            id,
            name,
            description,
            created_at: now,
            updated_at: now,
            created_by: actor.to_owned(),
        };
        let key = region_key(&region.id);
        if self
            .store
            .apply(&Batch::new().absent(&key).put_json(&key, &region)?)?
            .is_err()
        {
            return Err(ClustersError::Exists {
                what: "region",
                id: region.id,
            });
        }
        self.store.commit().await?;
        Ok(region)
    }

    pub async fn update_region(
        &self,
        id: &str,
        name: Option<String>,
        description: Option<String>,
    ) -> Result<Region> {
        if let Some(name) = &name {
            validate_name(name)?;
        }
        if let Some(description) = &description {
            validate_description(description)?;
        }
        let region = self
            .store
            .update_json(&region_key(id), |current: Option<Region>| {
                let mut region =
                    current.ok_or_else(|| ClustersError::RegionNotFound(id.to_owned()))?;
                if let Some(name) = &name {
                    region.name.clone_from(name);
                }
                if let Some(description) = &description {
                    region.description.clone_from(description);
                }
                region.updated_at = OffsetDateTime::now_utc();
                Ok::<_, ClustersError>(Some(region))
            })?
            .ok_or_else(|| ClustersError::RegionNotFound(id.to_owned()))?;
        self.store.commit().await?;
        Ok(region)
    }

    /// Deletes a region that has no resource pools.
    pub async fn delete_region(&self, id: &str) -> Result<Region> {
        let key = region_key(id);
        let counter = children_key("region", id);
        loop {
            let Some(raw) = self.store.get_raw(&key)? else {
                return Err(ClustersError::RegionNotFound(id.to_owned()));
            };
            let region: Region = decode(&key, &raw)?;
            let children = self.store.get_raw(&counter)?;
            let pools: Vec<String> = self.pools(Some(id))?.into_iter().map(|p| p.id).collect();
            if !pools.is_empty() {
                return Err(ClustersError::InUse {
                    what: "region",
                    id: id.to_owned(),
                    by: format!("resource pools {}", pools.join(", ")),
                });
            }
            let batch = Batch::new()
                .equals(&key, raw)
                .unchanged(&counter, children)
                .delete(&key)
                .delete(&counter);
            if self.store.apply(&batch)?.is_ok() {
                self.store.commit().await?;
                return Ok(region);
            }
        }
    }

    // Resource pools.

    pub fn pools(&self, region: Option<&str>) -> Result<Vec<ResourcePool>> {
        let mut pools: Vec<ResourcePool> = self.store.list_json(&prefix("resource-pools"))?;
        pools.retain(|p| region.is_none_or(|r| p.region == r));
        Ok(pools)
    }

    pub fn pool(&self, id: &str) -> Result<ResourcePool> {
        self.store
            .get_json(&pool_key(id))?
            .ok_or_else(|| ClustersError::PoolNotFound(id.to_owned()))
    }

    pub async fn create_pool(
        &self,
        id: String,
        name: String,
        region: String,
        description: Option<String>,
        actor: &str,
    ) -> Result<ResourcePool> {
        validate_id("id", &id, 2)?;
        validate_name(&name)?;
        let description = description.unwrap_or_default();
        validate_description(&description)?;
        let now = OffsetDateTime::now_utc();
        let pool = ResourcePool {
            id,
            name,
            region,
            description,
            created_at: now,
            updated_at: now,
            created_by: actor.to_owned(),
        };
        self.insert_pool(&pool).await?;
        self.store.commit().await?;
        Ok(pool)
    }

    /// Writes a new pool if its id is free and its region exists, in one batch.
    async fn insert_pool(&self, pool: &ResourcePool) -> Result<()> {
        let key = pool_key(&pool.id);
        let parent = region_key(&pool.region);
        let counter = children_key("region", &pool.region);
        loop {
            let read = self.store.get_raw(&counter)?;
            let batch =
                attach(Batch::new().absent(&key), &parent, &counter, read).put_json(&key, pool)?;
            match self.store.apply(&batch)? {
                Ok(()) => return Ok(()),
                Err(conflict) if conflict.key == key.as_bytes() => {
                    return Err(ClustersError::Exists {
                        what: "resource pool",
                        id: pool.id.clone(),
                    });
                }
                Err(conflict) if conflict.key == parent.as_bytes() => {
                    return Err(invalid(
                        "region",
                        format!("region `{}` does not exist", pool.region),
                    ));
                }
                // Another pool joined the region meanwhile: read its counter again.
                Err(_) => tokio::task::yield_now().await,
            }
        }
    }

    pub async fn update_pool(
        &self,
        id: &str,
        name: Option<String>,
        description: Option<String>,
    ) -> Result<ResourcePool> {
        if let Some(name) = &name {
            validate_name(name)?;
        }
        if let Some(description) = &description {
            validate_description(description)?;
        }
        let pool = self
            .store
            .update_json(&pool_key(id), |current: Option<ResourcePool>| {
                let mut pool = current.ok_or_else(|| ClustersError::PoolNotFound(id.to_owned()))?;
                if let Some(name) = &name {
                    pool.name.clone_from(name);
                }
                if let Some(description) = &description {
                    pool.description.clone_from(description);
                }
                pool.updated_at = OffsetDateTime::now_utc();
                Ok::<_, ClustersError>(Some(pool))
            })?
            .ok_or_else(|| ClustersError::PoolNotFound(id.to_owned()))?;
        self.store.commit().await?;
        Ok(pool)
    }

    /// Deletes a pool that holds no clusters and that no environment uses.
    pub async fn delete_pool(&self, id: &str) -> Result<ResourcePool> {
        let key = pool_key(id);
        let counter = children_key("pool", id);
        loop {
            let Some(raw) = self.store.get_raw(&key)? else {
                return Err(ClustersError::PoolNotFound(id.to_owned()));
            };
            let pool: ResourcePool = decode(&key, &raw)?;
            let children = self.store.get_raw(&counter)?;
            let members: Vec<String> = self.list(Some(id))?.into_iter().map(|c| c.id).collect();
            if !members.is_empty() {
                return Err(ClustersError::InUse {
                    what: "resource pool",
                    id: id.to_owned(),
                    by: format!("clusters {}", members.join(", ")),
                });
            }
            let envs = super::environments::using_pool(&self.store, id)?;
            if !envs.is_empty() {
                return Err(ClustersError::InUse {
                    what: "resource pool",
                    id: id.to_owned(),
                    by: format!("environments {}", envs.join(", ")),
                });
            }
            let batch = Batch::new()
                .equals(&key, raw)
                .unchanged(&counter, children)
                .delete(&key)
                .delete(&counter);
            if self.store.apply(&batch)?.is_ok() {
                self.store.commit().await?;
                return Ok(pool);
            }
        }
    }

    // Clusters.

    fn stored(&self, id: &str) -> Result<Option<StoredCluster>> {
        Ok(self.store.get_json(&cluster_key(id))?)
    }

    /// Writes a new cluster if its id is free and its pool (if any) exists, in one batch.
    async fn insert_cluster(&self, cluster: &Cluster, sealed: Option<String>) -> Result<()> {
        let key = cluster_key(&cluster.id);
        let stored = StoredCluster {
            cluster: cluster.clone(),
            sealed_kubeconfig: sealed,
        };
        loop {
            let batch = self
                .in_pool(Batch::new().absent(&key), cluster.resource_pool.as_deref())?
                .put_json(&key, &stored)?;
            match self.store.apply(&batch)? {
                Ok(()) => return Ok(()),
                Err(conflict) if conflict.key == key.as_bytes() => {
                    return Err(ClustersError::Exists {
                        what: "cluster",
                        id: cluster.id.clone(),
                    });
                }
                Err(conflict) => self.pool_conflict(&conflict.key, cluster)?,
            }
            tokio::task::yield_now().await;
        }
    }

    /// Adds to `batch` that `pool` (if any) exists, counting one more child of it.
    fn in_pool(&self, batch: Batch, pool: Option<&str>) -> Result<Batch> {
        Ok(match pool {
            None => batch,
            Some(pool) => {
                let counter = children_key("pool", pool);
                let read = self.store.get_raw(&counter)?;
                attach(batch, &pool_key(pool), &counter, read)
            }
        })
    }

    /// A batch of [`Self::in_pool`] failed on `key`: a pool that is gone is the caller's
    /// error; anything else (its counter moved, the record changed) is worth a retry.
    fn pool_conflict(&self, key: &[u8], cluster: &Cluster) -> Result<()> {
        match cluster.resource_pool.as_deref() {
            Some(pool) if key == pool_key(pool).as_bytes() => Err(invalid(
                "resourcePool",
                format!("resource pool `{pool}` does not exist"),
            )),
            _ => Ok(()),
        }
    }

    /// Clusters, optionally only those of one resource pool.
    pub fn list(&self, pool: Option<&str>) -> Result<Vec<Cluster>> {
        let stored: Vec<StoredCluster> = self.store.list_json(&prefix("clusters"))?;
        Ok(stored
            .into_iter()
            .map(|s| s.cluster)
            .filter(|c| pool.is_none_or(|p| c.resource_pool.as_deref() == Some(p)))
            .collect())
    }

    pub fn get(&self, id: &str) -> Result<Cluster> {
        self.stored(id)?
            .map(|s| s.cluster)
            .ok_or_else(|| ClustersError::ClusterNotFound(id.to_owned()))
    }

    /// The pool's region, checking the pool exists (`field` names the input).
    fn region_of(&self, pool: Option<&str>) -> Result<Option<String>> {
        match pool {
            None => Ok(None),
            Some(pool) => match self.store.get_json::<ResourcePool>(&pool_key(pool))? {
                Some(p) => Ok(Some(p.region)),
                None => Err(invalid(
                    "resourcePool",
                    format!("resource pool `{pool}` does not exist"),
                )),
            },
        }
    }

    fn is_operator_file(&self, path: &str) -> bool {
        self.operator_kubeconfig
            .as_deref()
            .is_some_and(|operator| operator == Path::new(path))
    }

    /// Loads a kubeconfig and the path to store with it (canonical for a file of
    /// `--kubeconfig-dir`). A pasted one and a file of the directory may carry only inline
    /// material; the operator's `--kubeconfig` file alone is read as kube-rs reads it.
    async fn load(
        &self,
        source: KubeconfigRef<'_>,
    ) -> std::result::Result<(Kubeconfig, Option<String>), Refusal> {
        let refuse = |message: String| Refusal {
            field: "kubeconfigPath".into(),
            message,
        };
        match source {
            KubeconfigRef::Pasted(text) => Ok((kubeconfig::inline_only(text, "kubeconfig")?, None)),
            KubeconfigRef::File(path) if self.is_operator_file(path) => {
                let parsed = kubeconfig::read_operator_file(Path::new(path))
                    .await
                    .map_err(refuse)?;
                Ok((parsed, Some(path.to_owned())))
            }
            KubeconfigRef::File(path) => {
                let Some(dir) = &self.kubeconfig_dir else {
                    return Err(refuse(
                        "Wharf was started without `--kubeconfig-dir`, so a request cannot name a kubeconfig file on the server; paste it as `kubeconfig` instead".into(),
                    ));
                };
                let (parsed, canonical) = dir.load(path).await?;
                let canonical = canonical.into_os_string().into_string().map_err(|_| {
                    refuse(format!("`{path}` resolves to a path that is not UTF-8"))
                })?;
                Ok((parsed, Some(canonical)))
            }
        }
    }

    /// Checks a kubeconfig connection (without connecting) and returns the server URL, the
    /// sealed content (pasted) and the path to store (a file).
    async fn check_kubeconfig(
        &self,
        id: &str,
        content: Option<&str>,
        path: Option<&str>,
        context: Option<&str>,
    ) -> Result<(Option<String>, Option<String>, Option<String>)> {
        let source = match (content, path) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "kubeconfig",
                    "give either `kubeconfig` (pasted) or `kubeconfigPath`, not both",
                ));
            }
            (Some(text), None) => KubeconfigRef::Pasted(text),
            (None, Some(path)) => KubeconfigRef::File(path),
            (None, None) => {
                return Err(invalid(
                    "kubeconfig",
                    "a kubeconfig cluster needs `kubeconfig` (pasted) or `kubeconfigPath`",
                ));
            }
        };
        let (parsed, stored_path) = self
            .load(source)
            .await
            .map_err(|r| invalid(&r.field, r.message))?;
        let chosen = context
            .or(parsed.current_context.as_deref())
            .map(str::to_owned);
        let server = chosen.as_deref().and_then(|name| {
            let ctx = parsed.contexts.iter().find(|c| c.name == name)?;
            let cluster = ctx.context.as_ref()?.cluster.clone();
            parsed
                .clusters
                .iter()
                .find(|c| c.name == cluster)?
                .cluster
                .as_ref()?
                .server
                .clone()
        });
        ClusterClient::from_kubeconfig(parsed, context)
            .await
            .map_err(|e| {
                let field = if context.is_some() && e.to_string().contains("context") {
                    "context"
                } else {
                    source.field()
                };
                invalid(field, e.to_string())
            })?;
        let sealed = content.map(|text| self.sealer.seal(id, text)).transpose()?;
        Ok((server, sealed, stored_path))
    }

    pub async fn create(&self, new: NewCluster, actor: &str) -> Result<Cluster> {
        validate_id("id", &new.id, 3)?;
        let name = new.name.unwrap_or_else(|| new.id.clone());
        validate_name(&name)?;
        let description = new.description.unwrap_or_default();
        validate_description(&description)?;
        let region = self.region_of(new.resource_pool.as_deref())?;
        if let Some(context) = &new.context
            && (context.is_empty() || context.len() > 253)
        {
            return Err(invalid("context", "must be 1 to 253 characters"));
        }
        let (server, sealed, kubeconfig_path) = match new.kind {
            ClusterKind::Embedded => {
                return Err(invalid(
                    "kind",
                    "the embedded cluster is registered by Wharf itself; use `kubeconfig` or `in-cluster`",
                ));
            }
            ClusterKind::Kubeconfig => {
                self.check_kubeconfig(
                    &new.id,
                    new.kubeconfig.as_deref(),
                    new.kubeconfig_path.as_deref(),
                    new.context.as_deref(),
                )
                .await?
            }
            ClusterKind::InCluster => {
                if new.kubeconfig.is_some()
                    || new.kubeconfig_path.is_some()
                    || new.context.is_some()
                {
                    return Err(invalid(
                        "kind",
                        "an in-cluster cluster takes no kubeconfig or context",
                    ));
                }
                ClusterClient::in_cluster()
                    .await
                    .map_err(|e| invalid("kind", e.to_string()))?;
                (None, None, None)
            }
        };
        let now = OffsetDateTime::now_utc();
        let cluster = Cluster {
            id: new.id,
            name,
            description,
            kind: new.kind,
            resource_pool: new.resource_pool,
            region,
            kubeconfig_path,
            context: new.context,
            server,
            has_credentials: sealed.is_some(),
            created_at: now,
            updated_at: now,
            created_by: actor.to_owned(),
        };
        self.insert_cluster(&cluster, sealed).await?;
        self.store.commit().await?;
        Ok(cluster)
    }

    /// Applies `update` to the cluster as stored; written only if the record is still the
    /// one read (retried otherwise), so concurrent updates never lose each other's changes.
    pub async fn update(&self, id: &str, update: ClusterUpdate) -> Result<Cluster> {
        let key = cluster_key(id);
        loop {
            let Some(raw) = self.store.get_raw(&key)? else {
                return Err(ClustersError::ClusterNotFound(id.to_owned()));
            };
            let StoredCluster {
                cluster: mut c,
                sealed_kubeconfig: mut sealed,
            } = decode(&key, &raw)?;
            let update = update.clone();
            if let Some(name) = update.name {
                validate_name(&name)?;
                c.name = name;
            }
            if let Some(description) = update.description {
                validate_description(&description)?;
                c.description = description;
            }
            let mut batch = Batch::new().equals(&key, raw);
            if let Some(pool) = update.resource_pool {
                let pool = (!pool.is_empty()).then_some(pool);
                c.region = self.region_of(pool.as_deref())?;
                if pool != c.resource_pool {
                    batch = self.in_pool(batch, pool.as_deref())?;
                }
                c.resource_pool = pool;
            }
            let connection_changes = update.kubeconfig.is_some()
                || update.kubeconfig_path.is_some()
                || update.context.is_some();
            if connection_changes {
                if c.kind != ClusterKind::Kubeconfig {
                    return Err(invalid(
                        "kind",
                        "only kubeconfig clusters take a kubeconfig or context",
                    ));
                }
                let context = update
                    .context
                    .or(c.context.clone())
                    .filter(|c| !c.is_empty());
                let (content, path) = match (update.kubeconfig, update.kubeconfig_path) {
                    (None, None) => match &sealed {
                        Some(s) => (Some(self.sealer.unseal(id, s)?), None),
                        None => (None, c.kubeconfig_path.clone()),
                    },
                    (content, path) => (content, path),
                };
                let (server, new_sealed, stored_path) = self
                    .check_kubeconfig(id, content.as_deref(), path.as_deref(), context.as_deref())
                    .await?;
                c.server = server;
                c.kubeconfig_path = stored_path;
                c.context = context;
                c.has_credentials = new_sealed.is_some();
                sealed = new_sealed;
            }
            c.updated_at = OffsetDateTime::now_utc();
            let stored = StoredCluster {
                cluster: c,
                sealed_kubeconfig: sealed,
            };
            match self.store.apply(&batch.put_json(&key, &stored)?)? {
                Ok(()) => {
                    self.store.commit().await?;
                    self.forget_client(id);
                    return Ok(stored.cluster);
                }
                Err(conflict) => self.pool_conflict(&conflict.key, &stored.cluster)?,
            }
        }
    }

    /// Removes a cluster no environment binds (the embedded one stays).
    pub async fn delete(&self, id: &str) -> Result<Cluster> {
        let key = cluster_key(id);
        loop {
            let Some(raw) = self.store.get_raw(&key)? else {
                return Err(ClustersError::ClusterNotFound(id.to_owned()));
            };
            let cluster = decode::<StoredCluster>(&key, &raw)?.cluster;
            if cluster.kind == ClusterKind::Embedded {
                return Err(ClustersError::Embedded);
            }
            let envs = super::environments::binding_cluster(&self.store, id, None)?;
            if !envs.is_empty() {
                return Err(ClustersError::InUse {
                    what: "cluster",
                    id: id.to_owned(),
                    by: format!("environments {}", envs.join(", ")),
                });
            }
            if self
                .store
                .apply(&Batch::new().equals(&key, raw).delete(&key))?
                .is_ok()
            {
                self.store.commit().await?;
                self.forget_client(id);
                return Ok(cluster);
            }
        }
    }

    fn forget_client(&self, id: &str) {
        if let Ok(mut clients) = self.clients.lock() {
            clients.remove(id);
        }
    }

    /// The client of a cluster, built on first use.
    pub async fn client(&self, id: &str) -> Result<ClusterClient> {
        if let Some(client) = self.clients.lock().ok().and_then(|c| c.get(id).cloned()) {
            return Ok(client);
        }
        let Some(stored) = self.stored(id)? else {
            return Err(ClustersError::ClusterNotFound(id.to_owned()));
        };
        let cluster = &stored.cluster;
        let client = match cluster.kind {
            ClusterKind::Embedded => match &self.simulator {
                Some(sim) => ClusterClient::embedded(sim),
                None => {
                    return Err(ClusterError::Unreachable(
                        "the embedded cluster is not running (Wharf was started with --kubeconfig)"
                            .into(),
                    )
                    .into());
                }
            },
            ClusterKind::InCluster => ClusterClient::in_cluster().await?,
            ClusterKind::Kubeconfig => {
                let content = stored
                    .sealed_kubeconfig
                    .as_deref()
                    .map(|s| self.sealer.unseal(id, s))
                    .transpose()?;
                let source = match (&content, &cluster.kubeconfig_path) {
                    (Some(text), _) => KubeconfigRef::Pasted(text),
                    (None, Some(path)) => KubeconfigRef::File(path),
                    (None, None) => {
                        return Err(
                            ClusterError::Config("the cluster has no kubeconfig".into()).into()
                        );
                    }
                };
                // The rule holds for records stored before it existed, too.
                let (parsed, _) = self.load(source).await.map_err(|refusal| {
                    ClusterError::Config(format!(
                        "the stored kubeconfig of cluster `{id}` is refused ({refusal}); replace it"
                    ))
                })?;
                ClusterClient::from_kubeconfig(parsed, cluster.context.as_deref()).await?
            }
        };
        if let Ok(mut clients) = self.clients.lock() {
            clients.insert(id.to_owned(), client.clone());
        }
        Ok(client)
    }
}

/// Namespaces Kubernetes itself relies on; Wharf never deletes them.
const RESERVED_NAMESPACES: [&str; 4] = ["default", "kube-system", "kube-public", "kube-node-lease"];

/// A DNS-1123 label: 1–63 of `[a-z0-9-]`, alphanumeric at both ends.
pub fn validate_namespace(field: &str, name: &str) -> Result<()> {
    let ok = (1..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            field,
            "use 1-63 characters of a-z, 0-9 and -, starting and ending with a letter or digit",
        ))
    }
}

/// A label name segment: 1–63 of `[A-Za-z0-9_.-]`, alphanumeric at both ends.
fn is_label_segment(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// Checks a node label change: the key's syntax, no reserved Kubernetes prefix, the value's syntax.
pub fn validate_label(key: &str, value: Option<&str>) -> Result<()> {
    let field = format!("labels.{key}");
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    let prefix_ok = prefix.is_none_or(|p| {
        p.len() <= 253
            && p.split('.').all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !part.starts_with('-')
                    && !part.ends_with('-')
            })
    });
    if !prefix_ok || !is_label_segment(name) {
        return Err(invalid(
            &field,
            "a label key is an optional DNS prefix and `/`, then 1-63 of A-Z, a-z, 0-9, -, _ and ., alphanumeric at both ends",
        ));
    }
    if let Some(prefix) = prefix {
        let reserved = ["kubernetes.io", "k8s.io"]
            .iter()
            .any(|r| prefix == *r || prefix.ends_with(&format!(".{r}")));
        if reserved {
            return Err(invalid(
                &field,
                format!("the `{prefix}/` prefix is reserved for Kubernetes; choose another prefix"),
            ));
        }
    }
    if let Some(value) = value
        && !value.is_empty()
        && !is_label_segment(value)
    {
        return Err(invalid(
            &field,
            "a label value is empty or 1-63 of A-Z, a-z, 0-9, -, _ and ., alphanumeric at both ends",
        ));
    }
    Ok(())
}

/// Checks a set of label changes (see [`validate_label`]).
pub fn check_labels(labels: &std::collections::BTreeMap<String, Option<String>>) -> Result<()> {
    if labels.is_empty() {
        return Err(invalid(
            "labels",
            "give at least one label to set or remove",
        ));
    }
    for (key, value) in labels {
        validate_label(key, value.as_deref())?;
    }
    Ok(())
}

impl Clusters {
    /// The store the registry lives in (environments and config items share it).
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub async fn namespaces(
        &self,
        cluster: &str,
    ) -> Result<Vec<crate::cluster::client::NamespaceView>> {
        Ok(self.client(cluster).await?.list_namespaces().await?)
    }

    /// Creates a namespace; one that exists already is a conflict.
    pub async fn create_namespace(&self, cluster: &str, name: &str) -> Result<()> {
        validate_namespace("name", name)?;
        let client = self.client(cluster).await?;
        let labels = [(
            "app.kubernetes.io/managed-by".to_owned(),
            "wharf".to_owned(),
        )]
        .into();
        client.create_namespace(name, labels).await?;
        Ok(())
    }

    /// Deletes a namespace no environment binds; Kubernetes' own namespaces stay.
    pub async fn delete_namespace(&self, cluster: &str, name: &str) -> Result<()> {
        let client = self.client(cluster).await?;
        if RESERVED_NAMESPACES.contains(&name) {
            return Err(ClustersError::InUse {
                what: "namespace",
                id: name.to_owned(),
                by: "Kubernetes itself".into(),
            });
        }
        let envs = super::environments::binding_cluster(&self.store, cluster, Some(name))?;
        if !envs.is_empty() {
            return Err(ClustersError::InUse {
                what: "namespace",
                id: name.to_owned(),
                by: format!("environments {}", envs.join(", ")),
            });
        }
        client.delete_namespace(name).await?;
        Ok(())
    }

    pub async fn nodes(&self, cluster: &str) -> Result<Vec<crate::cluster::client::NodeView>> {
        Ok(self.client(cluster).await?.list_nodes().await?)
    }

    pub async fn node(
        &self,
        cluster: &str,
        node: &str,
    ) -> Result<crate::cluster::client::NodeView> {
        Ok(self.client(cluster).await?.get_node(node).await?)
    }

    /// Adds, changes (`Some`) and removes (`None`) labels of a node in one patch.
    pub async fn label_node(
        &self,
        cluster: &str,
        node: &str,
        labels: &std::collections::BTreeMap<String, Option<String>>,
    ) -> Result<crate::cluster::client::NodeView> {
        check_labels(labels)?;
        Ok(self
            .client(cluster)
            .await?
            .patch_node_labels(node, labels)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_credentials_open_only_with_their_key_and_cluster() {
        let dir = std::env::temp_dir().join(format!("wharf-sealer-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let sealer = Sealer::open(&dir).unwrap();
        let sealed = sealer.seal("prod", "token: s3cret").unwrap();
        assert!(!sealed.contains("s3cret"));
        assert_eq!(sealer.unseal("prod", &sealed).unwrap(), "token: s3cret");
        assert!(sealer.unseal("other", &sealed).is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = Sealer::open(&dir).unwrap();
        assert_eq!(again.unseal("prod", &sealed).unwrap(), "token: s3cret");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn labels_refuse_reserved_prefixes_and_bad_syntax() {
        assert!(validate_label("disktype", Some("ssd")).is_ok());
        assert!(validate_label("wharf.dev/zone", Some("")).is_ok());
        assert!(validate_label("team", None).is_ok());
        for bad in [
            "kubernetes.io/hostname",
            "node-role.kubernetes.io/x",
            "k8s.io/a",
        ] {
            let e = validate_label(bad, Some("x")).unwrap_err();
            assert!(e.to_string().contains("reserved"), "{bad}: {e}");
        }
        for bad in ["", "-a", "a b", "Bad_/x"] {
            assert!(validate_label(bad, Some("x")).is_err(), "{bad}");
        }
        assert!(validate_label("a", Some("has space")).is_err());
        assert!(validate_namespace("name", "shop-dev").is_ok());
        assert!(validate_namespace("name", "Shop").is_err());
        assert!(validate_namespace("name", "-x").is_err());
    }

    /// A kubeconfig with an exec plugin that would leave `marker` behind.
    fn exec_kubeconfig(marker: &Path) -> String {
        format!(
            "clusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:9\nusers:\n- name: u\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: sh\n      args: [\"-c\", \"touch {}\"]\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\n",
            marker.display()
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_record_stored_before_the_rule_is_never_turned_into_a_client() {
        let dir = std::env::temp_dir().join(format!("wharf-legacy-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let marker = dir.join("ran");
        let store = Store::open_sled(&dir.join("db")).unwrap();
        let clusters = Clusters::open(store.clone(), None, &dir, None, None)
            .await
            .unwrap();
        let now = OffsetDateTime::now_utc();
        let legacy = StoredCluster {
            cluster: Cluster {
                id: "legacy".into(),
                name: "Legacy".into(),
                description: String::new(),
                kind: ClusterKind::Kubeconfig,
                resource_pool: None,
                region: None,
                kubeconfig_path: None,
                context: None,
                server: None,
                has_credentials: true,
                created_at: now,
                updated_at: now,
                created_by: "admin".into(),
            },
            sealed_kubeconfig: Some(
                clusters
                    .sealer
                    .seal("legacy", &exec_kubeconfig(&marker))
                    .unwrap(),
            ),
        };
        store.put_json(&cluster_key("legacy"), &legacy).unwrap();

        let error = clusters.client("legacy").await.err().expect("refused");
        assert!(error.to_string().contains("users[0].user.exec"), "{error}");
        let update = ClusterUpdate {
            context: Some("x".into()),
            ..ClusterUpdate::default()
        };
        match clusters.update("legacy", update).await {
            Err(ClustersError::Invalid { field, .. }) => {
                assert_eq!(field, "kubeconfig.users[0].user.exec")
            }
            other => panic!("expected a refusal, got {:?}", other.map(|c| c.id)),
        }
        assert!(!marker.exists(), "the exec plugin ran");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn ids_follow_the_code_rule() {
        assert!(validate_id("id", "hb", 2).is_ok());
        assert!(validate_id("id", "hb", 3).is_err());
        assert!(validate_id("id", "Prod", 3).is_err());
        assert!(validate_id("id", "prod-1", 3).is_ok());
    }
}
