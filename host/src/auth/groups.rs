//! Groups of users, the subjects permission bindings can name besides single users.
//!
//! Stored at `v1/groups/<id>` with a `v1/groupnames/<name>` index; members are user ids.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::users::validate_name;
use super::{AuthError, Identity, invalid, now};
use crate::store::Store;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub id: String,
    pub name: String,
    pub description: String,
    /// User ids.
    pub members: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub updated_at: OffsetDateTime,
    pub created_by: String,
}

fn group_key(id: &str) -> String {
    Store::key(&["groups", id])
}

fn name_key(name: &str) -> String {
    Store::key(&["groupnames", name])
}

impl Identity {
    pub fn group(&self, id: &str) -> Result<Group, AuthError> {
        self.store
            .get_json(&group_key(id))?
            .ok_or_else(|| AuthError::GroupNotFound(id.to_owned()))
    }

    fn group_by_name(&self, name: &str) -> Result<Option<Group>, AuthError> {
        let Some(id) = self.store.get_json::<String>(&name_key(name))? else {
            return Ok(None);
        };
        Ok(self.store.get_json(&group_key(&id))?)
    }

    async fn save_group(&self, group: &Group) -> Result<(), AuthError> {
        self.store.put_json(&group_key(&group.id), group)?;
        self.store.put_json(&name_key(&group.name), &group.id)?;
        self.store.commit().await?;
        Ok(())
    }

    pub async fn create_group(
        &self,
        name: String,
        description: Option<String>,
        actor: &str,
    ) -> Result<Group, AuthError> {
        validate_name("name", &name)?;
        let description = description.unwrap_or_default();
        if description.chars().count() > 500 {
            return Err(invalid("description", "at most 500 characters"));
        }
        if self.group_by_name(&name)?.is_some() {
            return Err(AuthError::NameTaken(name));
        }
        let at = now();
        let group = Group {
            id: uuid::Uuid::new_v4().to_string(),
            name,
            description,
            members: Vec::new(),
            created_at: at,
            updated_at: at,
            created_by: actor.to_owned(),
        };
        self.save_group(&group).await?;
        Ok(group)
    }

    /// Groups whose name contains `search`, by name.
    pub fn list_groups(&self, search: Option<&str>) -> Result<Vec<Group>, AuthError> {
        let mut groups: Vec<Group> = self
            .store
            .list_json(&format!("{}/", Store::key(&["groups"])))?;
        groups.retain(|g| search.is_none_or(|s| g.name.contains(&s.to_lowercase())));
        groups.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(groups)
    }

    pub async fn rename_group(&self, id: &str, name: String) -> Result<Group, AuthError> {
        validate_name("name", &name)?;
        let mut group = self.group(id)?;
        if group.name == name {
            return Ok(group);
        }
        if self.group_by_name(&name)?.is_some() {
            return Err(AuthError::NameTaken(name));
        }
        self.store.delete(&name_key(&group.name))?;
        group.name = name;
        group.updated_at = now();
        self.save_group(&group).await?;
        Ok(group)
    }

    pub async fn delete_group(&self, id: &str) -> Result<Group, AuthError> {
        let group = self.group(id)?;
        self.store.delete(&group_key(id))?;
        self.store.delete(&name_key(&group.name))?;
        self.store.commit().await?;
        Ok(group)
    }

    pub async fn add_member(&self, id: &str, user_id: &str) -> Result<Group, AuthError> {
        self.user(user_id)?;
        let mut group = self.group(id)?;
        if !group.members.iter().any(|m| m == user_id) {
            group.members.push(user_id.to_owned());
            group.updated_at = now();
            self.save_group(&group).await?;
        }
        Ok(group)
    }

    pub async fn remove_member(&self, id: &str, user_id: &str) -> Result<Group, AuthError> {
        let mut group = self.group(id)?;
        let before = group.members.len();
        group.members.retain(|m| m != user_id);
        if group.members.len() == before {
            return Err(AuthError::UserNotFound(format!(
                "{user_id} (not a member of `{}`)",
                group.name
            )));
        }
        group.updated_at = now();
        self.save_group(&group).await?;
        Ok(group)
    }

    /// Ids of the groups `user_id` belongs to.
    pub fn groups_of(&self, user_id: &str) -> Result<Vec<String>, AuthError> {
        Ok(self
            .list_groups(None)?
            .into_iter()
            .filter(|g| g.members.iter().any(|m| m == user_id))
            .map(|g| g.id)
            .collect())
    }

    /// Drops a deleted user from every group.
    pub(super) async fn leave_all_groups(&self, user_id: &str) -> Result<(), AuthError> {
        for group in self.list_groups(None)? {
            if group.members.iter().any(|m| m == user_id) {
                self.remove_member(&group.id, user_id).await?;
            }
        }
        Ok(())
    }
}
