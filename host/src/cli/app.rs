//! `wharf app …`: a project's apps and app groups, favourites, and seed 004's app details,
//! from a terminal.

use clap::Subcommand;
use serde_json::{Map, Value, json};

use super::Remote;
use super::client::Client;
use super::cluster::{encode, put, show, table};

#[derive(Subcommand)]
pub enum AppCommand {
    /// The project's apps, by name.
    List {
        project: String,
        /// Only apps in this group (id or name).
        #[arg(long)]
        group: Option<String>,
        /// Only apps whose name contains this (any case).
        #[arg(long)]
        name: Option<String>,
        /// MICRO_SERVICE or GENERAL_APP.
        #[arg(long)]
        category: Option<String>,
        /// Only your favourites.
        #[arg(long)]
        favourite: bool,
    },
    /// Creates an app (NAME: 3-30 letters or digits, a lowercase letter first).
    Create {
        project: String,
        name: String,
        /// MICRO_SERVICE or GENERAL_APP.
        #[arg(long, default_value = "GENERAL_APP")]
        category: String,
        #[arg(long)]
        description: Option<String>,
        /// Code repository URL (http or https).
        #[arg(long)]
        repo: Option<String>,
        /// Where the code is hosted (GITHUB, GITEE, …).
        #[arg(long)]
        origin: Option<String>,
        /// Group id or name.
        #[arg(long)]
        group: Option<String>,
    },
    Get {
        project: String,
        app: String,
    },
    /// Changes an app; an empty --repo, --origin or --group clears it.
    Update {
        project: String,
        app: String,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        category: Option<String>,
        #[arg(long)]
        repo: Option<String>,
        #[arg(long)]
        origin: Option<String>,
        #[arg(long)]
        group: Option<String>,
    },
    /// Deletes an app deployed nowhere.
    Delete {
        project: String,
        app: String,
    },
    /// Disables an app: it cannot be deployed until enabled.
    Disable {
        project: String,
        app: String,
    },
    Enable {
        project: String,
        app: String,
    },
    /// Copies an app under a new name (same category, repository and group).
    Copy {
        project: String,
        app: String,
        new_name: String,
        #[arg(long)]
        description: Option<String>,
    },
    /// Marks an app as one of your favourites.
    Favourite {
        project: String,
        app: String,
    },
    Unfavourite {
        project: String,
        app: String,
    },
    /// Seed 004 application details by app id, with your rights on it.
    Info {
        app_id: String,
    },
    /// App groups of a project.
    Group {
        #[command(subcommand)]
        command: AppGroupCommand,
    },
}

#[derive(Subcommand)]
pub enum AppGroupCommand {
    List {
        project: String,
    },
    /// Creates a group (NAME: at most 10 characters).
    Create {
        project: String,
        name: String,
    },
    /// Renames a group (id or name).
    Rename {
        project: String,
        group: String,
        name: String,
    },
    /// Deletes a group (id or name); its apps become ungrouped.
    Delete {
        project: String,
        group: String,
    },
    /// Puts an app into a group (id or name), or out of its group without one.
    Assign {
        project: String,
        app: String,
        group: Option<String>,
    },
}

fn apps_path(project: &str) -> String {
    format!("/api/v1/projects/{project}/apps")
}

fn app_path(project: &str, app: &str) -> String {
    format!("{}/{app}", apps_path(project))
}

fn groups_path(project: &str) -> String {
    format!("/api/v1/projects/{project}/app-groups")
}

