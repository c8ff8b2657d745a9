//! `wharf user …`, `wharf token …`, `wharf logout`, `wharf password`: accounts from a terminal.

use clap::Subcommand;
use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use serde_json::{Value, json};

use super::{Client, Remote};

#[derive(Subcommand)]
pub enum UserCommand {
    /// Lists users, optionally matching `--search` or with `--status`.
    List {
        #[arg(long)]
        search: Option<String>,
        #[arg(long)]
        status: Option<String>,
    },
    /// Creates an active user.
    Create {
        username: String,
        #[arg(long, env = "WHARF_NEW_PASSWORD", hide_env_values = true)]
        password: String,
        #[arg(long)]
        admin: bool,
        #[arg(long)]
        display_name: Option<String>,
        #[arg(long)]
        email: Option<String>,
    },
    /// Shows a user (by username or id).
    Show { user: String },
    /// Updates a user's profile.
    Update {
        user: String,
        #[arg(long)]
        display_name: Option<String>,
        #[arg(long)]
        email: Option<String>,
    },
    /// Lets a disabled user log in again.
    Enable { user: String },
    /// Stops a user from logging in and revokes its tokens.
    Disable { user: String },
    /// Approves a self-registered user.
    Approve { user: String },
    /// Deletes a user.
    Delete { user: String },
    /// Sets a user's password (revokes its sessions and tokens).
    ResetPassword {
        user: String,
        #[arg(long, env = "WHARF_NEW_PASSWORD", hide_env_values = true)]
        password: String,
    },
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Lists your live tokens.
    List,
    /// Creates a personal API token; prints the secret once.
    Create {
        name: String,
        #[arg(long, default_value_t = 90)]
        days: u32,
        /// Action prefix the token may use (repeatable), e.g. `plugin.read`.
        #[arg(long = "scope")]
        scope: Vec<String>,
    },
    /// Revokes one of your tokens.
    Revoke { id: String },
}

