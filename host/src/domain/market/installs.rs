//! Install records (`v1/market-installs/<project>/<id>`) and creating one: the template
//! fetched through the market's plugin, planned, checked as deploy specs, then every app,
//! deploy config and the record itself written in one store batch, so a failure leaves
//! nothing behind. A claim per (project, group, market, app id) makes the same template
//! into the same group one install, whichever host or request gets there first.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::MarketError;
use super::connections::{Connections, Market};
use super::plan::{self, PlannedComponent};
use crate::domain::apps::{self, Apps};
use crate::domain::deploy_configs::{self, DeployConfig};
use crate::domain::environments::Environments;
use crate::domain::projects;
use crate::domain::spec::DeploySpec;
use crate::runtime::Runtime;
use crate::runtime::catalog::{MarketRef, Template};
use crate::store::{Batch, Store, StoreError};

/// The deploy config each installed app gets in the install's environment.
pub const DEPLOY_CONFIG_NAME: &str = "market";
/// Events kept per install.
const MAX_EVENTS: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum InstallState {
    /// Created, nothing deployed.
    Installed,
    Deploying,
    /// Every component's deployment ran to its end.
    Running,
    /// A component failed; its message says why.
    Failed,
    Uninstalling,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum ComponentState {
    /// App and deploy config exist; not deployed.
    Created,
    /// Waiting for its dependencies.
    Waiting,
    Deploying,
    Running,
    Failed,
    /// Being removed (uninstall, or gone from an upgrade's version).
    Removing,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstalledComponent {
    #[serde(flatten)]
    pub plan: PlannedComponent,
    /// The app's id (32 hex).
    pub app_id: String,
    /// Id of its deploy config in the install's environment.
    pub deploy_config: String,
    pub state: ComponentState,
    /// The change order deploying (or removing) it.
    pub change_order: Option<String>,
    pub message: String,
    /// Whether the install created the component's config-file item (and so removes it).
    #[serde(default)]
    pub files_owned: bool,
}

/// The version an upgrade replaced, kept for rollback.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PreviousVersion {
    pub version: String,
    pub components: Vec<PlannedComponent>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstallEvent {
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub at: OffsetDateTime,
    pub actor: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Install {
    /// 32 hex digits.
    pub id: String,
    /// Sequence number across the store (seed 000 `tenant_service_group_id`).
    pub number: u64,
    pub project: String,
    /// The app group's id.
    pub group: String,
    /// The environment's code.
    pub env: String,
    /// The market's id and name.
    pub market: String,
    pub market_name: String,
    pub plugin: String,
    pub app_id: String,
    pub app_name: String,
    pub version: String,
    pub template_updated_at: String,
    /// Whether components are deployed (install with deploy, or any upgrade).
    pub deploy: bool,
    pub state: InstallState,
    /// In deploy order.
    pub components: Vec<InstalledComponent>,
    pub previous: Option<PreviousVersion>,
    pub events: Vec<InstallEvent>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub updated_at: OffsetDateTime,
    pub created_by: String,
    /// Who asked for what the install is doing now (install, upgrade, rollback,
    /// uninstall): its change orders are requested as them.
    #[serde(default)]
    pub requested_by: String,
}

impl Install {
    pub fn note(&mut self, actor: &str, message: impl Into<String>) {
        let at = OffsetDateTime::now_utc();
        self.updated_at = at;
        self.events.push(InstallEvent {
            at,
            actor: actor.to_owned(),
            message: message.into(),
        });
        if self.events.len() > MAX_EVENTS {
            let extra = self.events.len() - MAX_EVENTS;
            self.events.drain(..extra);
        }
    }

    /// What the audit log keeps of an install: no variable values (generated passwords
    /// among them).
    pub fn audit_view(&self) -> serde_json::Value {
        json!({
            "id": self.id,
            "project": self.project,
            "group": self.group,
            "env": self.env,
            "market": self.market,
            "appId": self.app_id,
            "version": self.version,
            "state": self.state,
            "components": self.components.iter().map(|c| json!({
                "key": c.plan.key, "app": c.plan.app, "image": c.plan.image, "state": c.state,
            })).collect::<Vec<_>>(),
        })
    }

    pub fn scope(&self) -> String {
        format!("project:{}/env:{}", self.project, self.env)
    }
}

/// What an install asks for.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InstallRequest {
    /// Market id or name.
    pub market: String,
    pub app_id: String,
    pub version: String,
    /// App group id or name.
    pub group: String,
    /// Environment code.
    pub env: String,
    /// Deploy every component once created.
    #[serde(default)]
    pub deploy: bool,
}

pub(super) fn key(project: &str, id: &str) -> String {
    Store::key(&["market-installs", project, id])
}

fn claim_key(project: &str, group: &str, market: &str, app_id: &str) -> String {
    let digest = hex::encode(Sha256::digest(app_id.as_bytes()));
    Store::key(&["market-install-claims", project, group, market, &digest])
}

fn sequence_key() -> String {
    Store::key(&["market-install-sequence"])
}

fn invalid(field: &str, message: impl Into<String>) -> MarketError {
    MarketError::Invalid {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// The config item holding a component's config files, mounted at their paths.
pub fn files_item(component: &PlannedComponent) -> String {
    format!("{}-files", component.workload)
}

/// The key of a config-file volume in [`files_item`].
pub fn file_key(volume_name: &str) -> String {
    let key: String = volume_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                c
            } else {
                '-'
            }
        })
        .take(253)
        .collect();
    if key.is_empty() {
        "file".to_owned()
    } else {
        key
    }
}

/// A component's config-file volumes: key, mount path, content.
pub fn config_files(component: &PlannedComponent) -> Vec<(String, String, String)> {
    component
        .volumes
        .iter()
        .filter(|v| v.kind == "config-file")
        .filter_map(|v| {
            v.content
                .as_ref()
                .map(|content| (file_key(&v.name), v.path.clone(), content.clone()))
        })
        .collect()
}

/// The deploy spec a component is deployed with (its deploy config applied).
pub fn deploy_spec(component: &PlannedComponent) -> Value {
    let files = config_files(component);
    let mut spec = deploy_spec_without_files(component);
    if !files.is_empty() {
        spec["configMgtList"] = json!([{
            "mountSource": files_item(component),
            "mountConfigList": files.iter().map(|(key, path, _)| json!({"name": key, "mountPath": path})).collect::<Vec<_>>(),
        }]);
    }
    spec
}

fn deploy_spec_without_files(component: &PlannedComponent) -> Value {
    json!({
        "image": component.image,
        "replicas": component.replicas,
        "ports": component.ports.iter().map(|p| json!({
            "containerPort": p.container_port,
            "protocol": if p.protocol.eq_ignore_ascii_case("udp") { "UDP" } else { "TCP" },
        })).collect::<Vec<_>>(),
        "deployConfig": DEPLOY_CONFIG_NAME,
    })
}

/// The Service over a component's ports (seed 001 5.3.1 shape).
pub fn service_spec(component: &PlannedComponent) -> Option<Value> {
    let name = component.service.as_ref()?;
    Some(json!({
        "name": name,
        "type": "ClusterIP",
        "servicesPorts": component.ports.iter().map(|p| json!({
            "port": p.container_port,
            "targetPort": p.container_port,
            "protocol": if p.protocol.eq_ignore_ascii_case("udp") { "UDP" } else { "TCP" },
        })).collect::<Vec<_>>(),
    }))
}

/// The deploy config parts of a component: env vars, resources, start command — checked
/// as a deploy spec, so what would fail at deploy time fails at install time, named.
fn checked_config_parts(component: &PlannedComponent) -> Result<DeploySpec, MarketError> {
    let mut spec = json!({
        "image": component.image,
        "replicas": component.replicas,
        "envVariableList": component.env.iter().map(|e| json!({"name": e.name, "value": e.value})).collect::<Vec<_>>(),
        "podResourceSpec": {
            "cpuRequest": component.cpu_millicores,
            "cpuLimit": component.cpu_millicores,
            "memoryRequest": component.memory_mb,
            "memoryLimit": component.memory_mb,
        },
    });
    if let Some(command) = &component.command {
        spec["startCommand"] = json!({ "command": command });
    }
    if let Some(ports) = deploy_spec_without_files(component).get("ports") {
        spec["ports"] = ports.clone();
    }
    let fail = |message: String| MarketError::Component {
        component: component.key.clone(),
        message,
    };
    let spec: DeploySpec =
        crate::domain::rollout::parse(spec, "").map_err(|e| fail(e.to_string()))?;
    spec.validate().map_err(|e| fail(e.to_string()))?;
    if let Some(service) = service_spec(component) {
        let service: crate::domain::spec::ServiceSpec =
            serde_json::from_value(service).map_err(|e| fail(e.to_string()))?;
        service.validate().map_err(|e| fail(e.to_string()))?;
    }
    Ok(spec)
}

/// Installs over the store, the app model and the market plugins.
#[derive(Clone)]
pub struct Installs {
    store: Store,
    runtime: Runtime,
    connections: Connections,
    apps: Apps,
    envs: Environments,
}

impl Installs {
    pub fn new(
        store: Store,
        runtime: Runtime,
        connections: Connections,
        apps: Apps,
        envs: Environments,
    ) -> Self {
        Self {
            store,
            runtime,
            connections,
            apps,
            envs,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn connections(&self) -> &Connections {
        &self.connections
    }

    pub fn config_items(&self) -> crate::domain::config_items::ConfigItems {
        crate::domain::config_items::ConfigItems::new(self.envs.clone())
    }

    pub fn environments(&self) -> &Environments {
        &self.envs
    }

    pub fn get(&self, project: &str, id: &str) -> Result<Install, MarketError> {
        self.store
            .get_json(&key(project, id))?
            .ok_or_else(|| MarketError::InstallNotFound(id.to_owned()))
    }

    /// The project's installs, newest first.
    pub fn list(&self, project: &str) -> Result<Vec<Install>, MarketError> {
        let prefix = format!("{}/", Store::key(&["market-installs", project]));
        let mut all: Vec<Install> = self.store.list_json(&prefix)?;
        all.sort_by(|a, b| b.created_at.cmp(&a.created_at));
        Ok(all)
    }

    /// Every install of every project (for resuming and for market deletion).
    pub fn all(&self) -> Result<Vec<Install>, MarketError> {
        Ok(self
            .store
            .list_json(&format!("{}/", Store::key(&["market-installs"])))?)
    }

    /// The template `version` of `app_id` from `market`, every plugin answer mapped.
    pub async fn template(
        &self,
        market: &Market,
        reference: &MarketRef,
        app_id: &str,
        version: &str,
    ) -> Result<Template, MarketError> {
        let template = self
            .runtime
            .get_template(&market.plugin, reference, app_id, version)
            .await
            .map_err(|e| MarketError::from_call(&market.name, e))?
            .map_err(|fault| MarketError::Catalog {
                market: market.name.clone(),
                fault,
            })?;
        Ok(template)
    }

    /// The app group record `id` of `project`.
    pub fn group_record(&self, project: &str, id: &str) -> Result<apps::AppGroup, MarketError> {
        self.apps
            .group(project, id)
            .map_err(|e| invalid("group", e.to_string()))
    }

    /// The group by id or name.
    pub fn group_id(&self, project: &str, group: &str) -> Result<String, MarketError> {
        if let Ok(found) = self.apps.group(project, group) {
            return Ok(found.id);
        }
        let groups = self.apps.groups(project).map_err(|e| match e {
            apps::AppError::ProjectNotFound(p) => {
                invalid("project", format!("project `{p}` does not exist"))
            }
            other => invalid("group", other.to_string()),
        })?;
        groups
            .into_iter()
            .find(|g| g.name == group)
            .map(|g| g.id)
            .ok_or_else(|| {
                invalid(
                    "group",
                    format!("app group `{group}` does not exist in project `{project}`"),
                )
            })
    }

    /// The install already claiming this template in this group, if any.
    pub fn existing(
        &self,
        project: &str,
        group: &str,
        market: &str,
        app_id: &str,
    ) -> Result<Option<Install>, MarketError> {
        match self
            .store
            .get_json::<String>(&claim_key(project, group, market, app_id))?
        {
            Some(id) => Ok(self.store.get_json(&key(project, &id))?),
            None => Ok(None),
        }
    }

    /// Creates the install: returns it and whether it is new (false: the same template
    /// version was installed into the group before, and that install is returned).
    pub async fn create(
        &self,
        project: &str,
        request: &InstallRequest,
        key_override: Option<String>,
        actor: &str,
    ) -> Result<(Install, bool), MarketError> {
        let market = self.connections.get(&request.market).map_err(|e| match e {
            MarketError::NotFound(m) => invalid("market", format!("no market `{m}`")),
            other => other,
        })?;
        let environment = self
            .envs
            .get(project, &request.env)
            .map_err(|e| invalid("env", e.to_string()))?;
        if request.deploy && environment.bindings.is_empty() {
            return Err(invalid(
                "env",
                format!(
                    "environment `{}` has no cluster namespace bound; bind one before deploying",
                    request.env
                ),
            ));
        }
        let group = self.group_id(project, &request.group)?;
        if let Some(install) = self.existing(project, &group, &market.id, &request.app_id)? {
            return self.same_or_conflict(install, request, actor).await;
        }
        let mut reference = self.connections.reference(&market)?;
        if key_override.is_some() {
            reference.access_key = key_override;
        }
        let template = self
            .template(&market, &reference, &request.app_id, &request.version)
            .await?;
        for attempt in 0.. {
            let planned = plan::plan(
                &template,
                &|name| Ok(apps::name_taken(&self.store, project, name)?),
                &[],
            )?;
            let install =
                self.draft(project, &group, request, &market, &template, planned, actor)?;
            match self.write_new(install).await? {
                Written::Done(install) => return Ok((*install, true)),
                Written::Claimed => {
                    if let Some(other) =
                        self.existing(project, &group, &market.id, &request.app_id)?
                    {
                        return self.same_or_conflict(other, request, actor).await;
                    }
                }
                Written::Raced if attempt < 5 => {}
                Written::Raced => {
                    return Err(MarketError::Conflict(
                        "the project kept changing while installing; try again".into(),
                    ));
                }
            }
        }
        unreachable!("the loop returns")
    }

    /// The install already claiming the template in the group, as the answer to asking
    /// for it again: the same version into the same environment, deployed if now asked.
    async fn same_or_conflict(
        &self,
        install: Install,
        request: &InstallRequest,
        actor: &str,
    ) -> Result<(Install, bool), MarketError> {
        let conflict = |why: String| Err(MarketError::Conflict(why));
        if install.state == InstallState::Uninstalling {
            return conflict(format!(
                "install {} of `{}` in this group is being uninstalled; try again once it is gone",
                install.id, install.app_id
            ));
        }
        if install.env != request.env {
            return conflict(format!(
                "app `{}` is installed in this group into environment `{}` (install {}); one group holds one install of an app",
                install.app_id, install.env, install.id
            ));
        }
        if install.version != request.version {
            return conflict(format!(
                "app `{}` is installed in this group at version {} (install {}); upgrade it instead",
                install.app_id, install.version, install.id
            ));
        }
        if request.deploy && install.state == InstallState::Installed {
            let deployed = self
                .update(&install.project, &install.id, |i| {
                    if i.state == InstallState::Installed {
                        i.state = InstallState::Deploying;
                        i.deploy = true;
                        i.requested_by = actor.to_owned();
                        i.note(actor, "deploy every component");
                    }
                    Ok(())
                })
                .await?;
            return Ok((deployed, false));
        }
        Ok((install, false))
    }

    #[allow(clippy::too_many_arguments)]
    fn draft(
        &self,
        project: &str,
        group: &str,
        request: &InstallRequest,
        market: &Market,
        template: &Template,
        planned: Vec<PlannedComponent>,
        actor: &str,
    ) -> Result<Install, MarketError> {
        let now = OffsetDateTime::now_utc();
        let components = planned
            .into_iter()
            .map(|plan| {
                checked_config_parts(&plan)?;
                Ok(InstalledComponent {
                    plan,
                    app_id: String::new(),
                    deploy_config: String::new(),
                    state: ComponentState::Created,
                    change_order: None,
                    message: String::new(),
                    files_owned: false,
                })
            })
            .collect::<Result<Vec<_>, MarketError>>()?;
        let mut install = Install {
            id: uuid::Uuid::new_v4().simple().to_string(),
            number: 0,
            project: project.to_owned(),
            group: group.to_owned(),
            env: request.env.clone(),
            market: market.id.clone(),
            market_name: market.name.clone(),
            plugin: market.plugin.clone(),
            app_id: request.app_id.clone(),
            app_name: template.app_name.clone(),
            version: template.version.clone(),
            template_updated_at: template.updated_at.clone(),
            deploy: request.deploy,
            state: if request.deploy {
                InstallState::Deploying
            } else {
                InstallState::Installed
            },
            components,
            previous: None,
            events: Vec::new(),
            created_at: now,
            updated_at: now,
            created_by: actor.to_owned(),
            requested_by: actor.to_owned(),
        };
        install.note(
            actor,
            format!(
                "install {} {} from market {} ({} components)",
                install.app_id,
                install.version,
                market.name,
                install.components.len()
            ),
        );
        Ok(install)
    }

    /// The app and deploy config records of `component`, for a batch.
    fn component_records(
        &self,
        install: &Install,
        component: &mut InstalledComponent,
    ) -> Result<(apps::App, DeployConfig), MarketError> {
        let app = apps::draft(
            &install.project,
            &component.plan.app,
            &format!(
                "{} from {} {} (market {})",
                component.plan.name, install.app_id, install.version, install.market_name
            )
            .chars()
            .take(500)
            .collect::<String>(),
            Some(&install.group),
            &install.created_by,
        );
        let spec = checked_config_parts(&component.plan)?;
        let config = new_config(install, &app.name, &spec);
        component.app_id = app.id.clone();
        component.deploy_config = config.id.clone();
        Ok((app, config))
    }

    /// The creating batch: the sequence number, every app with its deploy config, the
    /// project's count of apps, the record and its claim.
    async fn write_new(&self, mut install: Install) -> Result<Written, MarketError> {
        let sequence_read = self.store.get_raw(&sequence_key())?;
        let number = match &sequence_read {
            Some(bytes) => serde_json::from_slice::<u64>(bytes).unwrap_or(0) + 1,
            None => 1,
        };
        install.number = number;
        let mut batch = Batch::new()
            .unchanged(&sequence_key(), sequence_read)
            .put_json(&sequence_key(), &number)?;
        let mut owner = projects::dependents(&self.store, &install.project)?;
        let mut components = std::mem::take(&mut install.components);
        for component in &mut components {
            let (app, config) = self.component_records(&install, component)?;
            batch = apps::create_in(batch, &app)?;
            batch = deploy_configs::create_in(batch, &config)?;
            let app_owner = apps::dependents(&self.store, &install.project, &app.name)?;
            batch = app_owner.add("deploy-configs").write(batch)?;
            owner = owner.add("apps");
        }
        install.components = components;
        batch = owner.write(batch)?;
        batch = projects::exists(batch, &install.project);
        batch = apps::group_exists(batch, &install.project, &install.group);
        let claim = claim_key(
            &install.project,
            &install.group,
            &install.market,
            &install.app_id,
        );
        batch = batch
            .absent(&claim)
            .put_json(&claim, &install.id)?
            .put_json(&key(&install.project, &install.id), &install)?;
        match self.store.apply(&batch)? {
            Ok(()) => {
                self.store.commit().await?;
                Ok(Written::Done(Box::new(install)))
            }
            Err(conflict) if conflict.key == claim.as_bytes() => Ok(Written::Claimed),
            Err(conflict) if projects::is_record(&install.project, &conflict.key) => Err(invalid(
                "project",
                format!("project `{}` does not exist", install.project),
            )),
            Err(conflict)
                if conflict.key
                    == Store::key(&["app-groups", &install.project, &install.group]).as_bytes() =>
            {
                Err(invalid("group", "the app group was deleted meanwhile"))
            }
            Err(_) => Ok(Written::Raced),
        }
    }

    /// Stores `install` if it is still as `read`; false when someone changed it meanwhile.
    pub async fn save(&self, read: &[u8], install: &Install) -> Result<bool, MarketError> {
        let k = key(&install.project, &install.id);
        let batch = Batch::new()
            .equals(&k, read.to_vec())
            .put_json(&k, install)?;
        match self.store.apply(&batch)? {
            Ok(()) => {
                self.store.commit().await?;
                Ok(true)
            }
            Err(_) => Ok(false),
        }
    }

    /// Reads, changes and stores an install under compare-and-swap; `change` runs once per
    /// attempt and may refuse.
    pub async fn update<F>(
        &self,
        project: &str,
        id: &str,
        mut change: F,
    ) -> Result<Install, MarketError>
    where
        F: FnMut(&mut Install) -> Result<(), MarketError>,
    {
        loop {
            let k = key(project, id);
            let read = self
                .store
                .get_raw(&k)?
                .ok_or_else(|| MarketError::InstallNotFound(id.to_owned()))?;
            let mut install: Install =
                serde_json::from_slice(&read).map_err(|e| StoreError::Corrupt {
                    key: k.clone(),
                    reason: e.to_string(),
                })?;
            change(&mut install)?;
            if self.save(&read, &install).await? {
                return Ok(install);
            }
        }
    }

    /// Removes the record and its claim (the last step of an uninstall).
    pub async fn forget(&self, install: &Install) -> Result<(), MarketError> {
        let batch = Batch::new()
            .delete(&key(&install.project, &install.id))
            .delete(&claim_key(
                &install.project,
                &install.group,
                &install.market,
                &install.app_id,
            ));
        self.store.apply(&batch)?.map_err(|_| {
            MarketError::Conflict("the install changed while it was being removed".into())
        })?;
        self.store.commit().await?;
        Ok(())
    }

    /// Creates the app and deploy config of a component an upgrade adds.
    pub async fn add_component(
        &self,
        install: &Install,
        component: &mut InstalledComponent,
    ) -> Result<(), MarketError> {
        let (app, config) = self.component_records(install, component)?;
        let owner = projects::dependents(&self.store, &install.project)?;
        let app_owner = apps::dependents(&self.store, &install.project, &app.name)?;
        let mut batch = apps::create_in(Batch::new(), &app)?;
        batch = deploy_configs::create_in(batch, &config)?;
        batch = app_owner.add("deploy-configs").write(batch)?;
        batch = owner.add("apps").write(batch)?;
        batch = projects::exists(batch, &install.project);
        match self.store.apply(&batch)? {
            Ok(()) => {
                self.store.commit().await?;
                Ok(())
            }
            Err(_) => Err(MarketError::Component {
                component: component.plan.key.clone(),
                message: format!(
                    "app `{}` could not be created: the name was taken meanwhile",
                    app.name
                ),
            }),
        }
    }

    /// Rewrites a component's deploy config from its plan (an upgrade changed it).
    pub async fn refresh_config(
        &self,
        install: &Install,
        component: &InstalledComponent,
    ) -> Result<(), MarketError> {
        let spec = checked_config_parts(&component.plan)?;
        let k = Store::key(&[
            "deploy-configs",
            &install.project,
            &component.plan.app,
            &component.deploy_config,
        ]);
        let project = install.project.clone();
        self.store
            .update_json::<DeployConfig, MarketError>(&k, |current| {
                let Some(mut config) = current else {
                    return Ok(Some(new_config_with_id(
                        &project,
                        install,
                        &component.plan.app,
                        &spec,
                        &component.deploy_config,
                    )));
                };
                config.env_variable_list = spec.env_variable_list.clone();
                config.pod_resource_spec = spec.pod_resource_spec;
                config.start_command = spec.start_command.clone();
                config.updated_at = OffsetDateTime::now_utc();
                Ok(Some(config))
            })?;
        self.store.commit().await?;
        Ok(())
    }
}

enum Written {
    /// Stored as returned (sequence number and record ids filled in).
    Done(Box<Install>),
    /// Another request claimed this template in this group first.
    Claimed,
    /// Something read changed (a name, a count); plan again.
    Raced,
}

fn new_config(install: &Install, app: &str, spec: &DeploySpec) -> DeployConfig {
    new_config_with_id(
        &install.project,
        install,
        app,
        spec,
        &uuid::Uuid::new_v4().simple().to_string(),
    )
}

fn new_config_with_id(
    project: &str,
    install: &Install,
    app: &str,
    spec: &DeploySpec,
    id: &str,
) -> DeployConfig {
    let now = OffsetDateTime::now_utc();
    DeployConfig {
        id: id.to_owned(),
        project: project.to_owned(),
        app: app.to_owned(),
        env: install.env.clone(),
        name: DEPLOY_CONFIG_NAME.to_owned(),
        env_variable_list: spec.env_variable_list.clone(),
        life_cycle_mgt: None,
        pod_resource_spec: spec.pod_resource_spec,
        start_command: spec.start_command.clone(),
        created_at: now,
        updated_at: now,
        created_by: install.created_by.clone(),
        updated_by: install.created_by.clone(),
    }
}
