//! Market connections: a store Wharf may install from (name, URL, market domain, the
//! marketplace plugin that speaks to it, an access key). Stored at `v1/markets/<id>` with a
//! name claim `v1/market-names/<name>`; the access key is sealed with the host's
//! credential key and never leaves the host again except towards the store itself.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::MarketError;
use crate::domain::clusters::Clusters;
use crate::runtime::catalog::MarketRef;
use crate::runtime::{Runtime, World};
use crate::store::{Batch, Store, StoreError};

/// Market types with a bundled plugin; any other type names a marketplace plugin by id.
pub const BUNDLED_TYPES: &[(&str, &str)] =
    &[("rainstore", "market-rainstore"), ("local", "market-local")];
/// The type of a market that names none (seed 000: "market_type default value pass rainstore").
pub const DEFAULT_TYPE: &str = "rainstore";
/// The market domain of a Rainbond store that names none.
pub const DEFAULT_DOMAIN: &str = "rainbond";
/// Most market connections one Wharf keeps.
pub const MAX_MARKETS: usize = 200;

/// A market connection as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Market {
    /// 32 hex digits.
    pub id: String,
    /// 1–64 lowercase letters, digits or `-`; unique.
    pub name: String,
    /// The store's base URL; empty for a local catalog.
    pub url: String,
    /// The store's market domain (Rainbond `marketDomain`).
    pub domain: String,
    /// `rainstore`, `local`, or the id of a marketplace plugin.
    #[serde(rename = "type")]
    pub market_type: String,
    /// The marketplace plugin serving this market.
    pub plugin: String,
    /// Whether an access key is stored (it is never returned).
    pub has_access_key: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub updated_at: OffsetDateTime,
    pub created_by: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stored {
    #[serde(flatten)]
    market: Market,
    sealed_key: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewMarket {
    pub name: String,
    #[serde(default)]
    pub url: String,
    pub domain: Option<String>,
    /// Default `rainstore`.
    #[serde(rename = "type")]
    pub market_type: Option<String>,
    pub access_key: Option<String>,
}

/// Changes to a market; absent fields stay, `accessKey: null` removes the key.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MarketUpdate {
    pub name: Option<String>,
    pub url: Option<String>,
    pub domain: Option<String>,
    #[serde(default, deserialize_with = "crate::domain::apps::present")]
    #[schema(value_type = Option<String>)]
    pub access_key: Option<Option<String>>,
}

fn invalid(field: &str, message: impl Into<String>) -> MarketError {
    MarketError::Invalid {
        field: field.to_owned(),
        message: message.into(),
    }
}

fn key(id: &str) -> String {
    Store::key(&["markets", id])
}

fn name_key(name: &str) -> String {
    Store::key(&["market-names", name])
}

fn validate_name(name: &str) -> Result<(), MarketError> {
    let ok = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "name",
            "1-64 lowercase letters, digits or -, starting with a letter or digit",
        ))
    }
}

/// A store URL: http(s), a host, no credentials, query or fragment.
pub fn validate_url(field: &str, url: &str) -> Result<(), MarketError> {
    if url.len() > 255 {
        return Err(invalid(field, "at most 255 characters"));
    }
    let parsed = url::Url::parse(url).map_err(|e| invalid(field, format!("not a URL ({e})")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid(field, "must be an http:// or https:// URL"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid(field, "names no host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(invalid(
            field,
            "must not carry credentials; give the access key separately",
        ));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(invalid(field, "must not have a query or fragment"));
    }
    Ok(())
}

fn validate_domain(field: &str, domain: &str) -> Result<(), MarketError> {
    let ok = domain.len() <= 64
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            field,
            "at most 64 letters, digits, `.`, `-` or `_`",
        ))
    }
}

pub fn validate_access_key(field: &str, key: &str) -> Result<(), MarketError> {
    if key.is_empty() || key.len() > 256 || !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err(invalid(field, "1-256 printable characters without spaces"));
    }
    Ok(())
}

/// Market connections over the store; keys sealed with the clusters' credential key.
#[derive(Clone)]
pub struct Connections {
    store: Store,
    runtime: Runtime,
    clusters: Clusters,
}

impl Connections {
    pub fn new(store: Store, runtime: Runtime, clusters: Clusters) -> Self {
        Self {
            store,
            runtime,
            clusters,
        }
    }

