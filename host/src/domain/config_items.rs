//! Config items (seed 001 §5.10): ConfigMaps scoped to an environment and one of its
//! cluster + namespace bindings. The record (who, when, which binding, the items) is kept
//! at `v1/config-items/<project>/<env>/<name>`; the data lives in the cluster as a
//! ConfigMap labelled with the project and environment. Names follow seed 001's pattern;
//! the data is bounded like Kubernetes' (1 MiB).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::ObjectMeta;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::environments::{self, EnvError, Environment, Environments, invalid};
use crate::store::{Batch, Store, StoreError};

/// Kubernetes' limit on the data of one ConfigMap.
pub const MAX_DATA_BYTES: usize = 1024 * 1024;
/// Where a deployment mounting a config item with the default directory sees its keys.
pub const MOUNT_ROOT: &str = "/etc/config";

/// One key of a config item.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigEntry {
    pub name: String,
    pub value: String,
    /// The file this key becomes when the config item is mounted with the default
    /// directory: `/etc/config/<configMapName>/<key>`.
    #[serde(default)]
    pub storage_path: String,
}

/// A key as given in a request.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEntry {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigItem {
    pub id: String,
    pub project: String,
    pub env: String,
    /// The ConfigMap's name (seed 001 `configMapName`).
    pub name: String,
    pub cluster: String,
    pub namespace: String,
    pub items: Vec<ConfigEntry>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String)]
    pub updated_at: OffsetDateTime,
    pub created_by: String,
    pub updated_by: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewConfigItem {
    pub name: String,
    /// Optional when the environment has exactly one binding.
    pub cluster: Option<String>,
    pub namespace: Option<String>,
    pub items: Vec<NewEntry>,
}

/// How the cluster's copy compares with Wharf's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ClusterState {
    InSync,
    /// Someone changed the ConfigMap outside Wharf.
    Drifted,
    /// The ConfigMap is gone from the cluster.
    Missing,
    /// The cluster could not be asked.
    Unknown,
}

fn key(project: &str, env: &str, name: &str) -> String {
    Store::key(&["config-items", project, env, name])
}

fn env_prefix(project: &str, env: &str) -> String {
    format!("{}/", Store::key(&["config-items", project, env]))
}

/// Names of the config items of an environment (optionally of one binding).
pub fn names_in(
    store: &Store,
    project: &str,
    env: &str,
    binding: Option<(&str, &str)>,
) -> Result<Vec<String>, StoreError> {
    let items: Vec<ConfigItem> = store.list_json(&env_prefix(project, env))?;
    Ok(items
        .into_iter()
        .filter(|i| binding.is_none_or(|(c, n)| i.cluster == c && i.namespace == n))
        .map(|i| i.name)
        .collect())
}

/// A DNS label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`.
fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Seed 001: `[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)?`, at most 253.
pub fn validate_name(name: &str) -> Result<(), EnvError> {
    let parts: Vec<&str> = name.split('.').collect();
    if name.len() > 253 || parts.len() > 2 || !parts.iter().all(|p| is_label(p)) {
        return Err(invalid(
            "name",
            "use a-z, 0-9 and -, starting and ending with a letter or digit, with at most one `.` (at most 253 characters)",
        ));
    }
    Ok(())
}

/// Keys: 1–253 of `[-._a-zA-Z0-9]`, unique; all data at most 1 MiB.
fn validate_entries(entries: &[NewEntry]) -> Result<(), EnvError> {
    if entries.is_empty() {
        return Err(invalid("items", "give at least one item"));
    }
    let mut seen = std::collections::HashSet::new();
    let mut size = 0usize;
    for (i, entry) in entries.iter().enumerate() {
        let ok = (1..=253).contains(&entry.name.len())
            && entry
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && entry.name != "."
            && entry.name != "..";
        if !ok {
            return Err(invalid(
                &format!("items[{i}].name"),
                "use 1-253 characters of A-Z, a-z, 0-9, -, _ and . (not `.` or `..`)",
            ));
        }
        if !seen.insert(entry.name.as_str()) {
            return Err(invalid(
                &format!("items[{i}].name"),
                format!("`{}` is given twice", entry.name),
            ));
        }
        size += entry.name.len() + entry.value.len();
    }
    if size > MAX_DATA_BYTES {
        return Err(invalid(
            "items",
            format!(
                "the items hold {size} bytes; a config item holds at most {MAX_DATA_BYTES} (1 MiB)"
            ),
        ));
    }
    Ok(())
}

fn entries(name: &str, new: Vec<NewEntry>) -> Vec<ConfigEntry> {
    new.into_iter()
        .map(|e| ConfigEntry {
            storage_path: format!("{MOUNT_ROOT}/{name}/{}", e.name),
            name: e.name,
            value: e.value,
        })
        .collect()
}

