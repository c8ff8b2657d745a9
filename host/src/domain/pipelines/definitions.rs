//! Stored pipelines: `v1/pipelines/<id>` (the current version), every version at
//! `v1/pipeline-versions/<id>/<n>` (a run reads the one it started with), an index per
//! project and app for listing, and a claim of the name within the app. Creating,
//! updating and deleting each write all of it in one store batch. Delete is soft: the
//! record stays (its runs keep their history), the name is free again.

use serde_json::Value;
use time::OffsetDateTime;

use super::PipelineError;
use super::model::{Pipeline, PipelineInput};
use crate::domain::apps;
use crate::store::{Batch, Store, StoreError};

fn key(id: &str) -> String {
    Store::key(&["pipelines", id])
}

fn version_key(id: &str, version: u32) -> String {
    Store::key(&["pipeline-versions", id, &format!("{version:08}")])
}

fn index_key(project: &str, app: &str, id: &str) -> String {
    Store::key(&["pipeline-index", project, app, id])
}

fn index_prefix(project: &str, app: Option<&str>) -> String {
    match app {
        Some(app) => format!("{}/", Store::key(&["pipeline-index", project, app])),
        None => format!("{}/", Store::key(&["pipeline-index", project])),
    }
}

fn name_key(project: &str, app: &str, name: &str) -> String {
    Store::key(&["pipeline-names", project, app, &name.to_lowercase()])
}

fn corrupt(key: &str, e: serde_json::Error) -> StoreError {
    StoreError::Corrupt {
        key: key.to_owned(),
        reason: e.to_string(),
    }
}

/// Pipelines over the host store.
#[derive(Clone)]
pub struct Definitions {
    store: Store,
}

impl Definitions {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    fn read(&self, id: &str) -> Result<Option<(Vec<u8>, Pipeline)>, PipelineError> {
        let k = key(id);
        match self.store.get_raw(&k)? {
            None => Ok(None),
            Some(bytes) => {
                let pipeline = serde_json::from_slice(&bytes).map_err(|e| corrupt(&k, e))?;
                Ok(Some((bytes, pipeline)))
            }
        }
    }

    /// A pipeline by id alone (seed 001's routes name only the id), deleted or not.
    pub fn by_id(&self, id: &str) -> Result<Pipeline, PipelineError> {
        self.read(id)?
            .map(|(_, p)| p)
            .ok_or_else(|| PipelineError::NotFound(id.to_owned()))
    }

    /// The live pipeline `id` of `app` in `project`.
    pub fn get(&self, project: &str, app: &str, id: &str) -> Result<Pipeline, PipelineError> {
        match self.read(id)? {
            Some((_, p)) if p.project == project && p.app == app && !p.deleted => Ok(p),
            _ => Err(PipelineError::NotFound(id.to_owned())),
        }
    }

    pub fn version(&self, id: &str, version: u32) -> Result<Pipeline, PipelineError> {
        let k = version_key(id, version);
        match self.store.get_raw(&k)? {
            Some(bytes) => Ok(serde_json::from_slice(&bytes).map_err(|e| corrupt(&k, e))?),
            None => Err(PipelineError::VersionNotFound {
                id: id.to_owned(),
                version,
            }),
        }
    }

    pub async fn create(
        &self,
        project: &str,
        app: &str,
        input: PipelineInput,
        who: &str,
    ) -> Result<Pipeline, PipelineError> {
        if apps::get(&self.store, project, app)?.is_none() {
            return Err(PipelineError::Invalid {
                field: "app".into(),
                message: format!("no app `{app}` in project `{project}`"),
            });
        }
        let now = OffsetDateTime::now_utc();
        let pipeline = Pipeline {
            id: uuid::Uuid::new_v4().to_string(),
            project: project.to_owned(),
            app: app.to_owned(),
            version: 1,
            definition: input,
            deleted: false,
            created_at: now,
            updated_at: now,
            created_by: who.to_owned(),
            updated_by: who.to_owned(),
        };
        let name = name_key(project, app, &pipeline.definition.name);
        let batch = apps::exists(Batch::new(), project, app)
            .absent(&name)
            .put_raw(&name, pipeline.id.as_bytes().to_vec())
            .put_json(&key(&pipeline.id), &pipeline)?
            .put_json(&version_key(&pipeline.id, 1), &pipeline)?
            .put_raw(&index_key(project, app, &pipeline.id), Vec::new());
        match self.store.apply(&batch)? {
            Ok(()) => {}
            Err(conflict) if conflict.key == name.as_bytes() => {
                return Err(PipelineError::NameTaken(pipeline.definition.name));
            }
            Err(_) => {
                return Err(PipelineError::Invalid {
                    field: "app".into(),
                    message: format!("app `{app}` was deleted meanwhile"),
                });
            }
        }
        self.store.commit().await?;
        Ok(pipeline)
    }

