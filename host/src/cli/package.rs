//! `wharf package …`: a project's generic packages (seed 001 §5.7) — upload a file
//! (streamed, with a progress bar, its sha256 checked by the server), list, show,
//! download (streamed, checked against the sha256 the server reports) and delete.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use clap::Subcommand;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Remote;
use super::cluster::{encode, show, table};

/// How much of a file is read at once.
const CHUNK: usize = 256 * 1024;

#[derive(Subcommand)]
pub enum PackageCommand {
    /// Uploads a file as a package version (jar, war, zip, tar.gz, rpm).
    Upload(UploadArgs),
    /// The project's packages, newest first.
    List {
        #[arg(long)]
        project: String,
        #[arg(long)]
        app: Option<String>,
        #[arg(long)]
        app_group: Option<String>,
        /// Part of the name.
        #[arg(long)]
        name: Option<String>,
    },
    /// Shows one package.
    Show {
        id: String,
        #[arg(long)]
        project: String,
    },
    /// Downloads a package's file and checks its sha256.
    Download {
        id: String,
        #[arg(long)]
        project: String,
        /// Where to write it (default: `<name>-<version>.<type>` here).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Deletes a package.
    Delete {
        id: String,
        #[arg(long)]
        project: String,
    },
}

#[derive(clap::Args)]
pub struct UploadArgs {
    file: PathBuf,
    #[arg(long)]
    project: String,
    #[arg(long)]
    name: String,
    #[arg(long)]
    version: String,
    /// jar, war, zip, tar.gz or rpm; by default from the file's extension.
    #[arg(long = "type")]
    package_type: Option<String>,
    /// The app it belongs to.
    #[arg(long)]
    app: Option<String>,
    /// The app group (id) it is filed under; an app's package is filed under its group.
    #[arg(long)]
    app_group: Option<String>,
    /// The code branch it was built from.
    #[arg(long)]
    branch: Option<String>,
    /// USER_UPLOAD (default), OFFICIAL_DEMO, CODE_GENERATE or EXISTED_PACKAGE.
    #[arg(long)]
    source: Option<String>,
    /// An official (release) build.
    #[arg(long)]
    official: bool,
}

fn packages_path(project: &str) -> String {
    format!("/api/v1/projects/{}/packages", encode(project))
}

/// Appends `&key=value` for each value given.
fn push_given<const N: usize>(query: &mut String, pairs: [(&str, Option<String>); N]) {
    for (key, value) in pairs {
        if let Some(value) = value {
            query.push_str(&format!("&{key}={}", encode(&value)));
        }
    }
}

/// The type a file's name implies.
fn type_of(file: &Path) -> Option<&'static str> {
    let name = file.file_name()?.to_str()?.to_ascii_lowercase();
    [
        (".tar.gz", "tar.gz"),
        (".tgz", "tar.gz"),
        (".jar", "jar"),
        (".war", "war"),
        (".zip", "zip"),
        (".rpm", "rpm"),
    ]
    .into_iter()
    .find(|(ext, _)| name.ends_with(ext))
    .map(|(_, t)| t)
}

/// A byte-count progress bar on stderr (hidden when stderr is not a terminal).
fn progress(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// The sha256 (hex) of a file, read with a progress bar.
async fn hash_file(path: &Path, size: u64) -> anyhow::Result<String> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    let bar = progress(size, "hashing");
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; CHUNK];
    loop {
        let got = file.read(&mut buffer).await?;
        if got == 0 {
            break;
        }
        hasher.update(&buffer[..got]);
        bar.inc(got as u64);
    }
    bar.finish_and_clear();
    Ok(hex::encode(hasher.finalize()))
}

/// A file as a streamed request body that advances `bar`.
fn file_body(file: tokio::fs::File, bar: ProgressBar) -> reqwest::Body {
    let stream = async_stream::stream! {
        let mut file = file;
        let mut buffer = vec![0u8; CHUNK];
        loop {
            match file.read(&mut buffer).await {
                Ok(0) => break,
                Ok(got) => {
                    bar.inc(got as u64);
                    yield Ok::<Bytes, std::io::Error>(Bytes::copy_from_slice(&buffer[..got]));
                }
                Err(e) => {
                    yield Err(e);
                    break;
                }
            }
        }
    };
    reqwest::Body::wrap_stream(stream)
}

/// A local file name for a package: only letters, digits, `.`, `_`, `-`, `+`, and no
/// leading dot, whatever the server sent.
fn local_name(package: &Value) -> anyhow::Result<PathBuf> {
    let name = format!(
        "{}-{}.{}",
        package["name"].as_str().unwrap_or_default(),
        package["version"].as_str().unwrap_or_default(),
        package["type"].as_str().unwrap_or_default()
    );
    let safe = !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+'));
    if !safe {
        anyhow::bail!("the package's name `{name}` is not a safe file name; pass --output");
    }
    Ok(PathBuf::from(name))
}

