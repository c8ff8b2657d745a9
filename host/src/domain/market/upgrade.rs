//! Moving an install to another version: the diff (components added, changed — with the
//! fields — and removed) shown before anything happens, the upgrade itself, and the
//! rollback to the version it replaced. Both end in the driver: changed and added
//! components are deployed again, removed ones deleted, dependencies first.

use std::collections::HashMap;

use serde::Serialize;
use utoipa::ToSchema;

use super::MarketError;
use super::driver::Driver;
use super::installs::{
    ComponentState, Install, InstallState, InstalledComponent, Installs, PreviousVersion,
};
use super::plan::{self, PlannedComponent};
use crate::domain::apps;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ComponentRef {
    pub key: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldChange {
    pub field: String,
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ChangedComponent {
    pub key: String,
    pub name: String,
    pub fields: Vec<FieldChange>,
}

/// What moving from one version to another does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct UpgradeDiff {
    pub from: String,
    pub to: String,
    pub added: Vec<ComponentRef>,
    pub changed: Vec<ChangedComponent>,
    pub removed: Vec<ComponentRef>,
    pub unchanged: Vec<String>,
}

impl UpgradeDiff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }
}

pub fn diff(
    from: &str,
    to: &str,
    current: &[PlannedComponent],
    next: &[PlannedComponent],
) -> UpgradeDiff {
    let before: HashMap<&str, &PlannedComponent> =
        current.iter().map(|c| (c.key.as_str(), c)).collect();
    let after: HashMap<&str, &PlannedComponent> =
        next.iter().map(|c| (c.key.as_str(), c)).collect();
    let reference = |c: &PlannedComponent| ComponentRef {
        key: c.key.clone(),
        name: c.name.clone(),
    };
    let mut out = UpgradeDiff {
        from: from.to_owned(),
        to: to.to_owned(),
        added: Vec::new(),
        changed: Vec::new(),
        removed: current
            .iter()
            .filter(|c| !after.contains_key(c.key.as_str()))
            .map(reference)
            .collect(),
        unchanged: Vec::new(),
    };
    for c in next {
        match before.get(c.key.as_str()) {
            None => out.added.push(reference(c)),
            Some(old) => {
                let fields = plan::changed_fields(old, c);
                if fields.is_empty() {
                    out.unchanged.push(c.key.clone());
                } else {
                    out.changed.push(ChangedComponent {
                        key: c.key.clone(),
                        name: c.name.clone(),
                        fields: fields
                            .into_iter()
                            .map(|(field, from, to)| FieldChange { field, from, to })
                            .collect(),
                    });
                }
            }
        }
    }
    out
}

fn plans(install: &Install) -> Vec<PlannedComponent> {
    install.components.iter().map(|c| c.plan.clone()).collect()
}

fn refuse_busy(install: &Install) -> Result<(), MarketError> {
    match install.state {
        InstallState::Deploying | InstallState::Uninstalling => {
            Err(MarketError::Conflict(format!(
                "install {} is {:?}; wait until it is done",
                install.id, install.state
            )))
        }
        _ => Ok(()),
    }
}

/// The plan and diff of moving `install` to `version` of its template; changes nothing.
pub async fn preview(
    installs: &Installs,
    install: &Install,
    version: &str,
) -> Result<(Vec<PlannedComponent>, String, UpgradeDiff), MarketError> {
    let market = installs.connections().get(&install.market)?;
    let reference = installs.connections().reference(&market)?;
    let template = installs
        .template(&market, &reference, &install.app_id, version)
        .await?;
    let current = plans(install);
    let store = installs.store().clone();
    let project = install.project.clone();
    // Kept components keep their apps; a new one needs a name nobody has, ours included.
    let next = plan::plan(
        &template,
        &|name| Ok(apps::name_taken(&store, &project, name)?),
        &current,
    )?;
    let diff = diff(&install.version, &template.version, &current, &next);
    Ok((next, template.updated_at, diff))
}

