//! Deploy configs (seed 001 §5.5): named, reusable parts of a deploy spec — env vars,
//! health checks, pod resources, start command — for one app in one environment,
//! stored at `v1/deploy-configs/<project>/<app>/<id>`. Names are unique per app ×
//! environment. A deploy request may name a config to start from
//! ([`DeployConfig::apply_to`]): what the request leaves out comes from the config.
//! The sub-types and their rules are the deploy spec's (`domain::spec`); env vars of type
//! CONFIG_ITEM must name config items of the environment.

use serde::{Deserialize, Deserializer, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::config_items;
use super::environments::{EnvError, Environments};
use super::spec::{
    self, DeploySpec, EnvVarType, EnvVariable, LifeCycleMgt, PodResourceSpec, SpecError,
    StartCommand,
};
use crate::store::{Batch, Store, StoreError};

/// Longest config name (characters).
pub const MAX_NAME: usize = 50;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeployConfig {
    /// 32 hex digits.
    pub id: String,
    pub project: String,
    pub app: String,
    /// The environment's code.
    pub env: String,
    /// 1–50 characters, unique per app and environment.
    pub name: String,
    pub env_variable_list: Vec<EnvVariable>,
    pub life_cycle_mgt: Option<LifeCycleMgt>,
    pub pod_resource_spec: Option<PodResourceSpec>,
    pub start_command: Option<StartCommand>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub updated_at: OffsetDateTime,
    pub created_by: String,
    pub updated_by: String,
}

/// Seed 001 5.5.1.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewDeployConfig {
    pub name: String,
    /// The environment's code.
    #[serde(alias = "envCode")]
    pub env: String,
    #[serde(default)]
    pub env_variable_list: Vec<EnvVariable>,
    pub life_cycle_mgt: Option<LifeCycleMgt>,
    pub pod_resource_spec: Option<PodResourceSpec>,
    pub start_command: Option<StartCommand>,
}

/// Some(None) for an explicit `null`, None when the field is absent.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A partial update: absent fields stay; `null` clears a section.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeployConfigUpdate {
    pub name: Option<String>,
    pub env_variable_list: Option<Vec<EnvVariable>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<LifeCycleMgt>, nullable)]
    pub life_cycle_mgt: Option<Option<LifeCycleMgt>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<PodResourceSpec>, nullable)]
    pub pod_resource_spec: Option<Option<PodResourceSpec>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<StartCommand>, nullable)]
    pub start_command: Option<Option<StartCommand>>,
}

#[derive(Debug, thiserror::Error)]
pub enum DeployConfigError {
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("app `{0}` does not exist")]
    AppNotFound(String),
    #[error("deploy config `{0}` does not exist")]
    NotFound(String),
    #[error("a deploy config named `{name}` exists for this app in environment `{env}`")]
    NameTaken { name: String, env: String },
    #[error("several deploy configs of this app are named `{0}` (one per environment); use the id")]
    Ambiguous(String),
    #[error(transparent)]
    Env(#[from] EnvError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<SpecError> for DeployConfigError {
    fn from(e: SpecError) -> Self {
        match e {
            SpecError::Invalid { field, message } => Self::Invalid { field, message },
        }
    }
}

fn invalid(field: &str, message: impl Into<String>) -> DeployConfigError {
    DeployConfigError::Invalid {
        field: field.to_owned(),
        message: message.into(),
    }
}

fn key(project: &str, app: &str, id: &str) -> String {
    Store::key(&["deploy-configs", project, app, id])
}

/// Claim of a config name for one app × environment: two creates cannot both take it.
fn name_claim_key(config: &DeployConfig) -> String {
    Store::key(&[
        "deploy-config-names",
        &config.project,
        &config.app,
        &config.env,
        &config.name,
    ])
}

fn app_prefix(project: &str, app: &str) -> String {
    format!("{}/", Store::key(&["deploy-configs", project, app]))
}

/// Adds to `batch` what creating `config` takes (its record and name claim new), for a
/// batch that creates the config's app as well; the app's count of configs is the
/// caller's to write.
pub(crate) fn create_in(batch: Batch, config: &DeployConfig) -> Result<Batch, StoreError> {
    let config_key = key(&config.project, &config.app, &config.id);
    let claim = name_claim_key(config);
    batch
        .absent(&config_key)
        .absent(&claim)
        .put_json(&config_key, config)?
        .put_json(&claim, &config.id)
}

/// Every deploy config of an app, oldest first.
pub fn of_app(store: &Store, project: &str, app: &str) -> Result<Vec<DeployConfig>, StoreError> {
    let mut configs: Vec<DeployConfig> = store.list_json(&app_prefix(project, app))?;
    configs.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    Ok(configs)
}

