//! Users: the stored account, its validation rules, and account administration.
//!
//! Users live at `v1/users/<id>` with a `v1/usernames/<username>` index. A disabled or
//! pending user cannot log in and loses its tokens; the last active admin can be neither
//! disabled nor deleted.
//!
//! Every write is one conditional batch on what it read: a new user claims its username
//! (`absent`) in the same batch as its record, a change applies only if the record is
//! unchanged since it was read (else it is redone on the fresh record), and disabling or
//! deleting an active admin also requires another active admin's record to be unchanged,
//! so two concurrent removals of the last two admins cannot both succeed, on one host or
//! several.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::{AuthError, Caller, Identity, blocking_hash, blocking_verify, invalid, now};
use crate::store::{Batch, Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum UserStatus {
    Active,
    Disabled,
    /// Registered, waiting for an admin's approval.
    Pending,
}

/// A stored user (the password hash never leaves this module's callers).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    pub password_hash: String,
    pub is_admin: bool,
    pub status: UserStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    pub created_by: String,
}

/// A user as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    pub is_admin: bool,
    pub status: UserStatus,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub updated_at: OffsetDateTime,
    pub created_by: String,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        UserView {
            id: u.id.clone(),
            username: u.username.clone(),
            display_name: u.display_name.clone(),
            email: u.email.clone(),
            is_admin: u.is_admin,
            status: u.status,
            created_at: u.created_at,
            updated_at: u.updated_at,
            created_by: u.created_by.clone(),
        }
    }
}

/// A user to create.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewUser {
    pub username: String,
    pub password: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    #[serde(default)]
    pub is_admin: bool,
}

/// A partial profile update.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserUpdate {
    pub display_name: Option<String>,
    pub email: Option<String>,
}

fn user_key(id: &str) -> String {
    Store::key(&["users", id])
}

fn name_key(username: &str) -> String {
    Store::key(&["usernames", username])
}

/// Usernames and group names: 3–32 characters, a lowercase letter first, then
/// `[a-z0-9._-]`.
pub(super) fn validate_name(field: &str, name: &str) -> Result<(), AuthError> {
    let mut chars = name.chars();
    let ok = (3..=32).contains(&name.len())
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            field,
            "use 3-32 characters: a lowercase letter first, then a-z, 0-9, '.', '_' or '-'",
        ))
    }
}

pub(super) fn validate_password(field: &str, password: &str) -> Result<(), AuthError> {
    if password.chars().count() < 8 || password.len() > 1024 {
        return Err(invalid(field, "must be 8 to 1024 characters"));
    }
    Ok(())
}

fn validate_profile(display_name: Option<&str>, email: Option<&str>) -> Result<(), AuthError> {
    if display_name.is_some_and(|d| d.trim().is_empty() || d.chars().count() > 64) {
        return Err(invalid("displayName", "must be 1 to 64 characters"));
    }
    if let Some(email) = email {
        let (local, domain) = email.split_once('@').unwrap_or(("", ""));
        if local.is_empty()
            || !domain.contains('.')
            || email.len() > 254
            || email.contains(char::is_whitespace)
        {
            return Err(invalid("email", "is not an email address"));
        }
    }
    Ok(())
}

impl Identity {
    pub fn user_by_name(&self, username: &str) -> Result<Option<User>, AuthError> {
        let Some(id) = self.store.get_json::<String>(&name_key(username))? else {
            return Ok(None);
        };
        Ok(self.store.get_json(&user_key(&id))?)
    }

    pub fn user(&self, id: &str) -> Result<User, AuthError> {
        self.store
            .get_json(&user_key(id))?
            .ok_or_else(|| AuthError::UserNotFound(id.to_owned()))
    }

    pub(super) async fn create_user_with_status(
        &self,
        new: NewUser,
        status: UserStatus,
        actor: &str,
    ) -> Result<UserView, AuthError> {
        validate_name("username", &new.username)?;
        validate_password("password", &new.password)?;
        validate_profile(new.display_name.as_deref(), new.email.as_deref())?;
        // Spares the hashing when the name is visibly taken; the batch below decides.
        if self.user_by_name(&new.username)?.is_some() {
            return Err(AuthError::UsernameTaken(new.username));
        }
        let at = now();
        let user = User {
            id: uuid::Uuid::new_v4().to_string(),
            display_name: new.display_name.unwrap_or_else(|| new.username.clone()),
            username: new.username,
            email: new.email,
            password_hash: blocking_hash(new.password).await?,
            is_admin: new.is_admin,
            status,
            created_at: at,
            updated_at: at,
            created_by: actor.to_owned(),
        };
        let (user_key, name_key) = (user_key(&user.id), name_key(&user.username));
        let claim = Batch::new()
            .absent(&name_key)
            .absent(&user_key)
            .put_json(&user_key, &user)?
            .put_json(&name_key, &user.id)?;
        if self.store.apply(&claim)?.is_err() {
            return Err(AuthError::UsernameTaken(user.username));
        }
        self.store.commit().await?;
        Ok(UserView::from(&user))
    }

