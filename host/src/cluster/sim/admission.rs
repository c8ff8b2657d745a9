//! Per-kind defaulting and validation on create and update, as the apiserver's registry
//! strategies do it: names, Deployment/Job defaults and immutable selectors, Service IPs
//! and node ports, ConfigMap/Secret sizes and immutability, Pod and Namespace defaults.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use base64::Engine as _;
use serde_json::{Value, json};

use super::meta;
use super::resources::ResourceType;
use super::selector::LabelSelector;
use super::status::Status;

/// Largest ConfigMap or Secret payload, as Kubernetes limits it.
pub const MAX_DATA_BYTES: usize = 1024 * 1024;

/// The service CIDR kubeadm and kind use: 10.96.0.0/12.
const SERVICE_NET: u32 = u32::from_be_bytes([10, 96, 0, 0]);
const SERVICE_NET_SIZE: u32 = 1 << 20;
const NODE_PORTS: std::ops::RangeInclusive<u16> = 30000..=32767;

/// Cluster IPs and node ports in use.
#[derive(Default)]
pub struct Allocations {
    cluster_ips: BTreeSet<u32>,
    node_ports: BTreeSet<u16>,
}

impl Allocations {
    /// Marks what a loaded object already holds.
    pub fn reserve(&mut self, resource: &ResourceType, object: &Value) {
        if !resource.is("", "Service") {
            return;
        }
        if let Some(ip) =
            meta::str_at(object, "/spec/clusterIP").and_then(|ip| ip.parse::<Ipv4Addr>().ok())
        {
            self.cluster_ips.insert(u32::from(ip));
        }
        for port in node_ports(object) {
            self.node_ports.insert(port);
        }
    }

    pub fn release(&mut self, resource: &ResourceType, object: &Value) {
        if !resource.is("", "Service") {
            return;
        }
        if let Some(ip) =
            meta::str_at(object, "/spec/clusterIP").and_then(|ip| ip.parse::<Ipv4Addr>().ok())
        {
            self.cluster_ips.remove(&u32::from(ip));
        }
        for port in node_ports(object) {
            self.node_ports.remove(&port);
        }
    }

    fn allocate_ip(&mut self) -> Option<Ipv4Addr> {
        (1..SERVICE_NET_SIZE - 1)
            .map(|offset| SERVICE_NET + offset)
            .find(|ip| !self.cluster_ips.contains(ip))
            .inspect(|ip| {
                self.cluster_ips.insert(*ip);
            })
            .map(Ipv4Addr::from)
    }

    fn allocate_node_port(&mut self) -> Option<u16> {
        NODE_PORTS
            .clone()
            .find(|port| !self.node_ports.contains(port))
            .inspect(|port| {
                self.node_ports.insert(*port);
            })
    }
}