/// The app's config with this id, or else the only one with this name.
pub fn find(
    store: &Store,
    project: &str,
    app: &str,
    config: &str,
) -> Result<Option<DeployConfig>, StoreError> {
    if let Some(found) = store.get_json(&key(project, app, config))? {
        return Ok(Some(found));
    }
    let mut named = of_app(store, project, app)?
        .into_iter()
        .filter(|c| c.name == config);
    Ok(match (named.next(), named.next()) {
        (Some(one), None) => Some(one),
        _ => None,
    })
}

/// The config with this id or name among the app's configs for `env`.
pub fn find_in_env(
    store: &Store,
    project: &str,
    app: &str,
    env: &str,
    config: &str,
) -> Result<Option<DeployConfig>, StoreError> {
    if let Some(found) = store.get_json::<DeployConfig>(&key(project, app, config))? {
        return Ok((found.env == env).then_some(found));
    }
    Ok(of_app(store, project, app)?
        .into_iter()
        .find(|c| c.env == env && c.name == config))
}

/// Removes every deploy config of an app (when the app goes).
pub fn delete_all_of_app(store: &Store, project: &str, app: &str) -> Result<(), StoreError> {
    for config in of_app(store, project, app)? {
        store.delete(&key(project, app, &config.id))?;
        store.delete(&name_claim_key(&config))?;
    }
    Ok(())
}

impl DeployConfig {
    /// Starts a deploy from this config: the request's own env vars win by name and the
    /// config's others are added before them; health checks, resources and the start
    /// command come from the config where the request has none.
    pub fn apply_to(&self, spec: &mut DeploySpec) {
        let mut vars: Vec<EnvVariable> = self
            .env_variable_list
            .iter()
            .filter(|v| !spec.env_variable_list.iter().any(|own| own.name == v.name))
            .cloned()
            .collect();
        vars.append(&mut spec.env_variable_list);
        spec.env_variable_list = vars;
        if let Some(checks) = &self.life_cycle_mgt {
            let own = spec
                .life_cycle_mgt
                .get_or_insert_with(LifeCycleMgt::default);
            if own.liveness.is_none() {
                own.liveness = checks.liveness.clone();
            }
            if own.readiness.is_none() {
                own.readiness = checks.readiness.clone();
            }
        }
        if spec.pod_resource_spec.is_none() {
            spec.pod_resource_spec = self.pod_resource_spec;
        }
        if spec.start_command.is_none() {
            spec.start_command = self.start_command.clone();
        }
    }
}

fn validate_name(name: &str) -> Result<(), DeployConfigError> {
    let length = name.chars().count();
    if name.trim().is_empty() || length > MAX_NAME || name.chars().any(char::is_control) {
        return Err(invalid(
            "name",
            format!("1-{MAX_NAME} characters, not blank, on one line"),
        ));
    }
    if name.contains('/') {
        return Err(invalid("name", "must not contain `/`"));
    }
    Ok(())
}

/// Deploy configs over the store and the environments.
#[derive(Clone)]
pub struct DeployConfigs {
    store: Store,
    envs: Environments,
}

impl DeployConfigs {
    pub fn new(envs: Environments) -> Self {
        Self {
            store: envs.clusters().store().clone(),
            envs,
        }
    }

    /// The project and the app exist (404s otherwise).
    fn check_app(&self, project: &str, app: &str) -> Result<(), DeployConfigError> {
        self.envs.list(project, None)?;
        match self
            .store
            .get_json::<serde_json::Value>(&Store::key(&["apps", project, app]))?
        {
            Some(_) => Ok(()),
            None => Err(DeployConfigError::AppNotFound(app.to_owned())),
        }
    }

    /// The app's configs, optionally of one environment.
    pub fn list(
        &self,
        project: &str,
        app: &str,
        env: Option<&str>,
    ) -> Result<Vec<DeployConfig>, DeployConfigError> {
        self.check_app(project, app)?;
        if let Some(env) = env {
            self.envs.get(project, env)?;
        }
        Ok(of_app(&self.store, project, app)?
            .into_iter()
            .filter(|c| env.is_none_or(|e| c.env == e))
            .collect())
    }

    /// A config by id, or by name when only one config of the app has it.
    pub fn get(
        &self,
        project: &str,
        app: &str,
        config: &str,
    ) -> Result<DeployConfig, DeployConfigError> {
        self.check_app(project, app)?;
        if let Some(found) = self.store.get_json(&key(project, app, config))? {
            return Ok(found);
        }
        let named: Vec<DeployConfig> = of_app(&self.store, project, app)?
            .into_iter()
            .filter(|c| c.name == config)
            .collect();
        match named.len() {
            0 => Err(DeployConfigError::NotFound(config.to_owned())),
            1 => Ok(named.into_iter().next().expect("one")),
            _ => Err(DeployConfigError::Ambiguous(config.to_owned())),
        }
    }

