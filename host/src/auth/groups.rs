//! Groups of users, the subjects permission bindings can name besides single users.
//!
//! Stored at `v1/groups/<id>` with a `v1/groupnames/<name>` index; members are user ids.
//! A group claims its name (`absent`) in the batch that writes it, and every change
//! applies only to the record as it was read (redone on a lost race), so names stay unique
//! and concurrent membership changes are not lost.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::users::validate_name;
use super::{AuthError, Identity, invalid, now};
use crate::store::{Batch, Store, StoreError};

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

/// What a change does to a group.
enum GroupChange {
    Keep,
    Save(Group),
    Delete,
}

impl Identity {
    pub fn group(&self, id: &str) -> Result<Group, AuthError> {
        self.store
            .get_json(&group_key(id))?
            .ok_or_else(|| AuthError::GroupNotFound(id.to_owned()))
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
        let (group_key, name_key) = (group_key(&group.id), name_key(&group.name));
        let claim = Batch::new()
            .absent(&name_key)
            .absent(&group_key)
            .put_json(&group_key, &group)?
            .put_json(&name_key, &group.id)?;
        if self.store.apply(&claim)?.is_err() {
            return Err(AuthError::NameTaken(group.name));
        }
        self.store.commit().await?;
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

    /// Reads group `id`, lets `change` decide, and writes that only if the record is still
    /// what was read, redoing it on a lost race. A rename claims the new name and frees the
    /// old one in the same batch; `member` (a user id) must still exist when it applies.
    /// Answers the group as it is now (as it was, when deleted).
    async fn change_group(
        &self,
        id: &str,
        member: Option<&str>,
        mut change: impl FnMut(&Group) -> Result<GroupChange, AuthError>,
    ) -> Result<Group, AuthError> {
        let key = group_key(id);
        loop {
            let read = self
                .store
                .get_raw(&key)?
                .ok_or_else(|| AuthError::GroupNotFound(id.to_owned()))?;
            let group: Group = serde_json::from_slice(&read).map_err(|e| StoreError::Corrupt {
                key: key.clone(),
                reason: e.to_string(),
            })?;
            let mut batch = Batch::new().equals(&key, read);
            if let Some(user_id) = member {
                batch = batch.present(&Store::key(&["users", user_id]));
            }
            let (batch, answer) = match change(&group)? {
                GroupChange::Keep => return Ok(group),
                GroupChange::Delete => (
                    batch.delete(&key).delete(&name_key(&group.name)),
                    group.clone(),
                ),
                GroupChange::Save(next) => {
                    let mut batch = batch.put_json(&key, &next)?;
                    if next.name != group.name {
                        let new_name = name_key(&next.name);
                        batch = batch
                            .absent(&new_name)
                            .delete(&name_key(&group.name))
                            .put_json(&new_name, &next.id)?;
                    }
                    (batch, next)
                }
            };
            match self.store.apply(&batch)? {
                Ok(()) => {
                    self.store.commit().await?;
                    return Ok(answer);
                }
                Err(conflict) if conflict.key == key.as_bytes() => continue,
                Err(conflict) if conflict.key == name_key(&answer.name).as_bytes() => {
                    return Err(AuthError::NameTaken(answer.name));
                }
                Err(_) => {
                    return Err(AuthError::UserNotFound(
                        member.unwrap_or_default().to_owned(),
                    ));
                }
            }
        }
    }

    pub async fn rename_group(&self, id: &str, name: String) -> Result<Group, AuthError> {
        validate_name("name", &name)?;
        self.change_group(id, None, |group| {
            if group.name == name {
                return Ok(GroupChange::Keep);
            }
            let mut group = group.clone();
            group.name = name.clone();
            group.updated_at = now();
            Ok(GroupChange::Save(group))
        })
        .await
    }

    pub async fn delete_group(&self, id: &str) -> Result<Group, AuthError> {
        self.change_group(id, None, |_| Ok(GroupChange::Delete))
            .await
    }

    /// Adds an existing user; the batch requires the user to still exist, so a concurrent
    /// deletion cannot leave a dangling member.
    pub async fn add_member(&self, id: &str, user_id: &str) -> Result<Group, AuthError> {
        self.user(user_id)?;
        self.change_group(id, Some(user_id), |group| {
            if group.members.iter().any(|m| m == user_id) {
                return Ok(GroupChange::Keep);
            }
            let mut group = group.clone();
            group.members.push(user_id.to_owned());
            group.updated_at = now();
            Ok(GroupChange::Save(group))
        })
        .await
    }

    pub async fn remove_member(&self, id: &str, user_id: &str) -> Result<Group, AuthError> {
        self.change_group(id, None, |group| {
            if !group.members.iter().any(|m| m == user_id) {
                return Err(AuthError::UserNotFound(format!(
                    "{user_id} (not a member of `{}`)",
                    group.name
                )));
            }
            let mut group = group.clone();
            group.members.retain(|m| m != user_id);
            group.updated_at = now();
            Ok(GroupChange::Save(group))
        })
        .await
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
                let left = self
                    .change_group(&group.id, None, |group| {
                        let mut group = group.clone();
                        group.members.retain(|m| m != user_id);
                        group.updated_at = now();
                        Ok(GroupChange::Save(group))
                    })
                    .await;
                match left {
                    Ok(_) | Err(AuthError::GroupNotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }
}
