//! Drives an install's components through change orders: deploys (dependencies first,
//! each one's Service after its pods), and removals (uninstall, or components an upgrade
//! dropped), in reverse order. Every step is stored on the install record (compare-and-
//! swap) before the next one is taken, so a restarted host resumes where the record says
//! it stood. A change order opened just before a crash, and not yet recorded, is adopted
//! when still in flight (`change-in-flight`); one that already ended is opened again.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::MarketError;
use super::installs::{self, ComponentState, Install, InstallState, Installs};
use crate::domain::apps::Apps;
use crate::domain::changes::ChangeState;
use crate::domain::config_items::{NewConfigItem, NewEntry};
use crate::domain::deployments::{self, DeploymentStatus};
use crate::domain::rollout::{DeployError, DeployRequest, Deployer, Requester};
use crate::domain::spec::ServiceSpec;

/// The actor of the driver's own notes; change orders are requested as the user who
/// asked for the install, upgrade or uninstall (`Install::requested_by`).
const SYSTEM_ACTOR: &str = "wharf";

/// How often a driver looks at the change orders it follows.
const POLL: Duration = Duration::from_millis(200);

/// Runs install drivers, at most one per install in this host.
#[derive(Clone)]
pub struct Driver {
    installs: Installs,
    deployer: Deployer,
    apps: Apps,
    running: Arc<Mutex<HashSet<String>>>,
}

/// What one look at a component decided.
enum Step {
    /// Nothing to do now; look again later.
    Wait,
    /// The record changed; look again at once.
    Progressed,
}

impl Driver {
    pub fn new(installs: Installs, deployer: Deployer, apps: Apps) -> Self {
        Self {
            installs,
            deployer,
            apps,
            running: Arc::new(Mutex::new(HashSet::new())),
        }
    }

    /// Starts driving `install` unless this host drives it already.
    pub fn start(&self, project: &str, id: &str) {
        let token = format!("{project}/{id}");
        {
            let Ok(mut running) = self.running.lock() else {
                return;
            };
            if !running.insert(token.clone()) {
                return;
            }
        }
        let driver = self.clone();
        let (project, id) = (project.to_owned(), id.to_owned());
        tokio::spawn(async move {
            if let Err(e) = driver.drive(&project, &id).await {
                tracing::error!(install = %id, error = %e, "market install driver stopped");
                let message = e.to_string();
                let _ = driver
                    .installs
                    .update(&project, &id, |install| {
                        install.state = InstallState::Failed;
                        install.note(SYSTEM_ACTOR, format!("stopped: {message}"));
                        Ok(())
                    })
                    .await;
            }
            if let Ok(mut running) = driver.running.lock() {
                running.remove(&token);
            }
            // A start() that came while this driver was finishing found it running and
            // did nothing; look once more so that work is not left waiting for a restart.
            if let Ok(install) = driver.installs.get(&project, &id)
                && matches!(
                    install.state,
                    InstallState::Deploying | InstallState::Uninstalling
                )
            {
                driver.start(&project, &id);
            }
        });
    }

    /// Drivers for every install a previous run left deploying or uninstalling.
    pub fn resume(&self) -> Result<usize, MarketError> {
        let mut resumed = 0;
        for install in self.installs.all()? {
            if matches!(
                install.state,
                InstallState::Deploying | InstallState::Uninstalling
            ) {
                self.start(&install.project, &install.id);
                resumed += 1;
            }
        }
        Ok(resumed)
    }

    async fn drive(&self, project: &str, id: &str) -> Result<(), MarketError> {
        loop {
            let install = match self.installs.get(project, id) {
                Ok(install) => install,
                Err(MarketError::InstallNotFound(_)) => return Ok(()),
                Err(e) => return Err(e),
            };
            let step = match install.state {
                InstallState::Deploying => self.deploy_step(&install).await?,
                InstallState::Uninstalling => {
                    if install.components.is_empty() {
                        self.installs.forget(&install).await?;
                        return Ok(());
                    }
                    self.remove_step(&install, true).await?
                }
                _ => return Ok(()),
            };
            if matches!(step, Step::Wait) {
                tokio::time::sleep(POLL).await;
            }
        }
    }

