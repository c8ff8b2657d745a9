//! `wharf project …`, `wharf group …`, `wharf authz …`: projects, members, groups and
//! permissions from a terminal.

use clap::Subcommand;
use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use serde_json::{Value, json};

use super::{Client, Remote};

#[derive(Subcommand)]
pub enum ProjectCommand {
    /// Lists the projects you may see.
    List {
        #[arg(long)]
        search: Option<String>,
    },
    /// Creates a project; you become its owner.
    Create {
        code: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        description: Option<String>,
    },
    /// Shows a project with your permission flags.
    Show { code: String },
    /// Deletes a project that owns no apps.
    Delete { code: String },
    /// Lists a project's members.
    Members { code: String },
    /// Adds users (by username or id) with a role.
    AddMember {
        code: String,
        #[arg(long = "user", required = true)]
        users: Vec<String>,
        #[arg(long)]
        role: String,
    },
    /// Changes a member's role.
    SetRole {
        code: String,
        user: String,
        role: String,
    },
    /// Removes a member.
    RemoveMember { code: String, user: String },
}

#[derive(Subcommand)]
pub enum GroupCommand {
    List,
    Create {
        name: String,
    },
    /// Adds a user (by username or id) to a group (by name or id).
    Add {
        group: String,
        user: String,
    },
    Remove {
        group: String,
        user: String,
    },
    Delete {
        group: String,
    },
}

#[derive(Subcommand)]
pub enum AuthzCommand {
    /// Which authorizer plugin decides.
    Active,
    Roles,
    /// Creates a custom role from actions.
    CreateRole {
        name: String,
        #[arg(long = "action", required = true)]
        actions: Vec<String>,
    },
    Bindings {
        #[arg(long)]
        subject: Option<String>,
        #[arg(long)]
        scope: Option<String>,
    },
    /// Binds `user:<name or id>` or `group:<name or id>` to a role at a scope.
    Bind {
        subject: String,
        role: String,
        scope: String,
    },
    Unbind {
        id: String,
    },
    /// Can you do ACTION on RESOURCE?
    Check {
        action: String,
        resource: String,
    },
    WhoCan {
        action: String,
        resource: String,
    },
    WhatCan {
        subject: String,
        resource: String,
    },
}

