//! The host side of the marketplace world: calling a market's catalog plugin, and the
//! JSON shapes of what it answers.
//!
//! Every call takes the ordinary plugin path (limits, deadline, accounting) and narrows
//! the plugin's outbound HTTP to the market's own origin for that call: a plugin serving
//! one store reaches no other host, whatever its grant says. Templates come back
//! normalized, so nothing after this file reads a store's format.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::bindings::marketplace::exports::wharf::plugin::catalog as wit;
use super::bindings::marketplace::wharf::plugin::types::Violation as WitViolation;
use super::call::CallError;
use super::http::{AllowList, AllowPattern};
use super::manifest::World;
use super::{Runtime, WorldPre};

/// Largest template (summed text of its fields) the host accepts from a plugin.
pub const MAX_TEMPLATE_BYTES: usize = 4 * 1024 * 1024;

/// The connection a catalog call serves.
#[derive(Debug, Clone)]
pub struct MarketRef {
    pub id: String,
    pub url: String,
    pub domain: String,
    pub access_key: Option<String>,
}

impl MarketRef {
    pub(super) fn wit(&self) -> wit::Market {
        wit::Market {
            id: self.id.clone(),
            url: self.url.clone(),
            domain: self.domain.clone(),
            access_key: self.access_key.clone(),
        }
    }

    /// What the call may reach: the market's origin, or nothing for a market without a URL.
    pub(super) fn outbound(&self) -> AllowList {
        AllowList::of(AllowPattern::origin_of(&self.url).into_iter().collect())
    }
}

/// A field-level complaint about a template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TemplateViolation {
    pub field: String,
    pub message: String,
}

/// What a catalog answered instead of a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", content = "detail", rename_all = "kebab-case")]
pub enum CatalogFault {
    #[error("the store refused the credential: {0}")]
    Unauthorized(String),
    #[error("{0}")]
    NotFound(String),
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    #[error("the template is invalid: {}", summary(.0))]
    InvalidTemplate(Vec<TemplateViolation>),
    #[error("{0}")]
    Unsupported(String),
}