    fn requester(install: &Install, what: &str) -> Requester {
        Requester {
            username: if install.requested_by.is_empty() {
                install.created_by.clone()
            } else {
                install.requested_by.clone()
            },
            description: Some(format!(
                "market install {} ({} {}): {what}",
                install.id, install.app_id, install.version
            )),
            ticket: None,
        }
    }

    /// One step of a deploying install: removals an upgrade asked for first, then the
    /// first component whose turn it is.
    async fn deploy_step(&self, install: &Install) -> Result<Step, MarketError> {
        if install
            .components
            .iter()
            .any(|c| c.state == ComponentState::Removing)
        {
            return self.remove_step(install, false).await;
        }
        let failed = install
            .components
            .iter()
            .any(|c| c.state == ComponentState::Failed);
        // Every component whose turn it is moves in the same pass: independent ones
        // deploy side by side, dependents once what they depend on runs.
        let mut progressed = false;
        let mut busy = false;
        for (index, component) in install.components.iter().enumerate() {
            let step = match component.state {
                ComponentState::Running | ComponentState::Failed => continue,
                ComponentState::Deploying => {
                    busy = true;
                    self.follow(install, index).await?
                }
                // A failure stops what has not started; what runs is followed to its end.
                ComponentState::Created | ComponentState::Waiting if failed => continue,
                ComponentState::Created | ComponentState::Waiting => {
                    busy = true;
                    let ready = component.plan.depends_on.iter().all(|dep| {
                        install
                            .components
                            .iter()
                            .any(|c| &c.plan.key == dep && c.state == ComponentState::Running)
                    });
                    if ready {
                        self.open_deploy(install, index).await?
                    } else if component.state == ComponentState::Created {
                        self.set(
                            install,
                            index,
                            ComponentState::Waiting,
                            None,
                            "waiting for its dependencies",
                        )
                        .await?;
                        Step::Progressed
                    } else {
                        Step::Wait
                    }
                }
                ComponentState::Removing => unreachable!("handled above"),
            };
            progressed |= matches!(step, Step::Progressed);
        }
        if progressed {
            return Ok(Step::Progressed);
        }
        if busy {
            return Ok(Step::Wait);
        }
        let done = if failed {
            InstallState::Failed
        } else {
            InstallState::Running
        };
        self.installs
            .update(&install.project, &install.id, |i| {
                if i.state == InstallState::Deploying {
                    i.state = done;
                    i.note(
                        SYSTEM_ACTOR,
                        if failed {
                            "stopped: a component failed"
                        } else {
                            "every component is running"
                        },
                    );
                }
                Ok(())
            })
            .await?;
        Ok(Step::Progressed)
    }

    async fn set(
        &self,
        install: &Install,
        index: usize,
        state: ComponentState,
        change: Option<Option<String>>,
        message: &str,
    ) -> Result<(), MarketError> {
        let key = install.components[index].plan.key.clone();
        self.installs
            .update(&install.project, &install.id, |i| {
                if let Some(c) = i.components.iter_mut().find(|c| c.plan.key == key) {
                    c.state = state;
                    if let Some(change) = &change {
                        c.change_order = change.clone();
                    }
                    c.message = message.to_owned();
                }
                let note = format!("{key}: {message}");
                i.note(SYSTEM_ACTOR, note);
                Ok(())
            })
            .await?;
        Ok(())
    }