/// Moves `install` to `next` (a version's plan), keeping what it replaces for rollback.
async fn apply(
    installs: &Installs,
    driver: &Driver,
    install: Install,
    next: Vec<PlannedComponent>,
    version: String,
    template_updated_at: String,
    actor: &str,
    verb: &str,
) -> Result<Install, MarketError> {
    let current: HashMap<String, InstalledComponent> = install
        .components
        .iter()
        .map(|c| (c.plan.key.clone(), c.clone()))
        .collect();
    let mut components = Vec::with_capacity(next.len());
    for plan in &next {
        let mut component = match current.get(&plan.key) {
            Some(old) => {
                let mut kept = old.clone();
                let changed = old.plan != *plan;
                kept.plan = plan.clone();
                if changed {
                    installs.refresh_config(&install, &kept).await?;
                }
                if changed || kept.state != ComponentState::Running {
                    kept.state = ComponentState::Created;
                    kept.change_order = None;
                    kept.message = format!("{verb} to {version}");
                }
                kept
            }
            None => {
                let mut added = InstalledComponent {
                    plan: plan.clone(),
                    app_id: String::new(),
                    deploy_config: String::new(),
                    state: ComponentState::Created,
                    change_order: None,
                    message: format!("added by the {verb} to {version}"),
                    files_owned: false,
                };
                installs.add_component(&install, &mut added).await?;
                added
            }
        };
        component.plan = plan.clone();
        components.push(component);
    }
    for old in &install.components {
        if !next.iter().any(|p| p.key == old.plan.key) {
            let mut gone = old.clone();
            gone.state = ComponentState::Removing;
            gone.change_order = None;
            gone.message = format!("not in version {version}");
            components.push(gone);
        }
    }
    let previous = PreviousVersion {
        version: install.version.clone(),
        components: plans(&install),
    };
    let read_version = install.updated_at;
    let updated = installs
        .update(&install.project, &install.id, |i| {
            if i.updated_at != read_version {
                return Err(MarketError::Conflict(format!(
                    "install {} changed meanwhile; look at it again",
                    i.id
                )));
            }
            i.components = components.clone();
            i.previous = Some(previous.clone());
            i.note(actor, format!("{verb} {} → {version}", i.version));
            i.requested_by = actor.to_owned();
            i.version = version.clone();
            i.template_updated_at = template_updated_at.clone();
            i.deploy = true;
            i.state = InstallState::Deploying;
            Ok(())
        })
        .await?;
    driver.start(&updated.project, &updated.id);
    Ok(updated)
}

pub async fn upgrade(
    installs: &Installs,
    driver: &Driver,
    install: Install,
    version: &str,
    actor: &str,
) -> Result<Install, MarketError> {
    refuse_busy(&install)?;
    let (next, updated_at, diff) = preview(installs, &install, version).await?;
    if diff.is_empty() && install.version == diff.to && install.template_updated_at == updated_at {
        return Err(MarketError::Invalid {
            field: "version".into(),
            message: format!("install {} is at {} already", install.id, install.version),
        });
    }
    let to = diff.to.clone();
    apply(
        installs, driver, install, next, to, updated_at, actor, "upgrade",
    )
    .await
}

/// Back to the version the last upgrade replaced.
pub async fn rollback(
    installs: &Installs,
    driver: &Driver,
    install: Install,
    actor: &str,
) -> Result<Install, MarketError> {
    refuse_busy(&install)?;
    let previous = install.previous.clone().ok_or_else(|| {
        MarketError::Conflict(format!(
            "install {} has not been upgraded; there is no version to roll back to",
            install.id
        ))
    })?;
    apply(
        installs,
        driver,
        install,
        previous.components,
        previous.version,
        String::new(),
        actor,
        "rollback",
    )
    .await
}

/// Starts removing everything the install created.
pub async fn uninstall(
    installs: &Installs,
    driver: &Driver,
    install: &Install,
    actor: &str,
) -> Result<Install, MarketError> {
    if install.state == InstallState::Deploying {
        return Err(MarketError::Conflict(format!(
            "install {} is deploying; wait until it is done",
            install.id
        )));
    }
    let updated = installs
        .update(&install.project, &install.id, |i| {
            if i.state != InstallState::Uninstalling {
                i.state = InstallState::Uninstalling;
                i.requested_by = actor.to_owned();
                i.note(actor, "uninstall");
            }
            Ok(())
        })
        .await?;
    driver.start(&updated.project, &updated.id);
    Ok(updated)
}
