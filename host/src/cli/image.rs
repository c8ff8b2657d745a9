//! `wharf image …`: a project's images in the registry — list them with the reference to
//! pull them by, and run retention (or a dry run of it) as the artifact policy decides.

use clap::Subcommand;
use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use serde_json::{Value, json};

use super::Remote;
use super::cluster::{encode, show};

#[derive(Subcommand)]
pub enum ImageCommand {
    /// The project's images (one row per tag), with the reference to pull each by.
    List {
        #[arg(long)]
        project: String,
        /// Part of the repository name.
        #[arg(long)]
        name: Option<String>,
    },
    /// Deletes the tags the artifact policy's retention rules pick (`--dry-run`: only
    /// lists them).
    Retention {
        #[arg(long)]
        project: String,
        #[arg(long)]
        dry_run: bool,
    },
}

fn print_report(remote: &Remote, report: &Value) {
    if remote.json {
        show(report);
        return;
    }
    let mut table = Table::new();
    table.load_style(UTF8_BORDERS_ONLY);
    table.set_header(["REPOSITORY", "TAG", "DIGEST", "PUSHED"]);
    for repository in report["repositories"].as_array().into_iter().flatten() {
        for tag in repository["deleted"].as_array().into_iter().flatten() {
            table.add_row([
                repository["repository"].as_str().unwrap_or_default(),
                tag["tag"].as_str().unwrap_or_default(),
                tag["digest"].as_str().unwrap_or_default(),
                tag["pushedAt"].as_str().unwrap_or_default(),
            ]);
        }
    }
    let verb = if report["dryRun"] == json!(true) {
        "would delete"
    } else {
        "deleted"
    };
    println!("{table}");
    println!(
        "{} {verb} {} tag(s) (policy {})",
        report["project"].as_str().unwrap_or_default(),
        report["deleted"],
        report["policy"].as_str().unwrap_or_default()
    );
}

pub async fn run(command: ImageCommand, remote: &Remote) -> anyhow::Result<()> {
    let client = remote.client()?;
    match command {
        ImageCommand::List { project, name } => {
            let filter = name
                .map(|n| format!("&imageName={}", encode(&n)))
                .unwrap_or_default();
            let page: Value = client
                .get(&format!(
                    "/v1/product/listImagesPage?projectId={}&pageSize=500{filter}",
                    encode(&project)
                ))
                .await?;
            let data = &page["data"];
            if remote.json {
                show(data);
                return Ok(());
            }
            let mut table = Table::new();
            table.load_style(UTF8_BORDERS_ONLY);
            table.set_header(["IMAGE", "DIGEST", "SIZE", "PUSHED BY", "PUSHED"]);
            for image in data["list"].as_array().into_iter().flatten() {
                table.add_row([
                    image["imageUrl"].as_str().unwrap_or_default().to_owned(),
                    image["digest"].as_str().unwrap_or_default().to_owned(),
                    image["size"].to_string(),
                    image["createStaff"].as_str().unwrap_or_default().to_owned(),
                    image["createTime"].as_str().unwrap_or_default().to_owned(),
                ]);
            }
            println!("{table}");
            Ok(())
        }
        ImageCommand::Retention { project, dry_run } => {
            let which = if dry_run { "dry-run" } else { "runs" };
            let report = client
                .post(
                    &format!("/api/v1/projects/{}/retention/{which}", encode(&project)),
                    &json!({}),
                )
                .await?;
            print_report(remote, &report);
            Ok(())
        }
    }
}
