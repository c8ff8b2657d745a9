//! Projects and their members. Members are the authorizer's bindings at the project's
//! scope, so "who is in the project" and "who may do what in it" cannot disagree.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::authz::{
    authorize_problem, manage, manage_as_host, no_authorizer, unbind_deleted, unbind_under,
};
use super::error::{ApiError, Problem};
use super::extract::{ApiJson, Page, Paging, query_pairs};
use super::guard::{AuditDetail, subject_of};
use crate::auth::{Caller, UserStatus};
use crate::domain::projects::{Project, ProjectError};
use crate::runtime::authorizer::{Decision, Request};

/// The role whose last user holder a project keeps.
const OWNER: &str = "project-owner";

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get, update, delete))
        .routes(routes!(list_members, add_members))
        .routes(routes!(change_member, remove_member))
        .routes(routes!(addable_users))
}

impl From<ProjectError> for ApiError {
    fn from(e: ProjectError) -> Self {
        let detail = e.to_string();
        match e {
            ProjectError::Invalid { field, message } => ApiError::invalid(field, message),
            ProjectError::NotFound(_) => ApiError::not_found("project-not-found", detail),
            ProjectError::CodeTaken(_) => {
                ApiError::new(StatusCode::CONFLICT, "code-taken", detail).field("code")
            }
            ProjectError::NotEmpty { .. } => {
                ApiError::new(StatusCode::CONFLICT, "project-not-empty", detail)
            }
            ProjectError::Store(s) => s.into(),
        }
    }
}

/// The caller's rights on a resource, seed 004's `can_*` flags, from one authorizer call.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Permissions {
    pub can_view: bool,
    pub can_modify: bool,
    pub can_delete: bool,
    pub can_execute: bool,
    pub can_copy: bool,
    pub can_manage: bool,
    pub can_create_env: bool,
    pub can_disable: bool,
}

const PERMISSION_ACTIONS: [&str; 8] = [
    "project.read",
    "project.update",
    "project.delete",
    "deploy.create",
    "project.copy",
    "project.manage-permissions",
    "env.create",
    "project.disable",
];