fn configmap(item: &ConfigItem) -> ConfigMap {
    let labels = [
        ("app.kubernetes.io/managed-by", "wharf"),
        ("wharf.dev/project", item.project.as_str()),
        ("wharf.dev/env", item.env.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let annotations = [("wharf.dev/config-item-id".to_owned(), item.id.clone())].into();
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(item.name.clone()),
            namespace: Some(item.namespace.clone()),
            labels: Some(labels),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        },
        data: Some(
            item.items
                .iter()
                .map(|e| (e.name.clone(), e.value.clone()))
                .collect::<BTreeMap<_, _>>(),
        ),
        ..ConfigMap::default()
    }
}

/// Config items over environments, the store and the clusters.
#[derive(Clone)]
pub struct ConfigItems {
    envs: Environments,
    store: Store,
}

impl ConfigItems {
    pub fn new(envs: Environments) -> Self {
        Self {
            store: envs.clusters().store().clone(),
            envs,
        }
    }

    pub fn get(&self, project: &str, env: &str, name: &str) -> Result<ConfigItem, EnvError> {
        self.envs.get(project, env)?;
        self.store
            .get_json(&key(project, env, name))?
            .ok_or_else(|| EnvError::ConfigItemNotFound(name.to_owned()))
    }

    /// How the cluster's ConfigMap compares with the record.
    pub async fn cluster_state(&self, item: &ConfigItem) -> ClusterState {
        let Ok(client) = self.envs.clusters().client(&item.cluster).await else {
            return ClusterState::Unknown;
        };
        match client.get_configmap(&item.namespace, &item.name).await {
            Ok(Some(live)) => {
                let want: BTreeMap<String, String> = item
                    .items
                    .iter()
                    .map(|e| (e.name.clone(), e.value.clone()))
                    .collect();
                if live.data.unwrap_or_default() == want {
                    ClusterState::InSync
                } else {
                    ClusterState::Drifted
                }
            }
            Ok(None) => ClusterState::Missing,
            Err(_) => ClusterState::Unknown,
        }
    }

    /// Config items of an environment whose name contains `search`, optionally of one binding.
    pub fn list(
        &self,
        project: &str,
        env: &str,
        search: Option<&str>,
        cluster: Option<&str>,
        namespace: Option<&str>,
    ) -> Result<Vec<ConfigItem>, EnvError> {
        self.envs.get(project, env)?;
        let mut items: Vec<ConfigItem> = self.store.list_json(&env_prefix(project, env))?;
        let needle = search.map(str::to_lowercase);
        items.retain(|i| {
            needle.as_ref().is_none_or(|n| i.name.contains(n.as_str()))
                && cluster.is_none_or(|c| i.cluster == c)
                && namespace.is_none_or(|n| i.namespace == n)
        });
        Ok(items)
    }

    /// The binding a new item goes to: the one named, or the only one there is.
    fn binding(
        env: &Environment,
        cluster: Option<String>,
        namespace: Option<String>,
    ) -> Result<(String, String), EnvError> {
        if env.bindings.is_empty() {
            return Err(invalid(
                "namespace",
                "the environment is bound to no namespace yet; bind one first",
            ));
        }
        match (cluster, namespace) {
            (None, None) if env.bindings.len() == 1 => Ok((
                env.bindings[0].cluster.clone(),
                env.bindings[0].namespace.clone(),
            )),
            (None, None) => Err(invalid(
                "namespace",
                "the environment has several bindings: give `cluster` and `namespace`",
            )),
            (cluster, Some(namespace)) => {
                let matches: Vec<&super::environments::Binding> = env
                    .bindings
                    .iter()
                    .filter(|b| {
                        b.namespace == namespace && cluster.as_ref().is_none_or(|c| &b.cluster == c)
                    })
                    .collect();
                match matches.as_slice() {
                    [one] => Ok((one.cluster.clone(), one.namespace.clone())),
                    [] => Err(invalid(
                        "namespace",
                        format!(
                            "the environment is not bound to namespace `{namespace}`{}",
                            cluster
                                .map(|c| format!(" of cluster `{c}`"))
                                .unwrap_or_default()
                        ),
                    )),
                    _ => Err(invalid(
                        "cluster",
                        "several clusters bind that namespace: give `cluster`",
                    )),
                }
            }
            (Some(cluster), None) => {
                let matches: Vec<_> = env
                    .bindings
                    .iter()
                    .filter(|b| b.cluster == cluster)
                    .collect();
                match matches.as_slice() {
                    [one] => Ok((one.cluster.clone(), one.namespace.clone())),
                    [] => Err(invalid(
                        "cluster",
                        format!("the environment is not bound to cluster `{cluster}`"),
                    )),
                    _ => Err(invalid("namespace", "give the namespace too")),
                }
            }
        }
    }