async fn upload(remote: &Remote, args: UploadArgs) -> anyhow::Result<()> {
    let UploadArgs {
        file,
        project,
        name,
        version,
        package_type,
        app,
        app_group,
        branch,
        source,
        official,
    } = args;
    let client = remote.client()?;
    let package_type = match package_type {
        Some(t) => t,
        None => type_of(&file)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: cannot tell the type from the name; pass --type (jar, war, zip, tar.gz, rpm)",
                    file.display()
                )
            })?
            .to_owned(),
    };
    let size = tokio::fs::metadata(&file)
        .await
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?
        .len();
    let sha256 = hash_file(&file, size).await?;
    let mut query = format!(
        "name={}&version={}&type={}&sha256={sha256}",
        encode(&name),
        encode(&version),
        encode(&package_type)
    );
    let optional = [
        ("app", app),
        ("appGroup", app_group),
        ("branch", branch),
        ("source", source),
    ];
    push_given(&mut query, optional);
    if official {
        query.push_str("&official=true");
    }
    let opened = tokio::fs::File::open(&file)
        .await
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?;
    let bar = progress(size, "uploading");
    let response = client
        .open(
            reqwest::Method::POST,
            &format!("{}?{query}", packages_path(&project)),
            Some("application/json"),
            Some(file_body(opened, bar.clone())),
        )
        .await;
    bar.finish_and_clear();
    let package: Value = response?.json().await?;
    if remote.json {
        show(&package);
    } else {
        println!(
            "uploaded {} {} ({}, {} bytes, sha256 {}) as package {}",
            package["name"].as_str().unwrap_or_default(),
            package["version"].as_str().unwrap_or_default(),
            package["type"].as_str().unwrap_or_default(),
            package["size"],
            package["sha256"].as_str().unwrap_or_default(),
            package["id"].as_str().unwrap_or_default(),
        );
    }
    Ok(())
}

async fn download(
    remote: &Remote,
    project: &str,
    id: &str,
    output: Option<PathBuf>,
) -> anyhow::Result<()> {
    let client = remote.client()?;
    let path = format!("{}/{}", packages_path(project), encode(id));
    let package: Value = client.get(&path).await?;
    let output = match output {
        Some(output) => output,
        None => local_name(&package)?,
    };
    let expected = package["sha256"].as_str().unwrap_or_default().to_owned();
    let response = client
        .open(reqwest::Method::GET, &format!("{path}/content"), None, None)
        .await?;
    let size = response
        .content_length()
        .or_else(|| package["size"].as_u64())
        .unwrap_or(0);
    // Written next to the target and renamed once whole and checked.
    let mut partial = output.clone().into_os_string();
    partial.push(".part");
    let partial = PathBuf::from(partial);
    let mut file = tokio::fs::File::create(&partial)
        .await
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", partial.display()))?;
    let bar = progress(size, "downloading");
    let mut hasher = Sha256::new();
    let mut body = response.bytes_stream();
    let written = async {
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            hasher.update(&chunk);
            file.write_all(&chunk).await?;
            bar.inc(chunk.len() as u64);
        }
        file.sync_all().await?;
        anyhow::Ok(())
    }
    .await;
    bar.finish_and_clear();
    let actual = hex::encode(hasher.finalize());
    if let Err(error) = written {
        tokio::fs::remove_file(&partial).await.ok();
        return Err(error.context("the download was interrupted"));
    }
    if actual != expected {
        tokio::fs::remove_file(&partial).await.ok();
        anyhow::bail!("the downloaded file's sha256 is {actual}, the server recorded {expected}");
    }
    tokio::fs::rename(&partial, &output)
        .await
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", output.display()))?;
    println!(
        "downloaded {} ({size} bytes, sha256 {actual})",
        output.display()
    );
    Ok(())
}

pub async fn run(command: PackageCommand, remote: &Remote) -> anyhow::Result<()> {
    match command {
        PackageCommand::Upload(args) => upload(remote, args).await,
        PackageCommand::List {
            project,
            app,
            app_group,
            name,
        } => {
            let mut query = String::from("pageSize=500");
            push_given(
                &mut query,
                [("app", app), ("appGroup", app_group), ("name", name)],
            );
            let client = remote.client()?;
            let page: Value = client
                .get(&format!("{}?{query}", packages_path(&project)))
                .await?;
            table(
                remote,
                &page,
                &[
                    ("ID", "id"),
                    ("NAME", "name"),
                    ("VERSION", "version"),
                    ("TYPE", "type"),
                    ("SIZE", "size"),
                    ("APP", "app"),
                    ("SOURCE", "source"),
                    ("CREATED", "createdAt"),
                ],
            );
            Ok(())
        }
        PackageCommand::Show { id, project } => {
            let client = remote.client()?;
            let package: Value = client
                .get(&format!("{}/{}", packages_path(&project), encode(&id)))
                .await?;
            show(&package);
            Ok(())
        }
        PackageCommand::Download {
            id,
            project,
            output,
        } => download(remote, &project, &id, output).await,
        PackageCommand::Delete { id, project } => {
            let client = remote.client()?;
            client
                .delete(&format!("{}/{}", packages_path(&project), encode(&id)))
                .await?;
            println!("deleted package {id}");
            Ok(())
        }
    }
}
