//! Market install (seed 000): apps installed from a catalog a marketplace plugin serves.
//!
//! - `connections.rs`: market connections (URL, domain, plugin, sealed access key).
//! - `plan.rs`: a normalized template → the apps, deploy configs, Services and connection
//!   variables an install creates, in dependency order. Pure.
//! - `installs.rs`: install records and the one store batch that creates everything an
//!   install needs, or nothing; the same template again into one group is the same install.
//! - `driver.rs`: deploying an install's components through change orders, dependencies
//!   first, and removing them on uninstall; resumed after a restart.
//! - `upgrade.rs`: moving an install between versions (the dry-run diff, upgrade,
//!   rollback) or out (uninstall): the record changes the driver then carries out.
//! - `seed.rs`: seed 000's `MarketInstall` / `ServiceBaseInfo` view of an install.
//!
//! The catalog call itself is `runtime::catalog`: the plugin fetches and normalizes, the
//! host creates and deploys.

pub mod connections;
pub mod driver;
pub mod installs;
pub mod plan;
pub mod seed;
pub mod upgrade;

use crate::runtime::catalog::{CatalogCallError, CatalogFault};
use crate::store::StoreError;

pub use connections::{Connections, Market, MarketUpdate, NewMarket};
pub use installs::{ComponentState, Install, InstallRequest, InstallState, Installs};

#[derive(Debug, thiserror::Error)]
pub enum MarketError {
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("no market `{0}`")]
    NotFound(String),
    #[error("a market named `{0}` exists")]
    NameTaken(String),
    #[error("market `{market}` is used by installs {installs}; uninstall them first")]
    InUse { market: String, installs: String },
    #[error("no install `{0}` in this project")]
    InstallNotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The store or plugin answered with a typed fault.
    #[error("market `{market}`: {fault}")]
    Catalog { market: String, fault: CatalogFault },
    /// The plugin could not be called or failed.
    #[error("market `{market}`: {reason}")]
    PluginFailed { market: String, reason: String },
    #[error("component `{component}`: {message}")]
    Component { component: String, message: String },
    #[error("the market's access key cannot be opened: {0}")]
    Secret(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl MarketError {
    pub fn from_call(market: &str, e: CatalogCallError) -> Self {
        MarketError::PluginFailed {
            market: market.to_owned(),
            reason: e.to_string(),
        }
    }
}

/// The installation's id (seed 000 `enterprise_id`): drawn on first use, then kept.
pub fn installation_id(store: &crate::store::Store) -> Result<String, StoreError> {
    let key = crate::store::Store::key(&["installation-id"]);
    let id = store.update_json::<String, StoreError>(&key, |current| {
        Ok(Some(current.unwrap_or_else(|| {
            uuid::Uuid::new_v4().simple().to_string()
        })))
    })?;
    Ok(id.unwrap_or_default())
}

/// The market domain's services, as the API and `serve` hold them.
#[derive(Clone)]
pub struct MarketHost {
    pub connections: Connections,
    pub installs: Installs,
    pub driver: driver::Driver,
}

impl MarketHost {
    pub fn new(
        store: crate::store::Store,
        runtime: crate::runtime::Runtime,
        clusters: crate::domain::clusters::Clusters,
        deployer: crate::domain::rollout::Deployer,
    ) -> Self {
        let projects = crate::domain::projects::Projects::new(store.clone());
        let envs = crate::domain::environments::Environments::new(
            clusters.clone(),
            projects.clone(),
            crate::domain::gray::providers::Providers::new(runtime.clone()),
        );
        let connections = Connections::new(store.clone(), runtime.clone(), clusters);
        let apps = crate::domain::apps::Apps::new(store.clone(), projects);
        let installs = Installs::new(store, runtime, connections.clone(), apps.clone(), envs);
        let driver = driver::Driver::new(installs.clone(), deployer, apps);
        Self {
            connections,
            installs,
            driver,
        }
    }

    /// Ids of the installs that use market `id`.
    pub fn installs_of_market(&self, id: &str) -> Result<Vec<String>, MarketError> {
        Ok(self
            .installs
            .all()?
            .into_iter()
            .filter(|i| i.market == id)
            .map(|i| i.id)
            .collect())
    }
}
