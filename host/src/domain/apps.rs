//! Apps of a project and their groups (seed 001 §5.1–5.2), per-user favourites, disable,
//! copy. An app is stored at `v1/apps/<project>/<name>` (the name is the app code: it
//! never changes and is the path segment), with an id index `v1/app-ids/<id>` →
//! `"<project>/<name>"` for seed 004's by-id routes. Groups live at
//! `v1/app-groups/<project>/<groupId>`, favourites at
//! `v1/app-favourites/<userId>/<project>/<app>`. Kubernetes objects are named after the
//! app name in lowercase, so two apps of a project may not differ by case alone.

use std::collections::HashSet;

use serde::{Deserialize, Deserializer, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::dependents::Dependents;
use super::deployments::{self, DeploymentStatus};
use super::projects::{ProjectError, Projects};
use crate::store::{Batch, Store, StoreError};

/// Seed 001 `category`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Category {
    MicroService,
    #[default]
    GeneralApp,
}

impl Category {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "MICRO_SERVICE" => Some(Self::MicroService),
            "GENERAL_APP" => Some(Self::GeneralApp),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct App {
    /// 32 hex digits (seed 004: 32 letters and digits).
    pub id: String,
    pub project: String,
    /// 3–30 characters, a lowercase letter first, then letters or digits; never changes.
    pub name: String,
    pub category: Category,
    pub description: String,
    /// http(s) URL of the code repository, at most 100 characters.
    pub code_repos_address: Option<String>,
    /// Where the code is hosted (`GITEE`, `GITHUB`, …).
    pub origin: Option<String>,
    pub group_id: Option<String>,
    /// A disabled app cannot be deployed.
    pub disabled: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub updated_at: OffsetDateTime,
    pub created_by: String,
}

impl App {
    /// Scope path of the app for the authorizer and the audit log.
    pub fn scope(&self) -> String {
        format!("project:{}/app:{}", self.project, self.name)
    }

    /// Base name of the app's Kubernetes objects.
    pub fn workload(&self) -> String {
        self.name.to_lowercase()
    }
}

/// A group of apps in a project (seed 001 §5.2).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppGroup {
    pub id: String,
    pub project: String,
    /// 1–10 characters, unique in the project.
    pub name: String,
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
pub struct NewApp {
    pub name: String,
    /// `GENERAL_APP` when absent (seed 001 5.1.1 creates general apps).
    #[serde(default)]
    pub category: Category,
    pub description: Option<String>,
    pub code_repos_address: Option<String>,
    pub origin: Option<String>,
    pub group_id: Option<String>,
}

/// Changes to an app; absent fields stay, `null` clears an optional one.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppUpdate {
    pub description: Option<String>,
    pub category: Option<Category>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub code_repos_address: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub origin: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub group_id: Option<Option<String>>,
}

/// A copy of an app under a new name.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppCopy {
    pub name: String,
    /// The source's description when absent.
    pub description: Option<String>,
}

