//! The catalog calls over the kv records: publish validates a template with `market-ram`
//! and stores it beside its app's index; listing, versions and templates read them back;
//! remove deletes one version or the app with all of them.

use market_ram::{Identity, Template, timestamp, version};
use serde_json::Value;
use wharf_sdk::marketplace::{self as world, AppPage, AppQuery, AppSummary, CatalogError, Market};

use crate::keys;
use crate::records::{self, AppRecord, StoredVersion};

/// The kv value cap (the host's `MAX_VALUE_BYTES`): one version is one value.
pub const MAX_STORED_BYTES: usize = 256 * 1024;
/// Longest app id and version, in bytes (the seed's install body allows 64 each).
pub const MAX_ID_BYTES: usize = 64;
/// Most apps one `list-apps` page holds.
const MAX_PAGE_SIZE: u32 = 500;

fn market_id(market: &Market) -> Result<&str, CatalogError> {
    match market.id.trim() {
        "" => Err(CatalogError::Unavailable(
            "the market connection has no id: the local catalog keeps apps per market".into(),
        )),
        id => Ok(id),
    }
}

pub fn publish(market: &Market, template_json: &str) -> Result<world::Template, CatalogError> {
    let market = market_id(market)?;
    let mut template =
        market_ram::parse(template_json, Identity::Required).map_err(CatalogError::from)?;
    // Stored as the document (compact), so what counts against the cap is its content.
    let document: Value = serde_json::from_str(template_json)
        .map_err(|e| CatalogError::invalid_field("", format!("is not valid JSON: {e}")))?;
    for (field, value) in [
        ("group_key", &template.app_id),
        ("group_version", &template.version),
    ] {
        if value.len() > MAX_ID_BYTES {
            return Err(CatalogError::invalid_field(
                field,
                format!("is {} bytes; at most {MAX_ID_BYTES}", value.len()),
            ));
        }
    }
    template.updated_at = timestamp::now();
    let stored = serde_json::to_vec(&StoredVersion {
        published_at: template.updated_at.clone(),
        template: document,
    })
    .map_err(records::storage_failed)?;
    if stored.len() > MAX_STORED_BYTES {
        return Err(CatalogError::invalid_field(
            "",
            format!(
                "the template takes {} bytes stored; the local catalog keeps at most {MAX_STORED_BYTES} bytes (256 KiB, the plugin kv's value cap) per version",
                stored.len()
            ),
        ));
    }
    records::set(
        &keys::version(market, &template.app_id, &template.version),
        &stored,
    )?;
    let summary = template.version_summary();
    records::update_app(&keys::app(market, &template.app_id), |current| {
        let mut versions = current.map(|r| r.versions).unwrap_or_default();
        versions.retain(|v| v.version != summary.version);
        versions.push(summary.clone());
        version::sort_newest_first(&mut versions);
        // The newest publish names the app.
        Some(AppRecord {
            id: template.app_id.clone(),
            name: template.app_name.clone(),
            description: template.app_description.clone(),
            versions,
        })
    })?;
    wharf_sdk::info!(
        "published {} {} to market {market}",
        template.app_id,
        template.version
    );
    Ok(template.into())
}

pub fn list_apps(market: &Market, query: &AppQuery) -> Result<AppPage, CatalogError> {
    let market = market_id(market)?;
    let needle = query.query.trim().to_lowercase();
    let mut matching = Vec::new();
    for key in records::keys(&keys::apps(market))? {
        let Some(record) = records::get::<AppRecord>(&key)? else {
            continue; // Removed since it was listed.
        };
        if needle.is_empty()
            || record.id.to_lowercase().contains(&needle)
            || record.name.to_lowercase().contains(&needle)
        {
            matching.push(record);
        }
    }
    matching.sort_by(|a, b| (a.name.to_lowercase(), &a.id).cmp(&(b.name.to_lowercase(), &b.id)));
    let total = u32::try_from(matching.len()).unwrap_or(u32::MAX);
    // The host validates paging; out-of-range values are read as the nearest valid ones.
    let page_size = query.page_size.clamp(1, MAX_PAGE_SIZE) as usize;
    let skip = (query.page.max(1) as usize - 1).saturating_mul(page_size);
    let items = matching
        .into_iter()
        .skip(skip)
        .take(page_size)
        .map(|r| AppSummary {
            id: r.id,
            name: r.name,
            description: r.description,
            logo: String::new(),
            tags: Vec::new(),
            versions: r.versions.into_iter().map(Into::into).collect(),
        })
        .collect();
    Ok(AppPage { items, total })
}

pub fn list_versions(
    market: &Market,
    app_id: &str,
) -> Result<Vec<world::VersionSummary>, CatalogError> {
    let market = market_id(market)?;
    let record = records::get::<AppRecord>(&keys::app(market, app_id))?
        .ok_or_else(|| app_not_found(app_id))?;
    Ok(record.versions.into_iter().map(Into::into).collect())
}

pub fn get_template(
    market: &Market,
    app_id: &str,
    version: &str,
) -> Result<world::Template, CatalogError> {
    let market = market_id(market)?;
    let Some(stored) = records::get::<StoredVersion>(&keys::version(market, app_id, version))?
    else {
        return Err(missing(market, app_id, version)?);
    };
    let mut template: Template =
        market_ram::from_value(&stored.template, Identity::Required).map_err(CatalogError::from)?;
    template.updated_at = stored.published_at;
    Ok(template.into())
}

pub fn remove(market: &Market, app_id: &str, version: Option<&str>) -> Result<u32, CatalogError> {
    let market = market_id(market)?;
    match version {
        Some(version) => remove_version(market, app_id, version),
        None => remove_app(market, app_id),
    }
}

fn remove_version(market: &str, app_id: &str, version: &str) -> Result<u32, CatalogError> {
    let had_template = records::delete(&keys::version(market, app_id, version))?;
    let mut listed = false;
    records::update_app(&keys::app(market, app_id), |current| {
        let mut record = current?;
        listed = record.versions.iter().any(|v| v.version == version);
        record.versions.retain(|v| v.version != version);
        // An app without versions is gone.
        (!record.versions.is_empty()).then_some(record)
    })?;
    if !had_template && !listed {
        return Err(missing(market, app_id, version)?);
    }
    Ok(1)
}

fn remove_app(market: &str, app_id: &str) -> Result<u32, CatalogError> {
    let app_key = keys::app(market, app_id);
    let record = records::get::<AppRecord>(&app_key)?;
    let prefix = keys::versions(market, app_id);
    let stored = records::keys(&prefix)?;
    if record.is_none() && stored.is_empty() {
        return Err(app_not_found(app_id));
    }
    for key in &stored {
        records::delete(key)?;
    }
    records::delete(&app_key)?;
    // Versions listed in the index without a stored template went too.
    let unstored = record
        .map(|r| r.versions)
        .unwrap_or_default()
        .into_iter()
        .filter(|v| !stored.contains(&keys::version(market, app_id, &v.version)))
        .count();
    Ok(u32::try_from(stored.len() + unstored).unwrap_or(u32::MAX))
}

fn app_not_found(app_id: &str) -> CatalogError {
    CatalogError::NotFound(format!("app `{app_id}` not found in this market"))
}

/// Not found: the app, or only this version of it.
fn missing(market: &str, app_id: &str, version: &str) -> Result<CatalogError, CatalogError> {
    Ok(
        match records::get::<AppRecord>(&keys::app(market, app_id))? {
            Some(_) => CatalogError::NotFound(format!(
                "version `{version}` of app `{app_id}` not found in this market"
            )),
            None => app_not_found(app_id),
        },
    )
}
