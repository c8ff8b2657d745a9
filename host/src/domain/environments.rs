//! Environments of a project (seed 001 §5.4), stored at `v1/envs/<project>/<envCode>`: a
//! type (DEVELOP / TEST / PRE_ONLINE / ONLINE), an optional resource pool, an approval
//! flag, a traffic provider, and bindings to cluster + namespace pairs. A namespace is
//! bound by at most one environment; while bound it cannot be deleted, and while an
//! environment owns config items it cannot be deleted (nor the binding they live in
//! removed). A project's environments are not removed with it: delete them first.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::clusters::{Clusters, ClustersError, validate_namespace};
use super::dependents::Dependents;
use super::gray::providers::{self, Providers};
use super::projects::{ProjectError, Projects};
use crate::cluster::client::{ClusterError, ObjectState};
use crate::store::{Batch, Store, StoreError};

/// Seed 001 `envType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EnvType {
    Develop,
    Test,
    PreOnline,
    Online,
}

/// A cluster + namespace pair an environment deploys to.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Binding {
    pub cluster: String,
    pub namespace: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub created_at: OffsetDateTime,
    pub created_by: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Environment {
    pub id: String,
    pub project: String,
    /// 3–30 characters, a lowercase letter first, then `[a-z0-9-]`; never changes.
    pub env_code: String,
    /// 3–30 characters.
    pub env_name: String,
    pub env_type: EnvType,
    pub description: String,
    pub resource_pool: Option<String>,
    /// Whether changes in this environment wait for someone's approval.
    pub approval_required: bool,
    /// The gray-router plugin that turns gray rules into traffic (e.g. `gray-gateway-api`).
    #[serde(
        default = "providers::default_provider",
        deserialize_with = "providers::stored"
    )]
    pub traffic_provider: String,
    /// The Gateway (`namespace/name`) gray HTTPRoutes attach to; none for providers
    /// without gateways.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic_gateway: Option<String>,
    pub bindings: Vec<Binding>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub updated_at: OffsetDateTime,
    pub created_by: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewEnvironment {
    pub env_code: String,
    pub env_name: String,
    pub env_type: EnvType,
    pub description: Option<String>,
    pub resource_pool: Option<String>,
    #[serde(default)]
    pub approval_required: bool,
    /// A gray-router plugin id; `gray-gateway-api` when left out.
    #[serde(default)]
    pub traffic_provider: Option<String>,
    /// `namespace/name` of the Gateway gray HTTPRoutes attach to.
    #[serde(default)]
    pub traffic_gateway: Option<String>,
}

/// Changes to an environment; absent fields stay.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvironmentUpdate {
    pub env_name: Option<String>,
    pub env_type: Option<EnvType>,
    pub description: Option<String>,
    pub approval_required: Option<bool>,
    /// A gray-router plugin id.
    pub traffic_provider: Option<String>,
    /// `namespace/name` of a Gateway; `""` clears it.
    pub traffic_gateway: Option<String>,
}

/// A binding to import: an existing namespace, or a new one with `createNamespace`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewBinding {
    pub cluster: String,
    pub namespace: String,
    #[serde(default)]
    pub create_namespace: bool,
}

/// An object of one of the environment's namespaces.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvObject {
    pub cluster: String,
    #[serde(flatten)]
    pub object: ObjectState,
}

/// A binding whose objects could not be read.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BindingError {
    pub cluster: String,
    pub namespace: String,
    pub error: String,
}

/// What runs in an environment.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvResources {
    pub items: Vec<EnvObject>,
    /// Objects by kind and state, e.g. `{"Pod": {"Ready": 3}}`.
    pub summary: BTreeMap<String, BTreeMap<String, usize>>,
    pub errors: Vec<BindingError>,
}

