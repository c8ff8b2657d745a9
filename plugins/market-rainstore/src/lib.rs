//! `market-rainstore`: Wharf's client of a remote Rainbond-compatible app store, the
//! rainstore protocol of rainstore.md §1–§3: routes under `{url}/app-server/openapi/`,
//! `marketDomain` on every store-scoped route, the access key as a raw `Authorization`
//! header (only when the connection has one, and only to the market's own origin), and
//! templates as a JSON string in the version's answer, read by `market-ram`.
//!
//! The store is read-only from here: publishing happens in the store itself. The host
//! narrows this plugin's outbound HTTP to the market's URL during every call, so a
//! redirect to another origin fails as denied.

mod catalog;
mod client;
mod url;
mod wire;

use wharf_sdk::marketplace::{
    AppPage, AppQuery, CatalogError, Market, Marketplace, Meta, PluginInfo, Template,
    VersionSummary,
};

pub struct MarketRainstore;

pub fn info() -> PluginInfo {
    PluginInfo {
        id: "market-rainstore".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        description: "Apps from a remote Rainbond-compatible app store (rainstore protocol): browse, list versions and fetch templates with the market's access key.".to_string(),
        world: "marketplace".to_string(),
    }
}

impl Meta for MarketRainstore {
    fn info() -> PluginInfo {
        info()
    }
}

impl Marketplace for MarketRainstore {
    fn list_apps(market: Market, query: AppQuery) -> Result<AppPage, CatalogError> {
        catalog::list_apps(&market, &query)
    }

    fn list_versions(market: Market, app_id: String) -> Result<Vec<VersionSummary>, CatalogError> {
        catalog::list_versions(&market, &app_id)
    }

    fn get_template(
        market: Market,
        app_id: String,
        version: String,
    ) -> Result<Template, CatalogError> {
        catalog::get_template(&market, &app_id, &version)
    }

    fn publish(_market: Market, _template_json: String) -> Result<Template, CatalogError> {
        Err(unsupported())
    }

    fn remove(
        _market: Market,
        _app_id: String,
        _version: Option<String>,
    ) -> Result<u32, CatalogError> {
        Err(unsupported())
    }
}

fn unsupported() -> CatalogError {
    CatalogError::Unsupported(
        "a rainstore market is published to from the store itself, not through Wharf".to_string(),
    )
}

wharf_sdk::export_marketplace!(MarketRainstore);
