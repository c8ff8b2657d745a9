//! The deploy spec (seed 001 §5.3.18, inventory §6.7) and the Service spec (seed 001
//! 5.3.1): what a deploy request asks for, with the seed's field names, and the rules a
//! spec must follow before anything is rendered (`render.rs`) or rolled out.
//!
//! Units, since the seed states none: CPU in **millicores** (`250` renders as `250m`),
//! memory in **MiB** (`256` renders as `256Mi`). `startCommand.command` is one string
//! split on whitespace into the container's command; arguments with spaces go in `args`.
//! `logConfig` and `msManagement` are validated and recorded, not rendered (no log
//! collector or registry centre is wired up). A gray release (`grayUpdate`, `grayRule`)
//! is checked here only for how it fits the strategy; the rule is judged by the
//! environment's gray-router plugin (`domain::gray`).
//!
//! Every error names the offending field by its JSON path, e.g.
//! `deploymentStrategy.batchList[1].instNum` or `lifeCycleMgt.liveness.httpGet.port`.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::deployments::{
    APP_LABEL, ENV_LABEL, MANAGED_LABEL, NAME_LABEL, PROJECT_LABEL, REVISION_LABEL,
};

/// Most replicas a deployment may ask for (the same bound `scale` uses).
pub const MAX_REPLICAS: u32 = 1000;
/// Batches a rollout may be split into (seed 001: 1–5).
pub const MAX_BATCHES: usize = 5;
/// Per-batch readiness timeout when the spec names none.
pub const DEFAULT_TIMEOUT_SECONDS: u32 = 600;
/// The longest wait between AUTO batches and the longest registration delays (a day).
pub const MAX_WAIT_SECONDS: u32 = 86_400;
/// Where a whole config item is mounted when `mountMasterDir` is left out: the same
/// directory `config_items` reports as each key's storage path.
pub const DEFAULT_MOUNT_ROOT: &str = super::config_items::MOUNT_ROOT;

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> SpecError {
    SpecError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// `prefix.name`, or `name` at the top.
fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

fn yes() -> bool {
    true
}

// The spec.

/// Seed 001 `deploySource`: what the image was built from. The image always runs; the
/// other fields record where it came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeploySource {
    Code,
    Package,
    #[default]
    Image,
}

/// Seed 001 `packageSource` (PACKAGE deploys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PackageSource {
    UserUpload,
    OfficialDemo,
    CodeGenerate,
    ExistedPackage,
}

impl PackageSource {
    /// The seed's name in any case (`user_upload` reads as `USER_UPLOAD`).
    pub fn parse(text: &str) -> Option<PackageSource> {
        serde_json::from_value(serde_json::Value::String(text.trim().to_ascii_uppercase())).ok()
    }
}

/// A deploy request's spec (seed 001 5.3.18 names). Only `image` and `replicas` (alias
/// `podNum`) are required.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeploySpec {
    /// The container image that runs, e.g. `nginx:1.25`.
    pub image: String,
    /// Pods (seed `podNum`), 0–1000; 0 takes the app offline.
    #[serde(alias = "podNum")]
    pub replicas: u32,
    #[serde(default)]
    pub deploy_source: DeploySource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy_ver: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_ver: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_env_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_env_ver: Option<String>,
    /// Required when `deploySource` is CODE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch_or_tag_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_env_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_path: Option<String>,
    /// Required (with `packageVer`) when `deploySource` is PACKAGE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_source: Option<PackageSource>,
    /// Required when `packageSource` is OFFICIAL_DEMO.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub official_demo_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_resource_spec: Option<PodResourceSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_command: Option<StartCommand>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_variable_list: Vec<EnvVariable>,
    /// Config items (ConfigMaps) mounted as files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_mgt_list: Vec<ConfigMount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub life_cycle_mgt: Option<LifeCycleMgt>,
    /// Ports the container listens on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<ContainerPort>,
    /// Nodes the pods may run on, by node label.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Extra pod labels (Wharf's own labels cannot be overridden).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolling_update: Option<RollingUpdate>,
    /// A HorizontalPodAutoscaler for the revision's Deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hpa: Option<HpaSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_strategy: Option<DeploymentStrategy>,
    /// Seconds each batch may take to become ready (1–3600, default 600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_config: Option<LogConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ms_management: Option<MsManagement>,
}

/// Seed 001 `podResourceSpec`: CPU in millicores, memory in MiB; a request may not
/// exceed its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodResourceSpec {
    /// Millicores.
    pub cpu_request: u32,
    /// Millicores.
    pub cpu_limit: u32,
    /// MiB.
    pub memory_request: u32,
    /// MiB.
    pub memory_limit: u32,
}

/// Seed 001 `startCommand`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartCommand {
    /// Replaces the image's entrypoint; split on whitespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
}

/// Where an environment variable's value comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EnvVarType {
    /// A plain `value` (seed 001 `CUSTOM`).
    #[default]
    Custom,
    /// A key of a config item of the environment (`configItem`, `key`).
    ConfigItem,
    /// A key of a Kubernetes Secret in the namespace (`secret`, `key`).
    Secret,
}

/// Seed 001 `envVariableList[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvVariable {
    pub name: String,
    #[serde(rename = "type", default)]
    pub var_type: EnvVarType,
    /// CUSTOM only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// CONFIG_ITEM only: the config item (ConfigMap) name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_item: Option<String>,
    /// SECRET only: the Secret name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// CONFIG_ITEM and SECRET: the key within it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// Seed 001 `configType`: only CONFIG_MAP.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConfigType {
    #[default]
    ConfigMap,
}

/// Seed 001 `mountType`: only MOUNT_FILE.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MountType {
    #[default]
    MountFile,
}

/// Seed 001 `fileMountType`: only `overwrite`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileMountType {
    #[default]
    Overwrite,
}

/// Seed 001 `configMgtList[]`: a config item mounted as files, either whole (every key a
/// file in `mountMasterDir`, default `/etc/config/<mountSource>`) or key by key
/// (`mountConfigList`, each at its `mountPath`, default `<mountMasterDir>/<key>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigMount {
    #[serde(default)]
    pub config_type: ConfigType,
    #[serde(default)]
    pub mount_type: MountType,
    /// The config item's name.
    pub mount_source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_master_dir: Option<String>,
    #[serde(default)]
    pub file_mount_type: FileMountType,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mount_config_list: Vec<MountConfig>,
}

/// One key of a config item mounted as one file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MountConfig {
    /// The key.
    pub name: String,
    /// The file's absolute path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_path: Option<String>,
}

impl ConfigMount {
    /// The directory a whole-map mount lands in.
    pub fn master_dir(&self) -> String {
        self.mount_master_dir
            .clone()
            .unwrap_or_else(|| format!("{DEFAULT_MOUNT_ROOT}/{}", self.mount_source))
    }

    /// The file a key lands in.
    pub fn path_of(&self, item: &MountConfig) -> String {
        item.mount_path
            .clone()
            .unwrap_or_else(|| format!("{}/{}", self.master_dir().trim_end_matches('/'), item.name))
    }
}

/// Seed 001 `lifeCycleMgt`: health checks.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LifeCycleMgt {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness: Option<Probe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<Probe>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProbeMode {
    Exec,
    HttpGet,
    TcpSocket,
}