    /// The plugin a market type is served by, checked to be an enabled marketplace plugin.
    pub fn plugin_for(&self, field: &str, market_type: &str) -> Result<String, MarketError> {
        let plugin = BUNDLED_TYPES
            .iter()
            .find(|(t, _)| *t == market_type)
            .map_or(market_type, |(_, p)| p);
        match self.runtime.active(plugin) {
            Some(p) if p.world() == World::Marketplace => Ok(plugin.to_owned()),
            Some(p) => Err(invalid(
                field,
                format!(
                    "plugin `{plugin}` implements the {} world, not marketplace",
                    p.world()
                ),
            )),
            None => match self.runtime.registry().get(plugin) {
                Ok(Some(_)) => Err(invalid(
                    field,
                    format!("plugin `{plugin}` is installed but not enabled; enable it first"),
                )),
                _ => Err(invalid(
                    field,
                    format!(
                        "unknown market type `{market_type}`: use rainstore, local, or the id of an enabled marketplace plugin"
                    ),
                )),
            },
        }
    }

    fn read(&self, id_or_name: &str) -> Result<Option<(Stored, Vec<u8>)>, MarketError> {
        let id = match self.store.get_json::<String>(&name_key(id_or_name))? {
            Some(id) => id,
            None => id_or_name.to_owned(),
        };
        let Some(raw) = self.store.get_raw(&key(&id))? else {
            return Ok(None);
        };
        let stored: Stored = serde_json::from_slice(&raw).map_err(|e| StoreError::Corrupt {
            key: key(&id),
            reason: e.to_string(),
        })?;
        Ok(Some((stored, raw)))
    }

    pub fn get(&self, id_or_name: &str) -> Result<Market, MarketError> {
        self.read(id_or_name)?
            .map(|(s, _)| s.market)
            .ok_or_else(|| MarketError::NotFound(id_or_name.to_owned()))
    }

    /// Every market, by name.
    pub fn list(&self) -> Result<Vec<Market>, MarketError> {
        let mut all: Vec<Stored> = self
            .store
            .list_json(&format!("{}/", Store::key(&["markets"])))?;
        all.sort_by(|a, b| a.market.name.cmp(&b.market.name));
        Ok(all.into_iter().map(|s| s.market).collect())
    }

    /// The market whose URL and domain these are (seed 000 names stores that way).
    pub fn find_by_address(&self, url: &str, domain: &str) -> Result<Option<Market>, MarketError> {
        let wanted = url.trim_end_matches('/');
        Ok(self
            .list()?
            .into_iter()
            .find(|m| m.url.trim_end_matches('/') == wanted && m.domain == domain))
    }

    /// What a catalog call for `market` needs, the access key opened.
    pub fn reference(&self, market: &Market) -> Result<MarketRef, MarketError> {
        let (stored, _) = self
            .read(&market.id)?
            .ok_or_else(|| MarketError::NotFound(market.id.clone()))?;
        let access_key = match &stored.sealed_key {
            Some(sealed) => Some(
                self.clusters
                    .unseal_secret(&format!("market:{}", market.id), sealed)
                    .map_err(|e| MarketError::Secret(e.to_string()))?,
            ),
            None => None,
        };
        Ok(MarketRef {
            id: market.id.clone(),
            url: market.url.clone(),
            domain: market.domain.clone(),
            access_key,
        })
    }

    pub async fn create(&self, new: NewMarket, actor: &str) -> Result<Market, MarketError> {
        validate_name(&new.name)?;
        let market_type = new.market_type.unwrap_or_else(|| DEFAULT_TYPE.to_owned());
        let plugin = self.plugin_for("type", &market_type)?;
        // A remote store needs its address; other catalogs may live without one.
        if !new.url.is_empty() || market_type == DEFAULT_TYPE {
            validate_url("url", &new.url)?;
        }
        let domain = new.domain.unwrap_or_else(|| {
            if market_type == DEFAULT_TYPE {
                DEFAULT_DOMAIN.to_owned()
            } else {
                String::new()
            }
        });
        validate_domain("domain", &domain)?;
        if let Some(key) = &new.access_key {
            validate_access_key("accessKey", key)?;
        }
        if self.list()?.len() >= MAX_MARKETS {
            return Err(invalid(
                "name",
                format!("Wharf keeps at most {MAX_MARKETS} markets; delete one first"),
            ));
        }
        let now = OffsetDateTime::now_utc();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let sealed_key = new
            .access_key
            .as_deref()
            .map(|k| self.clusters.seal_secret(&format!("market:{id}"), k))
            .transpose()
            .map_err(|e| MarketError::Secret(e.to_string()))?;
        let market = Market {
            id: id.clone(),
            name: new.name.clone(),
            url: new.url,
            domain,
            market_type,
            plugin,
            has_access_key: sealed_key.is_some(),
            created_at: now,
            updated_at: now,
            created_by: actor.to_owned(),
        };
        let stored = Stored {
            market: market.clone(),
            sealed_key,
        };
        let batch = Batch::new()
            .absent(&name_key(&market.name))
            .put_json(&name_key(&market.name), &id)?
            .put_json(&key(&id), &stored)?;
        if self.store.apply(&batch)?.is_err() {
            return Err(MarketError::NameTaken(market.name));
        }
        self.store.commit().await?;
        Ok(market)
    }