/// A present field (even `null`) as `Some`, so `null` can mean "clear".
pub(crate) fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// What the list of a project's apps is filtered by.
#[derive(Debug, Clone, Default)]
pub struct AppFilter {
    pub group: Option<String>,
    /// Substring of the name, case-insensitive.
    pub name: Option<String>,
    pub category: Option<Category>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Favourite {
    project: String,
    app: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("project `{0}` does not exist")]
    ProjectNotFound(String),
    #[error("app `{app}` does not exist in project `{project}`")]
    NotFound { project: String, app: String },
    #[error("no app has id `{0}`")]
    IdNotFound(String),
    #[error("an app named `{0}` exists in this project")]
    NameTaken(String),
    #[error(
        "app `{existing}` exists in this project and Kubernetes names are lowercase, so `{name}` would clash with it"
    )]
    NameClash { name: String, existing: String },
    #[error("app `{app}` is deployed to {envs}; delete those deployments first")]
    HasDeployments { app: String, envs: String },
    #[error("app group `{0}` does not exist in this project")]
    GroupNotFound(String),
    #[error("an app group named `{0}` exists in this project")]
    GroupNameTaken(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(field: &str, message: impl Into<String>) -> AppError {
    AppError::Invalid {
        field: field.to_owned(),
        message: message.into(),
    }
}

fn key(project: &str, name: &str) -> String {
    Store::key(&["apps", project, name])
}

fn project_prefix(project: &str) -> String {
    format!("{}/", Store::key(&["apps", project]))
}

/// Claim of an app name in its project, by lowercase name (Kubernetes names are
/// lowercase, so `Cart` and `cart` would clash): two creates cannot both take it.
fn name_claim_key(project: &str, name: &str) -> String {
    Store::key(&["app-names", project, &name.to_lowercase()])
}

/// Claim of an app group name in its project.
fn group_name_key(project: &str, name: &str) -> String {
    Store::key(&["app-group-names", project, name])
}

/// The counts of what an app owns (deployment records, deploy configs), for batches that
/// add or remove such a child: see [`super::dependents`].
pub(crate) fn dependents(
    store: &Store,
    project: &str,
    app: &str,
) -> Result<Dependents, StoreError> {
    Dependents::read(
        store,
        &format!("app:{project}/{app}"),
        &[
            (
                "deployments",
                format!("{}/", Store::key(&["deployments", project, app])),
            ),
            (
                "deploy-configs",
                format!("{}/", Store::key(&["deploy-configs", project, app])),
            ),
        ],
    )
}

/// The check, for a batch creating a child of the app, that the app exists.
pub(crate) fn exists(batch: Batch, project: &str, app: &str) -> Batch {
    batch.present(&key(project, app))
}

/// The check, for a batch creating a child of the app group, that the group exists.
pub(crate) fn group_exists(batch: Batch, project: &str, group: &str) -> Batch {
    batch.present(&group_key(project, group))
}

/// A new app record, not stored yet (for [`create_in`]).
pub(crate) fn draft(
    project: &str,
    name: &str,
    description: &str,
    group: Option<&str>,
    actor: &str,
) -> App {
    let now = OffsetDateTime::now_utc();
    App {
        id: new_id(),
        project: project.to_owned(),
        name: name.to_owned(),
        category: Category::GeneralApp,
        description: description.to_owned(),
        code_repos_address: None,
        origin: None,
        group_id: group.map(str::to_owned),
        disabled: false,
        created_at: now,
        updated_at: now,
        created_by: actor.to_owned(),
    }
}

/// Adds to `batch` what creating `app` takes (its name and case-insensitive claim free,
/// its id new), for a batch that creates several records at once. The project's count of
/// apps, its existence and the group's are the caller's to check and write.
pub(crate) fn create_in(batch: Batch, app: &App) -> Result<Batch, StoreError> {
    validate_name(&app.name).map_err(|e| StoreError::Backend(e.to_string()))?;
    batch
        .absent(&key(&app.project, &app.name))
        .absent(&name_claim_key(&app.project, &app.name))
        .absent(&id_key(&app.id))
        .put_json(&key(&app.project, &app.name), app)?
        .put_json(&name_claim_key(&app.project, &app.name), &app.name)?
        .put_json(&id_key(&app.id), &format!("{}/{}", app.project, app.name))
}

/// Whether `name` (or a name differing only by case) is taken in `project`.
pub(crate) fn name_taken(store: &Store, project: &str, name: &str) -> Result<bool, StoreError> {
    Ok(store.get_raw(&name_claim_key(project, name))?.is_some()
        || store.get_raw(&key(project, name))?.is_some())
}

/// Key of the app id index: the id → `"<project>/<name>"`.
pub fn id_key(id: &str) -> String {
    Store::key(&["app-ids", id])
}

fn group_key(project: &str, id: &str) -> String {
    Store::key(&["app-groups", project, id])
}

fn favourite_key(user: &str, project: &str, app: &str) -> String {
    Store::key(&["app-favourites", user, project, app])
}

/// The app `name` of `project`, if it exists.
pub fn get(store: &Store, project: &str, name: &str) -> Result<Option<App>, StoreError> {
    store.get_json(&key(project, name))
}

/// `(project, name)` of an app id.
pub fn locate(store: &Store, id: &str) -> Result<Option<(String, String)>, StoreError> {
    let Some(path) = store.get_json::<String>(&id_key(id))? else {
        return Ok(None);
    };
    match path.split_once('/') {
        Some((p, a)) => Ok(Some((p.to_owned(), a.to_owned()))),
        None => Err(StoreError::Corrupt {
            key: id_key(id),
            reason: format!("`{path}` is not project/app"),
        }),
    }
}

/// Names of the apps `user` marked as favourite in `project`.
pub fn favourites(store: &Store, user: &str, project: &str) -> Result<HashSet<String>, StoreError> {
    let prefix = format!("{}/", Store::key(&["app-favourites", user, project]));
    Ok(store
        .list_json::<Favourite>(&prefix)?
        .into_iter()
        .map(|f| f.app)
        .collect())
}

/// Seed 001: 3–30 characters, a lowercase letter first, then letters or digits.
pub fn validate_name(name: &str) -> Result<(), AppError> {
    let mut chars = name.chars();
    let ok = (3..=30).contains(&name.len())
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "name",
            "use 3-30 characters: a lowercase letter first, then letters or digits",
        ))
    }
}