async fn permissions(
    state: &AppState,
    caller: &Caller,
    code: &str,
) -> Result<Permissions, ApiError> {
    let plugin = state.runtime.authorizer().ok_or_else(no_authorizer)?;
    let resource = format!("project:{code}");
    let requests = PERMISSION_ACTIONS
        .iter()
        .map(|a| Request {
            action: (*a).to_owned(),
            resource: resource.clone(),
        })
        .collect();
    let decisions = state
        .runtime
        .check(&plugin, subject_of(state, caller)?, requests)
        .await?
        .map_err(authorize_problem)?;
    let allowed: Vec<bool> = decisions
        .iter()
        .map(|d| matches!(d, Decision::Allow))
        .collect();
    let flag = |i: usize| allowed.get(i).copied().unwrap_or(false);
    Ok(Permissions {
        can_view: flag(0),
        can_modify: flag(1),
        can_delete: flag(2),
        can_execute: flag(3),
        can_copy: flag(4),
        can_manage: flag(5),
        can_create_env: flag(6),
        can_disable: flag(7),
    })
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProjectView {
    #[serde(flatten)]
    pub project: Project,
    pub permissions: Permissions,
}

/// Projects the caller may see, matching `search` on code or name.
#[utoipa::path(get, path = "/api/v1/projects", tag = "projects", security(("bearer" = [])),
    params(("search" = Option<String>, Query), ("page" = Option<u32>, Query), ("pageSize" = Option<u32>, Query)),
    responses((status = 200, body = Page<Project>), (status = 503, body = Problem)))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    paging: Paging,
    parts: Parts,
) -> Result<axum::Json<Page<Project>>, ApiError> {
    let search = query_pairs(&parts)
        .into_iter()
        .find(|(k, _)| k == "search")
        .map(|(_, v)| v);
    let projects = state.projects.list(search.as_deref())?;
    if projects.is_empty() {
        return Ok(axum::Json(paging.apply(projects)));
    }
    // One authorizer call decides visibility of every project.
    let plugin = state.runtime.authorizer().ok_or_else(no_authorizer)?;
    let requests = projects
        .iter()
        .map(|p| Request {
            action: "project.read".into(),
            resource: format!("project:{}", p.code),
        })
        .collect();
    let decisions = state
        .runtime
        .check(&plugin, subject_of(&state, &caller)?, requests)
        .await?
        .map_err(authorize_problem)?;
    let visible = projects
        .into_iter()
        .zip(decisions)
        .filter(|(_, d)| matches!(d, Decision::Allow))
        .map(|(p, _)| p)
        .collect();
    Ok(axum::Json(paging.apply(visible)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewProject {
    code: String,
    name: String,
    description: Option<String>,
}

async fn manage_as(
    state: &AppState,
    caller: &Caller,
    operation: &str,
    input: Value,
) -> Result<Value, ApiError> {
    Ok(manage(state, caller, operation, input).await?.0)
}

/// Creates a project; the creator becomes its owner.
#[utoipa::path(post, path = "/api/v1/projects", tag = "projects", security(("bearer" = [])), request_body = NewProject,
    responses((status = 201, body = ProjectView), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewProject>,
) -> Result<(StatusCode, Extension<AuditDetail>, axum::Json<ProjectView>), ApiError> {
    let project = state
        .projects
        .create(body.code, body.name, body.description, &caller.username)
        .await?;
    let scope = format!("project:{}", project.code);
    let owner =
        json!({"subject": format!("user:{}", caller.user_id), "role": OWNER, "scope": scope});
    // Bindings an earlier project of this code left behind (deleted before deletes took
    // them along, or whose unbinding failed) must not come back with the new one.
    let bound = match unbind_under(&state, &scope).await {
        Ok(()) => manage_as_host(&state, "binding.create", owner)
            .await
            .map(|_| ()),
        Err(error) => Err(error),
    };
    if let Err(error) = bound {
        // Without its owner the project would be unmanageable: undo it.
        state.projects.delete(&project.code).await?;
        return Err(error);
    }
    let detail = AuditDetail {
        target: Some(format!("project:{}", project.code)),
        after: serde_json::to_value(&project).ok(),
        ..AuditDetail::default()
    };
    let permissions = permissions(&state, &caller, &project.code).await?;
    Ok((
        StatusCode::CREATED,
        Extension(detail),
        axum::Json(ProjectView {
            project,
            permissions,
        }),
    ))
}

/// One project with the caller's permissions on it.
#[utoipa::path(get, path = "/api/v1/projects/{code}", tag = "projects", security(("bearer" = [])),
    params(("code" = String, Path)),
    responses((status = 200, body = ProjectView), (status = 404, body = Problem)))]
async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(code): Path<String>,
) -> Result<axum::Json<ProjectView>, ApiError> {
    let project = state.projects.get(&code)?;
    let permissions = permissions(&state, &caller, &code).await?;
    Ok(axum::Json(ProjectView {
        project,
        permissions,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ProjectUpdate {
    name: Option<String>,
    description: Option<String>,
}

/// Updates name and description (the code never changes).
#[utoipa::path(patch, path = "/api/v1/projects/{code}", tag = "projects", security(("bearer" = [])),
    params(("code" = String, Path)), request_body = ProjectUpdate,
    responses((status = 200, body = Project), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn update(
    State(state): State<AppState>,
    Path(code): Path<String>,
    ApiJson(body): ApiJson<ProjectUpdate>,
) -> Result<(Extension<AuditDetail>, axum::Json<Project>), ApiError> {
    let before = state.projects.get(&code)?;
    let after = state
        .projects
        .update(&code, body.name, body.description)
        .await?;
    let detail = AuditDetail {
        before: serde_json::to_value(&before).ok(),
        after: serde_json::to_value(&after).ok(),
        ..AuditDetail::default()
    };
    Ok((Extension(detail), axum::Json(after)))
}

/// Deletes a project that owns no apps, then every binding at or below it.
#[utoipa::path(delete, path = "/api/v1/projects/{code}", tag = "projects", security(("bearer" = [])),
    params(("code" = String, Path)),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn delete(
    State(state): State<AppState>,
    Path(code): Path<String>,
) -> Result<(Extension<AuditDetail>, StatusCode), ApiError> {
    let removed = state.projects.delete(&code).await;
    let scope = format!("project:{code}");
    unbind_deleted(&state, &scope, &removed, |e| {
        matches!(e, ProjectError::NotFound(_))
    })
    .await?;
    let removed = removed?;
    let detail = AuditDetail {
        before: serde_json::to_value(&removed).ok(),
        ..AuditDetail::default()
    };
    Ok((Extension(detail), StatusCode::NO_CONTENT))
}

#[derive(Debug, Clone, Deserialize)]
struct Binding {
    id: String,
    subject: String,
    role: String,
}

async fn bindings_at(state: &AppState, code: &str) -> Result<Vec<Binding>, ApiError> {
    let listed = manage_as_host(
        state,
        "binding.list",
        json!({"scope": format!("project:{code}")}),
    )
    .await?;
    Ok(serde_json::from_value(listed["items"].clone()).unwrap_or_default())
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub user_id: String,
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub binding_id: String,
    /// False for the project's last owner, who cannot be removed.
    pub can_remove: bool,
}

async fn members(state: &AppState, code: &str) -> Result<Vec<Member>, ApiError> {
    state.projects.get(code)?;
    let bindings = bindings_at(state, code).await?;
    let owners = bindings
        .iter()
        .filter(|b| b.role == OWNER && b.subject.starts_with("user:"))
        .count();
    let mut members = Vec::new();
    for binding in bindings {
        let Some(user_id) = binding.subject.strip_prefix("user:") else {
            continue;
        };
        let Ok(user) = state.identity.user(user_id) else {
            continue;
        };
        members.push(Member {
            user_id: user.id,
            username: user.username,
            display_name: user.display_name,
            can_remove: !(binding.role == OWNER && owners <= 1),
            role: binding.role,
            binding_id: binding.id,
        });
    }
    members.sort_by(|a, b| a.username.cmp(&b.username));
    Ok(members)
}

#[derive(Serialize, ToSchema)]
struct MemberList {
    items: Vec<Member>,
}

/// The project's members with their roles.
#[utoipa::path(get, path = "/api/v1/projects/{code}/members", tag = "projects", security(("bearer" = [])),
    params(("code" = String, Path)), responses((status = 200, body = MemberList), (status = 404, body = Problem)))]
async fn list_members(
    State(state): State<AppState>,
    Path(code): Path<String>,
) -> Result<axum::Json<MemberList>, ApiError> {
    Ok(axum::Json(MemberList {
        items: members(&state, &code).await?,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewMember {
    user_id: String,
    role: String,
}

/// Either `userIds` with one `role` for all, or `members` with a role each.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewMembers {
    user_ids: Option<Vec<String>>,
    role: Option<String>,
    members: Option<Vec<NewMember>>,
}

impl NewMembers {
    fn pairs(self) -> Result<Vec<(String, String)>, ApiError> {
        let pairs: Vec<(String, String)> = match (self.user_ids, self.role, self.members) {
            (Some(ids), Some(role), None) => ids.into_iter().map(|id| (id, role.clone())).collect(),
            (None, None, Some(members)) => {
                members.into_iter().map(|m| (m.user_id, m.role)).collect()
            }
            (Some(_), None, None) => {
                return Err(ApiError::invalid("role", "give the role for `userIds`"));
            }
            _ => {
                return Err(ApiError::invalid(
                    "members",
                    "give either `userIds` with `role`, or `members`",
                ));
            }
        };
        if pairs.is_empty() || pairs.len() > 100 {
            return Err(ApiError::invalid("members", "give 1 to 100 users"));
        }
        Ok(pairs)
    }
}

/// Adds users with roles, one role for all or one each (as the caller: the policy's grant
/// rules apply, so nobody grants more than they hold).
#[utoipa::path(post, path = "/api/v1/projects/{code}/members", tag = "projects", security(("bearer" = [])),
    params(("code" = String, Path)), request_body = NewMembers,
    responses((status = 200, body = MemberList), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
async fn add_members(
    State(state): State<AppState>,
    caller: Caller,
    Path(code): Path<String>,
    ApiJson(body): ApiJson<NewMembers>,
) -> Result<(Extension<AuditDetail>, axum::Json<MemberList>), ApiError> {
    state.projects.get(&code)?;
    let pairs = body.pairs()?;
    for (i, (id, _)) in pairs.iter().enumerate() {
        state.identity.user(id).map_err(|_| {
            ApiError::invalid(
                format!("members[{i}].userId"),
                format!("user `{id}` does not exist"),
            )
        })?;
    }
    let current = members(&state, &code).await?;
    for (id, role) in &pairs {
        if current.iter().any(|m| &m.user_id == id) {
            continue;
        }
        let grant = json!({"subject": format!("user:{id}"), "role": role, "scope": format!("project:{code}")});
        manage_as(&state, &caller, "binding.create", grant).await?;
    }
    let added: Vec<Value> = pairs
        .iter()
        .map(|(id, role)| json!({"userId": id, "role": role}))
        .collect();
    let detail = AuditDetail {
        after: Some(json!({"added": added})),
        ..AuditDetail::default()
    };
    Ok((
        Extension(detail),
        axum::Json(MemberList {
            items: members(&state, &code).await?,
        }),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RoleChange {
    role: String,
}

fn member_of<'a>(members: &'a [Member], user: &str) -> Result<&'a Member, ApiError> {
    members.iter().find(|m| m.user_id == user).ok_or_else(|| {
        ApiError::not_found(
            "member-not-found",
            format!("user `{user}` is not a member of this project"),
        )
    })
}

/// Changes a member's role.
#[utoipa::path(put, path = "/api/v1/projects/{code}/members/{user}", tag = "projects", security(("bearer" = [])),
    params(("code" = String, Path), ("user" = String, Path)), request_body = RoleChange,
    responses((status = 200, body = MemberList), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem)))]
async fn change_member(
    State(state): State<AppState>,
    caller: Caller,
    Path((code, user)): Path<(String, String)>,
    ApiJson(body): ApiJson<RoleChange>,
) -> Result<(Extension<AuditDetail>, axum::Json<MemberList>), ApiError> {
    let current = members(&state, &code).await?;
    let member = member_of(&current, &user)?.clone();
    if member.role == body.role {
        return Ok((
            Extension(AuditDetail::default()),
            axum::Json(MemberList { items: current }),
        ));
    }
    const KEEPS_OWNER: &str =
        "the project's last owner keeps the owner role; make someone else owner first";
    // Answers at once when the listing already shows it; under concurrent changes the
    // guarded removal below is what decides.
    if !member.can_remove {
        return Err(last_owner(KEEPS_OWNER));
    }
    let grant = json!({"subject": format!("user:{user}"), "role": body.role, "scope": format!("project:{code}")});
    let granted = manage_as(&state, &caller, "binding.create", grant).await?;
    let removal = remove_keeping_an_owner(&state, &caller, &member.binding_id).await;
    if !matches!(removal, Ok(true)) {
        // The old role stays, so the new one is taken back, unless the member held it already.
        let new_id = granted["id"].as_str().unwrap_or_default();
        if !current.iter().any(|m| m.binding_id == new_id) {
            manage_as_host(&state, "binding.delete", json!({"id": new_id})).await?;
        }
        removal?;
        return Err(last_owner(KEEPS_OWNER));
    }
    let detail = AuditDetail {
        target: Some(format!("project:{code}/member:{user}")),
        before: Some(json!({"role": member.role})),
        after: Some(json!({"role": body.role})),
        ..AuditDetail::default()
    };
    Ok((
        Extension(detail),
        axum::Json(MemberList {
            items: members(&state, &code).await?,
        }),
    ))
}

/// Removes a member (the last owner is protected).
#[utoipa::path(delete, path = "/api/v1/projects/{code}/members/{user}", tag = "projects", security(("bearer" = [])),
    params(("code" = String, Path), ("user" = String, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn remove_member(
    State(state): State<AppState>,
    caller: Caller,
    Path((code, user)): Path<(String, String)>,
) -> Result<(Extension<AuditDetail>, StatusCode), ApiError> {
    let current = members(&state, &code).await?;
    let member = member_of(&current, &user)?;
    if !remove_keeping_an_owner(&state, &caller, &member.binding_id).await? {
        return Err(last_owner(
            "the project's last owner cannot be removed; make someone else owner first",
        ));
    }
    let detail = AuditDetail {
        target: Some(format!("project:{code}/member:{user}")),
        before: Some(json!({"role": member.role})),
        ..AuditDetail::default()
    };
    Ok((Extension(detail), StatusCode::NO_CONTENT))
}

fn last_owner(detail: &str) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "last-owner", detail)
}

/// Removes a member's binding unless it is the project's last user owner; whether it went.
/// The authorizer checks and removes in one atomic step, so of two removals racing on
/// the last two owners one is refused, whichever host each arrives at.
async fn remove_keeping_an_owner(
    state: &AppState,
    caller: &Caller,
    binding_id: &str,
) -> Result<bool, ApiError> {
    let input = json!({"id": binding_id, "keepRole": OWNER});
    let removal = manage_as(state, caller, "binding.delete", input).await?;
    Ok(removal["deleted"] == json!(true))
}

#[derive(Serialize, ToSchema)]
struct AddableUsers {
    items: Vec<crate::auth::UserView>,
}

/// Active users who are not members yet, matching `search`.
#[utoipa::path(get, path = "/api/v1/projects/{code}/addable-users", tag = "projects", security(("bearer" = [])),
    params(("code" = String, Path), ("search" = Option<String>, Query)),
    responses((status = 200, body = AddableUsers), (status = 404, body = Problem)))]
async fn addable_users(
    State(state): State<AppState>,
    Path(code): Path<String>,
    parts: Parts,
) -> Result<axum::Json<AddableUsers>, ApiError> {
    let search = query_pairs(&parts)
        .into_iter()
        .find(|(k, _)| k == "search")
        .map(|(_, v)| v);
    let current = members(&state, &code).await?;
    let items = state
        .identity
        .list_users(search.as_deref(), Some(UserStatus::Active))?
        .into_iter()
        .filter(|u| !current.iter().any(|m| m.user_id == u.id))
        .take(100)
        .collect();
    Ok(axum::Json(AddableUsers { items }))
}