#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("project `{0}` does not exist")]
    ProjectNotFound(String),
    #[error("environment `{env}` does not exist in project `{project}`")]
    NotFound { project: String, env: String },
    #[error("an environment with code `{0}` exists in this project")]
    CodeTaken(String),
    #[error("the environment is already bound to {cluster}/{namespace}")]
    BindingExists { cluster: String, namespace: String },
    #[error("the environment is not bound to {cluster}/{namespace}")]
    BindingNotFound { cluster: String, namespace: String },
    #[error("namespace {cluster}/{namespace} is bound by environment {by}")]
    NamespaceTaken {
        cluster: String,
        namespace: String,
        by: String,
    },
    #[error("{0} changed while this request was being carried out; try again")]
    Conflict(String),
    #[error("{what} still holds config items {names}; delete them first")]
    HasConfigItems { what: String, names: String },
    #[error("config item `{0}` does not exist in this environment")]
    ConfigItemNotFound(String),
    #[error("a config item named `{0}` exists in this environment")]
    ConfigItemExists(String),
    #[error(transparent)]
    Clusters(#[from] ClustersError),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub(crate) fn invalid(field: &str, message: impl Into<String>) -> EnvError {
    EnvError::Invalid {
        field: field.to_owned(),
        message: message.into(),
    }
}

pub(crate) fn key(project: &str, env: &str) -> String {
    Store::key(&["envs", project, env])
}

/// Claim of a cluster namespace by the one environment that binds it (`project/env`):
/// two binds of one namespace cannot both take it.
fn namespace_claim_key(cluster: &str, namespace: &str) -> String {
    Store::key(&["namespace-claims", cluster, namespace])
}

/// The counts of what an environment owns (config items), for batches that add or
/// remove one: see [`super::dependents`].
pub(crate) fn dependents(
    store: &Store,
    project: &str,
    env: &str,
) -> Result<Dependents, StoreError> {
    Dependents::read(
        store,
        &format!("env:{project}/{env}"),
        &[(
            "config-items",
            format!("{}/", Store::key(&["config-items", project, env])),
        )],
    )
}

fn all_prefix() -> String {
    format!("{}/", Store::key(&["envs"]))
}

fn all(store: &Store) -> Result<Vec<Environment>, StoreError> {
    store.list_json(&all_prefix())
}

/// `project/env` of every environment using a resource pool.
pub fn using_pool(store: &Store, pool: &str) -> Result<Vec<String>, StoreError> {
    Ok(all(store)?
        .into_iter()
        .filter(|e| e.resource_pool.as_deref() == Some(pool))
        .map(|e| format!("{}/{}", e.project, e.env_code))
        .collect())
}

/// `project/env` of every environment bound to a cluster (or one namespace of it).
pub fn binding_cluster(
    store: &Store,
    cluster: &str,
    namespace: Option<&str>,
) -> Result<Vec<String>, StoreError> {
    Ok(all(store)?
        .into_iter()
        .filter(|e| {
            e.bindings
                .iter()
                .any(|b| b.cluster == cluster && namespace.is_none_or(|n| b.namespace == n))
        })
        .map(|e| format!("{}/{}", e.project, e.env_code))
        .collect())
}

fn validate_code(code: &str) -> Result<(), EnvError> {
    super::clusters::validate_id("envCode", code, 3).map_err(|_| {
        invalid(
            "envCode",
            "use 3-30 characters: a lowercase letter first, then a-z, 0-9 or -",
        )
    })
}

fn validate_name(name: &str) -> Result<(), EnvError> {
    let n = name.trim().chars().count();
    if !(3..=30).contains(&n) {
        return Err(invalid("envName", "must be 3 to 30 characters"));
    }
    Ok(())
}

