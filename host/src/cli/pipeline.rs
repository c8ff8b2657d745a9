//! `wharf pipeline …`: the pipelines of an app from a terminal — define them from a JSON
//! file (or stdin), list, show any version, delete; start runs with a branch and typed
//! variables, abort, retry from the failed step, roll back, decide approvals, replay a
//! recorded step, read logs and outputs, and a status table with each step's plugin and
//! metering. A pipeline is named by id or by name, a run by id or by number. Following a
//! run live lives in `pipeline_watch`.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use serde_json::{Map, Value, json};

use super::Remote;
use super::client::Client;
use super::cluster::{encode, table};
use super::market::text;
use super::pipeline_watch::{Show, follow, log_line};

/// Which pipeline: an app of a project, and the pipeline's id or name.
#[derive(clap::Args, Clone)]
pub struct PipelineRef {
    project: String,
    app: String,
    /// The pipeline's id, or its name when that is unique in the app.
    pipeline: String,
}

/// Which run: a pipeline and the run's id or number (`3` or `#3`).
#[derive(clap::Args, Clone)]
pub struct RunRef {
    #[command(flatten)]
    pipeline: PipelineRef,
    run: String,
}

#[derive(Subcommand)]
pub enum PipelineCommand {
    /// Defines a pipeline of an app from a JSON file (`-` reads stdin): name, stages with
    /// their steps, variables, triggers, permission mode.
    Create {
        project: String,
        app: String,
        #[arg(long)]
        file: PathBuf,
    },
    /// Replaces a pipeline's definition (a new version; runs keep the one they started with).
    Update {
        #[command(flatten)]
        target: PipelineRef,
        #[arg(long)]
        file: PathBuf,
    },
    /// Pipelines of a project, or of one `--app`.
    List {
        project: String,
        #[arg(long)]
        app: Option<String>,
        #[arg(long)]
        name: Option<String>,
        /// 1-based.
        #[arg(long, default_value_t = 1)]
        page: u32,
        #[arg(long, default_value_t = 50)]
        page_size: u32,
    },
    /// A pipeline's stages and steps (its latest version, or `--version N`).
    Show {
        #[command(flatten)]
        target: PipelineRef,
        #[arg(long)]
        version: Option<u64>,
    },
    /// Deletes a pipeline (its runs stay readable in the audit log).
    Delete {
        #[command(flatten)]
        target: PipelineRef,
    },
    /// Starts a run.
    Run {
        #[command(flatten)]
        target: PipelineRef,
        #[arg(long)]
        branch: Option<String>,
        /// A variable of the pipeline, `NAME=VALUE` (repeatable); typed as the pipeline
        /// declares it (number, boolean or string).
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
        /// Follow the run until it ends; the exit code says whether it succeeded.
        #[arg(long)]
        watch: bool,
    },
    /// Follows a run live: a progress bar per step on a terminal, a line per change
    /// otherwise, log lines as they come. Exits 0 when the run succeeds or is rolled back.
    Watch {
        #[command(flatten)]
        target: RunRef,
    },
    /// Runs of a pipeline, newest first.
    Runs {
        #[command(flatten)]
        target: PipelineRef,
        #[arg(long, default_value_t = 1)]
        page: u32,
        #[arg(long, default_value_t = 20)]
        page_size: u32,
    },
    /// A run's steps: status, attempt, plugin and metering (fuel, peak memory, time).
    Status {
        #[command(flatten)]
        target: RunRef,
    },
    /// Stops a run: cancels its running step.
    Abort {
        #[command(flatten)]
        target: RunRef,
    },
    /// Runs a failed or aborted run again from its failed step (earlier steps are kept).
    Retry {
        #[command(flatten)]
        target: RunRef,
        #[arg(long)]
        watch: bool,
    },
    /// Undoes a finished run: compensates its steps in reverse order of completion.
    Rollback {
        #[command(flatten)]
        target: RunRef,
        #[arg(long)]
        watch: bool,
    },
    /// Approves (or `--reject`s) a step that waits for a decision.
    Approve {
        #[command(flatten)]
        target: RunRef,
        step: String,
        #[arg(long)]
        reject: bool,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Re-executes a recorded step against its recorded host results and compares the
    /// outcome; exits 1 when the outcome differs (a nondeterministic step).
    Replay {
        #[command(flatten)]
        target: RunRef,
        step: String,
    },
    /// A run's log lines (of one `--step`), or `--follow` them until the run ends.
    Logs {
        #[command(flatten)]
        target: RunRef,
        #[arg(long)]
        step: Option<String>,
        #[arg(long)]
        follow: bool,
    },
    /// A step's outputs, whole, as JSON.
    Outputs {
        #[command(flatten)]
        target: RunRef,
        step: String,
    },
}

fn app_pipelines(project: &str, app: &str) -> String {
    format!(
        "/api/v1/projects/{}/apps/{}/pipelines",
        encode(project),
        encode(app)
    )
}

/// The REST path of a pipeline named by id or by a name unique in its app.
async fn pipeline_path(client: &Client, target: &PipelineRef) -> anyhow::Result<String> {
    let base = app_pipelines(&target.project, &target.app);
    if uuid::Uuid::parse_str(&target.pipeline).is_ok() {
        return Ok(format!("{base}/{}", encode(&target.pipeline)));
    }
    let page: Value = client
        .get(&format!(
            "{base}?name={}&pageSize=500",
            encode(&target.pipeline)
        ))
        .await?;
    let ids: Vec<String> = page["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["name"] == target.pipeline.as_str())
        .map(|p| text(&p["id"]))
        .collect();
    match ids.as_slice() {
        [id] => Ok(format!("{base}/{}", encode(id))),
        [] => anyhow::bail!(
            "app {}/{} has no pipeline with the id or name {:?}; see `wharf pipeline list {} --app {}`",
            target.project,
            target.app,
            target.pipeline,
            target.project,
            target.app
        ),
        several => anyhow::bail!(
            "several pipelines of {}/{} are named {:?}; name one by id: {}",
            target.project,
            target.app,
            target.pipeline,
            several.join(", ")
        ),
    }
}

/// The REST path of a run named by id or number, and its id.
async fn run_path(client: &Client, target: &RunRef) -> anyhow::Result<(String, String)> {
    let pipeline = pipeline_path(client, &target.pipeline).await?;
    if uuid::Uuid::parse_str(&target.run).is_ok() {
        return Ok((
            format!("{pipeline}/runs/{}", encode(&target.run)),
            target.run.clone(),
        ));
    }
    let Ok(number) = target.run.trim_start_matches('#').parse::<u64>() else {
        anyhow::bail!(
            "{:?} is neither a run id nor a run number; see `wharf pipeline runs`",
            target.run
        );
    };
    const PAGE_SIZE: u64 = 100;
    let mut page = 1;
    loop {
        let runs: Value = client
            .get(&format!("{pipeline}/runs?page={page}&pageSize={PAGE_SIZE}"))
            .await?;
        let items = runs["items"].as_array().cloned().unwrap_or_default();
        if let Some(run) = items.iter().find(|r| r["number"] == number) {
            let id = text(&run["id"]);
            return Ok((format!("{pipeline}/runs/{}", encode(&id)), id));
        }
        let total = runs["total"].as_u64().unwrap_or(0);
        if items.is_empty() || page * PAGE_SIZE >= total {
            anyhow::bail!("the pipeline has no run #{number}");
        }
        page += 1;
    }
}

/// A pipeline definition from a JSON file, or stdin for `-`.
fn read_definition(file: &Path) -> anyhow::Result<Value> {
    let (content, origin) = if file == Path::new("-") {
        let mut content = String::new();
        std::io::stdin().read_to_string(&mut content)?;
        (content, "stdin".to_owned())
    } else {
        let content = std::fs::read_to_string(file)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?;
        (content, file.display().to_string())
    };
    let definition: Value =
        serde_json::from_str(&content).map_err(|e| anyhow::anyhow!("{origin} is not JSON: {e}"))?;
    if !definition.is_object() {
        anyhow::bail!("{origin} must hold a JSON object (a pipeline definition)");
    }
    Ok(definition)
}

/// `--var NAME=VALUE` arguments as the run's variables, typed as the pipeline declares
/// them; names it does not declare go as strings for the server to judge.
fn variables(pipeline: &Value, vars: &[String]) -> anyhow::Result<Map<String, Value>> {
    let mut out = Map::new();
    for var in vars {
        let Some((name, value)) = var.split_once('=') else {
            anyhow::bail!("--var {var:?}: use NAME=VALUE");
        };
        let declared = pipeline["variables"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|v| v["name"] == name)
            .and_then(|v| v["type"].as_str())
            .unwrap_or("string");
        let typed = match declared {
            "number" => value
                .parse::<i64>()
                .map(Value::from)
                .or_else(|_| {
                    value
                        .parse::<f64>()
                        .ok()
                        .and_then(serde_json::Number::from_f64)
                        .map(Value::Number)
                        .ok_or(())
                })
                .map_err(|()| anyhow::anyhow!("--var {name}: {value:?} is not a number"))?,
            "boolean" => match value {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => anyhow::bail!("--var {name}: {value:?} is not true or false"),
            },
            _ => Value::String(value.to_owned()),
        };
        out.insert(name.to_owned(), typed);
    }
    Ok(out)
}

pub async fn run(command: PipelineCommand, remote: &Remote) -> anyhow::Result<()> {
    let client = remote.client()?;
    match command {
        PipelineCommand::Create { project, app, file } => {
            let definition = read_definition(&file)?;
            let pipeline = client
                .post(&app_pipelines(&project, &app), &definition)
                .await?;
            announce_pipeline(remote, "created", &pipeline);
        }
        PipelineCommand::Update { target, file } => {
            let definition = read_definition(&file)?;
            let path = pipeline_path(&client, &target).await?;
            let pipeline = client.put(&path, &definition).await?;
            announce_pipeline(remote, "updated", &pipeline);
        }
        PipelineCommand::List {
            project,
            app,
            name,
            page,
            page_size,
        } => {
            let base = match &app {
                Some(app) => app_pipelines(&project, app),
                None => format!("/api/v1/projects/{}/pipelines", encode(&project)),
            };
            let name = name
                .map(|n| format!("&name={}", encode(&n)))
                .unwrap_or_default();
            let mut pipelines: Value = client
                .get(&format!("{base}?page={page}&pageSize={page_size}{name}"))
                .await?;
            for p in pipelines["items"].as_array_mut().into_iter().flatten() {
                let stages = p["stages"].as_array().cloned().unwrap_or_default();
                let steps: usize = stages
                    .iter()
                    .map(|s| s["steps"].as_array().map_or(0, Vec::len))
                    .sum();
                p["stageCount"] = json!(stages.len());
                p["stepCount"] = json!(steps);
            }
            table(
                remote,
                &pipelines,
                &[
                    ("ID", "id"),
                    ("NAME", "name"),
                    ("APP", "app"),
                    ("VERSION", "version"),
                    ("STAGES", "stageCount"),
                    ("STEPS", "stepCount"),
                    ("PERMISSIONS", "permissionMode"),
                    ("UPDATED", "updatedAt"),
                ],
            );
            if !remote.json {
                let shown = pipelines["items"].as_array().map_or(0, Vec::len);
                println!("{shown} of {} pipelines (page {page})", pipelines["total"]);
            }
        }
        PipelineCommand::Show { target, version } => {
            let mut path = pipeline_path(&client, &target).await?;
            if let Some(version) = version {
                path.push_str(&format!("/versions/{version}"));
            }
            let pipeline: Value = client.get(&path).await?;
            if remote.json {
                println!("{pipeline:#}");
            } else {
                print_pipeline(&pipeline);
            }
        }
        PipelineCommand::Delete { target } => {
            let path = pipeline_path(&client, &target).await?;
            client.delete(&path).await?;
            if !remote.json {
                println!("deleted pipeline {}", target.pipeline);
            }
        }
        PipelineCommand::Run {
            target,
            branch,
            vars,
            watch,
        } => {
            let path = pipeline_path(&client, &target).await?;
            let pipeline: Value = client.get(&path).await?;
            let mut body = Map::new();
            if let Some(branch) = branch {
                body.insert("branch".into(), branch.into());
            }
            body.insert(
                "variables".into(),
                Value::Object(variables(&pipeline, &vars)?),
            );
            let run = client
                .post(&format!("{path}/runs"), &Value::Object(body))
                .await?;
            let id = text(&run["id"]);
            if !watch {
                announce_run(remote, "started", &run);
                return Ok(());
            }
            if !remote.json {
                announce_run(remote, "started", &run);
            }
            let run_path = format!("{path}/runs/{}", encode(&id));
            watch_to_end(&client, remote, &run_path, &target, &id).await?;
        }
        PipelineCommand::Watch { target } => {
            let (path, id) = run_path(&client, &target).await?;
            watch_to_end(&client, remote, &path, &target.pipeline, &id).await?;
        }
        PipelineCommand::Runs {
            target,
            page,
            page_size,
        } => {
            let path = pipeline_path(&client, &target).await?;
            let runs: Value = client
                .get(&format!("{path}/runs?page={page}&pageSize={page_size}"))
                .await?;
            table(
                remote,
                &runs,
                &[
                    ("ID", "id"),
                    ("#", "number"),
                    ("STATUS", "status"),
                    ("BRANCH", "branch"),
                    ("VERSION", "pipelineVersion"),
                    ("BY", "startedBy"),
                    ("STARTED", "startedAt"),
                    ("FINISHED", "finishedAt"),
                ],
            );
            if !remote.json {
                let shown = runs["items"].as_array().map_or(0, Vec::len);
                println!("{shown} of {} runs (page {page})", runs["total"]);
            }
        }
        PipelineCommand::Status { target } => {
            let (path, _) = run_path(&client, &target).await?;
            let run: Value = client.get(&path).await?;
            if remote.json {
                println!("{run:#}");
            } else {
                print_status(&run);
            }
        }
        PipelineCommand::Abort { target } => {
            let (path, _) = run_path(&client, &target).await?;
            let run = client.post(&format!("{path}/abort"), &json!({})).await?;
            announce_run(remote, "aborted:", &run);
        }
        PipelineCommand::Retry { target, watch } => {
            let (path, id) = run_path(&client, &target).await?;
            let run = client.post(&format!("{path}/retry"), &json!({})).await?;
            if !(watch && remote.json) {
                announce_run(remote, "retried from its failed step:", &run);
            }
            if watch {
                watch_to_end(&client, remote, &path, &target.pipeline, &id).await?;
            }
        }
        PipelineCommand::Rollback { target, watch } => {
            let (path, id) = run_path(&client, &target).await?;
            let run = client.post(&format!("{path}/rollback"), &json!({})).await?;
            if !(watch && remote.json) {
                announce_run(remote, "rolling back:", &run);
            }
            if watch {
                watch_to_end(&client, remote, &path, &target.pipeline, &id).await?;
            }
        }
        PipelineCommand::Approve {
            target,
            step,
            reject,
            comment,
        } => {
            let (path, _) = run_path(&client, &target).await?;
            let mut body = json!({"approve": !reject});
            if let Some(comment) = comment {
                body["comment"] = comment.into();
            }
            let run = client
                .post(&format!("{path}/steps/{}/decisions", encode(&step)), &body)
                .await?;
            let verb = if reject { "rejected" } else { "approved" };
            announce_run(remote, &format!("{verb} step {step};"), &run);
        }
        PipelineCommand::Replay { target, step } => {
            let (path, _) = run_path(&client, &target).await?;
            let replay = client
                .post(
                    &format!("{path}/steps/{}/replay", encode(&step)),
                    &json!({}),
                )
                .await?;
            if remote.json {
                println!("{replay:#}");
            } else {
                print_replay(&step, &replay);
            }
            if replay["same"] != true {
                anyhow::bail!(
                    "step {step} decided differently when replayed: {}",
                    text(&replay["divergence"])
                );
            }
        }
        PipelineCommand::Logs {
            target,
            step,
            follow: live,
        } => {
            let (path, id) = run_path(&client, &target).await?;
            if live {
                let prefix = hint_prefix(&target.pipeline, &id);
                follow(&client, &path, Show::Logs { step }, remote.json, prefix).await?;
                return Ok(());
            }
            let query = step
                .map(|s| format!("?step={}", encode(&s)))
                .unwrap_or_default();
            let logs: Value = client.get(&format!("{path}/logs{query}")).await?;
            if remote.json {
                println!("{logs:#}");
            } else {
                for line in logs["items"].as_array().into_iter().flatten() {
                    println!("{}", log_line(line));
                }
            }
        }
        PipelineCommand::Outputs { target, step } => {
            let (path, _) = run_path(&client, &target).await?;
            let outputs: Value = client
                .get(&format!("{path}/steps/{}/outputs", encode(&step)))
                .await?;
            println!("{outputs:#}");
        }
    }
    Ok(())
}

fn hint_prefix(target: &PipelineRef, run: &str) -> String {
    format!(
        "{} {} {} {run}",
        target.project, target.app, target.pipeline
    )
}

/// Follows a run to its end; fails unless it succeeded or was rolled back.
async fn watch_to_end(
    client: &Client,
    remote: &Remote,
    path: &str,
    target: &PipelineRef,
    run: &str,
) -> anyhow::Result<()> {
    let last = follow(
        client,
        path,
        Show::Everything,
        remote.json,
        hint_prefix(target, run),
    )
    .await?;
    if remote.json {
        println!("{last:#}");
    }
    match last["status"].as_str() {
        Some("Succeeded" | "RolledBack") => Ok(()),
        status => {
            let failed: Vec<String> = last["steps"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|s| {
                    matches!(
                        s["status"].as_str(),
                        Some("Failed" | "Aborted" | "CompensationFailed")
                    )
                })
                .map(|s| {
                    format!(
                        "{} {}: {}",
                        text(&s["id"]),
                        text(&s["status"]),
                        text(&s["message"])
                    )
                })
                .collect();
            anyhow::bail!(
                "run #{} ended {}{}{}",
                text(&last["number"]),
                status.unwrap_or("without a status"),
                match text(&last["message"]) {
                    m if m.is_empty() => String::new(),
                    m => format!(": {m}"),
                },
                if failed.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", failed.join("; "))
                }
            )
        }
    }
}

fn announce_pipeline(remote: &Remote, verb: &str, pipeline: &Value) {
    if remote.json {
        println!("{pipeline:#}");
        return;
    }
    println!(
        "{verb} pipeline {} of {}/{} as {} (version {})",
        text(&pipeline["name"]),
        text(&pipeline["project"]),
        text(&pipeline["app"]),
        text(&pipeline["id"]),
        text(&pipeline["version"])
    );
}

fn announce_run(remote: &Remote, verb: &str, run: &Value) {
    if remote.json {
        println!("{run:#}");
        return;
    }
    println!(
        "run #{} {verb} {} is {}",
        text(&run["number"]),
        text(&run["id"]),
        text(&run["status"])
    );
}

fn print_pipeline(pipeline: &Value) {
    println!(
        "pipeline {} ({}) version {} of {}/{}",
        text(&pipeline["name"]),
        text(&pipeline["id"]),
        text(&pipeline["version"]),
        text(&pipeline["project"]),
        text(&pipeline["app"])
    );
    let description = text(&pipeline["description"]);
    if !description.is_empty() {
        println!("{description}");
    }
    let triggers: Vec<String> = pipeline["triggers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(text)
        .collect();
    println!(
        "permissions {}, triggers {}, updated {} by {}",
        text(&pipeline["permissionMode"]),
        triggers.join(", "),
        text(&pipeline["updatedAt"]),
        text(&pipeline["updatedBy"])
    );
    for variable in pipeline["variables"].as_array().into_iter().flatten() {
        println!(
            "variable {} ({}{}{})",
            text(&variable["name"]),
            text(&variable["type"]),
            if variable["required"] == true {
                ", required"
            } else {
                ""
            },
            if variable["default"].is_null() {
                String::new()
            } else {
                format!(", default {}", variable["default"])
            }
        );
    }
    for stage in pipeline["stages"].as_array().into_iter().flatten() {
        println!(
            "stage {} [{}]",
            text(&stage["name"]),
            text(&stage["category"])
        );
        for step in stage["steps"].as_array().into_iter().flatten() {
            println!(
                "  {:<20} {:<16} {}{}",
                text(&step["id"]),
                text(&step["type"]),
                text(&step["name"]),
                if step["enabled"] == false {
                    " (disabled)"
                } else {
                    ""
                }
            );
            println!("  {:<20} params {}", "", step["params"]);
        }
    }
}

/// Metering of a step summed over its executions: (plugin of the latest, fuel, peak
/// memory, microseconds).
fn metering(step: &Value) -> (String, u64, u64, u64) {
    let executions = step["executions"].as_array().cloned().unwrap_or_default();
    let plugin = executions
        .iter()
        .rev()
        .map(|e| text(&e["plugin"]))
        .find(|p| !p.is_empty())
        .unwrap_or_else(|| {
            if step["type"] == "echo" {
                "(native)".to_owned()
            } else {
                String::new()
            }
        });
    let sum = |field: &str| {
        executions
            .iter()
            .filter_map(|e| e[field].as_u64())
            .sum::<u64>()
    };
    let peak = executions
        .iter()
        .filter_map(|e| e["peakMemoryBytes"].as_u64())
        .max()
        .unwrap_or(0);
    (plugin, sum("fuel"), peak, sum("durationUs"))
}

fn mebibytes(bytes: u64) -> String {
    if bytes == 0 {
        String::new()
    } else {
        format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
    }
}

fn print_status(run: &Value) {
    println!(
        "run #{} ({}) {} — pipeline version {}, branch {}, started by {} at {}{}",
        text(&run["number"]),
        text(&run["id"]),
        text(&run["status"]),
        text(&run["pipelineVersion"]),
        text(&run["branch"]),
        text(&run["startedBy"]),
        text(&run["startedAt"]),
        match text(&run["finishedAt"]) {
            f if f.is_empty() => String::new(),
            f => format!(", finished {f}"),
        }
    );
    let message = text(&run["message"]);
    if !message.is_empty() {
        println!("{message}");
    }
    let mut table = Table::new();
    table.load_style(UTF8_BORDERS_ONLY);
    table.set_header([
        "STAGE",
        "STEP",
        "TYPE",
        "STATUS",
        "ATTEMPT",
        "PLUGIN",
        "FUEL",
        "PEAK MEMORY",
        "MS",
    ]);
    let steps = run["steps"].as_array().cloned().unwrap_or_default();
    for step in &steps {
        let (plugin, fuel, peak, micros) = metering(step);
        let ran = !step["executions"].as_array().is_none_or(Vec::is_empty);
        table.add_row([
            text(&step["stage"]),
            text(&step["id"]),
            text(&step["type"]),
            text(&step["status"]),
            text(&step["attempt"]),
            plugin,
            if ran { fuel.to_string() } else { String::new() },
            mebibytes(peak),
            if ran {
                format!("{:.3}", micros as f64 / 1000.0)
            } else {
                String::new()
            },
        ]);
    }
    println!("{table}");
    for step in &steps {
        let message = text(&step["message"]);
        if !message.is_empty() && step["status"] != "Succeeded" {
            println!("{}: {message}", text(&step["id"]));
        }
    }
}

fn print_replay(step: &str, replay: &Value) {
    println!(
        "step {step} attempt {} replayed against {} recorded host calls: {}",
        text(&replay["attempt"]),
        // A count, or the recorded calls themselves.
        replay["invocations"].as_array().map_or_else(
            || text(&replay["invocations"]),
            |calls| calls.len().to_string()
        ),
        if replay["same"] == true {
            "same outcome"
        } else {
            "DIFFERENT outcome"
        }
    );
    println!("recorded: {}", replay["recorded"]);
    println!("replayed: {}", replay["replayed"]);
    if let Some(divergence) = replay["divergence"].as_str() {
        println!("divergence: {divergence}");
    }
}