    /// Checks the parts against the spec's rules and the environment's config items.
    fn validate(&self, config: &DeployConfig) -> Result<(), DeployConfigError> {
        validate_name(&config.name)?;
        spec::validate_env_vars(&config.env_variable_list, "envVariableList")?;
        if let Some(checks) = &config.life_cycle_mgt {
            checks.validate("lifeCycleMgt")?;
        }
        if let Some(resources) = &config.pod_resource_spec {
            resources.validate("podResourceSpec")?;
        }
        if let Some(command) = &config.start_command {
            command.validate("startCommand")?;
        }
        let items = config_items::names_in(&self.store, &config.project, &config.env, None)?;
        for (i, var) in config.env_variable_list.iter().enumerate() {
            if var.var_type != EnvVarType::ConfigItem {
                continue;
            }
            if let Some(item) = &var.config_item
                && !items.contains(item)
            {
                return Err(invalid(
                    &format!("envVariableList[{i}].configItem"),
                    format!("environment `{}` has no config item `{item}`", config.env),
                ));
            }
        }
        Ok(())
    }

    fn name_free(&self, config: &DeployConfig) -> Result<(), DeployConfigError> {
        let taken = of_app(&self.store, &config.project, &config.app)?
            .iter()
            .any(|c| c.id != config.id && c.env == config.env && c.name == config.name);
        if taken {
            return Err(DeployConfigError::NameTaken {
                name: config.name.clone(),
                env: config.env.clone(),
            });
        }
        Ok(())
    }

    /// Writes `after` (and its name claim) if the stored config is still `read`
    /// (`None`: a new config, counted on its app); false when it lost a race on its own
    /// record, to be read again.
    async fn save(
        &self,
        before: Option<&DeployConfig>,
        read: Option<Vec<u8>>,
        after: &DeployConfig,
    ) -> Result<bool, DeployConfigError> {
        let config_key = key(&after.project, &after.app, &after.id);
        let claim = name_claim_key(after);
        let mut batch = Batch::new()
            .unchanged(&config_key, read)
            .put_json(&config_key, after)?;
        let renamed = before.is_none_or(|b| name_claim_key(b) != claim);
        if renamed {
            batch = batch.absent(&claim).put_json(&claim, &after.id)?;
            if let Some(before) = before {
                batch = batch.delete(&name_claim_key(before));
            }
        }
        if before.is_none() {
            let owner = super::apps::dependents(&self.store, &after.project, &after.app)?;
            batch = owner.add("deploy-configs").write(super::apps::exists(
                batch,
                &after.project,
                &after.app,
            ))?;
        }
        match self.store.apply(&batch)? {
            Ok(()) => {
                self.store.commit().await?;
                Ok(true)
            }
            Err(conflict) if conflict.key == claim.as_bytes() => {
                Err(DeployConfigError::NameTaken {
                    name: after.name.clone(),
                    env: after.env.clone(),
                })
            }
            Err(conflict)
                if conflict.key == Store::key(&["apps", &after.project, &after.app]).as_bytes() =>
            {
                Err(DeployConfigError::AppNotFound(after.app.clone()))
            }
            Err(_) => Ok(false),
        }
    }

    /// Seed 001 5.5.1.
    pub async fn create(
        &self,
        project: &str,
        app: &str,
        new: NewDeployConfig,
        actor: &str,
    ) -> Result<DeployConfig, DeployConfigError> {
        self.check_app(project, app)?;
        self.envs.get(project, &new.env)?;
        let now = OffsetDateTime::now_utc();
        let config = DeployConfig {
            id: uuid::Uuid::new_v4().simple().to_string(),
            project: project.to_owned(),
            app: app.to_owned(),
            env: new.env,
            name: new.name,
            env_variable_list: new.env_variable_list,
            life_cycle_mgt: new.life_cycle_mgt,
            pod_resource_spec: new.pod_resource_spec,
            start_command: new.start_command,
            created_at: now,
            updated_at: now,
            created_by: actor.to_owned(),
            updated_by: actor.to_owned(),
        };
        self.validate(&config)?;
        self.name_free(&config)?;
        while !self.save(None, None, &config).await? {}
        Ok(config)
    }

    /// Changes what the update names; returns (before, after).
    pub async fn update(
        &self,
        project: &str,
        app: &str,
        config: &str,
        update: DeployConfigUpdate,
        actor: &str,
    ) -> Result<(DeployConfig, DeployConfig), DeployConfigError> {
        loop {
            let before = self.get(project, app, config)?;
            let read = self.store.get_raw(&key(project, app, &before.id))?;
            let mut after = before.clone();
            if let Some(name) = &update.name {
                after.name = name.clone();
            }
            if let Some(vars) = &update.env_variable_list {
                after.env_variable_list = vars.clone();
            }
            if let Some(checks) = &update.life_cycle_mgt {
                after.life_cycle_mgt = checks.clone();
            }
            if let Some(resources) = &update.pod_resource_spec {
                after.pod_resource_spec = resources.clone();
            }
            if let Some(command) = &update.start_command {
                after.start_command = command.clone();
            }
            after.updated_at = OffsetDateTime::now_utc();
            after.updated_by = actor.to_owned();
            self.validate(&after)?;
            self.name_free(&after)?;
            if self.save(Some(&before), read, &after).await? {
                return Ok((before, after));
            }
        }
    }