/// A liveness or readiness check. Only the action of its `mode` may be given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Probe {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ProbeMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_get: Option<HttpGetCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_socket: Option<TcpSocketCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_delay_seconds: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_seconds: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_threshold: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u32>,
    /// Seed 001 lossless rolling deploy check (recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub non_destruction_rolling_deploy: Option<LosslessCheck>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecCheck {
    pub command: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Scheme {
    Http,
    Https,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpGetCheck {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Default `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub port: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<Scheme>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub header_list: Vec<Header>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpSocketCheck {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub port: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LosslessCheck {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
}

/// Transport protocol of a port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }
}

/// A port the container listens on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerPort {
    /// An IANA service name (at most 15 of a-z, 0-9, -), optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub container_port: i32,
    #[serde(default)]
    pub protocol: Protocol,
}

/// A count of pods or a percentage of the replicas, e.g. `1` or `"25%"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum IntOrPercent {
    Int(u32),
    Percent(String),
}

/// Seed 002 rolling-update knobs, used when a revision's pods are replaced in place
/// (a restart); batches between revisions are Wharf's own.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RollingUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_surge: Option<IntOrPercent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrPercent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_ready_seconds: Option<u32>,
}

/// Seed 002 HPA settings (utilization in percent of the requests).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HpaSpec {
    #[serde(default = "yes", alias = "isHPA")]
    pub enabled: bool,
    pub min_replicas: u32,
    pub max_replicas: u32,
    #[serde(
        rename = "targetCPUUtilization",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub target_cpu_utilization: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_mem_utilization: Option<u32>,
}

/// Seed 001 `betweenBatchProcessingMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BatchMode {
    /// Wait for someone to release the next batch.
    Manual,
    /// Go on after `batchWaitTime` seconds.
    Auto,
}

/// Seed 001 `batchList[]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchSpec {
    pub batch_seq: u32,
    pub inst_num: u32,
}

/// Seed 001 `deploymentStrategy` (§6.6).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeploymentStrategy {
    /// 1–5 batches numbered 1..n whose `instNum` add up to the replicas.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub batch_list: Vec<BatchSpec>,
    /// MANUAL (the default) or AUTO.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub between_batch_processing_mode: Option<BatchMode>,
    /// Seconds between AUTO batches, 0–86400.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_wait_time: Option<u32>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gray_update: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub gray_rule: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogType {
    Stdout,
    Applog,
}

/// Seed 001 `logConfig` (recorded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogConfig {
    pub log_type: LogType,
    /// Required for `applog`: an absolute path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_project: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_store: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_time: Option<String>,
}

/// Seed 001 `msManagement`: service registration and lossless online/offline (recorded).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MsManagement {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub register_center_inst_id: Option<String>,
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub aligned: bool,
    #[serde(default)]
    pub related: bool,
    /// Seconds, 0–86400.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_time: Option<u32>,
    /// Seconds, 0–86400.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup_time: Option<u32>,
    /// Warm-up curve, 0–20.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub func_type: Option<u32>,
}

impl DeploySpec {
    /// A spec of `replicas` pods of `image` and nothing else.
    pub fn of_image(image: impl Into<String>, replicas: u32) -> Self {
        Self {
            image: image.into(),
            replicas,
            deploy_source: DeploySource::Image,
            deploy_ver: None,
            package_ver: None,
            runtime_env_code: None,
            runtime_env_ver: None,
            branch_or_tag_name: None,
            build_env_code: None,
            package_name: None,
            package_path: None,
            package_id: None,
            package_source: None,
            official_demo_code: None,
            pod_resource_spec: None,
            start_command: None,
            env_variable_list: Vec::new(),
            config_mgt_list: Vec::new(),
            life_cycle_mgt: None,
            ports: Vec::new(),
            node_selector: BTreeMap::new(),
            labels: BTreeMap::new(),
            rolling_update: None,
            hpa: None,
            deployment_strategy: None,
            timeout_seconds: None,
            log_config: None,
            ms_management: None,
        }
    }

    pub fn image(&self) -> &str {
        &self.image
    }

    /// Pods per batch, in order; without a `batchList` one batch of all replicas (none
    /// for 0 replicas).
    pub fn batches(&self) -> Vec<u32> {
        match &self.deployment_strategy {
            Some(s) if !s.batch_list.is_empty() => {
                s.batch_list.iter().map(|b| b.inst_num).collect()
            }
            _ if self.replicas == 0 => Vec::new(),
            _ => vec![self.replicas],
        }
    }

    fn mode(&self) -> BatchMode {
        self.deployment_strategy
            .as_ref()
            .and_then(|s| s.between_batch_processing_mode)
            .unwrap_or(BatchMode::Manual)
    }

    /// The gray rule of a gray release (`grayUpdate: true`).
    pub fn gray_rule(&self) -> Option<&serde_json::Value> {
        self.deployment_strategy
            .as_ref()
            .filter(|s| s.gray_update)
            .and_then(|s| s.gray_rule.as_ref())
            .filter(|r| r.is_object())
    }

    /// The same spec without its gray release (what a redeploy of it rolls out).
    pub fn without_gray(mut self) -> Self {
        if let Some(strategy) = &mut self.deployment_strategy {
            strategy.gray_update = false;
            strategy.gray_rule = None;
        }
        self
    }

    /// Whether someone releases each next batch (MANUAL, the seed's default).
    pub fn manual(&self) -> bool {
        self.mode() == BatchMode::Manual
    }

    /// The pause between AUTO batches.
    pub fn batch_wait(&self) -> Duration {
        let seconds = self
            .deployment_strategy
            .as_ref()
            .and_then(|s| s.batch_wait_time)
            .unwrap_or(0);
        Duration::from_secs(u64::from(seconds))
    }

