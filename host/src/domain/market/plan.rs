//! What an install creates for a template, decided before anything is written: one app per
//! component (named from the component, unique in the project), its environment
//! variables (its own, then each dependency's connection variables), resources, command,
//! container ports and the Service over its inner ports; components ordered so every
//! dependency comes before its dependents.
//!
//! Connection variables follow Rainbond: for each inner port a dependency exports
//! `<PREFIX>_HOST` (its Service's name) and `<PREFIX>_PORT`, the prefix being the port's
//! alias or the component's name and port; the template's own connection info is added.
//! `**None**` values become 8 random characters, `**None:<group>**` one random value
//! shared by the group; an upgrade keeps the values an earlier version drew.

use std::collections::{BTreeMap, HashMap, HashSet};

use rand::Rng;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::MarketError;
use crate::runtime::catalog::{Component, EnvVar, Port, Template, Volume};

/// Most components one install may have.
pub const MAX_COMPONENTS: usize = 100;

/// One component as an install realizes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlannedComponent {
    pub key: String,
    /// The template's display name.
    pub name: String,
    /// The Wharf app created for it.
    pub app: String,
    /// Name of its Kubernetes objects (the app name, lowercase).
    pub workload: String,
    /// Its Service over its ports, when it has any.
    pub service: Option<String>,
    pub image: String,
    pub command: Option<String>,
    pub version: String,
    pub category: String,
    pub extend_method: String,
    pub stateful: bool,
    pub replicas: u32,
    pub cpu_millicores: u32,
    pub memory_mb: u32,
    pub gpu: u32,
    pub ports: Vec<Port>,
    /// What the container sees, in order: its own, then its dependencies' connections.
    pub env: Vec<EnvVar>,
    pub volumes: Vec<Volume>,
    /// Keys of the components deployed before it.
    pub depends_on: Vec<String>,
    /// What it exports to its dependents.
    pub connection: Vec<EnvVar>,
}

/// Decides names and variables of every component of `template`, in deploy order.
/// `name_taken` says whether an app name is used in the project by something else;
/// `previous` holds the components of the version installed before (an upgrade keeps
/// their app names and drawn values).
pub fn plan(
    template: &Template,
    name_taken: &dyn Fn(&str) -> Result<bool, MarketError>,
    previous: &[PlannedComponent],
) -> Result<Vec<PlannedComponent>, MarketError> {
    if template.components.is_empty() {
        return Err(invalid("components", "the template has no components"));
    }
    if template.components.len() > MAX_COMPONENTS {
        return Err(invalid(
            "components",
            format!("at most {MAX_COMPONENTS} components per install"),
        ));
    }
    let order = deploy_order(&template.components)?;
    let kept: HashMap<&str, &PlannedComponent> =
        previous.iter().map(|c| (c.key.as_str(), c)).collect();
    let mut used: HashSet<String> = HashSet::new();
    let mut names: HashMap<&str, String> = HashMap::new();
    for component in &template.components {
        let app = match kept.get(component.key.as_str()) {
            Some(old) => old.app.clone(),
            None => unique_name(component, &used, name_taken)?,
        };
        used.insert(app.clone());
        names.insert(&component.key, app);
    }
    let mut groups: HashMap<String, String> = HashMap::new();
    let mut planned: HashMap<&str, PlannedComponent> = HashMap::new();
    for &index in &order {
        let component = &template.components[index];
        let app = names[component.key.as_str()].clone();
        let workload = app.to_lowercase();
        let inner: Vec<&Port> = component.ports.iter().filter(|p| p.inner).collect();
        let service = (!component.ports.is_empty()).then(|| workload.clone());
        let earlier = kept.get(component.key.as_str()).copied();
        let drawn = |var: &EnvVar, groups: &mut HashMap<String, String>| EnvVar {
            name: var.name.clone(),
            value: resolve(var, earlier, groups),
        };
        let mut connection: Vec<EnvVar> = Vec::new();
        for port in &inner {
            let prefix = prefix_of(component, port);
            connection.push(EnvVar {
                name: format!("{prefix}_HOST"),
                value: workload.clone(),
            });
            connection.push(EnvVar {
                name: format!("{prefix}_PORT"),
                value: port.container_port.to_string(),
            });
        }
        for var in &component.connection_info {
            let var = drawn(var, &mut groups);
            connection.retain(|c| c.name != var.name);
            connection.push(var);
        }
        let mut env: Vec<EnvVar> = component
            .envs
            .iter()
            .map(|v| drawn(v, &mut groups))
            .collect();
        for dependency in &component.depends_on {
            for var in &planned[dependency.as_str()].connection {
                if !env.iter().any(|e| e.name == var.name) {
                    env.push(var.clone());
                }
            }
        }
        // The component's own exports are visible to itself too (Rainbond sets them on it).
        for var in &connection {
            if !env.iter().any(|e| e.name == var.name) {
                env.push(var.clone());
            }
        }
        planned.insert(
            &component.key,
            PlannedComponent {
                key: component.key.clone(),
                name: component.name.clone(),
                app,
                workload,
                service,
                image: component.image.clone(),
                command: component.command.clone().filter(|c| !c.trim().is_empty()),
                version: component.version.clone(),
                category: component.category.clone(),
                extend_method: component.extend_method.clone(),
                stateful: component.stateful,
                replicas: component.resources.instances.max(1),
                cpu_millicores: component.resources.cpu_millicores.max(1),
                memory_mb: component.resources.memory_mb.max(1),
                gpu: component.resources.gpu,
                ports: component.ports.clone(),
                env,
                volumes: component.volumes.clone(),
                depends_on: component.depends_on.clone(),
                connection,
            },
        );
    }
    Ok(order
        .iter()
        .map(|&i| planned[template.components[i].key.as_str()].clone())
        .collect())
}