    pub async fn delete(
        &self,
        project: &str,
        app: &str,
        config: &str,
    ) -> Result<DeployConfig, DeployConfigError> {
        loop {
            let found = self.get(project, app, config)?;
            let config_key = key(project, app, &found.id);
            let read = self.store.get_raw(&config_key)?;
            let owner = super::apps::dependents(&self.store, project, app)?;
            let batch = Batch::new()
                .unchanged(&config_key, read)
                .delete(&config_key)
                .delete(&name_claim_key(&found));
            let batch = owner.remove("deploy-configs").write(batch)?;
            if self.store.apply(&batch)?.is_ok() {
                self.store.commit().await?;
                return Ok(found);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(value: serde_json::Value) -> DeployConfig {
        let mut base = json!({
            "id": "c1", "project": "shop", "app": "cart", "env": "dev", "name": "base",
            "envVariableList": [], "lifeCycleMgt": null, "podResourceSpec": null, "startCommand": null,
            "createdAt": "2024-01-01T00:00:00Z", "updatedAt": "2024-01-01T00:00:00Z",
            "createdBy": "admin", "updatedBy": "admin"
        });
        for (k, v) in value.as_object().expect("object") {
            base[k] = v.clone();
        }
        serde_json::from_value(base).expect("config")
    }

    #[test]
    fn a_config_fills_in_what_the_request_leaves_out() {
        let c = config(json!({
            "envVariableList": [{"name": "A", "value": "from-config"}, {"name": "B", "value": "config-only"}],
            "lifeCycleMgt": {
                "liveness": {"mode": "TCP_SOCKET", "tcpSocket": {"port": 80}},
                "readiness": {"mode": "TCP_SOCKET", "tcpSocket": {"port": 81}}
            },
            "podResourceSpec": {"cpuRequest": 100, "cpuLimit": 200, "memoryRequest": 64, "memoryLimit": 128},
            "startCommand": {"command": "serve"}
        }));
        let mut spec: DeploySpec = serde_json::from_value(json!({
            "image": "nginx", "replicas": 1,
            "envVariableList": [{"name": "A", "value": "from-request"}, {"name": "C", "value": "request-only"}],
            "lifeCycleMgt": {"readiness": {"mode": "TCP_SOCKET", "tcpSocket": {"port": 9000}}},
            "startCommand": {"command": "other"}
        }))
        .expect("spec");
        c.apply_to(&mut spec);
        let vars: Vec<(&str, &str)> = spec
            .env_variable_list
            .iter()
            .map(|v| (v.name.as_str(), v.value.as_deref().unwrap_or("")))
            .collect();
        assert_eq!(
            vars,
            vec![
                ("B", "config-only"),
                ("A", "from-request"),
                ("C", "request-only")
            ]
        );
        let checks = spec.life_cycle_mgt.as_ref().expect("checks");
        assert_eq!(
            checks
                .liveness
                .as_ref()
                .and_then(|p| p.tcp_socket.as_ref())
                .and_then(|t| t.port),
            Some(80)
        );
        assert_eq!(
            checks
                .readiness
                .as_ref()
                .and_then(|p| p.tcp_socket.as_ref())
                .and_then(|t| t.port),
            Some(9000)
        );
        assert_eq!(spec.pod_resource_spec, c.pod_resource_spec);
        assert_eq!(
            spec.start_command.and_then(|s| s.command),
            Some("other".to_owned())
        );
        spec_is_valid_after_applying(&c);
    }

    fn spec_is_valid_after_applying(c: &DeployConfig) {
        let mut spec = DeploySpec::of_image("nginx", 1);
        c.apply_to(&mut spec);
        spec.validate().expect("valid");
    }

    #[test]
    fn names_and_updates_parse_as_documented() {
        assert!(validate_name("prod defaults").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name(&"x".repeat(51)).is_err());
        assert!(validate_name("a/b").is_err());
        let update: DeployConfigUpdate =
            serde_json::from_value(json!({"lifeCycleMgt": null, "name": "n"})).expect("update");
        assert_eq!(update.life_cycle_mgt, Some(None));
        assert!(update.pod_resource_spec.is_none());
        assert!(serde_json::from_value::<DeployConfigUpdate>(json!({"env": "prod"})).is_err());
    }
}
