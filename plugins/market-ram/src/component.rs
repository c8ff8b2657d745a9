//! One `apps[i]` entry of a template read into a [`Component`], following how Rainbond's
//! console installs it (rainstore.md §4.2, §6.1 step 3): image, extend method, resources,
//! ports, envs, connection info and volumes. Dependencies are only collected here; they
//! resolve once every component is known ([`crate::dependencies`]).

use serde_json::Value;

use crate::fields::Fields;
use crate::model::{Component, EnvVar, Port, Resources, Volume};
use crate::violation::{Violation, index, join};

/// Extend methods Rainbond knows (RC console/enum/component_enum.py).
const EXTEND_METHODS: &[&str] = &[
    "stateless_singleton",
    "stateless_multiple",
    "state_singleton",
    "state_multiple",
    "job",
    "cronjob",
    "daemonset",
    "vm",
    "kubeblocks_component",
];

/// Memory (MB) when the template names none, as the console's install does.
const DEFAULT_MEMORY_MB: u32 = 512;
/// CPU (millicores) when the memory-derived value rounds to nothing (the console's newer
/// install path uses the same fallback).
const FALLBACK_CPU_MILLICORES: u32 = 250;

/// A component read, with what dependency resolution needs.
pub(crate) struct Draft {
    pub component: Component,
    /// Path of the `apps[i]` entry.
    pub path: String,
    /// What other components' `dep_service_key` name it by: `service_share_uuid`, or
    /// `service_key` when it has none.
    pub identity: String,
    /// Each `dep_service_key` with its path, in order.
    pub dependencies: Vec<(String, String)>,
}

/// Reads `apps[i]`; `None` when it is not an object or lacks its key (violations say why).
pub(crate) fn read(value: &Value, path: String, violations: &mut Vec<Violation>) -> Option<Draft> {
    let mut app = Fields::of(value, path.clone(), violations)?;
    let key = app.required_string("service_key");
    // The publisher's id: Rainbond reads it with `[]`, so a template without it does not
    // install there either.
    app.required_string("service_id");
    let share_uuid = app.string("service_share_uuid").filter(|s| !s.is_empty());
    let image = image(&mut app);
    let name = app
        .string("service_cname")
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "default-name".to_string());
    let k8s_name = app.string("k8s_component_name").unwrap_or_default();
    let command = app
        .string("cmd")
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty());
    let version = app.text("version").unwrap_or_default();
    let category = app.string("category").unwrap_or_default();
    let extend_method = extend_method(&mut app);
    if app.string("share_type").as_deref() == Some("slug") {
        app.complain(
            "share_type",
            "slug delivery is not supported: Wharf installs container images",
        );
    }
    let resources = resources(&mut app);
    let ports = ports(&mut app);
    let envs = variables(&mut app, "service_env_map_list");
    let connection_info = variables(&mut app, "service_connect_info_map_list");
    let volumes = volumes(&mut app);
    let dependencies = dependencies(&mut app);

    let key = key?;
    let stateful = extend_method.starts_with("state_");
    Some(Draft {
        identity: share_uuid.unwrap_or_else(|| key.clone()),
        path,
        dependencies,
        component: Component {
            key,
            name,
            k8s_name,
            image: image.unwrap_or_default(),
            command,
            version,
            category,
            extend_method,
            stateful,
            resources,
            ports,
            envs,
            volumes,
            depends_on: Vec::new(),
            connection_info,
        },
    })
}

/// `share_image` (pushed to the store's registry at publish) when present, else `image`.
fn image(app: &mut Fields<'_, '_>) -> Option<String> {
    let share_image = app.string("share_image").filter(|s| !s.trim().is_empty());
    let image = app.string("image").filter(|s| !s.trim().is_empty());
    let chosen = share_image.or(image);
    if chosen.is_none() {
        app.complain(
            "image",
            "is required: the component names no image (nor share_image)",
        );
    }
    chosen.map(|s| s.trim().to_string())
}

fn extend_method(app: &mut Fields<'_, '_>) -> String {
    let Some(method) = app.required_string("extend_method") else {
        return String::new();
    };
    let method = match method.trim() {
        "state" => "state_multiple",
        "stateless" => "stateless_multiple",
        other => other,
    };
    if !EXTEND_METHODS.contains(&method) {
        app.complain(
            "extend_method",
            format!(
                "`{method}` is not a Rainbond extend method (one of {}, or legacy state / stateless)",
                EXTEND_METHODS.join(", ")
            ),
        );
    }
    method.to_string()
}

/// Rainbond's resource fallbacks (§6.1 step 3). A zero counts as not given, as Python's
/// `or` treats it.
fn resources(app: &mut Fields<'_, '_>) -> Resources {
    let (min_node, init_memory, min_memory, container_cpu) = match app.object("extend_method_map") {
        Some(mut rule) => (
            rule.number("min_node"),
            rule.number("init_memory"),
            rule.number("min_memory"),
            rule.number("container_cpu"),
        ),
        None => (None, None, None, None),
    };
    let memory = app.number("memory");
    let cpu = app.number("cpu");
    let gpu = app.number("container_gpu");
    let given = |n: Option<u32>| n.filter(|n| *n > 0);

    let memory_mb = given(init_memory)
        .or(given(memory))
        .or(given(min_memory))
        .unwrap_or(DEFAULT_MEMORY_MB);
    let cpu_millicores = given(container_cpu).or(given(cpu)).unwrap_or_else(|| {
        // The console's obsolete rule: 20 millicores per 128 MB.
        match u64::from(memory_mb) * 20 / 128 {
            0 => FALLBACK_CPU_MILLICORES,
            derived => derived as u32,
        }
    });
    Resources {
        instances: given(min_node).unwrap_or(1),
        cpu_millicores,
        memory_mb,
        gpu: gpu.unwrap_or(0),
    }
}

