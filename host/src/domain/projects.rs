//! Projects (seed 001 §5.13): the top scope of the app model, stored at
//! `v1/projects/<code>`. Who may do what inside a project is the authorizer's business;
//! this module owns the project record and its rules.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::dependents::Dependents;
use crate::store::{Batch, Store, StoreError};

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    /// 3–30 characters, a lowercase letter first, then `[a-z0-9-]`; never changes.
    pub code: String,
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

#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("project `{0}` does not exist")]
    NotFound(String),
    #[error("a project with code `{0}` exists")]
    CodeTaken(String),
    #[error("project `{code}` still owns {count} {what}; delete or move them first")]
    NotEmpty {
        code: String,
        what: &'static str,
        count: usize,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(field: &str, message: impl Into<String>) -> ProjectError {
    ProjectError::Invalid {
        field: field.to_owned(),
        message: message.into(),
    }
}

fn key(code: &str) -> String {
    Store::key(&["projects", code])
}

/// What a project owns, by key prefix; a project that owns anything cannot be deleted.
fn owned_prefixes(code: &str) -> [(&'static str, String); 3] {
    [
        ("apps", format!("{}/", Store::key(&["apps", code]))),
        ("environments", format!("{}/", Store::key(&["envs", code]))),
        (
            "packages",
            crate::domain::artifacts::packages::project_prefix(code),
        ),
    ]
}

/// The counts of what a project owns (`apps`, `environments`, `packages`), for batches that add or
/// remove such a child: see [`super::dependents`].
pub(crate) fn dependents(store: &Store, code: &str) -> Result<Dependents, StoreError> {
    Dependents::read(store, &format!("project:{code}"), &owned_prefixes(code))
}

/// The check, for a batch creating a child of the project, that the project exists.
pub(crate) fn exists(batch: Batch, code: &str) -> Batch {
    batch.present(&key(code))
}

/// Whether a batch conflict was the project's record (it does not exist any more).
pub(crate) fn is_record(code: &str, conflict: &[u8]) -> bool {
    conflict == key(code).as_bytes()
}

/// Seed 001: 3–30 characters, a lowercase letter first, then `[a-z0-9-]`.
pub fn validate_code(code: &str) -> Result<(), ProjectError> {
    let mut chars = code.chars();
    let ok = (3..=30).contains(&code.len())
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "code",
            "use 3-30 characters: a lowercase letter first, then a-z, 0-9 or -",
        ))
    }
}

fn validate_name(name: &str) -> Result<(), ProjectError> {
    if name.trim().is_empty() || name.chars().count() > 50 {
        return Err(invalid("name", "must be 1 to 50 characters"));
    }
    Ok(())
}

fn validate_description(description: &str) -> Result<(), ProjectError> {
    if description.chars().count() > 500 {
        return Err(invalid("description", "must be at most 500 characters"));
    }
    Ok(())
}

/// Projects over the host store.
#[derive(Clone)]
pub struct Projects {
    store: Store,
}

impl Projects {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    pub fn get(&self, code: &str) -> Result<Project, ProjectError> {
        self.store
            .get_json(&key(code))?
            .ok_or_else(|| ProjectError::NotFound(code.to_owned()))
    }

    pub async fn create(
        &self,
        code: String,
        name: String,
        description: Option<String>,
        actor: &str,
    ) -> Result<Project, ProjectError> {
        validate_code(&code)?;
        validate_name(&name)?;
        let description = description.unwrap_or_default();
        validate_description(&description)?;
        let now = OffsetDateTime::now_utc();
        let project = Project {
            code,
            name,
            description,
            created_at: now,
            updated_at: now,
            created_by: actor.to_owned(),
        };
        let batch = Batch::new()
            .absent(&key(&project.code))
            .put_json(&key(&project.code), &project)?;
        if self.store.apply(&batch)?.is_err() {
            return Err(ProjectError::CodeTaken(project.code));
        }
        self.store.commit().await?;
        Ok(project)
    }

    /// Projects whose code or name contains `search` (case-insensitive), by code.
    pub fn list(&self, search: Option<&str>) -> Result<Vec<Project>, ProjectError> {
        let needle = search.map(str::to_lowercase);
        let mut projects: Vec<Project> = self
            .store
            .list_json(&format!("{}/", Store::key(&["projects"])))?;
        projects.retain(|p| {
            needle.as_ref().is_none_or(|n| {
                p.code.contains(n.as_str()) || p.name.to_lowercase().contains(n.as_str())
            })
        });
        projects.sort_by(|a, b| a.code.cmp(&b.code));
        Ok(projects)
    }

    pub async fn update(
        &self,
        code: &str,
        name: Option<String>,
        description: Option<String>,
    ) -> Result<Project, ProjectError> {
        if let Some(name) = &name {
            validate_name(name)?;
        }
        if let Some(description) = &description {
            validate_description(description)?;
        }
        let project = self
            .store
            .update_json(&key(code), |current: Option<Project>| {
                let mut project = current.ok_or_else(|| ProjectError::NotFound(code.to_owned()))?;
                if let Some(name) = &name {
                    project.name = name.clone();
                }
                if let Some(description) = &description {
                    project.description = description.clone();
                }
                project.updated_at = OffsetDateTime::now_utc();
                Ok::<_, ProjectError>(Some(project))
            })?;
        self.store.commit().await?;
        project.ok_or_else(|| ProjectError::NotFound(code.to_owned()))
    }

    /// Deletes a project that owns no apps, environments or packages.
    pub async fn delete(&self, code: &str) -> Result<Project, ProjectError> {
        loop {
            let read = self.store.get_raw(&key(code))?;
            let project = self.get(code)?;
            let owned = dependents(&self.store, code)?;
            if let Some((what, count)) = owned.any() {
                return Err(ProjectError::NotEmpty {
                    code: code.to_owned(),
                    what: match what {
                        "apps" => "apps",
                        "packages" => "packages",
                        _ => "environments",
                    },
                    count: count as usize,
                });
            }
            let batch =
                owned.remove_all(Batch::new().unchanged(&key(code), read).delete(&key(code)));
            if self.store.apply(&batch)?.is_ok() {
                self.store.commit().await?;
                return Ok(project);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_seed_001() {
        for ok in ["shop", "a-1", "abc", "a23456789012345678901234567890"] {
            assert!(validate_code(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            "1shop",
            "Shop",
            "shop_cart",
            "a234567890123456789012345678901",
            "-ab",
        ] {
            assert!(validate_code(bad).is_err(), "{bad}");
        }
    }
}