fn summary(violations: &[TemplateViolation]) -> String {
    violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why a catalog call gave no answer at all.
#[derive(Debug, thiserror::Error)]
pub enum CatalogCallError {
    #[error("`{0}` is not a marketplace plugin")]
    WrongWorld(String),
    #[error(transparent)]
    Call(#[from] CallError),
    #[error("plugin `{id}` answered a template over {MAX_TEMPLATE_BYTES} bytes")]
    TooLarge { id: String },
}

/// A catalog call: the call failed, or the plugin answered.
pub type CatalogResult<T> = Result<Result<T, CatalogFault>, CatalogCallError>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VersionSummary {
    pub version: String,
    pub alias: String,
    pub description: String,
    /// RFC 3339, empty when the store gives none.
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppSummary {
    pub id: String,
    pub name: String,
    pub description: String,
    pub logo: String,
    pub tags: Vec<String>,
    /// Newest first.
    pub versions: Vec<VersionSummary>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppPage {
    pub items: Vec<AppSummary>,
    pub total: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    pub instances: u32,
    pub cpu_millicores: u32,
    pub memory_mb: u32,
    pub gpu: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Port {
    pub container_port: u16,
    pub protocol: String,
    pub alias: String,
    pub inner: bool,
    pub outer: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EnvVar {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    pub name: String,
    pub path: String,
    pub kind: String,
    pub capacity_mb: u32,
    pub content: Option<String>,
    pub mode: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Component {
    pub key: String,
    pub name: String,
    pub k8s_name: String,
    pub image: String,
    pub command: Option<String>,
    pub version: String,
    pub category: String,
    pub extend_method: String,
    pub stateful: bool,
    pub resources: Resources,
    pub ports: Vec<Port>,
    pub envs: Vec<EnvVar>,
    pub volumes: Vec<Volume>,
    pub depends_on: Vec<String>,
    pub connection_info: Vec<EnvVar>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Template {
    pub app_id: String,
    pub app_name: String,
    pub version: String,
    pub version_alias: String,
    pub description: String,
    pub updated_at: String,
    pub components: Vec<Component>,
}

pub(super) fn fault(e: wit::CatalogError) -> CatalogFault {
    let violations = |list: Vec<WitViolation>| {
        list.into_iter()
            .map(|v| TemplateViolation {
                field: v.field,
                message: v.message,
            })
            .collect()
    };
    match e {
        wit::CatalogError::Unauthorized(m) => CatalogFault::Unauthorized(m),
        wit::CatalogError::NotFound(m) => CatalogFault::NotFound(m),
        wit::CatalogError::Unavailable(m) => CatalogFault::Unavailable(m),
        wit::CatalogError::InvalidTemplate(list) => CatalogFault::InvalidTemplate(violations(list)),
        wit::CatalogError::Unsupported(m) => CatalogFault::Unsupported(m),
    }
}

pub(super) fn version(v: wit::VersionSummary) -> VersionSummary {
    VersionSummary {
        version: v.version,
        alias: v.alias,
        description: v.description,
        updated_at: v.updated_at,
    }
}

pub(super) fn app_page(p: wit::AppPage) -> AppPage {
    AppPage {
        total: p.total,
        items: p
            .items
            .into_iter()
            .map(|a| AppSummary {
                id: a.id,
                name: a.name,
                description: a.description,
                logo: a.logo,
                tags: a.tags,
                versions: a.versions.into_iter().map(version).collect(),
            })
            .collect(),
    }
}

fn env(v: wit::EnvVar) -> EnvVar {
    EnvVar {
        name: v.name,
        value: v.value,
    }
}

pub(super) fn template(t: wit::Template) -> Template {
    Template {
        app_id: t.app_id,
        app_name: t.app_name,
        version: t.version,
        version_alias: t.version_alias,
        description: t.description,
        updated_at: t.updated_at,
        components: t
            .components
            .into_iter()
            .map(|c| Component {
                key: c.key,
                name: c.name,
                k8s_name: c.k8s_name,
                image: c.image,
                command: c.command,
                version: c.version,
                category: c.category,
                extend_method: c.extend_method,
                stateful: c.stateful,
                resources: Resources {
                    instances: c.resources.instances,
                    cpu_millicores: c.resources.cpu_millicores,
                    memory_mb: c.resources.memory_mb,
                    gpu: c.resources.gpu,
                },
                ports: c
                    .ports
                    .into_iter()
                    .map(|p| Port {
                        container_port: p.container_port,
                        protocol: p.protocol,
                        alias: p.alias,
                        inner: p.inner,
                        outer: p.outer,
                    })
                    .collect(),
                envs: c.envs.into_iter().map(env).collect(),
                volumes: c
                    .volumes
                    .into_iter()
                    .map(|v| Volume {
                        name: v.name,
                        path: v.path,
                        kind: v.kind,
                        capacity_mb: v.capacity_mb,
                        content: v.content,
                        mode: v.mode,
                    })
                    .collect(),
                depends_on: c.depends_on,
                connection_info: c.connection_info.into_iter().map(env).collect(),
            })
            .collect(),
    }
}

/// Bytes of text a template holds, to bound what a plugin may hand the host.
fn template_size(t: &wit::Template) -> usize {
    let pairs =
        |list: &[wit::EnvVar]| -> usize { list.iter().map(|e| e.name.len() + e.value.len()).sum() };
    t.components
        .iter()
        .map(|c| {
            c.key.len()
                + c.name.len()
                + c.image.len()
                + c.command.as_ref().map_or(0, String::len)
                + pairs(&c.envs)
                + pairs(&c.connection_info)
                + c.volumes
                    .iter()
                    .map(|v| v.path.len() + v.content.as_ref().map_or(0, String::len))
                    .sum::<usize>()
                + 64 * (c.ports.len() + c.depends_on.len() + 1)
        })
        .sum::<usize>()
        + t.description.len()
}

/// Runs one catalog export on a fresh instance of plugin `$id`, outbound narrowed to
/// `$market`, and sizes the answer with `$size`.
macro_rules! catalog_call {
    ($runtime:expr, $id:expr, $market:expr, |$catalog:ident, $store:ident, $m:ident| $call:expr, $size:expr) => {{
        let market = $market;
        $runtime
            .call($id, move |store, pre| {
                Box::pin(async move {
                    let WorldPre::Marketplace(pre) = pre else {
                        return Err(wasmtime::format_err!("not a marketplace plugin"));
                    };
                    store.data_mut().narrow_outbound(market.outbound());
                    let instance = pre.instantiate_async(&mut *store).await?;
                    let $catalog = instance.wharf_plugin_catalog();
                    let $store = &mut *store;
                    let wit_market = market.wit();
                    let $m = &wit_market;
                    let result = $call.await?;
                    let size = $size(&result);
                    Ok((result, size))
                })
            })
            .await
    }};
}

impl Runtime {
    /// Checks that `id` is an enabled marketplace plugin.
    pub fn catalog(&self, id: &str) -> Result<(), CatalogCallError> {
        match self.active(id) {
            None => Err(CallError::NotEnabled(id.to_owned()).into()),
            Some(p) if p.world() != World::Marketplace => {
                Err(CatalogCallError::WrongWorld(id.into()))
            }
            Some(_) => Ok(()),
        }
    }

    pub async fn list_apps(
        &self,
        id: &str,
        market: &MarketRef,
        query: String,
        page: u32,
        page_size: u32,
    ) -> CatalogResult<AppPage> {
        self.catalog(id)?;
        let query = wit::AppQuery {
            query,
            page,
            page_size,
        };
        let answer = catalog_call!(
            self,
            id,
            market.clone(),
            |catalog, store, m| catalog.call_list_apps(store, m, &query),
            |r: &Result<wit::AppPage, wit::CatalogError>| r
                .as_ref()
                .map_or(0, |p| p.items.len() * 256)
        )?;
        Ok(answer.map(app_page).map_err(fault))
    }

    pub async fn list_versions(
        &self,
        id: &str,
        market: &MarketRef,
        app_id: &str,
    ) -> CatalogResult<Vec<VersionSummary>> {
        self.catalog(id)?;
        let app_id = app_id.to_owned();
        let answer = catalog_call!(
            self,
            id,
            market.clone(),
            |catalog, store, m| catalog.call_list_versions(store, m, &app_id),
            |r: &Result<Vec<wit::VersionSummary>, wit::CatalogError>| r
                .as_ref()
                .map_or(0, |v| v.len() * 128)
        )?;
        Ok(answer
            .map(|list| list.into_iter().map(version).collect())
            .map_err(fault))
    }

    pub async fn get_template(
        &self,
        id: &str,
        market: &MarketRef,
        app_id: &str,
        version: &str,
    ) -> CatalogResult<Template> {
        self.catalog(id)?;
        let (app_id, version) = (app_id.to_owned(), version.to_owned());
        let answer = catalog_call!(
            self,
            id,
            market.clone(),
            |catalog, store, m| catalog.call_get_template(store, m, &app_id, &version),
            |r: &Result<wit::Template, wit::CatalogError>| r.as_ref().map_or(0, template_size)
        )?;
        self.bounded(id, answer)
    }

    pub async fn publish_template(
        &self,
        id: &str,
        market: &MarketRef,
        template_json: String,
    ) -> CatalogResult<Template> {
        self.catalog(id)?;
        let answer = catalog_call!(
            self,
            id,
            market.clone(),
            |catalog, store, m| catalog.call_publish(store, m, &template_json),
            |r: &Result<wit::Template, wit::CatalogError>| r.as_ref().map_or(0, template_size)
        )?;
        self.bounded(id, answer)
    }

    pub async fn remove_template(
        &self,
        id: &str,
        market: &MarketRef,
        app_id: &str,
        version: Option<String>,
    ) -> CatalogResult<u32> {
        self.catalog(id)?;
        let app_id = app_id.to_owned();
        let answer = catalog_call!(
            self,
            id,
            market.clone(),
            |catalog, store, m| catalog.call_remove(store, m, &app_id, version.as_deref()),
            |_: &Result<u32, wit::CatalogError>| 4
        )?;
        Ok(answer.map_err(fault))
    }

    fn bounded(
        &self,
        id: &str,
        answer: Result<wit::Template, wit::CatalogError>,
    ) -> CatalogResult<Template> {
        match answer {
            Ok(t) if template_size(&t) > MAX_TEMPLATE_BYTES => {
                Err(CatalogCallError::TooLarge { id: id.to_owned() })
            }
            Ok(t) => Ok(Ok(template(t))),
            Err(e) => Ok(Err(fault(e))),
        }
    }
}