fn invalid(field: &str, message: impl Into<String>) -> MarketError {
    MarketError::Invalid {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// Indices of `components` with every dependency before its dependents (stable: the
/// template's order among independent components). Unknown keys and cycles are refused.
fn deploy_order(components: &[Component]) -> Result<Vec<usize>, MarketError> {
    let index: HashMap<&str, usize> = components
        .iter()
        .enumerate()
        .map(|(i, c)| (c.key.as_str(), i))
        .collect();
    if index.len() != components.len() {
        return Err(invalid("components", "two components share one key"));
    }
    for (i, c) in components.iter().enumerate() {
        for (j, dep) in c.depends_on.iter().enumerate() {
            if !index.contains_key(dep.as_str()) {
                return Err(invalid(
                    &format!("components[{i}].dependsOn[{j}]"),
                    format!("no component has key `{dep}`"),
                ));
            }
        }
    }
    let mut order = Vec::with_capacity(components.len());
    let mut placed = vec![false; components.len()];
    while order.len() < components.len() {
        let ready = (0..components.len()).find(|&i| {
            !placed[i]
                && components[i]
                    .depends_on
                    .iter()
                    .all(|d| placed[index[d.as_str()]])
        });
        match ready {
            Some(i) => {
                placed[i] = true;
                order.push(i);
            }
            None => {
                let stuck: Vec<&str> = (0..components.len())
                    .filter(|&i| !placed[i])
                    .map(|i| components[i].key.as_str())
                    .collect();
                return Err(invalid(
                    "components",
                    format!("the dependencies of {} form a cycle", stuck.join(", ")),
                ));
            }
        }
    }
    Ok(order)
}

/// An app name for `component`: 3–30 characters, a lowercase letter first, then lowercase
/// letters or digits, free in the project and in this install.
fn unique_name(
    component: &Component,
    used: &HashSet<String>,
    name_taken: &dyn Fn(&str) -> Result<bool, MarketError>,
) -> Result<String, MarketError> {
    let source = [&component.k8s_name, &component.name, &component.key]
        .into_iter()
        .find(|s| s.chars().any(|c| c.is_ascii_alphanumeric()))
        .cloned()
        .unwrap_or_default();
    let mut base: String = source
        .to_ascii_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        .collect();
    if !base.starts_with(|c: char| c.is_ascii_lowercase()) {
        base.insert(0, 'm');
    }
    while base.len() < 3 {
        base.push('0');
    }
    base.truncate(26);
    for n in 1..=999u32 {
        let candidate = if n == 1 {
            base.clone()
        } else {
            format!("{base}{n}")
        };
        if !used.contains(&candidate) && !name_taken(&candidate)? {
            return Ok(candidate);
        }
    }
    Err(MarketError::Component {
        component: component.key.clone(),
        message: format!("no free app name starting with `{base}` in this project"),
    })
}

/// The connection-variable prefix of an inner port.
fn prefix_of(component: &Component, port: &Port) -> String {
    let raw = if port.alias.trim().is_empty() {
        format!("{}{}", component.name, port.container_port)
    } else {
        port.alias.clone()
    };
    let mut prefix: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    if prefix.starts_with(|c: char| c.is_ascii_digit()) || prefix.is_empty() {
        prefix.insert(0, 'P');
    }
    prefix
}

fn placeholder_group(value: &str) -> Option<Option<&str>> {
    let inner = value.strip_prefix("**None")?.strip_suffix("**")?;
    match inner {
        "" => Some(None),
        _ => inner.strip_prefix(':').map(Some),
    }
}

fn random_value() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..8)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// The value of `var`: a placeholder drawn (or kept from `earlier`), else as written.
fn resolve(
    var: &EnvVar,
    earlier: Option<&PlannedComponent>,
    groups: &mut HashMap<String, String>,
) -> String {
    let Some(group) = placeholder_group(&var.value) else {
        return var.value.clone();
    };
    if let Some(old) = earlier.and_then(|c| {
        c.env
            .iter()
            .chain(&c.connection)
            .find(|e| e.name == var.name)
    }) {
        if let Some(group) = group {
            groups.entry(group.to_owned()).or_insert(old.value.clone());
        }
        return old.value.clone();
    }
    match group {
        None => random_value(),
        Some(group) => groups
            .entry(group.to_owned())
            .or_insert_with(random_value)
            .clone(),
    }
}

/// The fields of two plans of one component that differ, as `(field, from, to)`.
pub fn changed_fields(a: &PlannedComponent, b: &PlannedComponent) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut push = |field: &str, from: String, to: String| {
        if from != to {
            out.push((field.to_owned(), from, to));
        }
    };
    push("image", a.image.clone(), b.image.clone());
    push("version", a.version.clone(), b.version.clone());
    push(
        "command",
        a.command.clone().unwrap_or_default(),
        b.command.clone().unwrap_or_default(),
    );
    push("instances", a.replicas.to_string(), b.replicas.to_string());
    push(
        "cpuMillicores",
        a.cpu_millicores.to_string(),
        b.cpu_millicores.to_string(),
    );
    push("memoryMb", a.memory_mb.to_string(), b.memory_mb.to_string());
    let ports = |c: &PlannedComponent| {
        c.ports
            .iter()
            .map(|p| format!("{}/{}", p.container_port, p.protocol))
            .collect::<Vec<_>>()
            .join(",")
    };
    push("ports", ports(a), ports(b));
    let env = |c: &PlannedComponent| {
        c.env
            .iter()
            .map(|e| (e.name.clone(), e.value.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    let (ea, eb) = (env(a), env(b));
    for name in ea
        .keys()
        .chain(eb.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        push(
            &format!("env.{name}"),
            ea.get(name).cloned().unwrap_or_default(),
            eb.get(name).cloned().unwrap_or_default(),
        );
    }
    push("dependsOn", a.depends_on.join(","), b.depends_on.join(","));
    push("gpu", a.gpu.to_string(), b.gpu.to_string());
    push("stateful", a.stateful.to_string(), b.stateful.to_string());
    push(
        "extendMethod",
        a.extend_method.clone(),
        b.extend_method.clone(),
    );
    push(
        "service",
        a.service.clone().unwrap_or_default(),
        b.service.clone().unwrap_or_default(),
    );
    let volumes = |c: &PlannedComponent| {
        c.volumes
            .iter()
            .map(|v| (v.name.clone(), serde_json::to_string(v).unwrap_or_default()))
            .collect::<BTreeMap<_, _>>()
    };
    let (va, vb) = (volumes(a), volumes(b));
    for name in va
        .keys()
        .chain(vb.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        push(
            &format!("volumes.{name}"),
            va.get(name).cloned().unwrap_or_default(),
            vb.get(name).cloned().unwrap_or_default(),
        );
    }
    let exports = |c: &PlannedComponent| {
        c.connection
            .iter()
            .map(|e| format!("{}={}", e.name, e.value))
            .collect::<Vec<_>>()
            .join(",")
    };
    push("connectionInfo", exports(a), exports(b));
    push("name", a.name.clone(), b.name.clone());
    push("category", a.category.clone(), b.category.clone());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::catalog::Resources;

    fn component(key: &str, deps: &[&str], ports: &[(u16, &str)]) -> Component {
        Component {
            key: key.into(),
            name: key.into(),
            k8s_name: String::new(),
            image: format!("registry.local/{key}:1"),
            command: None,
            version: "1".into(),
            category: "application".into(),
            extend_method: "stateless_multiple".into(),
            stateful: false,
            resources: Resources {
                instances: 1,
                cpu_millicores: 250,
                memory_mb: 128,
                gpu: 0,
            },
            ports: ports
                .iter()
                .map(|(p, alias)| Port {
                    container_port: *p,
                    protocol: "tcp".into(),
                    alias: (*alias).into(),
                    inner: true,
                    outer: false,
                })
                .collect(),
            envs: vec![EnvVar {
                name: "PASSWORD".into(),
                value: "**None:db**".into(),
            }],
            volumes: vec![],
            depends_on: deps.iter().map(|d| (*d).to_string()).collect(),
            connection_info: vec![EnvVar {
                name: "DB_PASS".into(),
                value: "**None:db**".into(),
            }],
        }
    }

    fn template(components: Vec<Component>) -> Template {
        Template {
            app_id: "shop".into(),
            app_name: "Shop".into(),
            version: "1.0".into(),
            version_alias: String::new(),
            description: String::new(),
            updated_at: String::new(),
            components,
        }
    }

    #[test]
    fn dependencies_come_first_and_give_their_connection_variables() {
        let t = template(vec![
            component("web", &["mysql"], &[(8080, "")]),
            component("mysql", &[], &[(3306, "MYSQL")]),
        ]);
        let plan = plan(&t, &|_| Ok(false), &[]).unwrap();
        assert_eq!(plan[0].key, "mysql");
        assert_eq!(plan[1].key, "web");
        let web = &plan[1];
        let get = |n: &str| {
            web.env
                .iter()
                .find(|e| e.name == n)
                .map(|e| e.value.clone())
        };
        assert_eq!(get("MYSQL_HOST").as_deref(), Some("mysql"));
        assert_eq!(get("MYSQL_PORT").as_deref(), Some("3306"));
        assert_eq!(get("WEB8080_HOST").as_deref(), Some("web"));
        // One shared value for the `db` group across components.
        assert_eq!(get("PASSWORD"), get("DB_PASS"));
        assert_eq!(get("PASSWORD").unwrap().len(), 8);
    }

    #[test]
    fn cycles_and_unknown_dependencies_are_refused() {
        let t = template(vec![
            component("a", &["b"], &[]),
            component("b", &["a"], &[]),
        ]);
        assert!(
            matches!(plan(&t, &|_| Ok(false), &[]), Err(MarketError::Invalid { message, .. }) if message.contains("cycle"))
        );
        let t = template(vec![component("a", &["zz"], &[])]);
        assert!(
            matches!(plan(&t, &|_| Ok(false), &[]), Err(MarketError::Invalid { field, .. }) if field == "components[0].dependsOn[0]")
        );
    }

    #[test]
    fn names_avoid_taken_ones_and_upgrades_keep_names_and_drawn_values() {
        let t = template(vec![component("my-sql", &[], &[(3306, "")])]);
        let first = plan(&t, &|n| Ok(n == "mysql"), &[]).unwrap();
        assert_eq!(first[0].app, "mysql2");
        let again = plan(&t, &|_| Ok(true), &first).unwrap();
        assert_eq!(again[0].app, "mysql2");
        assert_eq!(again[0].env, first[0].env);
    }
}