fn ports(app: &mut Fields<'_, '_>) -> Vec<Port> {
    let items = app.array("port_map_list");
    let base = app.path("port_map_list");
    let mut ports: Vec<Port> = Vec::new();
    let mut seen: Vec<(u16, String)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = index(&base, i);
        let Some(mut port) = Fields::of(item, path.clone(), app.violations()) else {
            continue;
        };
        let container_port = match port.number("container_port") {
            Some(n @ 1..=65535) => Some(n as u16),
            Some(n) => {
                port.complain(
                    "container_port",
                    format!("must be from 1 to 65535, not {n}"),
                );
                None
            }
            None => {
                if port.value("container_port").is_none() {
                    port.complain("container_port", "is required");
                }
                None
            }
        };
        let protocol = port
            .string("protocol")
            .map(|p| p.trim().to_ascii_lowercase())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "tcp".to_string());
        let alias = port.string("port_alias").unwrap_or_default();
        let inner = port.flag("is_inner_service");
        let outer = port.flag("is_outer_service");
        let Some(container_port) = container_port else {
            continue;
        };
        if let Some((_, first)) = seen.iter().find(|(p, _)| *p == container_port) {
            port.complain(
                "container_port",
                format!("{container_port} is already a port of this component ({first})"),
            );
            continue;
        }
        seen.push((container_port, path));
        ports.push(Port {
            container_port,
            protocol,
            alias,
            inner,
            outer,
        });
    }
    ports
}

/// Kubernetes' rule for variable names: letters, digits, `_`, `-` and `.`, not starting
/// with a digit.
fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || matches!(c, '_' | '-' | '.'))
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// `service_env_map_list` or `service_connect_info_map_list`: `{attr_name, attr_value}`.
fn variables(app: &mut Fields<'_, '_>, list: &str) -> Vec<EnvVar> {
    let items = app.array(list);
    let base = app.path(list);
    let mut envs = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Some(mut env) = Fields::of(item, index(&base, i), app.violations()) else {
            continue;
        };
        let name = env.required_string("attr_name");
        let value = env.text("attr_value").unwrap_or_default();
        let Some(name) = name else { continue };
        if !is_variable_name(&name) {
            env.complain(
                "attr_name",
                format!(
                    "`{name}` is not a valid variable name (letters, digits, `_`, `-` and `.`, not starting with a digit)"
                ),
            );
            continue;
        }
        envs.push(EnvVar { name, value });
    }
    envs
}

fn volumes(app: &mut Fields<'_, '_>) -> Vec<Volume> {
    let items = app.array("service_volume_map_list");
    let base = app.path("service_volume_map_list");
    let mut volumes: Vec<Volume> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = index(&base, i);
        let Some(mut volume) = Fields::of(item, path, app.violations()) else {
            continue;
        };
        let name = volume.required_string("volume_name");
        let mount = volume.required_string("volume_path").and_then(|p| {
            if p.starts_with('/') {
                Some(p)
            } else {
                volume.complain("volume_path", format!("`{p}` must be an absolute path"));
                None
            }
        });
        let kind = volume.required_string("volume_type");
        let capacity_mb = volume.number("volume_capacity").unwrap_or(0);
        let file_content = volume.string("file_content");
        let mode = mode(&mut volume);
        let (Some(name), Some(mount), Some(kind)) = (name, mount, kind) else {
            continue;
        };
        if volumes.iter().any(|v| v.name == name) {
            volume.complain(
                "volume_name",
                format!("`{name}` names another volume of this component"),
            );
            continue;
        }
        if volumes.iter().any(|v| v.path == mount) {
            volume.complain(
                "volume_path",
                format!("`{mount}` is the mount path of another volume of this component"),
            );
            continue;
        }
        let content = (kind == "config-file").then(|| file_content.unwrap_or_default());
        volumes.push(Volume {
            name,
            path: mount,
            kind,
            capacity_mb,
            content,
            mode,
        });
    }
    volumes
}

/// RAM `mode`: permission bits written as the decimal digits of their octal form.
fn mode(volume: &mut Fields<'_, '_>) -> Option<u32> {
    let digits = volume.number("mode")?;
    let text = digits.to_string();
    match u32::from_str_radix(&text, 8) {
        Ok(bits) if bits <= 0o7777 => Some(bits),
        Ok(_) => {
            volume.complain("mode", format!("{text} is not a permission (at most 7777)"));
            None
        }
        Err(_) => {
            volume.complain(
                "mode",
                format!(
                    "{text} is not octal: permissions are written with digits 0 to 7, e.g. 644"
                ),
            );
            None
        }
    }
}

fn dependencies(app: &mut Fields<'_, '_>) -> Vec<(String, String)> {
    let items = app.array("dep_service_map_list");
    let base = app.path("dep_service_map_list");
    let mut keys = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = index(&base, i);
        let Some(mut dep) = Fields::of(item, path.clone(), app.violations()) else {
            continue;
        };
        if let Some(key) = dep.required_string("dep_service_key") {
            keys.push((key, join(&path, "dep_service_key")));
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_names_follow_kubernetes() {
        for ok in ["MYSQL_HOST", "a", "_x", "my.var", "-x", "A1"] {
            assert!(is_variable_name(ok), "{ok}");
        }
        for bad in ["", "1A", "A B", "A=B", "Ä", "a$"] {
            assert!(!is_variable_name(bad), "{bad}");
        }
    }
}