    /// Writes a component's config files into its config item (created in the binding
    /// its deployment uses, or the environment's first), so the deploy can mount them.
    async fn write_files(&self, install: &Install, index: usize) -> Result<(), String> {
        let component = &install.components[index];
        let files = installs::config_files(&component.plan);
        if files.is_empty() {
            return Ok(());
        }
        let items = self.installs.config_items();
        let name = installs::files_item(&component.plan);
        let entries: Vec<NewEntry> = files
            .iter()
            .map(|(key, _, content)| NewEntry {
                name: key.clone(),
                value: content.clone(),
            })
            .collect();
        let actor = Self::requester(install, "config files").username;
        if items.get(&install.project, &install.env, &name).is_ok() {
            if !component.files_owned {
                return Err(format!(
                    "config item `{name}` exists in environment `{}` and was not made by this install",
                    install.env
                ));
            }
            items
                .update(&install.project, &install.env, &name, entries, &actor)
                .await
                .map_err(|e| e.to_string())?;
            return Ok(());
        }
        let binding = match deployments::get(
            self.installs.store(),
            &install.project,
            &component.plan.app,
            &install.env,
        )
        .map_err(|e| e.to_string())?
        .filter(|d| d.status != DeploymentStatus::Deleted)
        {
            Some(d) => (d.cluster, d.namespace),
            None => {
                let env = self
                    .installs
                    .environments()
                    .get(&install.project, &install.env)
                    .map_err(|e| e.to_string())?;
                let first = env
                    .bindings
                    .first()
                    .ok_or_else(|| format!("environment `{}` has no binding", install.env))?;
                (first.cluster.clone(), first.namespace.clone())
            }
        };
        items
            .create(
                &install.project,
                &install.env,
                NewConfigItem {
                    name,
                    cluster: Some(binding.0),
                    namespace: Some(binding.1),
                    items: entries,
                },
                &actor,
            )
            .await
            .map_err(|e| e.to_string())?;
        let key = component.plan.key.clone();
        self.installs
            .update(&install.project, &install.id, |i| {
                if let Some(c) = i.components.iter_mut().find(|c| c.plan.key == key) {
                    c.files_owned = true;
                }
                Ok(())
            })
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    async fn open_deploy(&self, install: &Install, index: usize) -> Result<Step, MarketError> {
        if let Err(why) = self.write_files(install, index).await {
            self.set(
                install,
                index,
                ComponentState::Failed,
                None,
                &format!("its config files cannot be written: {why}"),
            )
            .await?;
            return Ok(Step::Progressed);
        }
        let component = &install.components[index];
        let request =
            DeployRequest::from_json(installs::deploy_spec(&component.plan)).map_err(|e| {
                MarketError::Component {
                    component: component.plan.key.clone(),
                    message: e.to_string(),
                }
            })?;
        let opened = self
            .deployer
            .deploy(
                &install.project,
                &component.plan.app,
                &install.env,
                request,
                Self::requester(install, &format!("deploy {}", component.plan.key)),
            )
            .await;
        match opened {
            Ok(change) => {
                self.set(
                    install,
                    index,
                    ComponentState::Deploying,
                    Some(Some(change.id.clone())),
                    &format!(
                        "deploying {} (change order {})",
                        component.plan.image, change.id
                    ),
                )
                .await?;
            }
            Err(DeployError::InFlight { change_order }) => {
                self.set(
                    install,
                    index,
                    ComponentState::Deploying,
                    Some(Some(change_order.clone())),
                    &format!("waiting for change order {change_order} already in flight"),
                )
                .await?;
            }
            Err(e) => {
                self.set(
                    install,
                    index,
                    ComponentState::Failed,
                    None,
                    &format!("deploy refused: {e}"),
                )
                .await?;
            }
        }
        Ok(Step::Progressed)
    }

    /// Follows a deploying component's change order; once its pods run, its Service.
    async fn follow(&self, install: &Install, index: usize) -> Result<Step, MarketError> {
        let component = &install.components[index];
        let Some(change_id) = &component.change_order else {
            return self.open_deploy(install, index).await;
        };
        let change = match self.deployer.change(change_id) {
            Ok(change) => change,
            Err(e) => {
                self.set(install, index, ComponentState::Failed, None, &e.to_string())
                    .await?;
                return Ok(Step::Progressed);
            }
        };
        if !change.state.is_terminal() {
            return Ok(Step::Wait);
        }
        if change.state != ChangeState::Succeeded {
            self.set(
                install,
                index,
                ComponentState::Failed,
                None,
                &format!("change order {} ended {:?}", change.id, change.state),
            )
            .await?;
            return Ok(Step::Progressed);
        }
        let service_due = match (
            &component.plan.service,
            installs::service_spec(&component.plan),
        ) {
            (Some(name), Some(spec)) if change.service.as_ref().is_none_or(|s| &s.name != name) => {
                Some(spec)
            }
            _ => None,
        };
        let Some(spec) = service_due else {
            self.set(install, index, ComponentState::Running, None, "running")
                .await?;
            return Ok(Step::Progressed);
        };
        let spec: ServiceSpec =
            serde_json::from_value(spec).map_err(|e| MarketError::Component {
                component: component.plan.key.clone(),
                message: e.to_string(),
            })?;
        let deployment = self
            .deployer
            .deployment(&install.project, &component.plan.app, &install.env)
            .map_err(|e| MarketError::Component {
                component: component.plan.key.clone(),
                message: e.to_string(),
            })?;
        let exists = deployment.services.iter().any(|s| s.name == spec.name);
        if exists && deployment.services.iter().any(|s| *s == spec) {
            self.set(install, index, ComponentState::Running, None, "running")
                .await?;
            return Ok(Step::Progressed);
        }
        let opened = self
            .deployer
            .put_service(
                &install.project,
                &component.plan.app,
                &install.env,
                spec,
                !exists,
                Self::requester(install, &format!("service of {}", component.plan.key)),
            )
            .await;
        match opened {
            Ok(change) => {
                self.set(
                    install,
                    index,
                    ComponentState::Deploying,
                    Some(Some(change.id.clone())),
                    &format!("creating its Service (change order {})", change.id),
                )
                .await?
            }
            Err(DeployError::InFlight { .. }) => return Ok(Step::Wait),
            Err(e) => {
                self.set(
                    install,
                    index,
                    ComponentState::Failed,
                    None,
                    &format!("service refused: {e}"),
                )
                .await?
            }
        }
        Ok(Step::Progressed)
    }

    /// Removes one component marked for removal (all of them when `everything`), last
    /// deployed first: its deployment through a delete change order, then its app.
    async fn remove_step(&self, install: &Install, everything: bool) -> Result<Step, MarketError> {
        let Some(index) = install
            .components
            .iter()
            .rposition(|c| everything || c.state == ComponentState::Removing)
        else {
            return Ok(Step::Progressed);
        };
        let component = &install.components[index];
        let app = component.plan.app.clone();
        if component.state != ComponentState::Removing {
            self.set(
                install,
                index,
                ComponentState::Removing,
                Some(None),
                "removing",
            )
            .await?;
            return Ok(Step::Progressed);
        }
        let deployment =
            deployments::get(self.installs.store(), &install.project, &app, &install.env)?;
        if let Some(deployment) = deployment.filter(|d| d.status != DeploymentStatus::Deleted) {
            if deployment.active_change.is_some() {
                return Ok(Step::Wait);
            }
            match self
                .deployer
                .delete(
                    &install.project,
                    &app,
                    &install.env,
                    Self::requester(install, &format!("remove {}", component.plan.key)),
                )
                .await
            {
                Ok(change) => {
                    self.set(
                        install,
                        index,
                        ComponentState::Removing,
                        Some(Some(change.id.clone())),
                        &format!("deleting its deployment (change order {})", change.id),
                    )
                    .await?;
                    return Ok(Step::Progressed);
                }
                Err(DeployError::InFlight { .. }) => return Ok(Step::Wait),
                Err(e) => {
                    return Err(MarketError::Component {
                        component: component.plan.key.clone(),
                        message: format!("its deployment cannot be deleted: {e}"),
                    });
                }
            }
        }
        let files = installs::files_item(&component.plan);
        let items = self.installs.config_items();
        if component.files_owned
            && items.get(&install.project, &install.env, &files).is_ok()
            && let Err(e) = items.delete(&install.project, &install.env, &files).await
        {
            return Err(MarketError::Component {
                component: component.plan.key.clone(),
                message: format!("its config item `{files}` cannot be deleted: {e}"),
            });
        }
        match self.apps.delete(&install.project, &app).await {
            Ok(_) | Err(crate::domain::apps::AppError::NotFound { .. }) => {}
            Err(e) => {
                return Err(MarketError::Component {
                    component: component.plan.key.clone(),
                    message: format!("app `{app}` cannot be deleted: {e}"),
                });
            }
        }
        let key = component.plan.key.clone();
        self.installs
            .update(&install.project, &install.id, |i| {
                i.components.retain(|c| c.plan.key != key);
                i.note(SYSTEM_ACTOR, format!("{key}: removed app {app}"));
                Ok(())
            })
            .await?;
        Ok(Step::Progressed)
    }
}