    /// Claims the name in the store first (the environment and its binding as read, the
    /// name free, the environment's count of items bumped, in one batch), then creates
    /// the ConfigMap; if the cluster refuses, the claim is withdrawn.
    pub async fn create(
        &self,
        project: &str,
        env: &str,
        new: NewConfigItem,
        actor: &str,
    ) -> Result<ConfigItem, EnvError> {
        validate_name(&new.name)?;
        validate_entries(&new.items)?;
        let item_key = key(project, env, &new.name);
        let item = loop {
            let env_read = self.store.get_raw(&environments::key(project, env))?;
            let environment = self.envs.get(project, env)?;
            let (cluster, namespace) =
                Self::binding(&environment, new.cluster.clone(), new.namespace.clone())?;
            let now = OffsetDateTime::now_utc();
            let item = ConfigItem {
                id: uuid::Uuid::new_v4().to_string(),
                project: project.to_owned(),
                env: env.to_owned(),
                items: entries(&new.name, new.items.clone()),
                name: new.name.clone(),
                cluster,
                namespace,
                created_at: now,
                updated_at: now,
                created_by: actor.to_owned(),
                updated_by: actor.to_owned(),
            };
            let owner = environments::dependents(&self.store, project, env)?;
            let batch = Batch::new()
                .unchanged(&environments::key(project, env), env_read)
                .absent(&item_key)
                .put_json(&item_key, &item)?;
            let batch = owner.add("config-items").write(batch)?;
            match self.store.apply(&batch)? {
                Ok(()) => break item,
                Err(conflict) if conflict.key == item_key.as_bytes() => {
                    return Err(EnvError::ConfigItemExists(new.name));
                }
                Err(_) => continue,
            }
        };
        let created = match self.envs.clusters().client(&item.cluster).await {
            Ok(client) => client
                .create_configmap(&item.namespace, &configmap(&item))
                .await
                .map_err(EnvError::from),
            Err(e) => Err(e.into()),
        };
        if let Err(error) = created {
            self.remove_record(project, env, &item.name).await?;
            return Err(error);
        }
        self.store.commit().await?;
        Ok(item)
    }

    /// Removes the record with the environment's count, whatever else changed meanwhile.
    async fn remove_record(&self, project: &str, env: &str, name: &str) -> Result<(), EnvError> {
        loop {
            let read = self.store.get_raw(&key(project, env, name))?;
            if read.is_none() {
                return Ok(());
            }
            let owner = environments::dependents(&self.store, project, env)?;
            let batch = Batch::new()
                .unchanged(&key(project, env, name), read)
                .delete(&key(project, env, name));
            let batch = owner.remove("config-items").write(batch)?;
            if self.store.apply(&batch)?.is_ok() {
                self.store.commit().await?;
                return Ok(());
            }
        }
    }

    /// Replaces all items (seed 001 5.10.4). The ConfigMap is written before the record,
    /// and the record only if nobody wrote it meanwhile; otherwise both are written again,
    /// so the cluster ends with what the record says.
    pub async fn update(
        &self,
        project: &str,
        env: &str,
        name: &str,
        items: Vec<NewEntry>,
        actor: &str,
    ) -> Result<ConfigItem, EnvError> {
        validate_entries(&items)?;
        loop {
            let read = self.store.get_raw(&key(project, env, name))?;
            let mut item = self.get(project, env, name)?;
            item.items = entries(name, items.clone());
            item.updated_at = OffsetDateTime::now_utc();
            item.updated_by = actor.to_owned();
            let client = self.envs.clusters().client(&item.cluster).await?;
            client
                .replace_configmap(&item.namespace, &configmap(&item))
                .await?;
            let batch = Batch::new()
                .unchanged(&key(project, env, name), read)
                .put_json(&key(project, env, name), &item)?;
            if self.store.apply(&batch)?.is_ok() {
                self.store.commit().await?;
                return Ok(item);
            }
        }
    }

    pub async fn delete(
        &self,
        project: &str,
        env: &str,
        name: &str,
    ) -> Result<ConfigItem, EnvError> {
        let item = self.get(project, env, name)?;
        let client = self.envs.clusters().client(&item.cluster).await?;
        client.delete_configmap(&item.namespace, &item.name).await?;
        self.remove_record(project, env, name).await?;
        Ok(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_seed_001() {
        for ok in ["app-config", "a", "app.conf", "1x"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in ["App", "a.b.c", "-a", "a-", "a_b", "", "a..b"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn entries_are_unique_named_and_bounded() {
        let entry = |n: &str, v: usize| NewEntry {
            name: n.into(),
            value: "x".repeat(v),
        };
        assert!(validate_entries(&[entry("a.yaml", 3)]).is_ok());
        assert!(validate_entries(&[]).is_err());
        assert!(validate_entries(&[entry("a", 1), entry("a", 1)]).is_err());
        assert!(validate_entries(&[entry("a/b", 1)]).is_err());
        assert!(validate_entries(&[entry("big", MAX_DATA_BYTES)]).is_err());
    }
}
