//! Seed 004 (Huawei CodeArts Deploy "Obtaining Application Details"):
//! `GET /v1/applications/{app_id}/info` answers `{result: AppDetailInfo, status}` in the
//! seed's snake_case shape. The caller's `can_*` flags, for the app and for each of its
//! deployments (`arrange_infos`), come from one batch call to the authorizer.
//!
//! Wharf has no tenants: the project stands in for the seed's tenant fields.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::apps::apps;
use super::authz::{authorize_problem, no_authorizer};
use super::error::{ApiError, Problem};
use super::guard::subject_of;
use crate::auth::Caller;
use crate::domain::apps::App;
use crate::domain::deployments::{self, Deployment};
use crate::domain::projects::Project;
use crate::runtime::authorizer::{Decision, Request};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(info))
}

/// The caller's rights, seed 004's `can_*` flags.
#[derive(Debug, Clone, Copy, Default, Serialize, ToSchema)]
pub struct Flags {
    pub can_modify: bool,
    pub can_delete: bool,
    pub can_view: bool,
    pub can_execute: bool,
    pub can_copy: bool,
    pub can_manage: bool,
    pub can_create_env: bool,
    pub can_disable: bool,
}

/// The action behind each flag, in [`Flags`] order; `env.create` is judged at the project.
const FLAG_ACTIONS: [&str; 8] = [
    "app.update",
    "app.delete",
    "app.read",
    "deploy.create",
    "app.copy",
    "app.manage-permissions",
    "env.create",
    "app.disable",
];

impl Flags {
    fn requests(scope: &str, project_scope: &str) -> impl Iterator<Item = Request> {
        FLAG_ACTIONS.iter().map(move |action| Request {
            action: (*action).to_owned(),
            resource: if *action == "env.create" {
                project_scope.to_owned()
            } else {
                scope.to_owned()
            },
        })
    }

    fn from_decisions(allowed: &[bool]) -> Self {
        let flag = |i: usize| allowed.get(i).copied().unwrap_or(false);
        Flags {
            can_modify: flag(0),
            can_delete: flag(1),
            can_view: flag(2),
            can_execute: flag(3),
            can_copy: flag(4),
            can_manage: flag(5),
            can_create_env: flag(6),
            can_disable: flag(7),
        }
    }
}

/// One deployment action of a task.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Step {
    pub id: String,
    pub name: String,
    pub params: BTreeMap<String, String>,
    pub enable: bool,
}

/// Seed 004 TaskV2Info: one deployment of the app (the app in one environment).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TaskV2Info {
    /// The deployment id.
    pub id: String,
    /// `<app>-<env>`.
    pub name: String,
    /// The deployment status (`SUCCEEDED`, `RUNNING`, …).
    pub state: String,
    pub description: String,
    pub owner: String,
    /// `step1`: the image and replicas of the serving revision (empty before one serves).
    pub steps: BTreeMap<String, Step>,
    pub project_id: String,
    pub project_name: String,
    pub deploy_system: String,
    pub create_time: String,
    pub update_time: String,
    pub role_id: i64,
    pub is_defaut_permission: bool,
    pub template_id: Option<String>,
    pub nick_name: String,
    pub owner_id: String,
    pub tenant_id: String,
    pub tenant_name: String,
    pub slave_cluster_id: Option<String>,
    pub is_care: bool,
    #[serde(flatten)]
    pub flags: Flags,
    pub app_component_list: Vec<serde_json::Value>,
    /// Number of revisions rolled out.
    pub release_id: u64,
    pub app_id: String,
    pub is_disable: bool,
}

/// Seed 004 AppDetailInfo.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AppDetailInfo {
    pub id: String,
    pub name: String,
    /// Region of the first deployment's cluster ("" when it has none).
    pub region: String,
    pub description: String,
    pub is_disable: bool,
    pub create_type: String,
    /// The project code.
    pub project_id: String,
    pub project_name: String,
    pub slave_cluster_id: Option<String>,
    /// Whether the caller marked the app as a favourite.
    pub is_care: bool,
    #[serde(flatten)]
    pub flags: Flags,
    pub owner_tenant_id: String,
    pub create_user_id: String,
    pub create_tenant_id: String,
    pub create_time: String,
    pub update_time: String,
    pub permission_level: String,
    pub arrange_infos: Vec<TaskV2Info>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AppDetailResponse {
    pub result: AppDetailInfo,
    /// `success`.
    pub status: String,
}