async fn user_id(client: &Client, user: &str) -> anyhow::Result<String> {
    let page: Value = client
        .get(&format!("/api/v1/users?pageSize=500&search={user}"))
        .await?;
    Ok(page["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|u| u["username"] == user)
        .and_then(|u| u["id"].as_str())
        .unwrap_or(user)
        .to_owned())
}

async fn group_id(client: &Client, group: &str) -> anyhow::Result<String> {
    let page: Value = client.get("/api/v1/groups?pageSize=500").await?;
    Ok(page["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|g| g["name"] == group)
        .and_then(|g| g["id"].as_str())
        .unwrap_or(group)
        .to_owned())
}

/// `user:<name>` / `group:<name>` with names resolved to ids.
async fn subject(client: &Client, subject: &str) -> anyhow::Result<String> {
    Ok(match subject.split_once(':') {
        Some(("user", who)) => format!("user:{}", user_id(client, who).await?),
        Some(("group", which)) => format!("group:{}", group_id(client, which).await?),
        _ => anyhow::bail!("give the subject as user:<name or id> or group:<name or id>"),
    })
}

fn table(remote: &Remote, value: &Value, rows: &[Value], columns: &[(&str, &str)]) {
    if remote.json {
        println!("{value:#}");
        return;
    }
    let mut table = Table::new();
    table.load_style(UTF8_BORDERS_ONLY);
    table.set_header(columns.iter().map(|(header, _)| *header));
    for row in rows {
        table.add_row(columns.iter().map(|(_, field)| match &row[*field] {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        }));
    }
    println!("{table}");
}

fn items(value: &Value) -> Vec<Value> {
    value["items"].as_array().cloned().unwrap_or_default()
}

pub async fn run_project(command: ProjectCommand, remote: &Remote) -> anyhow::Result<()> {
    let client = remote.client()?;
    let members = [
        ("USERNAME", "username"),
        ("ROLE", "role"),
        ("CAN REMOVE", "canRemove"),
        ("USER ID", "userId"),
    ];
    match command {
        ProjectCommand::List { search } => {
            let query = search.map(|s| format!("&search={s}")).unwrap_or_default();
            let page: Value = client
                .get(&format!("/api/v1/projects?pageSize=500{query}"))
                .await?;
            table(
                remote,
                &page,
                &items(&page),
                &[
                    ("CODE", "code"),
                    ("NAME", "name"),
                    ("DESCRIPTION", "description"),
                ],
            );
        }
        ProjectCommand::Create {
            code,
            name,
            description,
        } => {
            let project = client
                .post(
                    "/api/v1/projects",
                    &json!({"code": code, "name": name, "description": description}),
                )
                .await?;
            println!("{project:#}");
        }
        ProjectCommand::Show { code } => {
            let project: Value = client.get(&format!("/api/v1/projects/{code}")).await?;
            println!("{project:#}");
        }
        ProjectCommand::Delete { code } => {
            client.delete(&format!("/api/v1/projects/{code}")).await?;
            println!("deleted {code}");
        }
        ProjectCommand::Members { code } => {
            let list: Value = client
                .get(&format!("/api/v1/projects/{code}/members"))
                .await?;
            table(remote, &list, &items(&list), &members);
        }
        ProjectCommand::AddMember { code, users, role } => {
            let mut ids = Vec::new();
            for user in &users {
                ids.push(user_id(&client, user).await?);
            }
            let list = client
                .post(
                    &format!("/api/v1/projects/{code}/members"),
                    &json!({"userIds": ids, "role": role}),
                )
                .await?;
            table(remote, &list, &items(&list), &members);
        }
        ProjectCommand::SetRole { code, user, role } => {
            let id = user_id(&client, &user).await?;
            let list = client
                .put(
                    &format!("/api/v1/projects/{code}/members/{id}"),
                    &json!({"role": role}),
                )
                .await?;
            table(remote, &list, &items(&list), &members);
        }
        ProjectCommand::RemoveMember { code, user } => {
            let id = user_id(&client, &user).await?;
            client
                .delete(&format!("/api/v1/projects/{code}/members/{id}"))
                .await?;
            println!("removed {user} from {code}");
        }
    }
    Ok(())
}

pub async fn run_group(command: GroupCommand, remote: &Remote) -> anyhow::Result<()> {
    let client = remote.client()?;
    match command {
        GroupCommand::List => {
            let page: Value = client.get("/api/v1/groups?pageSize=500").await?;
            table(
                remote,
                &page,
                &items(&page),
                &[("NAME", "name"), ("MEMBERS", "members"), ("ID", "id")],
            );
        }
        GroupCommand::Create { name } => println!(
            "{:#}",
            client
                .post("/api/v1/groups", &json!({"name": name}))
                .await?
        ),
        GroupCommand::Add { group, user } => {
            let (g, u) = (
                group_id(&client, &group).await?,
                user_id(&client, &user).await?,
            );
            println!(
                "{:#}",
                client
                    .put(&format!("/api/v1/groups/{g}/members/{u}"), &json!({}))
                    .await?
            );
        }
        GroupCommand::Remove { group, user } => {
            let (g, u) = (
                group_id(&client, &group).await?,
                user_id(&client, &user).await?,
            );
            client
                .send::<()>(
                    reqwest::Method::DELETE,
                    &format!("/api/v1/groups/{g}/members/{u}"),
                    None,
                )
                .await?;
            println!("removed {user} from {group}");
        }
        GroupCommand::Delete { group } => {
            client
                .delete(&format!(
                    "/api/v1/groups/{}",
                    group_id(&client, &group).await?
                ))
                .await?;
            println!("deleted {group}");
        }
    }
    Ok(())
}

pub async fn run_authz(command: AuthzCommand, remote: &Remote) -> anyhow::Result<()> {
    let client = remote.client()?;
    match command {
        AuthzCommand::Active => println!("{:#}", client.get::<Value>("/api/v1/authz").await?),
        AuthzCommand::Roles => {
            let roles: Value = client.get("/api/v1/authz/roles").await?;
            table(
                remote,
                &roles,
                &items(&roles),
                &[
                    ("NAME", "name"),
                    ("ACTIONS", "actions"),
                    ("BUILT-IN", "builtin"),
                ],
            );
        }
        AuthzCommand::CreateRole { name, actions } => {
            println!(
                "{:#}",
                client
                    .post(
                        "/api/v1/authz/roles",
                        &json!({"name": name, "actions": actions})
                    )
                    .await?
            )
        }
        AuthzCommand::Bindings {
            subject: who,
            scope,
        } => {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            if let Some(who) = who {
                query.append_pair("subject", &subject(&client, &who).await?);
            }
            if let Some(scope) = scope {
                query.append_pair("scope", &scope);
            }
            let list: Value = client
                .get(&format!("/api/v1/authz/bindings?{}", query.finish()))
                .await?;
            table(
                remote,
                &list,
                &items(&list),
                &[
                    ("ID", "id"),
                    ("SUBJECT", "subject"),
                    ("ROLE", "role"),
                    ("SCOPE", "scope"),
                ],
            );
        }
        AuthzCommand::Bind {
            subject: who,
            role,
            scope,
        } => {
            let body =
                json!({"subject": subject(&client, &who).await?, "role": role, "scope": scope});
            println!("{:#}", client.post("/api/v1/authz/bindings", &body).await?);
        }
        AuthzCommand::Unbind { id } => {
            client
                .delete(&format!("/api/v1/authz/bindings/{id}"))
                .await?;
            println!("removed binding {id}");
        }
        AuthzCommand::Check { action, resource } => {
            let answer = client
                .post(
                    "/api/v1/authz/check",
                    &json!({"requests": [{"action": action, "resource": resource}]}),
                )
                .await?;
            let decision = &answer["decisions"][0];
            if decision["allow"] == true {
                println!("allowed");
            } else {
                println!(
                    "denied: {}",
                    decision["reason"].as_str().unwrap_or_default()
                );
            }
        }
        AuthzCommand::WhoCan { action, resource } => {
            println!(
                "{:#}",
                client
                    .post(
                        "/api/v1/authz/who-can",
                        &json!({"action": action, "resource": resource})
                    )
                    .await?
            )
        }
        AuthzCommand::WhatCan {
            subject: who,
            resource,
        } => {
            let body = json!({"subject": subject(&client, &who).await?, "resource": resource});
            println!("{:#}", client.post("/api/v1/authz/what-can", &body).await?);
        }
    }
    Ok(())
}
