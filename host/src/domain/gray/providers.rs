//! Which gray-router plugin serves an environment's traffic: the check an environment's
//! `trafficProvider` passes when it is set, and the reading of records stored before
//! providers were plugins.

use serde::Deserialize;

use crate::runtime::{Runtime, World};

/// The provider of an environment that names none.
pub const DEFAULT_PROVIDER: &str = "gray-gateway-api";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("no plugin `{0}` is installed; a traffic provider is the id of a gray-router plugin")]
    Unknown(String),
    #[error("plugin `{0}` is installed but not enabled; enable it first")]
    NotEnabled(String),
    #[error("plugin `{id}` implements the {world} world, not gray-router")]
    WrongWorld { id: String, world: World },
}

/// Resolves traffic providers against the plugins this host runs.
#[derive(Clone)]
pub struct Providers {
    runtime: Runtime,
}

impl Providers {
    pub fn new(runtime: Runtime) -> Self {
        Self { runtime }
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Checks that `id` names an enabled gray-router plugin.
    pub fn check(&self, id: &str) -> Result<(), ProviderError> {
        if let Some(plugin) = self.runtime.active(id) {
            return match plugin.world() {
                World::GrayRouter => Ok(()),
                world => Err(ProviderError::WrongWorld {
                    id: id.to_owned(),
                    world,
                }),
            };
        }
        match self.runtime.registry().get(id) {
            Ok(Some(_)) => Err(ProviderError::NotEnabled(id.to_owned())),
            _ => Err(ProviderError::Unknown(id.to_owned())),
        }
    }
}

/// Reads a stored `trafficProvider`: a plugin id, or one of the names used before
/// providers were plugins (`none`, `gateway-api`, `ingress`), mapped to the bundled
/// plugin that does the same.
pub fn stored<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let value = String::deserialize(d)?;
    Ok(match value.as_str() {
        "none" | "gateway-api" | "" => DEFAULT_PROVIDER.to_owned(),
        "ingress" => "gray-nginx-ingress".to_owned(),
        _ => value,
    })
}

pub fn default_provider() -> String {
    DEFAULT_PROVIDER.to_owned()
}