    /// Creates an active user (admin).
    pub async fn create_user(&self, new: NewUser, actor: &str) -> Result<UserView, AuthError> {
        self.create_user_with_status(new, UserStatus::Active, actor)
            .await
    }

    /// Self-registration: the account waits for an admin's approval.
    pub async fn register(&self, new: NewUser) -> Result<UserView, AuthError> {
        if !self.allow_registration {
            return Err(AuthError::RegistrationDisabled);
        }
        let actor = new.username.clone();
        self.create_user_with_status(
            NewUser {
                is_admin: false,
                ..new
            },
            UserStatus::Pending,
            &actor,
        )
        .await
    }

    /// Users whose username, display name or email contains `search` (case-insensitive).
    pub fn list_users(
        &self,
        search: Option<&str>,
        status: Option<UserStatus>,
    ) -> Result<Vec<UserView>, AuthError> {
        let needle = search.map(str::to_lowercase);
        let users: Vec<User> = self
            .store
            .list_json(&format!("{}/", Store::key(&["users"])))?;
        let mut views: Vec<UserView> = users
            .iter()
            .filter(|u| status.is_none_or(|s| s == u.status))
            .filter(|u| {
                needle.as_ref().is_none_or(|n| {
                    u.username.contains(n.as_str())
                        || u.display_name.to_lowercase().contains(n.as_str())
                        || u.email
                            .as_ref()
                            .is_some_and(|e| e.to_lowercase().contains(n.as_str()))
                })
            })
            .map(UserView::from)
            .collect();
        views.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(views)
    }

    /// Reads user `id`, lets `change` decide its next state (`None` deletes it) and writes
    /// that only if the record is still what was read, redoing it on a lost race. When the
    /// change takes away an active admin, another active admin must stay as read, or it is
    /// refused as the last one. Answers the user as it was and as it is now.
    async fn change_user(
        &self,
        id: &str,
        what: &str,
        mut change: impl FnMut(&User) -> Result<Option<User>, AuthError>,
    ) -> Result<(User, Option<User>), AuthError> {
        let key = user_key(id);
        loop {
            let read = self
                .store
                .get_raw(&key)?
                .ok_or_else(|| AuthError::UserNotFound(id.to_owned()))?;
            let user: User = serde_json::from_slice(&read).map_err(|e| StoreError::Corrupt {
                key: key.clone(),
                reason: e.to_string(),
            })?;
            let next = change(&user)?;
            let mut batch = Batch::new().equals(&key, read);
            let stays_active_admin = next
                .as_ref()
                .is_some_and(|u| u.is_admin && u.status == UserStatus::Active);
            if user.is_admin && user.status == UserStatus::Active && !stays_active_admin {
                let Some((other_key, other)) = self.another_active_admin(id)? else {
                    return Err(AuthError::Refused(format!(
                        "`{}` is the last active admin and cannot be {what}",
                        user.username
                    )));
                };
                batch = batch.equals(&other_key, other);
            }
            batch = match &next {
                Some(next) => batch.put_json(&key, next)?,
                None => batch.delete(&key).delete(&name_key(&user.username)),
            };
            if self.store.apply(&batch)?.is_ok() {
                self.store.commit().await?;
                return Ok((user, next));
            }
        }
    }

    /// The key and stored bytes of an active admin other than `except`.
    fn another_active_admin(&self, except: &str) -> Result<Option<(String, Vec<u8>)>, AuthError> {
        let prefix = format!("{}/", Store::key(&["users"]));
        for (key, value) in self
            .store
            .backend()
            .scan(prefix.as_bytes(), None, usize::MAX)?
        {
            let key = String::from_utf8_lossy(&key).into_owned();
            let user: User = serde_json::from_slice(&value).map_err(|e| StoreError::Corrupt {
                key: key.clone(),
                reason: e.to_string(),
            })?;
            if user.id != except && user.is_admin && user.status == UserStatus::Active {
                return Ok(Some((key, value)));
            }
        }
        Ok(None)
    }

    pub async fn update_user(&self, id: &str, update: UserUpdate) -> Result<UserView, AuthError> {
        validate_profile(update.display_name.as_deref(), update.email.as_deref())?;
        let (_, after) = self
            .change_user(id, "updated", |user| {
                let mut user = user.clone();
                if let Some(display_name) = &update.display_name {
                    user.display_name = display_name.clone();
                }
                if let Some(email) = &update.email {
                    user.email = Some(email.clone());
                }
                user.updated_at = now();
                Ok(Some(user))
            })
            .await?;
        Ok(UserView::from(&updated(after, id)?))
    }