/// `namespace/name`, each a DNS label.
fn validate_gateway(gateway: &str) -> Result<(), EnvError> {
    let label = |s: &str| {
        (1..=63).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && !s.ends_with('-')
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    match gateway.split_once('/') {
        Some((namespace, name)) if label(namespace) && label(name) => Ok(()),
        _ => Err(invalid(
            "trafficGateway",
            "must be `namespace/name` of a Gateway, e.g. `infra/public`",
        )),
    }
}

fn validate_description(description: &str) -> Result<(), EnvError> {
    if description.chars().count() > 500 {
        return Err(invalid("description", "must be at most 500 characters"));
    }
    Ok(())
}

/// Environments over the host store and the cluster registry.
#[derive(Clone)]
pub struct Environments {
    store: Store,
    clusters: Clusters,
    projects: Projects,
    providers: Providers,
}

impl Environments {
    pub fn new(clusters: Clusters, projects: Projects, providers: Providers) -> Self {
        Self {
            store: clusters.store().clone(),
            clusters,
            projects,
            providers,
        }
    }

    /// Checks a `trafficProvider` being set (not one already stored: a provider disabled
    /// later is reported when a gray release needs it).
    fn check_provider(&self, id: &str) -> Result<(), EnvError> {
        self.providers
            .check(id)
            .map_err(|e| invalid("trafficProvider", e.to_string()))
    }

    pub fn clusters(&self) -> &Clusters {
        &self.clusters
    }

    fn project(&self, code: &str) -> Result<(), EnvError> {
        match self.projects.get(code) {
            Ok(_) => Ok(()),
            Err(ProjectError::NotFound(_)) => Err(EnvError::ProjectNotFound(code.to_owned())),
            Err(ProjectError::Store(e)) => Err(e.into()),
            Err(other) => Err(invalid("project", other.to_string())),
        }
    }

    pub fn get(&self, project: &str, env: &str) -> Result<Environment, EnvError> {
        self.project(project)?;
        self.store
            .get_json(&key(project, env))?
            .ok_or_else(|| EnvError::NotFound {
                project: project.to_owned(),
                env: env.to_owned(),
            })
    }

    /// The project's environments matching `search` (code or name), by code.
    pub fn list(&self, project: &str, search: Option<&str>) -> Result<Vec<Environment>, EnvError> {
        self.project(project)?;
        let needle = search.map(str::to_lowercase);
        let prefix = format!("{}/", Store::key(&["envs", project]));
        let mut envs: Vec<Environment> = self.store.list_json(&prefix)?;
        envs.retain(|e| {
            needle.as_ref().is_none_or(|n| {
                e.env_code.contains(n.as_str()) || e.env_name.to_lowercase().contains(n.as_str())
            })
        });
        Ok(envs)
    }

    pub async fn create(
        &self,
        project: &str,
        new: NewEnvironment,
        actor: &str,
    ) -> Result<Environment, EnvError> {
        self.project(project)?;
        validate_code(&new.env_code)?;
        validate_name(&new.env_name)?;
        let description = new.description.unwrap_or_default();
        validate_description(&description)?;
        if let Some(pool) = &new.resource_pool {
            self.clusters.pool(pool).map_err(|_| {
                invalid(
                    "resourcePool",
                    format!("resource pool `{pool}` does not exist"),
                )
            })?;
        }
        // The default is not checked: an environment that never releases gray does not
        // need its provider, and a gray release checks it again.
        if let Some(provider) = &new.traffic_provider {
            self.check_provider(provider)?;
        }
        let traffic_provider = new
            .traffic_provider
            .unwrap_or_else(providers::default_provider);
        if let Some(gateway) = &new.traffic_gateway {
            validate_gateway(gateway)?;
        }
        let now = OffsetDateTime::now_utc();
        let env = Environment {
            id: uuid::Uuid::new_v4().to_string(),
            project: project.to_owned(),
            env_code: new.env_code,
            env_name: new.env_name,
            env_type: new.env_type,
            description,
            resource_pool: new.resource_pool,
            approval_required: new.approval_required,
            traffic_provider,
            traffic_gateway: new.traffic_gateway,
            bindings: Vec::new(),
            created_at: now,
            updated_at: now,
            created_by: actor.to_owned(),
        };
        let env_key = key(project, &env.env_code);
        loop {
            let owner = super::projects::dependents(&self.store, project)?;
            let batch = super::projects::exists(Batch::new(), project)
                .absent(&env_key)
                .put_json(&env_key, &env)?;
            let batch = owner.add("environments").write(batch)?;
            match self.store.apply(&batch)? {
                Ok(()) => break,
                Err(c) if super::dependents::is_dependents_key(&c.key) => continue,
                Err(c) if super::projects::is_record(project, &c.key) => {
                    return Err(EnvError::ProjectNotFound(project.to_owned()));
                }
                Err(_) => return Err(EnvError::CodeTaken(env.env_code)),
            }
        }
        self.store.commit().await?;
        Ok(env)
    }

    /// Writes `env` back if its record still holds `read`; false if someone changed it
    /// meanwhile (the caller reads again). `batch` carries the write's other conditions.
    async fn save_if_unchanged(
        &self,
        env: &Environment,
        read: Option<Vec<u8>>,
        batch: Batch,
    ) -> Result<Result<(), crate::store::BatchConflict>, EnvError> {
        let env_key = key(&env.project, &env.env_code);
        let batch = Batch::new()
            .unchanged(&env_key, read)
            .put_json(&env_key, env)?
            .merge(batch);
        let outcome = self.store.apply(&batch)?;
        if outcome.is_ok() {
            self.store.commit().await?;
        }
        Ok(outcome)
    }

    /// The environment with the raw bytes it was read from, for a conditional write.
    fn read(&self, project: &str, code: &str) -> Result<(Environment, Option<Vec<u8>>), EnvError> {
        let read = self.store.get_raw(&key(project, code))?;
        Ok((self.get(project, code)?, read))
    }

    pub async fn update(
        &self,
        project: &str,
        code: &str,
        update: EnvironmentUpdate,
    ) -> Result<Environment, EnvError> {
        if let Some(name) = &update.env_name {
            validate_name(name)?;
        }
        if let Some(description) = &update.description {
            validate_description(description)?;
        }
        if let Some(provider) = &update.traffic_provider {
            self.check_provider(provider)?;
        }
        if let Some(gateway) = update.traffic_gateway.as_deref().filter(|g| !g.is_empty()) {
            validate_gateway(gateway)?;
        }
        loop {
            let (mut env, read) = self.read(project, code)?;
            if let Some(name) = &update.env_name {
                env.env_name = name.clone();
            }
            if let Some(description) = &update.description {
                env.description = description.clone();
            }
            if let Some(kind) = update.env_type {
                env.env_type = kind;
            }
            if let Some(flag) = update.approval_required {
                env.approval_required = flag;
            }
            if let Some(provider) = &update.traffic_provider {
                env.traffic_provider = provider.clone();
            }
            if let Some(gateway) = &update.traffic_gateway {
                env.traffic_gateway = (!gateway.is_empty()).then(|| gateway.clone());
            }
            env.updated_at = OffsetDateTime::now_utc();
            if self
                .save_if_unchanged(&env, read, Batch::new())
                .await?
                .is_ok()
            {
                return Ok(env);
            }
        }
    }

    /// Deletes an environment without config items; its namespaces stay in their clusters.
    pub async fn delete(&self, project: &str, code: &str) -> Result<Environment, EnvError> {
        loop {
            let (env, read) = self.read(project, code)?;
            let owned = dependents(&self.store, project, code)?;
            if owned.count("config-items") > 0 {
                let names = super::config_items::names_in(&self.store, project, code, None)?;
                return Err(EnvError::HasConfigItems {
                    what: format!("environment `{code}`"),
                    names: names.join(", "),
                });
            }
            let owner = super::projects::dependents(&self.store, project)?;
            let mut batch = Batch::new()
                .unchanged(&key(project, code), read)
                .delete(&key(project, code));
            for binding in &env.bindings {
                batch = batch.delete(&namespace_claim_key(&binding.cluster, &binding.namespace));
            }
            let batch = owner
                .remove("environments")
                .write(owned.remove_all(batch))?;
            if self.store.apply(&batch)?.is_ok() {
                self.store.commit().await?;
                return Ok(env);
            }
        }
    }

    /// Imports a cluster + namespace into the environment, creating the namespace on request.
    pub async fn bind(
        &self,
        project: &str,
        code: &str,
        new: NewBinding,
        actor: &str,
    ) -> Result<Environment, EnvError> {
        let (mut env, read) = self.read(project, code)?;
        validate_namespace("namespace", &new.namespace)?;
        let cluster = self.clusters.get(&new.cluster).map_err(|_| {
            invalid(
                "cluster",
                format!("cluster `{}` does not exist", new.cluster),
            )
        })?;
        if let Some(pool) = &env.resource_pool
            && cluster.resource_pool.as_ref() != Some(pool)
        {
            return Err(invalid(
                "cluster",
                format!(
                    "cluster `{}` is not in the environment's resource pool `{pool}`",
                    cluster.id
                ),
            ));
        }
        if env
            .bindings
            .iter()
            .any(|b| b.cluster == new.cluster && b.namespace == new.namespace)
        {
            return Err(EnvError::BindingExists {
                cluster: new.cluster,
                namespace: new.namespace,
            });
        }
        if let Some(by) = binding_cluster(&self.store, &new.cluster, Some(&new.namespace))?.pop() {
            return Err(EnvError::NamespaceTaken {
                cluster: new.cluster,
                namespace: new.namespace,
                by,
            });
        }
        let client = self.clusters.client(&new.cluster).await?;
        if !client.namespace_exists(&new.namespace).await? {
            if !new.create_namespace {
                return Err(invalid(
                    "namespace",
                    format!(
                        "namespace `{}` does not exist in cluster `{}`; create it or pass createNamespace",
                        new.namespace, new.cluster
                    ),
                ));
            }
            let labels = [
                ("app.kubernetes.io/managed-by", "wharf"),
                ("wharf.dev/project", project),
                ("wharf.dev/env", code),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
            client.create_namespace(&new.namespace, labels).await?;
        }
        let claim = namespace_claim_key(&new.cluster, &new.namespace);
        let claim_batch = Batch::new()
            .absent(&claim)
            .put_json(&claim, &format!("{project}/{code}"))?;
        env.bindings.push(Binding {
            cluster: new.cluster.clone(),
            namespace: new.namespace.clone(),
            created_at: OffsetDateTime::now_utc(),
            created_by: actor.to_owned(),
        });
        env.updated_at = OffsetDateTime::now_utc();
        match self.save_if_unchanged(&env, read, claim_batch).await? {
            Ok(()) => Ok(env),
            Err(conflict) if conflict.key == claim.as_bytes() => {
                let by = self
                    .store
                    .get_json::<String>(&claim)?
                    .unwrap_or_else(|| "another environment".to_owned());
                Err(EnvError::NamespaceTaken {
                    cluster: new.cluster,
                    namespace: new.namespace,
                    by,
                })
            }
            // The environment changed while the namespace was being prepared: the caller
            // may simply try again (the namespace, if created, is there now).
            Err(_) => Err(EnvError::Conflict(format!("environment `{code}`"))),
        }
    }

    /// Removes a binding without config items in it; the namespace stays in the cluster.
    pub async fn unbind(
        &self,
        project: &str,
        code: &str,
        cluster: &str,
        namespace: &str,
    ) -> Result<Environment, EnvError> {
        loop {
            let (mut env, read) = self.read(project, code)?;
            let owned = dependents(&self.store, project, code)?;
            let before = env.bindings.len();
            env.bindings
                .retain(|b| !(b.cluster == cluster && b.namespace == namespace));
            if env.bindings.len() == before {
                return Err(EnvError::BindingNotFound {
                    cluster: cluster.to_owned(),
                    namespace: namespace.to_owned(),
                });
            }
            let names = super::config_items::names_in(
                &self.store,
                project,
                code,
                Some((cluster, namespace)),
            )?;
            if !names.is_empty() {
                return Err(EnvError::HasConfigItems {
                    what: format!("binding {cluster}/{namespace}"),
                    names: names.join(", "),
                });
            }
            env.updated_at = OffsetDateTime::now_utc();
            // Counts as read: a config item created in this binding meanwhile conflicts.
            let batch =
                owned.write(Batch::new().delete(&namespace_claim_key(cluster, namespace)))?;
            if self.save_if_unchanged(&env, read, batch).await?.is_ok() {
                return Ok(env);
            }
        }
    }

    /// Deployments, pods, services and config maps of every bound namespace with their state.
    pub async fn resources(&self, project: &str, code: &str) -> Result<EnvResources, EnvError> {
        let env = self.get(project, code)?;
        let mut resources = EnvResources {
            items: Vec::new(),
            summary: BTreeMap::new(),
            errors: Vec::new(),
        };
        for binding in &env.bindings {
            let objects = match self.clusters.client(&binding.cluster).await {
                Ok(client) => client
                    .namespace_objects(&binding.namespace)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match objects {
                Ok(objects) => {
                    resources
                        .items
                        .extend(objects.into_iter().map(|object| EnvObject {
                            cluster: binding.cluster.clone(),
                            object,
                        }))
                }
                Err(error) => resources.errors.push(BindingError {
                    cluster: binding.cluster.clone(),
                    namespace: binding.namespace.clone(),
                    error,
                }),
            }
        }
        for item in &resources.items {
            *resources
                .summary
                .entry(item.object.kind.clone())
                .or_default()
                .entry(item.object.state.clone())
                .or_default() += 1;
        }
        Ok(resources)
    }
}