/// The id of a group given by id or name.
async fn group_id(client: &Client, project: &str, group: &str) -> anyhow::Result<String> {
    let page: Value = client
        .get(&format!("{}?pageSize=500", groups_path(project)))
        .await?;
    page["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|g| g["id"] == group)
        .or_else(|| {
            page["items"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|g| g["name"] == group)
        })
        .and_then(|g| g["id"].as_str().map(str::to_owned))
        .ok_or_else(|| anyhow::anyhow!("project {project} has no app group {group}"))
}

/// A group option as JSON: an empty value means `null` (no group).
async fn group_value(client: &Client, project: &str, group: &str) -> anyhow::Result<Value> {
    if group.is_empty() {
        Ok(Value::Null)
    } else {
        Ok(group_id(client, project, group).await?.into())
    }
}

fn empty_is_null(value: String) -> Value {
    if value.is_empty() {
        Value::Null
    } else {
        value.into()
    }
}

async fn patch(client: &Client, path: &str, body: &Value) -> anyhow::Result<Value> {
    Ok(client
        .send(reqwest::Method::PATCH, path, Some(body))
        .await?
        .unwrap_or_default())
}

pub async fn run(command: AppCommand, remote: &Remote) -> anyhow::Result<()> {
    let client = remote.client()?;
    match command {
        AppCommand::List {
            project,
            group,
            name,
            category,
            favourite,
        } => {
            let mut filter = String::from("?pageSize=500");
            if let Some(group) = group {
                let id = group_id(&client, &project, &group).await?;
                filter.push_str(&format!("&group={}", encode(&id)));
            }
            if let Some(name) = name {
                filter.push_str(&format!("&name={}", encode(&name)));
            }
            if let Some(category) = category {
                filter.push_str(&format!("&category={}", encode(&category)));
            }
            if favourite {
                filter.push_str("&favourite=true");
            }
            let page: Value = client
                .get(&format!("{}{filter}", apps_path(&project)))
                .await?;
            table(
                remote,
                &page,
                &[
                    ("NAME", "name"),
                    ("CATEGORY", "category"),
                    ("GROUP", "groupName"),
                    ("DISABLED", "disabled"),
                    ("FAVOURITE", "favourite"),
                    ("ID", "id"),
                    ("DESCRIPTION", "description"),
                ],
            );
        }
        AppCommand::Create {
            project,
            name,
            category,
            description,
            repo,
            origin,
            group,
        } => {
            let mut body = Map::new();
            body.insert("name".into(), name.into());
            body.insert("category".into(), category.into());
            put(&mut body, "description", description);
            put(&mut body, "codeReposAddress", repo);
            put(&mut body, "origin", origin);
            if let Some(group) = group {
                body.insert(
                    "groupId".into(),
                    group_id(&client, &project, &group).await?.into(),
                );
            }
            show(&client.post(&apps_path(&project), &body).await?);
        }
        AppCommand::Get { project, app } => show(&client.get(&app_path(&project, &app)).await?),
        AppCommand::Update {
            project,
            app,
            description,
            category,
            repo,
            origin,
            group,
        } => {
            let mut body = Map::new();
            put(&mut body, "description", description);
            put(&mut body, "category", category);
            put(&mut body, "codeReposAddress", repo.map(empty_is_null));
            put(&mut body, "origin", origin.map(empty_is_null));
            if let Some(group) = group {
                body.insert(
                    "groupId".into(),
                    group_value(&client, &project, &group).await?,
                );
            }
            show(&patch(&client, &app_path(&project, &app), &Value::Object(body)).await?);
        }
        AppCommand::Delete { project, app } => {
            client.delete(&app_path(&project, &app)).await?;
            println!("deleted app {app}");
        }
        AppCommand::Disable { project, app } => {
            let path = format!("{}/disable", app_path(&project, &app));
            show(&client.post(&path, &json!({})).await?);
        }
        AppCommand::Enable { project, app } => {
            let path = format!("{}/enable", app_path(&project, &app));
            show(&client.post(&path, &json!({})).await?);
        }
        AppCommand::Copy {
            project,
            app,
            new_name,
            description,
        } => {
            let mut body = Map::new();
            body.insert("name".into(), new_name.into());
            put(&mut body, "description", description);
            let path = format!("{}/copy", app_path(&project, &app));
            show(&client.post(&path, &body).await?);
        }
        AppCommand::Favourite { project, app } => {
            let path = format!("{}/favourite", app_path(&project, &app));
            client.put(&path, &json!({})).await?;
            println!("{app} is one of your favourites");
        }
        AppCommand::Unfavourite { project, app } => {
            client
                .delete(&format!("{}/favourite", app_path(&project, &app)))
                .await?;
            println!("{app} is no longer one of your favourites");
        }
        AppCommand::Info { app_id } => {
            show(
                &client
                    .get(&format!("/v1/applications/{}/info", encode(&app_id)))
                    .await?,
            );
        }
        AppCommand::Group { command } => run_group(command, &client, remote).await?,
    }
    Ok(())
}

async fn run_group(
    command: AppGroupCommand,
    client: &Client,
    remote: &Remote,
) -> anyhow::Result<()> {
    match command {
        AppGroupCommand::List { project } => {
            let page: Value = client
                .get(&format!("{}?pageSize=500", groups_path(&project)))
                .await?;
            table(
                remote,
                &page,
                &[("NAME", "name"), ("APPS", "appCount"), ("ID", "id")],
            );
        }
        AppGroupCommand::Create { project, name } => {
            let group = client
                .post(&groups_path(&project), &json!({"name": name}))
                .await?;
            show(&group);
        }
        AppGroupCommand::Rename {
            project,
            group,
            name,
        } => {
            let id = group_id(client, &project, &group).await?;
            let path = format!("{}/{id}", groups_path(&project));
            show(&patch(client, &path, &json!({"name": name})).await?);
        }
        AppGroupCommand::Delete { project, group } => {
            let id = group_id(client, &project, &group).await?;
            client
                .delete(&format!("{}/{id}", groups_path(&project)))
                .await?;
            println!("deleted app group {group}");
        }
        AppGroupCommand::Assign {
            project,
            app,
            group,
        } => {
            let group = match group {
                Some(group) => group_value(client, &project, &group).await?,
                None => Value::Null,
            };
            let path = format!("{}/group", app_path(&project, &app));
            show(&client.put(&path, &json!({"groupId": group})).await?);
        }
    }
    Ok(())
}