    /// How long each batch may take to become ready.
    pub fn batch_timeout(&self) -> Duration {
        Duration::from_secs(u64::from(
            self.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS),
        ))
    }

    /// `(field path, config item name)` of every config item the spec uses.
    pub fn config_item_refs(&self) -> Vec<(String, String)> {
        let mut refs = env_refs(
            &self.env_variable_list,
            "envVariableList",
            EnvVarType::ConfigItem,
        );
        for (i, mount) in self.config_mgt_list.iter().enumerate() {
            refs.push((
                format!("configMgtList[{i}].mountSource"),
                mount.mount_source.clone(),
            ));
        }
        refs
    }

    /// `(field path, Secret name)` of every Secret the spec uses.
    pub fn secret_refs(&self) -> Vec<(String, String)> {
        env_refs(
            &self.env_variable_list,
            "envVariableList",
            EnvVarType::Secret,
        )
    }

    /// Checks every rule of the seed; the error names the first offending field.
    pub fn validate(&self) -> Result<(), SpecError> {
        validate_image(&self.image, "image")?;
        if self.replicas > MAX_REPLICAS {
            return Err(invalid(
                "replicas",
                format!("must be from 0 to {MAX_REPLICAS}"),
            ));
        }
        self.validate_source()?;
        if let Some(resources) = &self.pod_resource_spec {
            resources.validate("podResourceSpec")?;
        }
        if let Some(command) = &self.start_command {
            command.validate("startCommand")?;
        }
        validate_env_vars(&self.env_variable_list, "envVariableList")?;
        self.validate_mounts()?;
        if let Some(checks) = &self.life_cycle_mgt {
            checks.validate("lifeCycleMgt")?;
        }
        validate_ports(&self.ports)?;
        validate_labels(&self.node_selector, "nodeSelector", false)?;
        validate_labels(&self.labels, "labels", true)?;
        if let Some(rolling) = &self.rolling_update {
            rolling.validate("rollingUpdate")?;
        }
        if let Some(hpa) = &self.hpa {
            hpa.validate("hpa")?;
            if hpa.enabled && self.pod_resource_spec.is_none() {
                return Err(invalid(
                    "hpa",
                    "an autoscaler measures utilization against the pods' requests: set podResourceSpec",
                ));
            }
        }
        self.validate_strategy()?;
        if let Some(t) = self.timeout_seconds
            && !(1..=3600).contains(&t)
        {
            return Err(invalid("timeoutSeconds", "must be from 1 to 3600 seconds"));
        }
        if let Some(log) = &self.log_config {
            log.validate("logConfig")?;
        }
        if let Some(ms) = &self.ms_management {
            ms.validate("msManagement")?;
        }
        Ok(())
    }

    fn validate_source(&self) -> Result<(), SpecError> {
        for (field, value) in [
            ("deployVer", &self.deploy_ver),
            ("packageVer", &self.package_ver),
            ("runtimeEnvCode", &self.runtime_env_code),
            ("runtimeEnvVer", &self.runtime_env_ver),
            ("branchOrTagName", &self.branch_or_tag_name),
            ("buildEnvCode", &self.build_env_code),
            ("packageName", &self.package_name),
            ("packagePath", &self.package_path),
            ("packageId", &self.package_id),
            ("officialDemoCode", &self.official_demo_code),
        ] {
            if let Some(value) = value {
                validate_text(value, field, 128)?;
            }
        }
        let missing = |field: &str, why: &str| invalid(field, format!("is required {why}"));
        match self.deploy_source {
            DeploySource::Image => {}
            DeploySource::Package => {
                let why = "when deploySource is PACKAGE";
                if self.package_id.is_none() {
                    return Err(missing("packageId", why));
                }
                if self.package_ver.is_none() {
                    return Err(missing("packageVer", why));
                }
                if self.package_source == Some(PackageSource::OfficialDemo)
                    && self.official_demo_code.is_none()
                {
                    return Err(missing(
                        "officialDemoCode",
                        "when packageSource is OFFICIAL_DEMO",
                    ));
                }
            }
            DeploySource::Code => {
                if self.branch_or_tag_name.is_none() {
                    return Err(missing("branchOrTagName", "when deploySource is CODE"));
                }
            }
        }
        Ok(())
    }

    fn validate_mounts(&self) -> Result<(), SpecError> {
        let mut paths = HashSet::new();
        for (i, mount) in self.config_mgt_list.iter().enumerate() {
            let at = format!("configMgtList[{i}]");
            validate_object_name(&mount.mount_source, &join(&at, "mountSource"))?;
            if let Some(dir) = &mount.mount_master_dir {
                validate_path(dir, &join(&at, "mountMasterDir"))?;
            }
            if mount.mount_config_list.is_empty() {
                if !paths.insert(mount.master_dir()) {
                    return Err(invalid(
                        join(&at, "mountMasterDir"),
                        format!("`{}` is mounted twice", mount.master_dir()),
                    ));
                }
                continue;
            }
            let mut keys = HashSet::new();
            for (j, item) in mount.mount_config_list.iter().enumerate() {
                let item_at = format!("{at}.mountConfigList[{j}]");
                validate_config_key(&item.name, &join(&item_at, "name"))?;
                if !keys.insert(item.name.as_str()) {
                    return Err(invalid(
                        join(&item_at, "name"),
                        format!("key `{}` is listed twice", item.name),
                    ));
                }
                if let Some(path) = &item.mount_path {
                    validate_path(path, &join(&item_at, "mountPath"))?;
                }
                let path = mount.path_of(item);
                if !paths.insert(path.clone()) {
                    return Err(invalid(
                        join(&item_at, "mountPath"),
                        format!("`{path}` is mounted twice"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate_strategy(&self) -> Result<(), SpecError> {
        let Some(strategy) = &self.deployment_strategy else {
            return Ok(());
        };
        let at = "deploymentStrategy";
        // The rule itself is the environment's gray-router plugin's to judge; here only
        // how it fits the rest of the strategy.
        let rule = strategy.gray_rule.as_ref().filter(|r| !r.is_null());
        match (strategy.gray_update, rule) {
            (true, None) => {
                return Err(invalid(
                    join(at, "grayRule"),
                    "a gray release (grayUpdate: true) needs a grayRule",
                ));
            }
            (false, Some(_)) => {
                return Err(invalid(
                    join(at, "grayUpdate"),
                    "grayRule is only used with grayUpdate: true",
                ));
            }
            (true, Some(rule)) if !rule.is_object() => {
                return Err(invalid(join(at, "grayRule"), "must be an object"));
            }
            (true, Some(_)) if self.replicas == 0 => {
                return Err(invalid(
                    join(at, "grayUpdate"),
                    "a gray release needs at least 1 replica for its canary",
                ));
            }
            (true, Some(_)) if self.mode() == BatchMode::Auto => {
                return Err(invalid(
                    join(at, "betweenBatchProcessingMode"),
                    "a gray release pauses after every step for next-batch: use MANUAL",
                ));
            }
            _ => {}
        }
        let list = &strategy.batch_list;
        if !list.is_empty() {
            let field = join(at, "batchList");
            if self.replicas == 0 {
                return Err(invalid(
                    field,
                    "a deploy with 0 replicas has no batches: leave batchList out",
                ));
            }
            if list.len() > MAX_BATCHES {
                return Err(invalid(
                    field,
                    format!("at most {MAX_BATCHES} batches, got {}", list.len()),
                ));
            }
            let mut sum: u64 = 0;
            for (i, batch) in list.iter().enumerate() {
                if batch.batch_seq as usize != i + 1 {
                    return Err(invalid(
                        format!("{field}[{i}].batchSeq"),
                        format!("must be {} (batches are numbered 1, 2, … in order)", i + 1),
                    ));
                }
                if batch.inst_num == 0 {
                    return Err(invalid(
                        format!("{field}[{i}].instNum"),
                        "must be at least 1",
                    ));
                }
                sum += u64::from(batch.inst_num);
            }
            if sum != u64::from(self.replicas) {
                return Err(invalid(
                    field,
                    format!(
                        "the batches' instNum add up to {sum}, but replicas is {}",
                        self.replicas
                    ),
                ));
            }
        }
        if let Some(wait) = strategy.batch_wait_time
            && wait > MAX_WAIT_SECONDS
        {
            return Err(invalid(
                join(at, "batchWaitTime"),
                format!("must be from 0 to {MAX_WAIT_SECONDS} seconds"),
            ));
        }
        if self.mode() == BatchMode::Auto && strategy.batch_wait_time.is_none() {
            return Err(invalid(
                join(at, "batchWaitTime"),
                "is required when betweenBatchProcessingMode is AUTO (seconds, 0-86400)",
            ));
        }
        Ok(())
    }
}

fn env_refs(list: &[EnvVariable], at: &str, kind: EnvVarType) -> Vec<(String, String)> {
    list.iter()
        .enumerate()
        .filter(|(_, v)| v.var_type == kind)
        .filter_map(|(i, v)| {
            let (field, name) = match kind {
                EnvVarType::ConfigItem => ("configItem", v.config_item.as_ref()),
                EnvVarType::Secret => ("secret", v.secret.as_ref()),
                EnvVarType::Custom => return None,
            };
            name.map(|n| (format!("{at}[{i}].{field}"), n.clone()))
        })
        .collect()
}

impl PodResourceSpec {
    pub fn validate(&self, at: &str) -> Result<(), SpecError> {
        let cpu_max = 256_000;
        let memory_max = 1_048_576;
        for (field, value, max, unit) in [
            ("cpuRequest", self.cpu_request, cpu_max, "millicores"),
            ("cpuLimit", self.cpu_limit, cpu_max, "millicores"),
            ("memoryRequest", self.memory_request, memory_max, "MiB"),
            ("memoryLimit", self.memory_limit, memory_max, "MiB"),
        ] {
            if !(1..=max).contains(&value) {
                return Err(invalid(
                    join(at, field),
                    format!("must be from 1 to {max} ({unit})"),
                ));
            }
        }
        if self.cpu_request > self.cpu_limit {
            return Err(invalid(
                join(at, "cpuRequest"),
                format!(
                    "the request ({}m) exceeds the limit ({}m)",
                    self.cpu_request, self.cpu_limit
                ),
            ));
        }
        if self.memory_request > self.memory_limit {
            return Err(invalid(
                join(at, "memoryRequest"),
                format!(
                    "the request ({}Mi) exceeds the limit ({}Mi)",
                    self.memory_request, self.memory_limit
                ),
            ));
        }
        Ok(())
    }
}

impl StartCommand {
    /// The container's `command`: the string split on whitespace.
    pub fn command_words(&self) -> Vec<String> {
        self.command
            .as_deref()
            .map(|c| c.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    pub fn validate(&self, at: &str) -> Result<(), SpecError> {
        if let Some(command) = &self.command {
            let field = join(at, "command");
            if command.trim().is_empty() {
                return Err(invalid(
                    field,
                    "must not be blank; leave it out to keep the image's entrypoint",
                ));
            }
            if command.len() > 4096 {
                return Err(invalid(field, "at most 4096 characters"));
            }
            if command.contains(['"', '\'']) {
                return Err(invalid(
                    field,
                    "is split on whitespace, so quotes would reach the program: put arguments with spaces in args",
                ));
            }
        }
        if self.args.len() > 100 {
            return Err(invalid(join(at, "args"), "at most 100 arguments"));
        }
        for (i, arg) in self.args.iter().enumerate() {
            if arg.len() > 4096 {
                return Err(invalid(
                    format!("{at}.args[{i}]"),
                    "at most 4096 characters",
                ));
            }
        }
        Ok(())
    }
}

/// Kubernetes' rule for variable names: `[-._a-zA-Z][-._a-zA-Z0-9]*`.
fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || matches!(c, '-' | '.' | '_'))
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

/// Checks a list of environment variables: names valid and unique, each type with its
/// own fields and no others.
pub fn validate_env_vars(list: &[EnvVariable], at: &str) -> Result<(), SpecError> {
    if list.len() > 500 {
        return Err(invalid(at, "at most 500 variables"));
    }
    let mut names = HashSet::new();
    for (i, var) in list.iter().enumerate() {
        let item = format!("{at}[{i}]");
        let name_field = join(&item, "name");
        if var.name.len() > 256 || !is_env_name(&var.name) {
            return Err(invalid(
                name_field,
                "use letters, digits, `_`, `-` and `.`, not starting with a digit (at most 256)",
            ));
        }
        if !names.insert(var.name.as_str()) {
            return Err(invalid(
                name_field,
                format!("variable `{}` is defined twice", var.name),
            ));
        }
        let unexpected = |field: &str, given: bool| -> Result<(), SpecError> {
            if given {
                Err(invalid(
                    join(&item, field),
                    format!("is not used by type {}", type_name(var.var_type)),
                ))
            } else {
                Ok(())
            }
        };
        match var.var_type {
            EnvVarType::Custom => {
                unexpected("configItem", var.config_item.is_some())?;
                unexpected("secret", var.secret.is_some())?;
                unexpected("key", var.key.is_some())?;
                if var.value.as_ref().is_some_and(|v| v.len() > 32 * 1024) {
                    return Err(invalid(join(&item, "value"), "at most 32 KiB"));
                }
            }
            EnvVarType::ConfigItem | EnvVarType::Secret => {
                unexpected("value", var.value.is_some())?;
                let (field, source) = if var.var_type == EnvVarType::ConfigItem {
                    unexpected("secret", var.secret.is_some())?;
                    ("configItem", &var.config_item)
                } else {
                    unexpected("configItem", var.config_item.is_some())?;
                    ("secret", &var.secret)
                };
                let Some(source) = source else {
                    return Err(invalid(
                        join(&item, field),
                        format!("is required for type {}", type_name(var.var_type)),
                    ));
                };
                validate_object_name(source, &join(&item, field))?;
                let Some(key) = &var.key else {
                    return Err(invalid(
                        join(&item, "key"),
                        format!("is required for type {}", type_name(var.var_type)),
                    ));
                };
                validate_config_key(key, &join(&item, "key"))?;
            }
        }
    }
    Ok(())
}

fn type_name(t: EnvVarType) -> &'static str {
    match t {
        EnvVarType::Custom => "CUSTOM",
        EnvVarType::ConfigItem => "CONFIG_ITEM",
        EnvVarType::Secret => "SECRET",
    }
}

impl LifeCycleMgt {
    pub fn validate(&self, at: &str) -> Result<(), SpecError> {
        if let Some(probe) = &self.liveness {
            probe.validate(&join(at, "liveness"), true)?;
        }
        if let Some(probe) = &self.readiness {
            probe.validate(&join(at, "readiness"), false)?;
        }
        Ok(())
    }
}

impl Probe {
    /// A disabled probe is kept as written and not checked.
    pub fn validate(&self, at: &str, liveness: bool) -> Result<(), SpecError> {
        if !self.enabled {
            return Ok(());
        }
        let Some(mode) = self.mode else {
            return Err(invalid(
                join(at, "mode"),
                "is required: EXEC, HTTP_GET or TCP_SOCKET",
            ));
        };
        let only = |field: &str, given: bool, wanted: bool| -> Result<(), SpecError> {
            match (given, wanted) {
                (true, false) => Err(invalid(
                    join(at, field),
                    format!("is not used with mode {}", mode_name(mode)),
                )),
                (false, true) => Err(invalid(
                    join(at, field),
                    format!("is required with mode {}", mode_name(mode)),
                )),
                _ => Ok(()),
            }
        };
        only("exec", self.exec.is_some(), mode == ProbeMode::Exec)?;
        only(
            "httpGet",
            self.http_get.is_some(),
            mode == ProbeMode::HttpGet,
        )?;
        only(
            "tcpSocket",
            self.tcp_socket.is_some(),
            mode == ProbeMode::TcpSocket,
        )?;
        if let Some(exec) = &self.exec {
            let field = join(at, "exec.command");
            if exec.command.is_empty() || exec.command[0].trim().is_empty() {
                return Err(invalid(field, "needs the program to run"));
            }
            if exec.command.len() > 100 {
                return Err(invalid(field, "at most 100 words"));
            }
        }
        if let Some(http) = &self.http_get {
            let at = join(at, "httpGet");
            validate_port_number(http.port, &join(&at, "port"))?;
            if let Some(path) = &http.path
                && (!path.starts_with('/')
                    || path.len() > 1024
                    || path.chars().any(char::is_whitespace))
            {
                return Err(invalid(
                    join(&at, "path"),
                    "must start with `/`, without spaces (at most 1024)",
                ));
            }
            if let Some(host) = &http.host {
                validate_host(host, &join(&at, "host"))?;
            }
            for (i, header) in http.header_list.iter().enumerate() {
                let valid = !header.name.is_empty()
                    && header.name.len() <= 256
                    && header
                        .name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c));
                if !valid {
                    return Err(invalid(
                        format!("{at}.headerList[{i}].name"),
                        "is not a valid HTTP header name",
                    ));
                }
                if header.value.len() > 4096 || header.value.contains(['\r', '\n']) {
                    return Err(invalid(
                        format!("{at}.headerList[{i}].value"),
                        "at most 4096 characters, on one line",
                    ));
                }
            }
        }
        if let Some(tcp) = &self.tcp_socket {
            let at = join(at, "tcpSocket");
            validate_port_number(tcp.port, &join(&at, "port"))?;
            if let Some(host) = &tcp.host {
                validate_host(host, &join(&at, "host"))?;
            }
        }
        for (field, value, min, max) in [
            ("initialDelaySeconds", self.initial_delay_seconds, 0, 3600),
            ("periodSeconds", self.period_seconds, 1, 3600),
            ("timeoutSeconds", self.timeout_seconds, 1, 3600),
            ("successThreshold", self.success_threshold, 1, 100),
            ("failureThreshold", self.failure_threshold, 1, 100),
        ] {
            if let Some(v) = value
                && !(min..=max).contains(&v)
            {
                return Err(invalid(
                    join(at, field),
                    format!("must be from {min} to {max}"),
                ));
            }
        }
        if liveness && self.success_threshold.is_some_and(|s| s != 1) {
            return Err(invalid(
                join(at, "successThreshold"),
                "must be 1 for a liveness check",
            ));
        }
        if let Some(lossless) = &self.non_destruction_rolling_deploy {
            let at = join(at, "nonDestructionRollingDeploy");
            if lossless.port.is_some() {
                validate_port_number(lossless.port, &join(&at, "port"))?;
            }
            if let Some(path) = &lossless.path
                && !path.starts_with('/')
            {
                return Err(invalid(join(&at, "path"), "must start with `/`"));
            }
        }
        Ok(())
    }
}

fn mode_name(mode: ProbeMode) -> &'static str {
    match mode {
        ProbeMode::Exec => "EXEC",
        ProbeMode::HttpGet => "HTTP_GET",
        ProbeMode::TcpSocket => "TCP_SOCKET",
    }
}

fn validate_port_number(port: Option<i32>, field: &str) -> Result<i32, SpecError> {
    match port {
        Some(p) if (1..=65535).contains(&p) => Ok(p),
        Some(_) => Err(invalid(field, "must be from 1 to 65535")),
        None => Err(invalid(field, "is required (1-65535)")),
    }
}

fn validate_host(host: &str, field: &str) -> Result<(), SpecError> {
    let ok = !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
    if ok {
        Ok(())
    } else {
        Err(invalid(field, "must be a host name or IP address"))
    }
}

fn validate_ports(ports: &[ContainerPort]) -> Result<(), SpecError> {
    let mut seen = HashSet::new();
    let mut names = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let at = format!("ports[{i}]");
        let number = validate_port_number(Some(port.container_port), &join(&at, "containerPort"))?;
        if !seen.insert((number, port.protocol)) {
            return Err(invalid(
                join(&at, "containerPort"),
                format!("{number}/{} is listed twice", port.protocol.as_str()),
            ));
        }
        if let Some(name) = &port.name {
            let valid = (1..=15).contains(&name.len())
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && name.chars().any(|c| c.is_ascii_lowercase())
                && !name.starts_with('-')
                && !name.ends_with('-')
                && !name.contains("--");
            if !valid {
                return Err(invalid(
                    join(&at, "name"),
                    "use 1-15 of a-z, 0-9 and - with at least one letter, no leading, trailing or double -",
                ));
            }
            if !names.insert(name.as_str()) {
                return Err(invalid(
                    join(&at, "name"),
                    format!("port name `{name}` is used twice"),
                ));
            }
        }
    }
    Ok(())
}

/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`, at most 63: a label name or value.
fn is_label_part(s: &str) -> bool {
    s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A DNS subdomain: dot-separated labels of a-z, 0-9 and -, at most 253.
fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn is_label_key(key: &str) -> bool {
    match key.split_once('/') {
        Some((prefix, name)) => is_dns_subdomain(prefix) && is_label_part(name),
        None => is_label_part(key),
    }
}

/// The labels Wharf sets on every object it renders; a spec may not set them.
pub const RESERVED_LABELS: &[&str] = &[
    NAME_LABEL,
    MANAGED_LABEL,
    PROJECT_LABEL,
    APP_LABEL,
    ENV_LABEL,
    REVISION_LABEL,
];

fn validate_labels(
    labels: &BTreeMap<String, String>,
    at: &str,
    pod_labels: bool,
) -> Result<(), SpecError> {
    if labels.len() > 64 {
        return Err(invalid(at, "at most 64 entries"));
    }
    for (key, value) in labels {
        let field = format!("{at}.{key}");
        if !is_label_key(key) {
            return Err(invalid(
                field,
                "is not a valid label key: [prefix/]name, the name at most 63 of letters, digits, -, _ and . (starting and ending alphanumeric)",
            ));
        }
        if !value.is_empty() && !is_label_part(value) {
            return Err(invalid(
                field,
                "is not a valid label value: at most 63 of letters, digits, -, _ and . (starting and ending alphanumeric)",
            ));
        }
        if pod_labels && (RESERVED_LABELS.contains(&key.as_str()) || key.starts_with("wharf.dev/"))
        {
            return Err(invalid(
                field,
                "is set by Wharf on every pod and cannot be overridden",
            ));
        }
    }
    Ok(())
}

impl IntOrPercent {
    fn validate(&self, field: &str) -> Result<(), SpecError> {
        match self {
            IntOrPercent::Int(n) if *n <= MAX_REPLICAS => Ok(()),
            IntOrPercent::Int(_) => Err(invalid(
                field,
                format!("must be from 0 to {MAX_REPLICAS} pods, or a percentage like \"25%\""),
            )),
            IntOrPercent::Percent(text) => match text.strip_suffix('%').map(str::parse::<u32>) {
                Some(Ok(p)) if p <= 100 => Ok(()),
                _ => Err(invalid(
                    field,
                    "must be a number of pods or a percentage from \"0%\" to \"100%\"",
                )),
            },
        }
    }

    fn is_zero(&self) -> bool {
        match self {
            IntOrPercent::Int(n) => *n == 0,
            IntOrPercent::Percent(text) => text.trim_end_matches('%') == "0",
        }
    }
}

impl RollingUpdate {
    pub fn validate(&self, at: &str) -> Result<(), SpecError> {
        if let Some(surge) = &self.max_surge {
            surge.validate(&join(at, "maxSurge"))?;
        }
        if let Some(unavailable) = &self.max_unavailable {
            unavailable.validate(&join(at, "maxUnavailable"))?;
        }
        if let (Some(surge), Some(unavailable)) = (&self.max_surge, &self.max_unavailable)
            && surge.is_zero()
            && unavailable.is_zero()
        {
            return Err(invalid(
                join(at, "maxUnavailable"),
                "maxSurge and maxUnavailable cannot both be 0",
            ));
        }
        if self.min_ready_seconds.is_some_and(|s| s > 3600) {
            return Err(invalid(
                join(at, "minReadySeconds"),
                "must be from 0 to 3600 seconds",
            ));
        }
        Ok(())
    }
}

impl HpaSpec {
    pub fn validate(&self, at: &str) -> Result<(), SpecError> {
        if !self.enabled {
            return Ok(());
        }
        if !(1..=MAX_REPLICAS).contains(&self.min_replicas) {
            return Err(invalid(
                join(at, "minReplicas"),
                format!("must be from 1 to {MAX_REPLICAS}"),
            ));
        }
        if self.max_replicas < self.min_replicas || self.max_replicas > MAX_REPLICAS {
            return Err(invalid(
                join(at, "maxReplicas"),
                format!(
                    "must be from minReplicas ({}) to {MAX_REPLICAS}",
                    self.min_replicas
                ),
            ));
        }
        for (field, value) in [
            ("targetCPUUtilization", self.target_cpu_utilization),
            ("targetMemUtilization", self.target_mem_utilization),
        ] {
            if value.is_some_and(|v| !(1..=1000).contains(&v)) {
                return Err(invalid(
                    join(at, field),
                    "must be from 1 to 1000 (percent of the request)",
                ));
            }
        }
        if self.target_cpu_utilization.is_none() && self.target_mem_utilization.is_none() {
            return Err(invalid(
                join(at, "targetCPUUtilization"),
                "set targetCPUUtilization, targetMemUtilization or both",
            ));
        }
        Ok(())
    }
}

impl LogConfig {
    fn validate(&self, at: &str) -> Result<(), SpecError> {
        match (&self.log_type, &self.log_dir) {
            (LogType::Applog, None) => Err(invalid(
                join(at, "logDir"),
                "is required for logType applog",
            )),
            (_, Some(dir)) => validate_path(dir, &join(at, "logDir")),
            _ => Ok(()),
        }?;
        for (field, value) in [
            ("logProject", &self.log_project),
            ("logStore", &self.log_store),
            ("createTime", &self.create_time),
        ] {
            if let Some(value) = value {
                validate_text(value, &join(at, field), 256)?;
            }
        }
        Ok(())
    }
}

impl MsManagement {
    fn validate(&self, at: &str) -> Result<(), SpecError> {
        for (field, value, max) in [
            ("delayTime", self.delay_time, MAX_WAIT_SECONDS),
            ("warmupTime", self.warmup_time, MAX_WAIT_SECONDS),
            ("funcType", self.func_type, 20),
        ] {
            if value.is_some_and(|v| v > max) {
                return Err(invalid(join(at, field), format!("must be from 0 to {max}")));
            }
        }
        if let Some(id) = &self.register_center_inst_id {
            validate_text(id, &join(at, "registerCenterInstId"), 128)?;
        }
        Ok(())
    }
}

/// A free-text field: not blank, one line, at most `max` characters.
fn validate_text(value: &str, field: &str, max: usize) -> Result<(), SpecError> {
    if value.trim().is_empty() {
        return Err(invalid(field, "must not be blank"));
    }
    if value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(invalid(
            field,
            format!("at most {max} characters, on one line"),
        ));
    }
    Ok(())
}

/// An image reference: registry/path:tag or @digest, no spaces.
fn validate_image(image: &str, field: &str) -> Result<(), SpecError> {
    if image.is_empty() {
        return Err(invalid(field, "is required: the image is what runs"));
    }
    let ok = image.len() <= 512
        && image.starts_with(|c: char| c.is_ascii_alphanumeric())
        && !image.ends_with([':', '/', '@', '.', '-'])
        && image
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | ':' | '@'));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            field,
            "is not an image reference like `registry.example.com/team/app:1.2` (at most 512 characters, no spaces)",
        ))
    }
}

/// A ConfigMap or Secret name: a DNS subdomain.
fn validate_object_name(name: &str, field: &str) -> Result<(), SpecError> {
    if is_dns_subdomain(name) {
        Ok(())
    } else {
        Err(invalid(
            field,
            "must be a Kubernetes object name: a-z, 0-9, - and . (at most 253)",
        ))
    }
}

/// A ConfigMap key: `[-._a-zA-Z0-9]+`, at most 253, not `.` or `..`.
fn validate_config_key(key: &str, field: &str) -> Result<(), SpecError> {
    let ok = !key.is_empty()
        && key.len() <= 253
        && key != "."
        && key != ".."
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            field,
            "use letters, digits, -, _ and . (at most 253)",
        ))
    }
}

/// An absolute path in the container, without `..` or `:`.
fn validate_path(path: &str, field: &str) -> Result<(), SpecError> {
    let ok = path.starts_with('/')
        && path.len() > 1
        && path.len() <= 1024
        && !path.contains(':')
        && !path.chars().any(char::is_control)
        && !path.split('/').any(|segment| segment == "..");
    if ok {
        Ok(())
    } else {
        Err(invalid(
            field,
            "must be an absolute path other than `/`, without `..` or `:` (at most 1024)",
        ))
    }
}

// The Service spec.

/// Seed 001 5.3.1 `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum ServiceType {
    ClusterIP,
    NodePort,
}

/// Seed 001 5.3.1 `trafficPolicy` (applies to NodePort Services as
/// `externalTrafficPolicy`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum TrafficPolicy {
    #[default]
    Local,
    Cluster,
}

/// Seed 001 `servicesPorts[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServicePort {
    pub port: i32,
    pub target_port: i32,
    #[serde(default)]
    pub protocol: Protocol,
    /// NodePort Services only, 30000–32767; assigned by the cluster when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_port: Option<i32>,
}

