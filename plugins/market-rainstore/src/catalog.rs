//! The catalog calls as store routes (rainstore.md §2): browsing reads the app list (each
//! app embeds its versions), upgrades read `/versions`, and a template is the app detail
//! (the console's first call of every install) followed by the version with its template.

use market_ram::{Identity, VersionSummary, timestamp, version};
use wharf_sdk::marketplace::{self as world, AppPage, AppQuery, AppSummary, CatalogError, Market};

use crate::client::{Client, Subject};
use crate::wire::{AppBase, AppList, VersionBase, VersionDetail, VersionList};

pub fn list_apps(market: &Market, query: &AppQuery) -> Result<AppPage, CatalogError> {
    let client = Client::new(market)?;
    let (page, page_size) = (query.page.to_string(), query.page_size.to_string());
    let list: AppList = client.get(
        "apps",
        &[
            ("query", query.query.as_str()),
            ("page", page.as_str()),
            ("pageSize", page_size.as_str()),
        ],
        Some("apps"),
        Subject::MarketDomain,
    )?;
    let listed = u32::try_from(list.apps.len()).unwrap_or(u32::MAX);
    let total = list
        .total
        .and_then(|t| u32::try_from(t).ok())
        .unwrap_or(listed)
        .max(listed);
    let items = list
        .apps
        .into_iter()
        .enumerate()
        .map(|(i, app)| summary(app, i))
        .collect::<Result<_, _>>()?;
    Ok(AppPage { items, total })
}

pub fn list_versions(
    market: &Market,
    app_id: &str,
) -> Result<Vec<world::VersionSummary>, CatalogError> {
    let segment = segment(app_id, Subject::App(app_id))?;
    let client = Client::new(market)?;
    let list: VersionList = client.get(
        &format!("apps/{segment}/versions"),
        &[],
        Some("versions"),
        Subject::App(app_id),
    )?;
    Ok(newest_first(list.versions))
}

pub fn get_template(
    market: &Market,
    app_id: &str,
    version: &str,
) -> Result<world::Template, CatalogError> {
    let app_segment = segment(app_id, Subject::App(app_id))?;
    let version_segment = segment(version, Subject::Version(app_id, version))?;
    let client = Client::new(market)?;
    let app: AppBase = client.get(
        &format!("apps/{app_segment}"),
        &[],
        None,
        Subject::App(app_id),
    )?;
    let detail: VersionDetail = client.get(
        &format!("apps/{app_segment}/versions/{version_segment}"),
        &[("forInstall", "true"), ("getTemplate", "true")],
        Some("template"),
        Subject::Version(app_id, version),
    )?;
    if detail.template.trim().is_empty() {
        return Err(CatalogError::invalid_field(
            "template",
            "is empty: the store sent no template for this version",
        ));
    }
    let mut template = market_ram::parse(&detail.template, Identity::FromStore)
        .map_err(|v| CatalogError::from(v.prefixed("template")))?;

    // The store's answer names what was asked for; the template fills what it leaves
    // empty. A template naming another app is the store's inconsistency, told in the log.
    let stored_id = first(&[&detail.app_key_id, &app.app_key_id, app_id]);
    let stored_version = first(&[&detail.version, version]);
    if !template.app_id.is_empty() && template.app_id != stored_id {
        wharf_sdk::warn!(
            "the template of {stored_id} {stored_version} names app `{}`; using the store's id",
            template.app_id
        );
    }
    if !template.version.is_empty() && template.version != stored_version {
        wharf_sdk::warn!(
            "the template of {stored_id} {stored_version} names version `{}`; using the store's",
            template.version
        );
    }
    let listed_time = app
        .versions
        .iter()
        .find(|v| v.app_version == stored_version)
        .map(|v| v.update_time.as_str())
        .unwrap_or_default();
    template.app_id = stored_id;
    template.version = stored_version;
    template.app_name = first(&[&detail.app_name, &app.name, &template.app_name]);
    template.version_alias = first(&[&detail.version_alias, &template.version_alias]);
    template.description = first(&[&detail.description, &template.description]);
    template.updated_at = time(&detail.update_time)
        .or_else(|| time(listed_time))
        .unwrap_or_default();
    Ok(template.into())
}

/// An id or version as one path segment. `.` and `..` cannot be one (servers resolve them
/// as paths), so no store can hold such an app or version.
fn segment(text: &str, subject: Subject<'_>) -> Result<String, CatalogError> {
    if matches!(text.trim(), "" | "." | "..") {
        let what = match subject {
            Subject::Version(app, version) => format!("version `{version}` of app `{app}`"),
            Subject::App(app) => format!("app `{app}`"),
            Subject::MarketDomain => "market domain".to_string(),
        };
        return Err(CatalogError::NotFound(format!(
            "{what} not found: empty, `.` and `..` name nothing in a store"
        )));
    }
    Ok(crate::url::encode(text))
}

fn first(candidates: &[&str]) -> String {
    candidates
        .iter()
        .find(|c| !c.trim().is_empty())
        .map(|c| c.to_string())
        .unwrap_or_default()
}

/// A store time in UTC RFC 3339; a time in another format is logged and read as unknown.
fn time(text: &str) -> Option<String> {
    if text.trim().is_empty() {
        return None;
    }
    let normalized = timestamp::normalize(text);
    if normalized.is_none() {
        wharf_sdk::warn!("the store's time `{text}` is not RFC 3339; read as unknown");
    }
    normalized
}

fn summary(app: AppBase, index: usize) -> Result<AppSummary, CatalogError> {
    if app.app_key_id.trim().is_empty() {
        return Err(CatalogError::Unavailable(format!(
            "not a rainstore answer: apps[{index}] has no appKeyID"
        )));
    }
    Ok(AppSummary {
        id: app.app_key_id,
        name: app.name,
        description: app.desc,
        logo: app.logo,
        tags: app.tags,
        versions: newest_first(app.versions),
    })
}

fn newest_first(versions: Vec<VersionBase>) -> Vec<world::VersionSummary> {
    let mut summaries: Vec<VersionSummary> = versions
        .into_iter()
        .filter(|v| !v.app_version.trim().is_empty())
        .map(|v| VersionSummary {
            updated_at: time(&v.update_time).unwrap_or_default(),
            version: v.app_version,
            alias: v.app_version_alias,
            description: v.desc,
        })
        .collect();
    version::sort_newest_first(&mut summaries);
    summaries.into_iter().map(Into::into).collect()
}