/// `yyyy-MM-dd HH:mm:ss` (UTC), as seed 004 writes times.
fn seed_time(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The caller's flags for the app (first) and each deployment, from one authorizer call.
async fn flags(
    state: &AppState,
    caller: &Caller,
    app: &App,
    deployments: &[Deployment],
) -> Result<Vec<Flags>, ApiError> {
    let plugin = state.runtime.authorizer().ok_or_else(no_authorizer)?;
    let project_scope = format!("project:{}", app.project);
    let mut requests: Vec<Request> = Flags::requests(&app.scope(), &project_scope).collect();
    for d in deployments {
        requests.extend(Flags::requests(&d.scope(), &project_scope));
    }
    let decisions = state
        .runtime
        .check(&plugin, subject_of(state, caller)?, requests)
        .await?
        .map_err(authorize_problem)?;
    let allowed: Vec<bool> = decisions
        .iter()
        .map(|d| matches!(d, Decision::Allow))
        .collect();
    Ok(allowed
        .chunks(FLAG_ACTIONS.len())
        .map(Flags::from_decisions)
        .chain(std::iter::repeat(Flags::default()))
        .take(deployments.len() + 1)
        .collect())
}

fn status_name(deployment: &Deployment) -> String {
    serde_json::to_value(deployment.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn steps(deployment: &Deployment) -> BTreeMap<String, Step> {
    let Some(stable) = deployment.stable() else {
        return BTreeMap::new();
    };
    let params = BTreeMap::from([
        ("image".to_owned(), stable.image.clone()),
        ("replicas".to_owned(), deployment.replicas.to_string()),
    ]);
    let step = Step {
        id: format!("{}-{}", deployment.id, stable.revision),
        name: "Deploy image".to_owned(),
        params,
        enable: true,
    };
    BTreeMap::from([("step1".to_owned(), step)])
}

/// The id of the user named `username` (the name itself for a user since deleted).
fn user_id(state: &AppState, username: &str) -> Result<String, ApiError> {
    Ok(state
        .identity
        .user_by_name(username)?
        .map_or_else(|| username.to_owned(), |u| u.id))
}

/// One deployment of the app as a seed 004 task.
fn task(
    app: &App,
    project: &Project,
    d: &Deployment,
    flags: Flags,
    is_care: bool,
    owner_id: String,
) -> TaskV2Info {
    TaskV2Info {
        id: d.id.clone(),
        name: format!("{}-{}", app.name, d.env),
        state: status_name(d),
        description: format!(
            "{} in environment {} ({}/{})",
            app.name, d.env, d.cluster, d.namespace
        ),
        owner: d.created_by.clone(),
        steps: steps(d),
        project_id: project.code.clone(),
        project_name: project.name.clone(),
        deploy_system: "wharf".to_owned(),
        create_time: seed_time(d.created_at),
        update_time: seed_time(d.updated_at),
        role_id: 0,
        is_defaut_permission: true,
        template_id: None,
        nick_name: d.created_by.clone(),
        owner_id,
        tenant_id: project.code.clone(),
        tenant_name: project.name.clone(),
        slave_cluster_id: None,
        is_care,
        flags,
        app_component_list: Vec::new(),
        release_id: d.revisions.len() as u64,
        app_id: app.id.clone(),
        is_disable: app.disabled,
    }
}

/// Application details by id (seed 004), with the caller's rights on it. The token may
/// also come as seed 004's `X-Auth-Token` header.
#[utoipa::path(get, path = "/v1/applications/{app_id}/info", tag = "apps",
    security(("bearer" = [])),
    params(("app_id" = String, Path, description = "32 letters and digits")),
    responses((status = 200, body = AppDetailResponse), (status = 404, body = Problem)))]
async fn info(
    State(state): State<AppState>,
    caller: Caller,
    Path(app_id): Path<String>,
) -> Result<axum::Json<AppDetailResponse>, ApiError> {
    let service = apps(&state);
    let app = service.by_id(&app_id)?;
    let project = state.projects.get(&app.project)?;
    let deployments = deployments::of_app(&state.store, &app.project, &app.name)?;
    let mut flags = flags(&state, &caller, &app, &deployments)
        .await?
        .into_iter();
    let app_flags = flags.next().unwrap_or_default();
    let is_care = service.is_favourite(&caller.user_id, &app.project, &app.name)?;
    let creator_id = user_id(&state, &app.created_by)?;
    let region = deployments
        .iter()
        .find_map(|d| state.clusters.get(&d.cluster).ok()?.region)
        .unwrap_or_default();
    let mut arrange_infos = Vec::with_capacity(deployments.len());
    for (d, flags) in deployments.iter().zip(flags) {
        let owner_id = user_id(&state, &d.created_by)?;
        arrange_infos.push(task(&app, &project, d, flags, is_care, owner_id));
    }
    let result = AppDetailInfo {
        id: app.id,
        name: app.name,
        region,
        description: app.description,
        is_disable: app.disabled,
        create_type: "api".to_owned(),
        project_id: project.code.clone(),
        project_name: project.name,
        slave_cluster_id: None,
        is_care,
        flags: app_flags,
        owner_tenant_id: project.code.clone(),
        create_user_id: creator_id,
        create_tenant_id: project.code,
        create_time: seed_time(app.created_at),
        update_time: seed_time(app.updated_at),
        permission_level: "instance".to_owned(),
        arrange_infos,
    };
    Ok(axum::Json(AppDetailResponse {
        result,
        status: "success".to_owned(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::deployments::DeploymentStatus;
    use serde_json::json;

    /// Every TaskV2Info field of seed 004 (§6.16), `can_*` flags included.
    const TASK_FIELDS: &[&str] = &[
        "id",
        "name",
        "state",
        "description",
        "owner",
        "steps",
        "project_id",
        "project_name",
        "deploy_system",
        "create_time",
        "update_time",
        "role_id",
        "is_defaut_permission",
        "template_id",
        "nick_name",
        "owner_id",
        "tenant_id",
        "tenant_name",
        "slave_cluster_id",
        "is_care",
        "can_modify",
        "can_delete",
        "can_view",
        "can_execute",
        "can_copy",
        "can_manage",
        "can_create_env",
        "can_disable",
        "app_component_list",
        "release_id",
        "app_id",
        "is_disable",
    ];

    #[test]
    fn a_deployment_becomes_a_task_with_every_seed_field() {
        let at = time::macros::datetime!(2024-03-05 07:08:09 UTC);
        let app: App = serde_json::from_value(json!({
            "id": "0123456789abcdef0123456789abcdef", "project": "shop", "name": "cart",
            "category": "MICRO_SERVICE", "description": "", "codeReposAddress": null,
            "origin": null, "groupId": null, "disabled": false,
            "createdAt": "2024-03-05T07:08:09Z", "updatedAt": "2024-03-05T07:08:09Z",
            "createdBy": "admin"
        }))
        .unwrap();
        let project = Project {
            code: "shop".into(),
            name: "Shop".into(),
            description: String::new(),
            created_at: at,
            updated_at: at,
            created_by: "admin".into(),
        };
        let deployment = Deployment {
            id: "fedcba9876543210fedcba9876543210".into(),
            project: "shop".into(),
            app: "cart".into(),
            env: "dev".into(),
            cluster: "embedded".into(),
            namespace: "shop-dev".into(),
            workload: "cart".into(),
            status: DeploymentStatus::Succeeded,
            stable_revision: None,
            replicas: 2,
            replicas_before_stop: None,
            revisions: Vec::new(),
            services: Vec::new(),
            active_change: None,
            last_change: None,
            created_at: at,
            updated_at: at,
            created_by: "admin".into(),
        };
        let flags = Flags {
            can_view: true,
            ..Flags::default()
        };
        let task = task(&app, &project, &deployment, flags, true, "u1".into());
        let value = serde_json::to_value(&task).unwrap();
        for field in TASK_FIELDS {
            assert!(value.get(*field).is_some(), "{field} missing: {value}");
        }
        assert_eq!(value["name"], "cart-dev");
        assert_eq!(value["state"], "SUCCEEDED");
        assert_eq!(value["create_time"], "2024-03-05 07:08:09");
        assert_eq!(
            (value["can_view"].as_bool(), value["can_modify"].as_bool()),
            (Some(true), Some(false))
        );
        assert_eq!(value["app_id"], app.id);
    }
}
