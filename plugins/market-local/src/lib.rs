//! `market-local`: a catalog kept in Wharf, in the plugin's kv. Teams publish their own
//! apps as Rainbond application-model JSON (the same templates a Rainbond store serves),
//! validated by `market-ram` when published, so installing never meets a broken one.
//! Every market connection of type `local` is its own catalog: keys carry the market id.

mod catalog;
mod keys;
mod records;

pub use catalog::{MAX_ID_BYTES, MAX_STORED_BYTES};

use wharf_sdk::marketplace::{
    AppPage, AppQuery, CatalogError, Market, Marketplace, Meta, PluginInfo, Template,
    VersionSummary,
};

pub struct MarketLocal;

pub fn info() -> PluginInfo {
    PluginInfo {
        id: "market-local".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        description: "A catalog kept in Wharf: teams publish their own apps as Rainbond application-model templates, with versions, listing and removal.".to_string(),
        world: "marketplace".to_string(),
    }
}

impl Meta for MarketLocal {
    fn info() -> PluginInfo {
        info()
    }
}

impl Marketplace for MarketLocal {
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

    fn publish(market: Market, template_json: String) -> Result<Template, CatalogError> {
        catalog::publish(&market, &template_json)
    }

    fn remove(
        market: Market,
        app_id: String,
        version: Option<String>,
    ) -> Result<u32, CatalogError> {
        catalog::remove(&market, &app_id, version.as_deref())
    }
}

wharf_sdk::export_marketplace!(MarketLocal);
