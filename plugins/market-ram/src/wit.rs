//! The marketplace world's types from the plain ones (feature `wit`), by moving their
//! strings; violations become `invalid-template`.

use wharf_sdk::marketplace as world;

use crate::model::{Component, EnvVar, Port, Resources, Template, VersionSummary, Volume};
use crate::violation::Violations;

impl From<Template> for world::Template {
    fn from(t: Template) -> Self {
        world::Template {
            app_id: t.app_id,
            app_name: t.app_name,
            version: t.version,
            version_alias: t.version_alias,
            description: t.description,
            updated_at: t.updated_at,
            components: t.components.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<Component> for world::Component {
    fn from(c: Component) -> Self {
        world::Component {
            key: c.key,
            name: c.name,
            k8s_name: c.k8s_name,
            image: c.image,
            command: c.command,
            version: c.version,
            category: c.category,
            extend_method: c.extend_method,
            stateful: c.stateful,
            resources: c.resources.into(),
            ports: c.ports.into_iter().map(Into::into).collect(),
            envs: c.envs.into_iter().map(Into::into).collect(),
            volumes: c.volumes.into_iter().map(Into::into).collect(),
            depends_on: c.depends_on,
            connection_info: c.connection_info.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<Resources> for world::Resources {
    fn from(r: Resources) -> Self {
        world::Resources {
            instances: r.instances,
            cpu_millicores: r.cpu_millicores,
            memory_mb: r.memory_mb,
            gpu: r.gpu,
        }
    }
}

impl From<Port> for world::Port {
    fn from(p: Port) -> Self {
        world::Port {
            container_port: p.container_port,
            protocol: p.protocol,
            alias: p.alias,
            inner: p.inner,
            outer: p.outer,
        }
    }
}

impl From<EnvVar> for world::EnvVar {
    fn from(e: EnvVar) -> Self {
        world::EnvVar {
            name: e.name,
            value: e.value,
        }
    }
}

impl From<Volume> for world::Volume {
    fn from(v: Volume) -> Self {
        world::Volume {
            name: v.name,
            path: v.path,
            kind: v.kind,
            capacity_mb: v.capacity_mb,
            content: v.content,
            mode: v.mode,
        }
    }
}

impl From<VersionSummary> for world::VersionSummary {
    fn from(v: VersionSummary) -> Self {
        world::VersionSummary {
            version: v.version,
            alias: v.alias,
            description: v.description,
            updated_at: v.updated_at,
        }
    }
}

impl From<Violations> for world::CatalogError {
    fn from(v: Violations) -> Self {
        world::CatalogError::InvalidTemplate(
            v.0.into_iter()
                .map(|v| world::Violation::new(v.field, v.message))
                .collect(),
        )
    }
}