/// The id of a user given by username or id.
async fn user_id(client: &Client, user: &str) -> anyhow::Result<String> {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("search", user)
        .finish();
    let page: Value = client
        .get(&format!("/api/v1/users?pageSize=500&{query}"))
        .await?;
    let by_name = page["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|u| u["username"] == user)
        .and_then(|u| u["id"].as_str());
    Ok(by_name.unwrap_or(user).to_owned())
}

fn print_users(remote: &Remote, users: &[Value]) {
    if remote.json {
        println!("{:#}", Value::Array(users.to_vec()));
        return;
    }
    let mut table = Table::new();
    table.load_style(UTF8_BORDERS_ONLY);
    table.set_header(["USERNAME", "DISPLAY NAME", "EMAIL", "ADMIN", "STATUS", "ID"]);
    for u in users {
        table.add_row([
            u["username"].as_str().unwrap_or_default().to_owned(),
            u["displayName"].as_str().unwrap_or_default().to_owned(),
            u["email"].as_str().unwrap_or_default().to_owned(),
            if u["isAdmin"].as_bool() == Some(true) {
                "yes".into()
            } else {
                "no".into()
            },
            u["status"].as_str().unwrap_or_default().to_owned(),
            u["id"].as_str().unwrap_or_default().to_owned(),
        ]);
    }
    println!("{table}");
}

pub async fn run_user(command: UserCommand, remote: &Remote) -> anyhow::Result<()> {
    let client = remote.client()?;
    let user = match command {
        UserCommand::List { search, status } => {
            let query = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(search.iter().map(|s| ("search", s.as_str())))
                .extend_pairs(status.iter().map(|s| ("status", s.as_str())))
                .finish();
            let page: Value = client
                .get(&format!("/api/v1/users?pageSize=500&{query}"))
                .await?;
            print_users(
                remote,
                page["items"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default(),
            );
            return Ok(());
        }
        UserCommand::Create {
            username,
            password,
            admin,
            display_name,
            email,
        } => {
            let body = json!({"username": username, "password": password, "isAdmin": admin,
                "displayName": display_name, "email": email});
            client.post("/api/v1/users", &body).await?
        }
        UserCommand::Show { user } => {
            client
                .get(&format!("/api/v1/users/{}", user_id(&client, &user).await?))
                .await?
        }
        UserCommand::Update {
            user,
            display_name,
            email,
        } => {
            let id = user_id(&client, &user).await?;
            let mut body = json!({});
            if let Some(d) = display_name {
                body["displayName"] = json!(d);
            }
            if let Some(e) = email {
                body["email"] = json!(e);
            }
            client
                .send(
                    reqwest::Method::PATCH,
                    &format!("/api/v1/users/{id}"),
                    Some(&body),
                )
                .await?
                .unwrap_or(Value::Null)
        }
        UserCommand::Enable { user } => {
            client
                .post(
                    &format!("/api/v1/users/{}/enable", user_id(&client, &user).await?),
                    &json!({}),
                )
                .await?
        }
        UserCommand::Disable { user } => {
            client
                .post(
                    &format!("/api/v1/users/{}/disable", user_id(&client, &user).await?),
                    &json!({}),
                )
                .await?
        }
        UserCommand::Approve { user } => {
            client
                .post(
                    &format!("/api/v1/users/{}/approve", user_id(&client, &user).await?),
                    &json!({}),
                )
                .await?
        }
        UserCommand::Delete { user } => {
            client
                .delete(&format!("/api/v1/users/{}", user_id(&client, &user).await?))
                .await?;
            println!("deleted {user}");
            return Ok(());
        }
        UserCommand::ResetPassword { user, password } => {
            let id = user_id(&client, &user).await?;
            client
                .put(
                    &format!("/api/v1/users/{id}/password"),
                    &json!({"password": password}),
                )
                .await?;
            println!("password of {user} reset; its sessions and tokens were revoked");
            return Ok(());
        }
    };
    print_users(remote, &[user]);
    Ok(())
}

pub async fn run_token(command: TokenCommand, remote: &Remote) -> anyhow::Result<()> {
    let client = remote.client()?;
    match command {
        TokenCommand::List => {
            let tokens: Value = client.get("/api/v1/auth/tokens").await?;
            if remote.json {
                println!("{tokens:#}");
                return Ok(());
            }
            let mut table = Table::new();
            table.load_style(UTF8_BORDERS_ONLY);
            table.set_header(["ID", "KIND", "NAME", "SCOPE", "EXPIRES"]);
            for t in tokens["items"].as_array().into_iter().flatten() {
                table.add_row([
                    t["id"].as_str().unwrap_or_default().to_owned(),
                    t["kind"].as_str().unwrap_or_default().to_owned(),
                    t["name"].as_str().unwrap_or_default().to_owned(),
                    t["scope"]
                        .as_array()
                        .map(|s| {
                            s.iter()
                                .filter_map(Value::as_str)
                                .collect::<Vec<_>>()
                                .join(", ")
                        })
                        .unwrap_or_else(|| "all".into()),
                    t["expiresAt"].as_str().unwrap_or_default().to_owned(),
                ]);
            }
            println!("{table}");
        }
        TokenCommand::Create { name, days, scope } => {
            let scope = if scope.is_empty() {
                Value::Null
            } else {
                json!(scope)
            };
            let created = client
                .post(
                    "/api/v1/auth/tokens",
                    &json!({"name": name, "expiresInDays": days, "scope": scope}),
                )
                .await?;
            println!("{}", created["token"].as_str().unwrap_or_default());
            eprintln!(
                "token {} expires at {}; it is shown only now",
                created["id"].as_str().unwrap_or_default(),
                created["expiresAt"].as_str().unwrap_or_default()
            );
        }
        TokenCommand::Revoke { id } => {
            client.delete(&format!("/api/v1/auth/tokens/{id}")).await?;
            println!("revoked {id}");
        }
    }
    Ok(())
}

pub async fn logout(remote: &Remote) -> anyhow::Result<()> {
    remote
        .client()?
        .post("/api/v1/auth/logout", &json!({}))
        .await?;
    println!("logged out: the token no longer works");
    Ok(())
}

pub async fn change_password(remote: &Remote, old: String, new: String) -> anyhow::Result<()> {
    remote
        .client()?
        .put(
            "/api/v1/auth/password",
            &json!({"oldPassword": old, "newPassword": new}),
        )
        .await?;
    println!("password changed");
    Ok(())
}