    /// A new version of `id` with `input`; answers the version before and the new one.
    pub async fn update(
        &self,
        project: &str,
        app: &str,
        id: &str,
        input: PipelineInput,
        who: &str,
    ) -> Result<(Pipeline, Pipeline), PipelineError> {
        loop {
            let Some((read, before)) = self.read(id)? else {
                return Err(PipelineError::NotFound(id.to_owned()));
            };
            if before.project != project || before.app != app || before.deleted {
                return Err(PipelineError::NotFound(id.to_owned()));
            }
            let mut after = before.clone();
            after.version += 1;
            after.definition = input.clone();
            after.updated_at = OffsetDateTime::now_utc();
            after.updated_by = who.to_owned();
            let k = key(id);
            let mut batch = Batch::new()
                .equals(&k, read)
                .put_json(&k, &after)?
                .put_json(&version_key(id, after.version), &after)?;
            let old_name = name_key(project, app, &before.definition.name);
            let new_name = name_key(project, app, &after.definition.name);
            if old_name != new_name {
                batch = batch
                    .delete(&old_name)
                    .absent(&new_name)
                    .put_raw(&new_name, id.as_bytes().to_vec());
            }
            match self.store.apply(&batch)? {
                Ok(()) => {
                    self.store.commit().await?;
                    return Ok((before, after));
                }
                Err(conflict) if conflict.key == new_name.as_bytes() => {
                    return Err(PipelineError::NameTaken(after.definition.name));
                }
                Err(_) => continue,
            }
        }
    }

    /// Marks `id` deleted and frees its name; answers the pipeline as it was.
    pub async fn delete(
        &self,
        project: &str,
        app: &str,
        id: &str,
    ) -> Result<Pipeline, PipelineError> {
        loop {
            let Some((read, before)) = self.read(id)? else {
                return Err(PipelineError::NotFound(id.to_owned()));
            };
            if before.project != project || before.app != app || before.deleted {
                return Err(PipelineError::NotFound(id.to_owned()));
            }
            let mut after = before.clone();
            after.deleted = true;
            after.updated_at = OffsetDateTime::now_utc();
            let k = key(id);
            let batch = Batch::new()
                .equals(&k, read)
                .put_json(&k, &after)?
                .delete(&name_key(project, app, &before.definition.name))
                .delete(&index_key(project, app, id));
            if self.store.apply(&batch)?.is_ok() {
                self.store.commit().await?;
                return Ok(before);
            }
        }
    }

    /// Live pipelines of a project (of one app when given, which must exist), oldest first.
    pub fn list(&self, project: &str, app: Option<&str>) -> Result<Vec<Pipeline>, PipelineError> {
        if let Some(app) = app
            && apps::get(&self.store, project, app)?.is_none()
        {
            return Err(PipelineError::AppNotFound(app.to_owned()));
        }
        let prefix = index_prefix(project, app);
        let rows = self
            .store
            .backend()
            .scan(prefix.as_bytes(), None, usize::MAX)?;
        let mut pipelines = Vec::with_capacity(rows.len());
        for (k, _) in rows {
            let rest = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            let id = rest.rsplit('/').next().unwrap_or(&rest).to_owned();
            if let Some((_, p)) = self.read(&id)?
                && !p.deleted
            {
                pipelines.push(p);
            }
        }
        pipelines.sort_by(|a, b| a.created_at.cmp(&b.created_at));
        Ok(pipelines)
    }

    /// The JSON a pipeline's audit records keep.
    pub fn audit_view(pipeline: &Pipeline) -> Value {
        serde_json::to_value(pipeline).unwrap_or(Value::Null)
    }
}