fn node_ports(object: &Value) -> Vec<u16> {
    object
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|ports| {
            ports
                .iter()
                .filter_map(|p| p.get("nodePort").and_then(Value::as_u64))
                .filter_map(|p| u16::try_from(p).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Defaults and validates `object` (`old` is the stored version on update).
pub fn admit(
    resource: &ResourceType,
    old: Option<&Value>,
    object: &mut Value,
    allocations: &mut Allocations,
) -> Result<(), Status> {
    let name = meta::name(object).to_owned();
    let name_ok = if matches!(resource.kind, "Namespace" | "Service") {
        meta::valid_label(&name)
    } else {
        meta::valid_subdomain(&name)
    };
    if !name_ok {
        return Err(Status::invalid(
            resource,
            &name,
            &[(
                "metadata.name",
                format!(
                    "Invalid value: \"{name}\": a lowercase RFC 1123 name must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
                ),
            )],
        ));
    }
    let invalid =
        |field: &str, message: String| Status::invalid(resource, &name, &[(field, message)]);
    let pod_spec = match resource.kind {
        "Pod" => object.get_mut("spec"),
        "Deployment" | "ReplicaSet" | "Job" => object.pointer_mut("/spec/template/spec"),
        _ => None,
    };
    if let Some(pod_spec) = pod_spec {
        default_container_ports(pod_spec);
    }
    match (resource.group, resource.kind) {
        ("", "Namespace") => {
            if old.is_none() {
                object["spec"] = json!({"finalizers": ["kubernetes"]});
                object["status"] = json!({"phase": "Active"});
            }
            let labels = meta::metadata_mut(object)
                .entry("labels")
                .or_insert_with(|| json!({}));
            if let Value::Object(labels) = labels {
                labels.insert("kubernetes.io/metadata.name".into(), json!(name));
            }
        }
        ("apps", "Deployment") | ("apps", "ReplicaSet") => {
            admit_workload(resource, old, object, &name)?
        }
        ("batch", "Job") => admit_job(resource, old, object, &name)?,
        ("", "Pod") => {
            let containers = object.pointer("/spec/containers").and_then(Value::as_array);
            if containers.is_none_or(|c| c.is_empty()) {
                return Err(invalid("spec.containers", "Required value".into()));
            }
            if old.is_none() && object.pointer("/status/phase").is_none() {
                object["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
            }
            if object.pointer("/spec/restartPolicy").is_none() {
                object["spec"]["restartPolicy"] = json!("Always");
            }
        }
        ("", "Service") => admit_service(resource, old, object, &name, allocations)?,
        ("", "ConfigMap") => {
            check_size(resource, &name, object)?;
            check_immutable_data(resource, &name, old, object)?;
        }
        ("", "Secret") => {
            if object.get("type").is_none() {
                object["type"] = json!("Opaque");
            }
            if let Some(Value::Object(plain)) =
                object.as_object_mut().and_then(|o| o.remove("stringData"))
            {
                let data = meta::map_mut(object, "data");
                for (key, value) in plain {
                    let text = value.as_str().unwrap_or("").as_bytes().to_vec();
                    data.insert(
                        key,
                        json!(base64::engine::general_purpose::STANDARD.encode(text)),
                    );
                }
            }
            if let Some(Value::Object(data)) = object.get("data") {
                for (key, value) in data {
                    let valid = value.as_str().is_some_and(|v| {
                        base64::engine::general_purpose::STANDARD.decode(v).is_ok()
                    });
                    if !valid {
                        return Err(invalid(
                            &format!("data[{key}]"),
                            "Invalid value: illegal base64 data".into(),
                        ));
                    }
                }
            }
            check_size(resource, &name, object)?;
            check_immutable_data(resource, &name, old, object)?;
        }
        ("networking.k8s.io", "Ingress") => {
            let rules = object
                .pointer("/spec/rules")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for (r, rule) in rules.iter().enumerate() {
                let paths = rule
                    .pointer("/http/paths")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                for (p, path) in paths.iter().enumerate() {
                    if path.get("pathType").is_none() {
                        return Err(invalid(
                            &format!("spec.rules[{r}].http.paths[{p}].pathType"),
                            "Required value: pathType must be specified".into(),
                        ));
                    }
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// Container ports default to TCP, as the apiserver fills them in.
fn default_container_ports(pod_spec: &mut Value) {
    for list in ["containers", "initContainers"] {
        let Some(Value::Array(containers)) = pod_spec.get_mut(list) else {
            continue;
        };
        for container in containers {
            if let Some(Value::Array(ports)) = container.get_mut("ports") {
                for port in ports.iter_mut().filter(|p| p.is_object()) {
                    if port.get("protocol").is_none() {
                        port["protocol"] = json!("TCP");
                    }
                }
            }
        }
    }
}

fn admit_workload(
    resource: &ResourceType,
    old: Option<&Value>,
    object: &mut Value,
    name: &str,
) -> Result<(), Status> {
    let invalid =
        |field: &str, message: String| Status::invalid(resource, name, &[(field, message)]);
    let spec = meta::map_mut(object, "spec");
    let replicas = spec.entry("replicas").or_insert(json!(1));
    if replicas.as_i64().is_none_or(|r| r < 0) {
        return Err(invalid(
            "spec.replicas",
            format!("Invalid value: {replicas}: must be greater than or equal to 0"),
        ));
    }
    if resource.kind == "Deployment" {
        spec.entry("revisionHistoryLimit").or_insert(json!(10));
        spec.entry("progressDeadlineSeconds").or_insert(json!(600));
        let strategy = spec.entry("strategy").or_insert(json!({}));
        if strategy.get("type").is_none() {
            strategy["type"] = json!("RollingUpdate");
        }
        if strategy["type"] == "RollingUpdate" {
            let rolling = meta::map_mut(strategy, "rollingUpdate");
            rolling.entry("maxSurge").or_insert(json!("25%"));
            rolling.entry("maxUnavailable").or_insert(json!("25%"));
        } else if strategy["type"] != "Recreate" {
            let given = strategy["type"].clone();
            return Err(invalid(
                "spec.strategy.type",
                format!(
                    "Unsupported value: {given}: supported values: \"Recreate\", \"RollingUpdate\""
                ),
            ));
        }
    }
    spec.entry("minReadySeconds").or_insert(json!(0));
    let selector = spec.get("selector").cloned().unwrap_or(Value::Null);
    let Some(parsed) = LabelSelector::from_object(&selector).filter(|s| !s.is_empty()) else {
        return Err(invalid("spec.selector", "Required value".into()));
    };
    let template_labels = spec
        .get("template")
        .map(|t| json!({"metadata": t.get("metadata").cloned().unwrap_or(json!({}))}));
    if !template_labels.is_some_and(|t| parsed.matches_object(&t)) {
        return Err(invalid(
            "spec.template.metadata.labels",
            format!(
                "Invalid value: `selector` does not match template `labels` ({})",
                parsed.to_query()
            ),
        ));
    }
    let containers = spec
        .get("template")
        .and_then(|t| t.pointer("/spec/containers"))
        .and_then(Value::as_array);
    if containers.is_none_or(|c| c.is_empty()) {
        return Err(invalid(
            "spec.template.spec.containers",
            "Required value".into(),
        ));
    }
    if let Some(old) = old
        && old.pointer("/spec/selector") != Some(&selector)
    {
        return Err(invalid(
            "spec.selector",
            format!("Invalid value: {selector}: field is immutable"),
        ));
    }
    Ok(())
}

fn admit_job(
    resource: &ResourceType,
    old: Option<&Value>,
    object: &mut Value,
    name: &str,
) -> Result<(), Status> {
    let invalid =
        |field: &str, message: String| Status::invalid(resource, name, &[(field, message)]);
    let uid = meta::uid(object).to_owned();
    let spec = meta::map_mut(object, "spec");
    spec.entry("completions").or_insert(json!(1));
    spec.entry("parallelism").or_insert(json!(1));
    spec.entry("backoffLimit").or_insert(json!(6));
    let restart = spec
        .get("template")
        .and_then(|t| t.pointer("/spec/restartPolicy"))
        .and_then(Value::as_str);
    if !matches!(restart, Some("Never") | Some("OnFailure")) {
        return Err(invalid(
            "spec.template.spec.restartPolicy",
            "Required value: valid values: \"OnFailure\", \"Never\"".into(),
        ));
    }
    if let Some(old) = old {
        if old.get("spec").and_then(|s| s.get("selector")) != spec.get("selector") {
            return Err(invalid(
                "spec.selector",
                "Invalid value: field is immutable".into(),
            ));
        }
        if old.get("spec").and_then(|s| s.get("template")) != spec.get("template") {
            return Err(invalid(
                "spec.template",
                "Invalid value: field is immutable".into(),
            ));
        }
        return Ok(());
    }
    spec.insert(
        "selector".into(),
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
    );
    let template = spec.entry("template").or_insert(json!({}));
    let template_meta = meta::map_mut(template, "metadata");
    let labels = template_meta.entry("labels").or_insert(json!({}));
    for (key, value) in [
        ("batch.kubernetes.io/controller-uid", uid.as_str()),
        ("controller-uid", uid.as_str()),
        ("batch.kubernetes.io/job-name", name),
        ("job-name", name),
    ] {
        labels[key] = json!(value);
    }
    if template
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .is_none_or(|c| c.is_empty())
    {
        return Err(invalid(
            "spec.template.spec.containers",
            "Required value".into(),
        ));
    }
    Ok(())
}

fn admit_service(
    resource: &ResourceType,
    old: Option<&Value>,
    object: &mut Value,
    name: &str,
    allocations: &mut Allocations,
) -> Result<(), Status> {
    let invalid =
        |field: &str, message: String| Status::invalid(resource, name, &[(field, message)]);
    let spec = meta::map_mut(object, "spec");
    spec.entry("type").or_insert(json!("ClusterIP"));
    spec.entry("sessionAffinity").or_insert(json!("None"));
    let service_type = spec["type"].as_str().unwrap_or("ClusterIP").to_owned();
    if !matches!(
        service_type.as_str(),
        "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName"
    ) {
        return Err(invalid(
            "spec.type",
            format!("Unsupported value: \"{service_type}\""),
        ));
    }
    if let Some(Value::Array(ports)) = spec.get_mut("ports") {
        for (i, port) in ports.iter_mut().enumerate() {
            let Some(number) = port
                .get("port")
                .and_then(Value::as_u64)
                .filter(|p| (1..=65535).contains(p))
            else {
                return Err(invalid(
                    &format!("spec.ports[{i}].port"),
                    "Invalid value: must be between 1 and 65535, inclusive".into(),
                ));
            };
            if port.get("protocol").is_none() {
                port["protocol"] = json!("TCP");
            }
            if port.get("targetPort").is_none() {
                port["targetPort"] = json!(number);
            }
        }
    }
    let requested = spec
        .get("clusterIP")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    match old {
        Some(old) => {
            let previous = meta::str_at(old, "/spec/clusterIP")
                .unwrap_or("")
                .to_owned();
            if !requested.is_empty() && requested != previous {
                return Err(invalid(
                    "spec.clusterIP",
                    format!("Invalid value: \"{requested}\": field is immutable"),
                ));
            }
            spec.insert("clusterIP".into(), json!(previous));
            if let Some(ips) = old.pointer("/spec/clusterIPs") {
                spec.insert("clusterIPs".into(), ips.clone());
            }
        }
        None if service_type == "ExternalName" => {}
        None if requested == "None" => {
            spec.insert("clusterIPs".into(), json!(["None"]));
        }
        None if requested.is_empty() => {
            let Some(ip) = allocations.allocate_ip() else {
                return Err(Status::internal("the service IP range is exhausted"));
            };
            spec.insert("clusterIP".into(), json!(ip.to_string()));
            spec.insert("clusterIPs".into(), json!([ip.to_string()]));
        }
        None => {
            let ip = requested.parse::<Ipv4Addr>().ok().map(u32::from);
            let in_range =
                ip.is_some_and(|ip| ip > SERVICE_NET && ip < SERVICE_NET + SERVICE_NET_SIZE - 1);
            let Some(ip) = ip.filter(|_| in_range) else {
                return Err(invalid(
                    "spec.clusterIP",
                    format!(
                        "Invalid value: \"{requested}\": provided IP is not in the valid range. The range of valid IPs is 10.96.0.0/12"
                    ),
                ));
            };
            if !allocations.cluster_ips.insert(ip) {
                return Err(invalid(
                    "spec.clusterIP",
                    format!("Invalid value: \"{requested}\": provided IP is already allocated"),
                ));
            }
            spec.insert("clusterIPs".into(), json!([requested]));
        }
    }
    if service_type != "ExternalName" {
        spec.insert("ipFamilies".into(), json!(["IPv4"]));
        spec.insert("ipFamilyPolicy".into(), json!("SingleStack"));
    }
    if matches!(service_type.as_str(), "NodePort" | "LoadBalancer")
        && let Some(Value::Array(ports)) = spec.get_mut("ports")
    {
        for port in ports.iter_mut() {
            if port.get("nodePort").is_none() {
                let Some(node_port) = allocations.allocate_node_port() else {
                    return Err(Status::internal("the node port range is exhausted"));
                };
                port["nodePort"] = json!(node_port);
            } else if old.is_none()
                && let Some(p) = port
                    .get("nodePort")
                    .and_then(Value::as_u64)
                    .and_then(|p| u16::try_from(p).ok())
            {
                allocations.node_ports.insert(p);
            }
        }
    }
    if old.is_none() {
        object["status"] = json!({"loadBalancer": {}});
    }
    Ok(())
}

fn check_size(resource: &ResourceType, name: &str, object: &Value) -> Result<(), Status> {
    let size: usize = ["data", "binaryData"]
        .iter()
        .filter_map(|field| object.get(*field).and_then(Value::as_object))
        .flat_map(|map| map.iter())
        .map(|(key, value)| key.len() + value.as_str().map_or(0, str::len))
        .sum();
    if size > MAX_DATA_BYTES {
        return Err(Status::invalid(
            resource,
            name,
            &[(
                "data",
                format!("Too long: must have at most {MAX_DATA_BYTES} bytes"),
            )],
        ));
    }
    Ok(())
}

fn check_immutable_data(
    resource: &ResourceType,
    name: &str,
    old: Option<&Value>,
    object: &Value,
) -> Result<(), Status> {
    let Some(old) = old else {
        return Ok(());
    };
    if old.get("immutable").and_then(Value::as_bool) != Some(true) {
        return Ok(());
    }
    for field in ["data", "binaryData", "immutable"] {
        if old.get(field) != object.get(field) {
            return Err(Status::invalid(
                resource,
                name,
                &[(
                    field,
                    "Forbidden: field is immutable when `immutable` is set".into(),
                )],
            ));
        }
    }
    Ok(())
}
