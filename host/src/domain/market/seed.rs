//! Seed 000's answer to an install: `MarketInstall` with one `ServiceBaseInfo` per
//! component of the group's install, every field taken from what Wharf created. Rainbond
//! names map to Wharf's: team → project, region → environment, app (group id) → app
//! group, service → app, tenant service group → the install. Fields about building from
//! source (git, language, detection ids) have no counterpart for an image install and
//! are null, as Rainbond leaves them for market components.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::installs::{ComponentState, Install, InstalledComponent};
use crate::domain::deployments::Deployment;

/// Seed 000 `Install`: the body of the install route.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeedInstallBody {
    pub market_url: String,
    pub market_domain: String,
    /// Default `rainstore`.
    pub market_type: Option<String>,
    pub market_access_key: Option<String>,
    pub app_model_id: String,
    pub app_model_version: String,
}

/// Seed 000 `ServiceBaseInfo`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ServiceBaseInfo {
    pub status: String,
    pub access_infos: Vec<String>,
    pub service_id: String,
    pub tenant_id: String,
    pub service_key: String,
    pub service_alias: String,
    pub service_cname: String,
    pub service_region: String,
    pub desc: Option<String>,
    pub category: String,
    pub version: String,
    pub update_version: u64,
    pub image: String,
    pub cmd: Option<String>,
    pub min_node: u32,
    pub min_cpu: u32,
    pub container_gpu: u32,
    pub min_memory: u32,
    pub extend_method: String,
    pub code_from: Option<String>,
    pub git_url: Option<String>,
    pub git_project_id: Option<i64>,
    pub code_version: Option<String>,
    pub service_type: String,
    pub creater: String,
    pub language: Option<String>,
    pub total_memory: u64,
    pub is_service: bool,
    pub service_origin: String,
    pub tenant_service_group_id: u64,
    pub open_webhooks: bool,
    pub service_source: String,
    pub create_status: String,
    pub check_uuid: Option<String>,
    pub check_event_id: Option<String>,
    pub docker_cmd: Option<String>,
    pub server_type: Option<String>,
    pub is_upgrate: bool,
    pub build_upgrade: bool,
    pub oauth_service_id: Option<i64>,
    pub k8s_component_name: String,
}

/// Seed 000 `MarketInstall`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MarketInstall {
    /// Wharf has one tenant: the installation's id, drawn once and kept in the store.
    pub enterprise_id: String,
    pub team_id: String,
    pub note: String,
    /// The app group's id.
    #[serde(rename = "ID")]
    pub id: String,
    pub region_name: String,
    pub service_list: Vec<ServiceBaseInfo>,
}

fn status(state: ComponentState) -> &'static str {
    match state {
        ComponentState::Created => "undeploy",
        ComponentState::Waiting | ComponentState::Deploying => "starting",
        ComponentState::Running => "running",
        ComponentState::Failed => "abnormal",
        ComponentState::Removing => "closed",
    }
}

/// One component as seed 000 shows it; `deployment` is its record in the install's
/// environment, once deployed.
fn service(
    install: &Install,
    component: &InstalledComponent,
    deployment: Option<&Deployment>,
    description: Option<String>,
) -> ServiceBaseInfo {
    let plan = &component.plan;
    let access_infos = match (&plan.service, deployment) {
        (Some(service), Some(d)) => plan
            .ports
            .iter()
            .map(|p| format!("{service}.{}.svc:{}", d.namespace, p.container_port))
            .collect(),
        _ => Vec::new(),
    };
    ServiceBaseInfo {
        status: status(component.state).to_owned(),
        access_infos,
        service_id: component.app_id.clone(),
        tenant_id: install.project.clone(),
        service_key: plan.key.clone(),
        service_alias: plan.app.clone(),
        service_cname: plan.name.clone(),
        service_region: install.env.clone(),
        desc: description,
        category: plan.category.clone(),
        version: plan.version.clone(),
        update_version: deployment
            .and_then(|d| d.revisions.iter().map(|r| r.revision).max())
            .unwrap_or(0),
        image: plan.image.clone(),
        cmd: plan.command.clone(),
        min_node: plan.replicas,
        min_cpu: plan.cpu_millicores,
        container_gpu: plan.gpu,
        min_memory: plan.memory_mb,
        extend_method: plan.extend_method.clone(),
        code_from: None,
        git_url: None,
        git_project_id: None,
        code_version: None,
        service_type: "application".to_owned(),
        creater: install.created_by.clone(),
        language: None,
        total_memory: u64::from(plan.replicas) * u64::from(plan.memory_mb),
        is_service: plan.ports.iter().any(|p| p.inner),
        service_origin: "cloud".to_owned(),
        tenant_service_group_id: install.number,
        open_webhooks: false,
        service_source: "market".to_owned(),
        create_status: "complete".to_owned(),
        check_uuid: None,
        check_event_id: None,
        docker_cmd: None,
        server_type: None,
        is_upgrate: install.previous.is_none(),
        build_upgrade: true,
        oauth_service_id: None,
        k8s_component_name: plan.workload.clone(),
    }
}

/// The seed's view of the installs of one group (Rainbond lists every component of the
/// group, not only the new ones).
pub fn market_install(
    enterprise_id: &str,
    group_id: &str,
    group_note: &str,
    installs: &[Install],
    deployment_of: &dyn Fn(&str) -> Option<Deployment>,
    description_of: &dyn Fn(&str) -> Option<String>,
) -> MarketInstall {
    let first = installs.first();
    MarketInstall {
        enterprise_id: enterprise_id.to_owned(),
        team_id: first.map(|i| i.project.clone()).unwrap_or_default(),
        note: group_note.to_owned(),
        id: group_id.to_owned(),
        region_name: first.map(|i| i.env.clone()).unwrap_or_default(),
        service_list: installs
            .iter()
            .flat_map(|install| {
                install.components.iter().map(|c| {
                    service(
                        install,
                        c,
                        deployment_of(&c.plan.app).as_ref(),
                        description_of(&c.plan.app),
                    )
                })
            })
            .collect(),
    }
}