    /// Enables, disables or approves (pending → active) a user; disabling revokes its tokens.
    pub async fn set_status(&self, id: &str, status: UserStatus) -> Result<UserView, AuthError> {
        if status == UserStatus::Pending {
            return Err(invalid("status", "a user can be set active or disabled"));
        }
        let (_, after) = self
            .change_user(id, "disabled", |user| {
                let mut user = user.clone();
                user.status = status;
                user.updated_at = now();
                Ok(Some(user))
            })
            .await?;
        let user = updated(after, id)?;
        if status == UserStatus::Disabled {
            self.revoke_all(&user.id, None).await?;
        }
        Ok(UserView::from(&user))
    }

    /// Deletes a user (not the last active admin), then its tokens and group memberships.
    pub async fn delete_user(&self, id: &str) -> Result<UserView, AuthError> {
        let (user, _) = self.change_user(id, "deleted", |_| Ok(None)).await?;
        self.revoke_all(&user.id, None).await?;
        self.leave_all_groups(&user.id).await?;
        Ok(UserView::from(&user))
    }

    /// Sets a new password (admin); the user's sessions and tokens are revoked.
    pub async fn reset_password(&self, id: &str, password: String) -> Result<(), AuthError> {
        validate_password("password", &password)?;
        let hash = blocking_hash(password).await?;
        self.set_password_hash(id, hash).await?;
        self.revoke_all(id, None).await
    }

    /// Changes the caller's own password; the old one is required (and its check is
    /// throttled like a login). Every other session and token of the caller is revoked; the
    /// one in use stays.
    pub async fn change_password(
        &self,
        caller: &Caller,
        old: String,
        new: String,
        source: Option<std::net::IpAddr>,
    ) -> Result<(), AuthError> {
        validate_password("newPassword", &new)?;
        let user = self.user(&caller.user_id)?;
        let attempt = self.throttle.begin(&user.username, source)?;
        if !blocking_verify(old, user.password_hash.clone()).await? {
            return Err(invalid("oldPassword", "is not the current password"));
        }
        self.throttle.succeeded(attempt);
        let hash = blocking_hash(new).await?;
        self.set_password_hash(&user.id, hash).await?;
        self.revoke_all(&user.id, Some(&caller.token_id)).await
    }

    async fn set_password_hash(&self, id: &str, hash: String) -> Result<(), AuthError> {
        self.change_user(id, "updated", |user| {
            let mut user = user.clone();
            user.password_hash = hash.clone();
            user.updated_at = now();
            Ok(Some(user))
        })
        .await?;
        Ok(())
    }
}

/// The user a non-deleting change left.
fn updated(after: Option<User>, id: &str) -> Result<User, AuthError> {
    after.ok_or_else(|| AuthError::UserNotFound(id.to_owned()))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn identity() -> (Identity, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("wharf-users-{}", uuid::Uuid::new_v4()));
        let store = Store::open_sled(&dir).unwrap();
        (Identity::new(store, Duration::from_secs(3600)), dir)
    }

    fn new_user(username: &str, is_admin: bool) -> NewUser {
        NewUser {
            username: username.into(),
            password: format!("{username}-password"),
            display_name: None,
            email: None,
            is_admin,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn one_username_is_created_once_however_many_ask_at_once() {
        let (identity, dir) = identity();
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let identity = identity.clone();
                tokio::spawn(async move { identity.create_user(new_user("ann", false), "t").await })
            })
            .collect();
        let mut created = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => created += 1,
                Err(AuthError::UsernameTaken(_)) => {}
                Err(other) => panic!("{other}"),
            }
        }
        assert_eq!(created, 1);
        assert_eq!(identity.list_users(Some("ann"), None).unwrap().len(), 1);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn of_the_last_two_admins_removed_at_once_one_stays() {
        let (identity, dir) = identity();
        let mut survivor = identity
            .create_user(new_user("first", true), "t")
            .await
            .unwrap()
            .id;
        for round in 0..8 {
            let newcomer = identity
                .create_user(new_user(&format!("admin{round}"), true), "t")
                .await
                .unwrap()
                .id;
            let (x, y) = (identity.clone(), identity.clone());
            let (a, b) = (survivor.clone(), newcomer.clone());
            let (disabled, deleted) = tokio::join!(
                tokio::spawn(async move { x.set_status(&a, UserStatus::Disabled).await }),
                tokio::spawn(async move { y.delete_user(&b).await }),
            );
            let (disabled, deleted) = (disabled.unwrap(), deleted.unwrap());
            assert!(
                disabled.is_ok() != deleted.is_ok(),
                "round {round}: exactly one must be refused: {disabled:?} {deleted:?}"
            );
            let active_admins: Vec<String> = identity
                .list_users(None, Some(UserStatus::Active))
                .unwrap()
                .into_iter()
                .filter(|u| u.is_admin)
                .map(|u| u.id)
                .collect();
            assert_eq!(active_admins.len(), 1, "round {round}");
            survivor = active_admins[0].clone();
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