fn validate_description(description: &str) -> Result<(), AppError> {
    if description.chars().count() > 500 {
        return Err(invalid("description", "must be at most 500 characters"));
    }
    Ok(())
}

/// Seed 001: at most 100 characters, starting with http:// or https://.
fn validate_repo(address: &str) -> Result<(), AppError> {
    let refuse = || {
        invalid(
            "codeReposAddress",
            "must be an http:// or https:// URL of at most 100 characters",
        )
    };
    if address.chars().count() > 100
        || !(address.starts_with("http://") || address.starts_with("https://"))
    {
        return Err(refuse());
    }
    match url::Url::parse(address) {
        Ok(url) if url.host_str().is_some_and(|h| !h.is_empty()) => Ok(()),
        _ => Err(refuse()),
    }
}

fn validate_origin(origin: &str) -> Result<(), AppError> {
    let ok = (1..=20).contains(&origin.len())
        && origin
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "origin",
            "use 1-20 letters, digits, _ or - (e.g. GITHUB, GITEE)",
        ))
    }
}

fn validate_group_name(name: &str) -> Result<(), AppError> {
    let n = name.trim().chars().count();
    if n == 0 || name.chars().count() > 10 {
        return Err(invalid("name", "must be 1 to 10 characters"));
    }
    Ok(())
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Apps and app groups over the host store.
#[derive(Clone)]
pub struct Apps {
    store: Store,
    projects: Projects,
}

impl Apps {
    pub fn new(store: Store, projects: Projects) -> Self {
        Self { store, projects }
    }

    fn project(&self, project: &str) -> Result<(), AppError> {
        match self.projects.get(project) {
            Ok(_) => Ok(()),
            Err(ProjectError::Store(e)) => Err(e.into()),
            Err(_) => Err(AppError::ProjectNotFound(project.to_owned())),
        }
    }

    pub fn get(&self, project: &str, name: &str) -> Result<App, AppError> {
        self.project(project)?;
        get(&self.store, project, name)?.ok_or_else(|| AppError::NotFound {
            project: project.to_owned(),
            app: name.to_owned(),
        })
    }

    /// The app with this id (seed 004).
    pub fn by_id(&self, id: &str) -> Result<App, AppError> {
        let (project, name) =
            locate(&self.store, id)?.ok_or_else(|| AppError::IdNotFound(id.to_owned()))?;
        get(&self.store, &project, &name)?.ok_or_else(|| AppError::IdNotFound(id.to_owned()))
    }

    /// The project's apps matching `filter`, by name.
    pub fn list(&self, project: &str, filter: &AppFilter) -> Result<Vec<App>, AppError> {
        self.project(project)?;
        let mut apps: Vec<App> = self.store.list_json(&project_prefix(project))?;
        let needle = filter.name.as_deref().map(str::to_lowercase);
        apps.retain(|a| {
            filter
                .group
                .as_ref()
                .is_none_or(|g| a.group_id.as_ref() == Some(g))
                && needle
                    .as_ref()
                    .is_none_or(|n| a.name.to_lowercase().contains(n.as_str()))
                && filter.category.is_none_or(|c| a.category == c)
        });
        apps.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(apps)
    }

    /// Refuses a name taken in the project, also by case alone.
    fn check_name_free(&self, project: &str, name: &str) -> Result<(), AppError> {
        validate_name(name)?;
        let lower = name.to_lowercase();
        let apps: Vec<App> = self.store.list_json(&project_prefix(project))?;
        if let Some(existing) = apps.iter().find(|a| a.name.to_lowercase() == lower) {
            return Err(if existing.name == name {
                AppError::NameTaken(name.to_owned())
            } else {
                AppError::NameClash {
                    name: name.to_owned(),
                    existing: existing.name.clone(),
                }
            });
        }
        Ok(())
    }

    fn check_group(&self, project: &str, group: &str) -> Result<(), AppError> {
        if self
            .store
            .get_json::<AppGroup>(&group_key(project, group))?
            .is_none()
        {
            return Err(invalid(
                "groupId",
                format!("app group `{group}` does not exist in this project"),
            ));
        }
        Ok(())
    }

    /// Reads the app, lets `change` alter it, and writes it back if nobody changed it
    /// meanwhile (retrying otherwise); a group it names must still exist when it is written.
    async fn modify(
        &self,
        project: &str,
        name: &str,
        mut change: impl FnMut(&mut App) -> Result<bool, AppError>,
    ) -> Result<App, AppError> {
        loop {
            let read = self.store.get_raw(&key(project, name))?;
            let mut app = self.get(project, name)?;
            if !change(&mut app)? {
                return Ok(app);
            }
            app.updated_at = OffsetDateTime::now_utc();
            let mut batch = Batch::new()
                .unchanged(&key(project, name), read)
                .put_json(&key(project, name), &app)?;
            if let Some(group) = &app.group_id {
                batch = batch.present(&group_key(project, group));
            }
            match self.store.apply(&batch)? {
                Ok(()) => {
                    self.store.commit().await?;
                    return Ok(app);
                }
                Err(conflict) if conflict.key == key(project, name).as_bytes() => continue,
                Err(_) => {
                    let group = app.group_id.unwrap_or_default();
                    return Err(invalid(
                        "groupId",
                        format!("app group `{group}` does not exist in this project"),
                    ));
                }
            }
        }
    }

    pub async fn create(&self, project: &str, new: NewApp, actor: &str) -> Result<App, AppError> {
        self.project(project)?;
        validate_name(&new.name)?;
        let description = new.description.unwrap_or_default();
        validate_description(&description)?;
        if let Some(address) = &new.code_repos_address {
            validate_repo(address)?;
        }
        if let Some(origin) = &new.origin {
            validate_origin(origin)?;
        }
        if let Some(group) = &new.group_id {
            self.check_group(project, group)?;
        }
        self.check_name_free(project, &new.name)?;
        let now = OffsetDateTime::now_utc();
        let app = App {
            id: new_id(),
            project: project.to_owned(),
            name: new.name,
            category: new.category,
            description,
            code_repos_address: new.code_repos_address,
            origin: new.origin,
            group_id: new.group_id,
            disabled: false,
            created_at: now,
            updated_at: now,
            created_by: actor.to_owned(),
        };
        self.insert(&app).await?;
        Ok(app)
    }

    /// Stores a new app: its name still free, its project and group still there, the
    /// project's count of apps bumped — all in one batch.
    async fn insert(&self, app: &App) -> Result<(), AppError> {
        loop {
            let owner = super::projects::dependents(&self.store, &app.project)?;
            let mut batch = Batch::new()
                .absent(&key(&app.project, &app.name))
                .absent(&name_claim_key(&app.project, &app.name))
                .absent(&id_key(&app.id))
                .put_json(&key(&app.project, &app.name), app)?
                .put_raw(
                    &name_claim_key(&app.project, &app.name),
                    serde_json::to_vec(&app.name)
                        .map_err(|e| StoreError::Backend(e.to_string()))?,
                )
                .put_json(&id_key(&app.id), &format!("{}/{}", app.project, app.name))?;
            batch = super::projects::exists(batch, &app.project);
            if let Some(group) = &app.group_id {
                batch = batch.present(&group_key(&app.project, group));
            }
            let batch = owner.add("apps").write(batch)?;
            let Err(conflict) = self.store.apply(&batch)? else {
                self.store.commit().await?;
                return Ok(());
            };
            if super::dependents::is_dependents_key(&conflict.key) {
                continue;
            }
            if super::projects::is_record(&app.project, &conflict.key) {
                return Err(AppError::ProjectNotFound(app.project.clone()));
            }
            if conflict
                .key
                .starts_with(group_key(&app.project, "").as_bytes())
            {
                return Err(invalid(
                    "groupId",
                    format!(
                        "app group `{}` does not exist in this project",
                        app.group_id.clone().unwrap_or_default()
                    ),
                ));
            }
            // The name (or, by case, a clashing one) was taken meanwhile.
            self.check_name_free(&app.project, &app.name)?;
            return Err(AppError::NameTaken(app.name.clone()));
        }
    }

    /// A new app with the source's category, repository, origin and group.
    pub async fn copy(
        &self,
        project: &str,
        source: &str,
        copy: AppCopy,
        actor: &str,
    ) -> Result<App, AppError> {
        let source = self.get(project, source)?;
        validate_name(&copy.name)?;
        let description = copy.description.unwrap_or(source.description);
        validate_description(&description)?;
        self.check_name_free(project, &copy.name)?;
        let group_id = match source.group_id {
            Some(g) if self.check_group(project, &g).is_ok() => Some(g),
            _ => None,
        };
        let now = OffsetDateTime::now_utc();
        let app = App {
            id: new_id(),
            project: project.to_owned(),
            name: copy.name,
            category: source.category,
            description,
            code_repos_address: source.code_repos_address,
            origin: source.origin,
            group_id,
            disabled: false,
            created_at: now,
            updated_at: now,
            created_by: actor.to_owned(),
        };
        self.insert(&app).await?;
        Ok(app)
    }

    pub async fn update(
        &self,
        project: &str,
        name: &str,
        update: AppUpdate,
    ) -> Result<App, AppError> {
        if let Some(description) = &update.description {
            validate_description(description)?;
        }
        if let Some(Some(address)) = &update.code_repos_address {
            validate_repo(address)?;
        }
        if let Some(Some(origin)) = &update.origin {
            validate_origin(origin)?;
        }
        if let Some(Some(group)) = &update.group_id {
            self.check_group(project, group)?;
        }
        self.modify(project, name, |app| {
            if let Some(description) = &update.description {
                app.description = description.clone();
            }
            if let Some(category) = update.category {
                app.category = category;
            }
            if let Some(address) = &update.code_repos_address {
                app.code_repos_address = address.clone();
            }
            if let Some(origin) = &update.origin {
                app.origin = origin.clone();
            }
            if let Some(group) = &update.group_id {
                app.group_id = group.clone();
            }
            Ok(true)
        })
        .await
    }

    /// Puts the app into a group, or out of any with `None` (seed 001 5.1.4).
    pub async fn set_group(
        &self,
        project: &str,
        name: &str,
        group: Option<String>,
    ) -> Result<App, AppError> {
        let update = AppUpdate {
            group_id: Some(group),
            ..AppUpdate::default()
        };
        self.update(project, name, update).await
    }

    /// Disables (`true`) or enables an app; a disabled app cannot be deployed.
    pub async fn set_disabled(
        &self,
        project: &str,
        name: &str,
        disabled: bool,
    ) -> Result<App, AppError> {
        self.modify(project, name, |app| {
            let changed = app.disabled != disabled;
            app.disabled = disabled;
            Ok(changed)
        })
        .await
    }

    /// Deletes an app that runs nowhere, with its favourites and the records of its
    /// deleted deployments.
    pub async fn delete(&self, project: &str, name: &str) -> Result<App, AppError> {
        let (app, removed) = loop {
            let read = self.store.get_raw(&key(project, name))?;
            let app = self.get(project, name)?;
            let owned = dependents(&self.store, project, name)?;
            let owner = super::projects::dependents(&self.store, project)?;
            let mut batch = Batch::new()
                .unchanged(&key(project, name), read)
                .delete(&key(project, name))
                .delete(&id_key(&app.id))
                .delete(&name_claim_key(project, name));
            // Each deployment record goes on the condition that it is as read here, so a
            // deploy racing this delete either lands first (and refuses it) or fails.
            let mut live = Vec::new();
            let mut removed = Vec::new();
            let records = format!("{}/", Store::key(&["deployments", project, name]));
            for (raw_key, value) in
                self.store
                    .backend()
                    .scan(records.as_bytes(), None, usize::MAX)?
            {
                let record_key = String::from_utf8_lossy(&raw_key).into_owned();
                let deployment: deployments::Deployment =
                    serde_json::from_slice(&value).map_err(|e| StoreError::Corrupt {
                        key: record_key.clone(),
                        reason: e.to_string(),
                    })?;
                if deployment.status != DeploymentStatus::Deleted {
                    live.push(deployment.env.clone());
                }
                batch = batch
                    .equals(&record_key, value)
                    .delete(&record_key)
                    .delete(&deployments::id_key(&deployment.id));
                removed.push(deployment.id);
            }
            if !live.is_empty() {
                return Err(AppError::HasDeployments {
                    app: name.to_owned(),
                    envs: live.join(", "),
                });
            }
            let batch = owner.remove("apps").write(owned.remove_all(batch))?;
            if self.store.apply(&batch)?.is_ok() {
                break (app, removed);
            }
        };
        // What hangs off the app without rules of its own (change order history, deploy
        // configs, favourites) goes after it; a crash here leaves only unreachable records.
        for deployment in &removed {
            super::changes::remove_of_deployment(&self.store, deployment)?;
        }
        super::deploy_configs::delete_all_of_app(&self.store, project, name)?;
        let all = format!("{}/", Store::key(&["app-favourites"]));
        for (raw_key, value) in self
            .store
            .backend()
            .scan(all.as_bytes(), None, usize::MAX)?
        {
            let ours = serde_json::from_slice::<Favourite>(&value)
                .is_ok_and(|f| f.project == project && f.app == name);
            if ours {
                self.store.backend().delete(&raw_key)?;
            }
        }
        self.store.commit().await?;
        Ok(app)
    }

    /// Marks (`true`) or unmarks the app as a favourite of `user`.
    pub async fn set_favourite(
        &self,
        project: &str,
        name: &str,
        user: &str,
        favourite: bool,
    ) -> Result<App, AppError> {
        let app = self.get(project, name)?;
        let key = favourite_key(user, project, name);
        let batch = if favourite {
            let record = Favourite {
                project: project.to_owned(),
                app: name.to_owned(),
                created_at: OffsetDateTime::now_utc(),
            };
            // Only while the app is there, so a favourite never outlives a racing delete.
            Batch::new()
                .present(&self::key(project, name))
                .put_json(&key, &record)?
        } else {
            Batch::new().delete(&key)
        };
        if self.store.apply(&batch)?.is_err() {
            return Err(AppError::NotFound {
                project: project.to_owned(),
                app: name.to_owned(),
            });
        }
        self.store.commit().await?;
        Ok(app)
    }

    pub fn is_favourite(&self, user: &str, project: &str, name: &str) -> Result<bool, AppError> {
        Ok(self
            .store
            .get_json::<Favourite>(&favourite_key(user, project, name))?
            .is_some())
    }

    // Groups.

    pub fn group(&self, project: &str, id: &str) -> Result<AppGroup, AppError> {
        self.project(project)?;
        self.store
            .get_json(&group_key(project, id))?
            .ok_or_else(|| AppError::GroupNotFound(id.to_owned()))
    }

    /// The project's app groups, by name.
    pub fn groups(&self, project: &str) -> Result<Vec<AppGroup>, AppError> {
        self.project(project)?;
        let prefix = format!("{}/", Store::key(&["app-groups", project]));
        let mut groups: Vec<AppGroup> = self.store.list_json(&prefix)?;
        groups.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(groups)
    }

    pub async fn create_group(
        &self,
        project: &str,
        name: String,
        actor: &str,
    ) -> Result<AppGroup, AppError> {
        self.project(project)?;
        validate_group_name(&name)?;
        let now = OffsetDateTime::now_utc();
        let group = AppGroup {
            id: new_id(),
            project: project.to_owned(),
            name,
            created_at: now,
            updated_at: now,
            created_by: actor.to_owned(),
        };
        self.claim_group_name(project, &group.name, &group.id)?;
        let batch = Batch::new()
            .absent(&group_name_key(project, &group.name))
            .put_json(&group_name_key(project, &group.name), &group.id)?
            .put_json(&group_key(project, &group.id), &group)?;
        let batch = super::projects::exists(batch, project);
        match self.store.apply(&batch)? {
            Ok(()) => {}
            Err(conflict) if super::projects::is_record(project, &conflict.key) => {
                return Err(AppError::ProjectNotFound(project.to_owned()));
            }
            Err(_) => return Err(AppError::GroupNameTaken(group.name)),
        }
        self.store.commit().await?;
        Ok(group)
    }

    /// Refuses a group name another group of the project has. Groups made before names
    /// were claimed have no claim, so they are looked for as well.
    fn claim_group_name(&self, project: &str, name: &str, id: &str) -> Result<(), AppError> {
        if self
            .groups(project)?
            .iter()
            .any(|g| g.name == name && g.id != id)
        {
            return Err(AppError::GroupNameTaken(name.to_owned()));
        }
        Ok(())
    }

    pub async fn rename_group(
        &self,
        project: &str,
        id: &str,
        name: String,
    ) -> Result<AppGroup, AppError> {
        validate_group_name(&name)?;
        loop {
            let read = self.store.get_raw(&group_key(project, id))?;
            let mut group = self.group(project, id)?;
            if group.name == name {
                return Ok(group);
            }
            self.claim_group_name(project, &name, id)?;
            let old_name = std::mem::replace(&mut group.name, name.clone());
            group.updated_at = OffsetDateTime::now_utc();
            let batch = Batch::new()
                .unchanged(&group_key(project, id), read)
                .absent(&group_name_key(project, &name))
                .put_json(&group_name_key(project, &name), &group.id)?
                .delete(&group_name_key(project, &old_name))
                .put_json(&group_key(project, id), &group)?;
            match self.store.apply(&batch)? {
                Ok(()) => {
                    self.store.commit().await?;
                    return Ok(group);
                }
                Err(conflict) if conflict.index == 0 => continue,
                Err(_) => return Err(AppError::GroupNameTaken(name)),
            }
        }
    }

    /// Deletes a group; its apps become ungrouped. The batch holds every app of the
    /// project as read and the project's count of apps, so an app put into the group (or
    /// created in it) meanwhile makes it start over instead of keeping a dangling group.
    pub async fn delete_group(&self, project: &str, id: &str) -> Result<AppGroup, AppError> {
        loop {
            let read = self.store.get_raw(&group_key(project, id))?;
            let group = self.group(project, id)?;
            let owner = super::projects::dependents(&self.store, project)?;
            let mut batch = Batch::new()
                .unchanged(&group_key(project, id), read)
                .delete(&group_key(project, id))
                .delete(&group_name_key(project, &group.name));
            let now = OffsetDateTime::now_utc();
            for (raw_key, value) in
                self.store
                    .backend()
                    .scan(project_prefix(project).as_bytes(), None, usize::MAX)?
            {
                let app_key = String::from_utf8_lossy(&raw_key).into_owned();
                let mut app: App =
                    serde_json::from_slice(&value).map_err(|e| StoreError::Corrupt {
                        key: app_key.clone(),
                        reason: e.to_string(),
                    })?;
                batch = batch.equals(&app_key, value);
                if app.group_id.as_deref() == Some(id) {
                    app.group_id = None;
                    app.updated_at = now;
                    batch = batch.put_json(&app_key, &app)?;
                }
            }
            let batch = owner.write(batch)?;
            if self.store.apply(&batch)?.is_ok() {
                self.store.commit().await?;
                return Ok(group);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_seed_001() {
        for ok in ["cart", "cartService", "a23", "aB3", &"a".repeat(30)] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            "Cart",
            "1cart",
            "cart-svc",
            "cart_svc",
            &"a".repeat(31),
            "carté",
        ] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn repository_addresses_are_http_urls_of_at_most_100_characters() {
        assert!(validate_repo("https://github.com/acme/cart").is_ok());
        assert!(validate_repo("http://gitee.com/acme/cart.git").is_ok());
        let long = format!("https://github.com/{}", "a".repeat(82));
        assert!(validate_repo(&long).is_err());
        for bad in [
            "ftp://x.org/a",
            "github.com/acme",
            "https://",
            "git@github.com:a/b",
        ] {
            assert!(validate_repo(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn group_names_are_at_most_ten_characters() {
        assert!(validate_group_name("backend").is_ok());
        assert!(validate_group_name("前端组").is_ok());
        assert!(validate_group_name("abcdefghijk").is_err());
        assert!(validate_group_name("  ").is_err());
    }
}
