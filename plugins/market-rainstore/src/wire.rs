//! The store's answers, by the wire names of the store SDK's models (rainstore.md §2.2).
//! A Go store writes `null` for empty lists and strings may be missing, so every field
//! reads `null` or absence as empty; fields Wharf does not use are ignored.

use serde::{Deserialize, Deserializer};

/// `null` as the type's default.
fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// `V1UserAppListResponse`: one page of apps.
#[derive(Debug, Deserialize)]
pub struct AppList {
    #[serde(default, deserialize_with = "nullable")]
    pub apps: Vec<AppBase>,
    #[serde(default)]
    pub total: Option<i64>,
}

/// `V1AppBaseInfo` (a list item) and `V1AppDetailInfoResponse` (the detail adds fields
/// Wharf does not use).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppBase {
    #[serde(rename = "appKeyID", default, deserialize_with = "nullable")]
    pub app_key_id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub desc: String,
    #[serde(default, deserialize_with = "nullable")]
    pub logo: String,
    #[serde(default, deserialize_with = "nullable")]
    pub tags: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub versions: Vec<VersionBase>,
}

/// `V1AppVersionBase`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionBase {
    #[serde(default, deserialize_with = "nullable")]
    pub app_version: String,
    #[serde(default, deserialize_with = "nullable")]
    pub app_version_alias: String,
    #[serde(default, deserialize_with = "nullable")]
    pub desc: String,
    #[serde(default, deserialize_with = "nullable")]
    pub update_time: String,
}

/// `GET /apps/{appID}/versions`.
#[derive(Debug, Deserialize)]
pub struct VersionList {
    #[serde(default, deserialize_with = "nullable")]
    pub versions: Vec<VersionBase>,
}

/// `V1AppVersionDetailResponse`: one version with its template.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionDetail {
    #[serde(rename = "appKeyID", default, deserialize_with = "nullable")]
    pub app_key_id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub app_name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub version: String,
    #[serde(default, deserialize_with = "nullable")]
    pub version_alias: String,
    #[serde(default, deserialize_with = "nullable")]
    pub description: String,
    /// The template JSON as a string (`str` in every SDK copy), not an object.
    #[serde(default, deserialize_with = "nullable")]
    pub template: String,
    #[serde(default, deserialize_with = "nullable")]
    pub update_time: String,
}