/// A Kubernetes Service of a deployment (seed 001 5.3.1): it selects the pods of every
/// revision, so both versions serve during a batched rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceSpec {
    /// A lowercase letter, then lowercase letters, digits or `-` (at most 63).
    pub name: String,
    #[serde(rename = "type")]
    pub service_type: ServiceType,
    #[serde(default)]
    pub traffic_policy: TrafficPolicy,
    pub services_ports: Vec<ServicePort>,
}

impl ServiceSpec {
    pub fn validate(&self) -> Result<(), SpecError> {
        let name_ok = self.name.len() <= 63
            && self.name.starts_with(|c: char| c.is_ascii_lowercase())
            && !self.name.ends_with('-')
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !name_ok {
            return Err(invalid(
                "name",
                "must start with a lowercase letter, then lowercase letters, digits or - (at most 63, not ending with -)",
            ));
        }
        if self.services_ports.is_empty() {
            return Err(invalid("servicesPorts", "needs at least one port"));
        }
        if self.services_ports.len() > 100 {
            return Err(invalid("servicesPorts", "at most 100 ports"));
        }
        let mut seen = HashSet::new();
        let mut node_ports = HashSet::new();
        for (i, port) in self.services_ports.iter().enumerate() {
            let at = format!("servicesPorts[{i}]");
            let number = validate_port_number(Some(port.port), &join(&at, "port"))?;
            validate_port_number(Some(port.target_port), &join(&at, "targetPort"))?;
            if !seen.insert((number, port.protocol)) {
                return Err(invalid(
                    join(&at, "port"),
                    format!("{number}/{} is listed twice", port.protocol.as_str()),
                ));
            }
            if let Some(node_port) = port.node_port {
                let field = join(&at, "nodePort");
                if self.service_type != ServiceType::NodePort {
                    return Err(invalid(field, "only a NodePort Service has node ports"));
                }
                if !(30000..=32767).contains(&node_port) {
                    return Err(invalid(field, "must be from 30000 to 32767"));
                }
                if !node_ports.insert((node_port, port.protocol)) {
                    return Err(invalid(field, format!("{node_port} is used twice")));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn spec(value: Value) -> DeploySpec {
        serde_json::from_value(value).expect("a spec")
    }

    fn field_of(value: Value) -> String {
        match spec(value).validate() {
            Err(SpecError::Invalid { field, .. }) => field,
            Ok(()) => panic!("expected a validation error"),
        }
    }

    fn with(extra: Value) -> Value {
        let mut base = json!({"image": "nginx:1.25", "replicas": 3});
        for (k, v) in extra.as_object().expect("object") {
            base[k] = v.clone();
        }
        base
    }

    #[test]
    fn the_smallest_spec_is_valid_and_pod_num_is_an_alias() {
        let s = spec(json!({"image": "nginx:1.25", "podNum": 2}));
        s.validate().expect("valid");
        assert_eq!(s.replicas, 2);
        assert_eq!(s.batches(), vec![2]);
        assert!(s.manual());
        assert_eq!(s.batch_timeout(), Duration::from_secs(600));
        assert_eq!(s, DeploySpec::of_image("nginx:1.25", 2));
        let zero = spec(json!({"image": "nginx", "replicas": 0}));
        zero.validate().expect("0 replicas is valid");
        assert!(zero.batches().is_empty());
    }

    #[test]
    fn unknown_fields_and_wrong_types_are_refused_when_parsing() {
        assert!(serde_json::from_value::<DeploySpec>(with(json!({"replcias": 3}))).is_err());
        assert!(serde_json::from_value::<DeploySpec>(json!({"replicas": 3})).is_err());
        assert!(
            serde_json::from_value::<DeploySpec>(with(json!({"deploySource": "FTP"}))).is_err()
        );
    }

    #[test]
    fn a_full_seed_spec_round_trips() {
        let s = spec(with(json!({
            "deploySource": "PACKAGE", "packageId": "p1", "packageVer": "1.0",
            "packageSource": "USER_UPLOAD", "deployVer": "v1",
            "runtimeEnvCode": "java", "runtimeEnvVer": "17",
            "podResourceSpec": {"cpuRequest": 250, "cpuLimit": 500, "memoryRequest": 256, "memoryLimit": 512},
            "startCommand": {"command": "java -jar app.jar", "args": ["--port", "8080"]},
            "envVariableList": [
                {"name": "MODE", "type": "CUSTOM", "value": "prod"},
                {"name": "LEVEL", "type": "CONFIG_ITEM", "configItem": "app-config", "key": "level"},
                {"name": "PASSWORD", "type": "SECRET", "secret": "db", "key": "password"}
            ],
            "configMgtList": [
                {"configType": "CONFIG_MAP", "mountType": "MOUNT_FILE", "mountSource": "app-config",
                 "fileMountType": "overwrite"},
                {"mountSource": "nginx-conf", "mountConfigList": [{"name": "nginx.conf", "mountPath": "/etc/nginx/nginx.conf"}]}
            ],
            "lifeCycleMgt": {
                "liveness": {"enabled": true, "mode": "HTTP_GET", "httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP",
                    "headerList": [{"name": "X-Probe", "value": "1"}]}, "periodSeconds": 10},
                "readiness": {"mode": "TCP_SOCKET", "tcpSocket": {"port": 8080}, "successThreshold": 2,
                    "nonDestructionRollingDeploy": {"path": "/ready", "port": 8080}}
            },
            "ports": [{"name": "http", "containerPort": 8080}],
            "nodeSelector": {"disktype": "ssd"},
            "labels": {"team": "cart"},
            "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0, "minReadySeconds": 5},
            "hpa": {"minReplicas": 2, "maxReplicas": 6, "targetCPUUtilization": 70},
            "deploymentStrategy": {"batchList": [{"batchSeq": 1, "instNum": 1}, {"batchSeq": 2, "instNum": 2}],
                "betweenBatchProcessingMode": "AUTO", "batchWaitTime": 30, "grayUpdate": false},
            "timeoutSeconds": 120,
            "logConfig": {"logType": "applog", "logDir": "/var/log/app"},
            "msManagement": {"enabled": true, "delayTime": 10, "warmupTime": 60, "funcType": 2}
        })));
        s.validate().expect("valid");
        let again: DeploySpec =
            serde_json::from_value(serde_json::to_value(&s).expect("json")).expect("parse");
        assert_eq!(again, s);
        assert_eq!(s.batches(), vec![1, 2]);
        assert!(!s.manual());
        assert_eq!(s.batch_wait(), Duration::from_secs(30));
        assert_eq!(s.batch_timeout(), Duration::from_secs(120));
        assert_eq!(
            s.config_item_refs(),
            vec![
                (
                    "envVariableList[1].configItem".to_owned(),
                    "app-config".to_owned()
                ),
                (
                    "configMgtList[0].mountSource".to_owned(),
                    "app-config".to_owned()
                ),
                (
                    "configMgtList[1].mountSource".to_owned(),
                    "nginx-conf".to_owned()
                ),
            ]
        );
        assert_eq!(
            s.secret_refs(),
            vec![("envVariableList[2].secret".to_owned(), "db".to_owned())]
        );
    }

    #[test]
    fn batches_follow_the_seed_rules() {
        let strategy = |list: Value, extra: Value| {
            let mut s = json!({"batchList": list});
            for (k, v) in extra.as_object().expect("object") {
                s[k] = v.clone();
            }
            with(json!({"deploymentStrategy": s}))
        };
        let b = |seq: u32, n: u32| json!({"batchSeq": seq, "instNum": n});
        for (body, field) in [
            (
                strategy(json!([b(1, 1), b(3, 2)]), json!({})),
                "deploymentStrategy.batchList[1].batchSeq",
            ),
            (
                strategy(json!([b(1, 3), b(2, 0)]), json!({})),
                "deploymentStrategy.batchList[1].instNum",
            ),
            (
                strategy(json!([b(1, 1), b(2, 1)]), json!({})),
                "deploymentStrategy.batchList",
            ),
            (
                strategy(
                    json!([b(1, 1), b(2, 1), b(3, 1), b(4, 1), b(5, 1), b(6, 1)]),
                    json!({}),
                ),
                "deploymentStrategy.batchList",
            ),
            (
                strategy(
                    json!([b(1, 3)]),
                    json!({"betweenBatchProcessingMode": "AUTO"}),
                ),
                "deploymentStrategy.batchWaitTime",
            ),
            (
                strategy(
                    json!([b(1, 3)]),
                    json!({"betweenBatchProcessingMode": "AUTO", "batchWaitTime": 86401}),
                ),
                "deploymentStrategy.batchWaitTime",
            ),
            (
                strategy(json!([b(1, 3)]), json!({"grayUpdate": true})),
                "deploymentStrategy.grayRule",
            ),
            (
                strategy(
                    json!([b(1, 3)]),
                    json!({"grayUpdate": true, "grayRule": "PERCENT"}),
                ),
                "deploymentStrategy.grayRule",
            ),
            (
                strategy(
                    json!([b(1, 3)]),
                    json!({"grayUpdate": true, "betweenBatchProcessingMode": "AUTO",
                        "batchWaitTime": 5, "grayRule": {"grayType": "PERCENT"}}),
                ),
                "deploymentStrategy.betweenBatchProcessingMode",
            ),
            (
                strategy(
                    json!([b(1, 3)]),
                    json!({"grayRule": {"grayType": "PERCENT", "percent": {"rate": 10}}}),
                ),
                "deploymentStrategy.grayUpdate",
            ),
        ] {
            assert_eq!(field_of(body), field);
        }
        let zero = json!({"image": "nginx", "replicas": 0,
            "deploymentStrategy": {"batchList": [b(1, 1)]}});
        assert_eq!(field_of(zero), "deploymentStrategy.batchList");
        let gray = spec(with(json!({"deploymentStrategy": {"grayUpdate": true,
            "grayRule": {"grayType": "PERCENT", "percent": {"rate": 10, "tag": "canary"}}}})));
        gray.validate()
            .expect("the rule itself is the plugin's to judge");
        assert!(gray.gray_rule().is_some());
        assert!(gray.without_gray().gray_rule().is_none());
        spec(strategy(
            json!([b(1, 1), b(2, 1), b(3, 1)]),
            json!({"betweenBatchProcessingMode": "AUTO", "batchWaitTime": 0}),
        ))
        .validate()
        .expect("three AUTO batches");
    }

    #[test]
    fn probes_need_the_fields_of_their_mode() {
        let probe = |which: &str, p: Value| with(json!({"lifeCycleMgt": {which: p}}));
        for (body, field) in [
            (
                probe(
                    "liveness",
                    json!({"mode": "HTTP_GET", "httpGet": {"path": "/"}}),
                ),
                "lifeCycleMgt.liveness.httpGet.port",
            ),
            (
                probe(
                    "liveness",
                    json!({"mode": "HTTP_GET", "httpGet": {"port": 70000}}),
                ),
                "lifeCycleMgt.liveness.httpGet.port",
            ),
            (
                probe(
                    "readiness",
                    json!({"mode": "HTTP_GET", "httpGet": {"port": 80, "path": "health"}}),
                ),
                "lifeCycleMgt.readiness.httpGet.path",
            ),
            (
                probe("readiness", json!({"mode": "TCP_SOCKET"})),
                "lifeCycleMgt.readiness.tcpSocket",
            ),
            (
                probe(
                    "readiness",
                    json!({"mode": "TCP_SOCKET", "tcpSocket": {"port": 80}, "exec": {"command": ["true"]}}),
                ),
                "lifeCycleMgt.readiness.exec",
            ),
            (
                probe("liveness", json!({"mode": "EXEC", "exec": {"command": []}})),
                "lifeCycleMgt.liveness.exec.command",
            ),
            (
                probe("liveness", json!({"enabled": true})),
                "lifeCycleMgt.liveness.mode",
            ),
            (
                probe(
                    "liveness",
                    json!({"mode": "EXEC", "exec": {"command": ["true"]}, "successThreshold": 2}),
                ),
                "lifeCycleMgt.liveness.successThreshold",
            ),
            (
                probe(
                    "readiness",
                    json!({"mode": "EXEC", "exec": {"command": ["true"]}, "periodSeconds": 0}),
                ),
                "lifeCycleMgt.readiness.periodSeconds",
            ),
            (
                probe(
                    "readiness",
                    json!({"mode": "HTTP_GET", "httpGet": {"port": 80, "headerList": [{"name": "bad name", "value": "x"}]}}),
                ),
                "lifeCycleMgt.readiness.httpGet.headerList[0].name",
            ),
        ] {
            assert_eq!(field_of(body), field);
        }
        spec(probe("liveness", json!({"enabled": false})))
            .validate()
            .expect("a disabled probe is not checked");
    }

    #[test]
    fn env_vars_mounts_resources_ports_and_labels_are_checked() {
        for (body, field) in [
            (
                with(json!({"envVariableList": [{"name": "1BAD", "value": "x"}]})),
                "envVariableList[0].name",
            ),
            (
                with(
                    json!({"envVariableList": [{"name": "A", "value": "x"}, {"name": "A", "value": "y"}]}),
                ),
                "envVariableList[1].name",
            ),
            (
                with(
                    json!({"envVariableList": [{"name": "A", "type": "CONFIG_ITEM", "key": "k"}]}),
                ),
                "envVariableList[0].configItem",
            ),
            (
                with(json!({"envVariableList": [{"name": "A", "type": "SECRET", "secret": "db"}]})),
                "envVariableList[0].key",
            ),
            (
                with(
                    json!({"envVariableList": [{"name": "A", "type": "CUSTOM", "value": "v", "key": "k"}]}),
                ),
                "envVariableList[0].key",
            ),
            (
                with(json!({"configMgtList": [{"mountSource": "Bad_Name"}]})),
                "configMgtList[0].mountSource",
            ),
            (
                with(
                    json!({"configMgtList": [{"mountSource": "a", "mountMasterDir": "relative/dir"}]}),
                ),
                "configMgtList[0].mountMasterDir",
            ),
            (
                with(
                    json!({"configMgtList": [{"mountSource": "a", "mountMasterDir": "/etc/x"},
                                              {"mountSource": "b", "mountMasterDir": "/etc/x"}]}),
                ),
                "configMgtList[1].mountMasterDir",
            ),
            (
                with(
                    json!({"configMgtList": [{"mountSource": "a", "mountConfigList": [{"name": "k", "mountPath": "/x/../etc"}]}]}),
                ),
                "configMgtList[0].mountConfigList[0].mountPath",
            ),
            (
                with(
                    json!({"podResourceSpec": {"cpuRequest": 600, "cpuLimit": 500, "memoryRequest": 1, "memoryLimit": 1}}),
                ),
                "podResourceSpec.cpuRequest",
            ),
            (
                with(
                    json!({"podResourceSpec": {"cpuRequest": 1, "cpuLimit": 1, "memoryRequest": 0, "memoryLimit": 1}}),
                ),
                "podResourceSpec.memoryRequest",
            ),
            (
                with(json!({"ports": [{"containerPort": 0}]})),
                "ports[0].containerPort",
            ),
            (
                with(
                    json!({"ports": [{"containerPort": 80}, {"containerPort": 80, "protocol": "TCP"}]}),
                ),
                "ports[1].containerPort",
            ),
            (
                with(json!({"labels": {"app.kubernetes.io/name": "other"}})),
                "labels.app.kubernetes.io/name",
            ),
            (
                with(json!({"labels": {"bad key!": "x"}})),
                "labels.bad key!",
            ),
            (
                with(json!({"nodeSelector": {"zone": "a b"}})),
                "nodeSelector.zone",
            ),
            (
                with(json!({"rollingUpdate": {"maxSurge": "150%"}})),
                "rollingUpdate.maxSurge",
            ),
            (
                with(json!({"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}})),
                "rollingUpdate.maxUnavailable",
            ),
            (
                with(
                    json!({"hpa": {"minReplicas": 3, "maxReplicas": 2, "targetCPUUtilization": 50},
                            "podResourceSpec": {"cpuRequest": 1, "cpuLimit": 1, "memoryRequest": 1, "memoryLimit": 1}}),
                ),
                "hpa.maxReplicas",
            ),
            (
                with(
                    json!({"hpa": {"minReplicas": 0, "maxReplicas": 2, "targetCPUUtilization": 50}}),
                ),
                "hpa.minReplicas",
            ),
            (
                with(
                    json!({"hpa": {"minReplicas": 1, "maxReplicas": 2, "targetCPUUtilization": 50}}),
                ),
                "hpa",
            ),
            (with(json!({"image": "nginx latest"})), "image"),
            (with(json!({"image": ""})), "image"),
            (with(json!({"replicas": 1001})), "replicas"),
            (
                with(json!({"deploySource": "PACKAGE", "packageVer": "1"})),
                "packageId",
            ),
            (with(json!({"deploySource": "CODE"})), "branchOrTagName"),
            (with(json!({"timeoutSeconds": 0})), "timeoutSeconds"),
            (
                with(json!({"startCommand": {"command": "sh -c \"echo hi\""}})),
                "startCommand.command",
            ),
            (
                with(json!({"logConfig": {"logType": "applog"}})),
                "logConfig.logDir",
            ),
            (
                with(json!({"msManagement": {"funcType": 21}})),
                "msManagement.funcType",
            ),
        ] {
            assert_eq!(field_of(body.clone()), field, "{body}");
        }
    }

    fn service(value: Value) -> Result<(), String> {
        let s: ServiceSpec = serde_json::from_value(value).map_err(|e| e.to_string())?;
        s.validate()
            .map_err(|SpecError::Invalid { field, .. }| field)
    }

    #[test]
    fn services_follow_seed_5_3_1() {
        let ok = json!({"name": "cart", "type": "NodePort",
            "servicesPorts": [{"port": 80, "targetPort": 8080, "protocol": "TCP", "nodePort": 30080}]});
        assert_eq!(service(ok.clone()), Ok(()));
        let parsed: ServiceSpec = serde_json::from_value(ok).expect("parse");
        assert_eq!(parsed.traffic_policy, TrafficPolicy::Local);
        for (body, field) in [
            (
                json!({"name": "Cart", "type": "ClusterIP", "servicesPorts": [{"port": 80, "targetPort": 80}]}),
                "name",
            ),
            (
                json!({"name": "cart", "type": "ClusterIP", "servicesPorts": []}),
                "servicesPorts",
            ),
            (
                json!({"name": "cart", "type": "ClusterIP", "servicesPorts": [{"port": 80, "targetPort": 80, "nodePort": 30080}]}),
                "servicesPorts[0].nodePort",
            ),
            (
                json!({"name": "cart", "type": "NodePort", "servicesPorts": [{"port": 80, "targetPort": 80, "nodePort": 80}]}),
                "servicesPorts[0].nodePort",
            ),
            (
                json!({"name": "cart", "type": "ClusterIP", "servicesPorts": [{"port": 80, "targetPort": 0}]}),
                "servicesPorts[0].targetPort",
            ),
            (
                json!({"name": "cart", "type": "ClusterIP", "servicesPorts": [{"port": 80, "targetPort": 80}, {"port": 80, "targetPort": 81}]}),
                "servicesPorts[1].port",
            ),
        ] {
            assert_eq!(service(body), Err(field.to_owned()));
        }
        assert!(
            service(json!({"name": "cart", "type": "LoadBalancer", "servicesPorts": []})).is_err()
        );
    }
}