    /// Returns (before, after).
    pub async fn update(
        &self,
        id_or_name: &str,
        update: MarketUpdate,
    ) -> Result<(Market, Market), MarketError> {
        if let Some(name) = &update.name {
            validate_name(name)?;
        }
        if let Some(url) = &update.url {
            validate_url("url", url)?;
        }
        if let Some(domain) = &update.domain {
            validate_domain("domain", domain)?;
        }
        if let Some(Some(key)) = &update.access_key {
            validate_access_key("accessKey", key)?;
        }
        loop {
            let (stored, raw) = self
                .read(id_or_name)?
                .ok_or_else(|| MarketError::NotFound(id_or_name.to_owned()))?;
            let before = stored.market.clone();
            let mut after = stored.clone();
            if let Some(name) = &update.name {
                after.market.name = name.clone();
            }
            if let Some(url) = &update.url {
                let origin = |u: &str| {
                    url::Url::parse(u).ok().map(|p| {
                        (
                            p.scheme().to_owned(),
                            p.host_str().map(str::to_ascii_lowercase),
                            p.port_or_known_default(),
                        )
                    })
                };
                if stored.sealed_key.is_some()
                    && update.access_key.is_none()
                    && origin(url) != origin(&before.url)
                {
                    return Err(invalid(
                        "accessKey",
                        "the URL moves to another host: give the access key for it (or null for none), so the old key is not sent there",
                    ));
                }
                after.market.url = url.clone();
            }
            if let Some(domain) = &update.domain {
                after.market.domain = domain.clone();
            }
            if let Some(key) = &update.access_key {
                after.sealed_key = key
                    .as_deref()
                    .map(|k| {
                        self.clusters
                            .seal_secret(&format!("market:{}", before.id), k)
                    })
                    .transpose()
                    .map_err(|e| MarketError::Secret(e.to_string()))?;
            }
            after.market.has_access_key = after.sealed_key.is_some();
            after.market.updated_at = OffsetDateTime::now_utc();
            let mut batch = Batch::new()
                .equals(&key(&before.id), raw)
                .put_json(&key(&before.id), &after)?;
            if after.market.name != before.name {
                batch = batch
                    .absent(&name_key(&after.market.name))
                    .put_json(&name_key(&after.market.name), &before.id)?
                    .delete(&name_key(&before.name));
            }
            match self.store.apply(&batch)? {
                Ok(()) => {
                    self.store.commit().await?;
                    return Ok((before, after.market));
                }
                Err(conflict) if conflict.index == 0 => continue,
                Err(_) => return Err(MarketError::NameTaken(after.market.name)),
            }
        }
    }

    /// Deletes a market no install uses (`in_use` names the installs that do).
    pub async fn delete(&self, id_or_name: &str, in_use: &[String]) -> Result<Market, MarketError> {
        let (stored, raw) = self
            .read(id_or_name)?
            .ok_or_else(|| MarketError::NotFound(id_or_name.to_owned()))?;
        if !in_use.is_empty() {
            return Err(MarketError::InUse {
                market: stored.market.name,
                installs: in_use.join(", "),
            });
        }
        let batch = Batch::new()
            .equals(&key(&stored.market.id), raw)
            .delete(&key(&stored.market.id))
            .delete(&name_key(&stored.market.name));
        if self.store.apply(&batch)?.is_err() {
            return Err(MarketError::Conflict(format!(
                "market `{}` changed meanwhile; try again",
                stored.market.name
            )));
        }
        self.store.commit().await?;
        Ok(stored.market)
    }
}
