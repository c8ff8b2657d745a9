//! Users: the stored account, its validation rules, and account administration.
//!
//! Users live at `v1/users/<id>` with a `v1/usernames/<username>` index. A disabled or
//! pending user cannot log in and loses its tokens; the last active admin can be neither
//! disabled nor deleted.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::{AuthError, Identity, blocking_hash, blocking_verify, invalid, now};
use crate::store::Store;

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

    async fn save_user(&self, user: &User) -> Result<(), AuthError> {
        self.store.put_json(&user_key(&user.id), user)?;
        self.store.put_json(&name_key(&user.username), &user.id)?;
        self.store.commit().await?;
        Ok(())
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
        self.save_user(&user).await?;
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

    pub async fn update_user(&self, id: &str, update: UserUpdate) -> Result<UserView, AuthError> {
        validate_profile(update.display_name.as_deref(), update.email.as_deref())?;
        let mut user = self.user(id)?;
        if let Some(display_name) = update.display_name {
            user.display_name = display_name;
        }
        if let Some(email) = update.email {
            user.email = Some(email);
        }
        user.updated_at = now();
        self.save_user(&user).await?;
        Ok(UserView::from(&user))
    }

    fn refuse_if_last_admin(&self, user: &User, what: &str) -> Result<(), AuthError> {
        if !user.is_admin || user.status != UserStatus::Active {
            return Ok(());
        }
        let active_admins = self
            .list_users(None, Some(UserStatus::Active))?
            .iter()
            .filter(|u| u.is_admin)
            .count();
        if active_admins <= 1 {
            return Err(AuthError::Refused(format!(
                "`{}` is the last active admin and cannot be {what}",
                user.username
            )));
        }
        Ok(())
    }

    /// Enables, disables or approves (pending → active) a user; disabling revokes its tokens.
    pub async fn set_status(&self, id: &str, status: UserStatus) -> Result<UserView, AuthError> {
        let mut user = self.user(id)?;
        if status == UserStatus::Pending {
            return Err(invalid("status", "a user can be set active or disabled"));
        }
        if status == UserStatus::Disabled {
            self.refuse_if_last_admin(&user, "disabled")?;
        }
        user.status = status;
        user.updated_at = now();
        self.save_user(&user).await?;
        if status == UserStatus::Disabled {
            self.revoke_all(&user.id).await?;
        }
        Ok(UserView::from(&user))
    }

    pub async fn delete_user(&self, id: &str) -> Result<UserView, AuthError> {
        let user = self.user(id)?;
        self.refuse_if_last_admin(&user, "deleted")?;
        self.revoke_all(&user.id).await?;
        self.leave_all_groups(&user.id).await?;
        self.store.delete(&user_key(&user.id))?;
        self.store.delete(&name_key(&user.username))?;
        self.store.commit().await?;
        Ok(UserView::from(&user))
    }

    /// Sets a new password (admin); the user's sessions and tokens are revoked.
    pub async fn reset_password(&self, id: &str, password: String) -> Result<(), AuthError> {
        validate_password("password", &password)?;
        let mut user = self.user(id)?;
        user.password_hash = blocking_hash(password).await?;
        user.updated_at = now();
        self.save_user(&user).await?;
        self.revoke_all(&user.id).await
    }

    /// Changes the caller's own password; the old one is required.
    pub async fn change_password(
        &self,
        user_id: &str,
        old: String,
        new: String,
    ) -> Result<(), AuthError> {
        validate_password("newPassword", &new)?;
        let mut user = self.user(user_id)?;
        if !blocking_verify(old, user.password_hash.clone()).await? {
            return Err(invalid("oldPassword", "is not the current password"));
        }
        user.password_hash = blocking_hash(new).await?;
        user.updated_at = now();
        self.save_user(&user).await
    }
}
