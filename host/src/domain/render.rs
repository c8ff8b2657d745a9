//! Renders a validated [`DeploySpec`] and [`ServiceSpec`] to the Kubernetes objects a
//! rollout applies: one `apps/v1` Deployment per revision (`<workload>-v<N>`), an
//! optional `autoscaling/v2` HorizontalPodAutoscaler for it, and the app's Services; and
//! the YAML of each, as `kubectl apply -f` takes it, for the change order's record.
//!
//! Labels: every object carries all of Wharf's labels (`deployments::*_LABEL`); a
//! Deployment selects its own revision's pods ({name, revision}); a Service selects
//! every revision's ({name, managed-by}), so both versions serve during a batched
//! rollout. Units: CPU millicores → `250m`, memory MiB → `256Mi`.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy as KubeStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};
use k8s_openapi::api::core::v1::{
    ConfigMapKeySelector, ConfigMapVolumeSource, Container, ContainerPort as KubePort, EnvVar,
    EnvVarSource, ExecAction, HTTPGetAction, HTTPHeader, PodSpec, PodTemplateSpec,
    Probe as KubeProbe, ResourceRequirements, SecretKeySelector, Service,
    ServicePort as KubeServicePort, ServiceSpec as KubeServiceSpec, TCPSocketAction, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::deployments::{
    APP_LABEL, CHANGE_ANNOTATION, ENV_LABEL, MANAGED_BY, MANAGED_LABEL, NAME_LABEL, PROJECT_LABEL,
    REVISION_LABEL,
};
use super::spec::{
    DeploySpec, EnvVarType, EnvVariable, HpaSpec, IntOrPercent, PodResourceSpec, Probe, ProbeMode,
    ServiceSpec, ServiceType,
};

/// Where and as what a spec is rendered.
#[derive(Debug, Clone, Copy)]
pub struct Workload<'a> {
    pub project: &'a str,
    pub app: &'a str,
    pub env: &'a str,
    /// Base name of the objects (the app name in lowercase).
    pub workload: &'a str,
    pub namespace: &'a str,
    pub revision: u64,
    /// The change order that renders it (an annotation on each object).
    pub change_order: &'a str,
}

impl Workload<'_> {
    /// Name of the revision's Deployment (and autoscaler).
    pub fn name(&self) -> String {
        format!("{}-v{}", self.workload, self.revision)
    }

    /// Wharf's labels of the revision's objects and pods.
    fn labels(&self) -> BTreeMap<String, String> {
        let mut labels = self.app_labels();
        labels.insert(REVISION_LABEL.to_owned(), self.revision.to_string());
        labels
    }

    /// Wharf's labels shared by every revision (Services carry these).
    fn app_labels(&self) -> BTreeMap<String, String> {
        [
            (NAME_LABEL, self.workload),
            (MANAGED_LABEL, MANAGED_BY),
            (PROJECT_LABEL, self.project),
            (APP_LABEL, self.app),
            (ENV_LABEL, self.env),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    fn meta(&self, name: String, labels: BTreeMap<String, String>) -> ObjectMeta {
        ObjectMeta {
            name: Some(name),
            namespace: Some(self.namespace.to_owned()),
            labels: Some(labels),
            annotations: Some(BTreeMap::from([(
                CHANGE_ANNOTATION.to_owned(),
                self.change_order.to_owned(),
            )])),
            ..ObjectMeta::default()
        }
    }
}

fn some_vec<T>(items: Vec<T>) -> Option<Vec<T>> {
    (!items.is_empty()).then_some(items)
}

fn int(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

/// The Deployment of `w.revision` running `replicas` pods.
pub fn deployment(spec: &DeploySpec, w: &Workload<'_>, replicas: i32) -> Deployment {
    let mut pod_labels = w.labels();
    if let Some(tag) = spec.gray_rule().and_then(super::gray::release::tag_of) {
        pod_labels.insert(super::gray::release::GRAY_TAG_LABEL.to_owned(), tag);
    }
    for (key, value) in &spec.labels {
        pod_labels
            .entry(key.clone())
            .or_insert_with(|| value.clone());
    }
    let selector = BTreeMap::from([
        (NAME_LABEL.to_owned(), w.workload.to_owned()),
        (REVISION_LABEL.to_owned(), w.revision.to_string()),
    ]);
    let (volumes, mounts) = config_volumes(spec);
    let start = spec.start_command.as_ref();
    let container = Container {
        name: w.workload.to_owned(),
        image: Some(spec.image.clone()),
        command: start.map(|s| s.command_words()).and_then(some_vec),
        args: start.map(|s| s.args.clone()).and_then(some_vec),
        env: some_vec(spec.env_variable_list.iter().map(env_var).collect()),
        ports: some_vec(
            spec.ports
                .iter()
                .map(|p| KubePort {
                    name: p.name.clone(),
                    container_port: p.container_port,
                    protocol: Some(p.protocol.as_str().to_owned()),
                    ..KubePort::default()
                })
                .collect(),
        ),
        resources: spec.pod_resource_spec.as_ref().map(resources),
        liveness_probe: spec
            .life_cycle_mgt
            .as_ref()
            .and_then(|l| l.liveness.as_ref())
            .and_then(probe),
        readiness_probe: spec
            .life_cycle_mgt
            .as_ref()
            .and_then(|l| l.readiness.as_ref())
            .and_then(probe),
        volume_mounts: some_vec(mounts),
        ..Container::default()
    };
    let rolling = spec.rolling_update.as_ref();
    Deployment {
        metadata: w.meta(w.name(), pod_labels.clone()),
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(selector),
                ..LabelSelector::default()
            },
            strategy: Some(KubeStrategy {
                type_: Some("RollingUpdate".to_owned()),
                rolling_update: rolling.and_then(|r| {
                    (r.max_surge.is_some() || r.max_unavailable.is_some()).then(|| {
                        RollingUpdateDeployment {
                            max_surge: r.max_surge.as_ref().map(int_or_percent),
                            max_unavailable: r.max_unavailable.as_ref().map(int_or_percent),
                        }
                    })
                }),
            }),
            min_ready_seconds: rolling.and_then(|r| r.min_ready_seconds).map(int),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    volumes: some_vec(volumes),
                    node_selector: (!spec.node_selector.is_empty())
                        .then(|| spec.node_selector.clone()),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}

fn int_or_percent(value: &IntOrPercent) -> IntOrString {
    match value {
        IntOrPercent::Int(n) => IntOrString::Int(int(*n)),
        IntOrPercent::Percent(p) => IntOrString::String(p.clone()),
    }
}

fn resources(spec: &PodResourceSpec) -> ResourceRequirements {
    let quantities = |cpu: u32, memory: u32| {
        BTreeMap::from([
            ("cpu".to_owned(), Quantity(format!("{cpu}m"))),
            ("memory".to_owned(), Quantity(format!("{memory}Mi"))),
        ])
    };
    ResourceRequirements {
        requests: Some(quantities(spec.cpu_request, spec.memory_request)),
        limits: Some(quantities(spec.cpu_limit, spec.memory_limit)),
        ..ResourceRequirements::default()
    }
}

fn env_var(var: &EnvVariable) -> EnvVar {
    let key = var.key.clone().unwrap_or_default();
    let value_from = match var.var_type {
        EnvVarType::Custom => None,
        EnvVarType::ConfigItem => Some(EnvVarSource {
            config_map_key_ref: Some(ConfigMapKeySelector {
                name: var.config_item.clone().unwrap_or_default(),
                key,
                optional: None,
            }),
            ..EnvVarSource::default()
        }),
        EnvVarType::Secret => Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: var.secret.clone().unwrap_or_default(),
                key,
                optional: None,
            }),
            ..EnvVarSource::default()
        }),
    };
    EnvVar {
        name: var.name.clone(),
        value: match var.var_type {
            EnvVarType::Custom => Some(var.value.clone().unwrap_or_default()),
            _ => None,
        },
        value_from,
    }
}

/// One configMap volume per mount (`config-<i>`), mounted whole at its directory or key
/// by key with `subPath`.
fn config_volumes(spec: &DeploySpec) -> (Vec<Volume>, Vec<VolumeMount>) {
    let mut volumes = Vec::new();
    let mut mounts = Vec::new();
    for (i, mount) in spec.config_mgt_list.iter().enumerate() {
        let name = format!("config-{i}");
        volumes.push(Volume {
            name: name.clone(),
            config_map: Some(ConfigMapVolumeSource {
                name: mount.mount_source.clone(),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        });
        if mount.mount_config_list.is_empty() {
            mounts.push(VolumeMount {
                name,
                mount_path: mount.master_dir(),
                read_only: Some(true),
                ..VolumeMount::default()
            });
        } else {
            for item in &mount.mount_config_list {
                mounts.push(VolumeMount {
                    name: name.clone(),
                    mount_path: mount.path_of(item),
                    sub_path: Some(item.name.clone()),
                    read_only: Some(true),
                    ..VolumeMount::default()
                });
            }
        }
    }
    (volumes, mounts)
}

/// The Kubernetes probe of an enabled check.
fn probe(check: &Probe) -> Option<KubeProbe> {
    if !check.enabled {
        return None;
    }
    let mut probe = KubeProbe {
        initial_delay_seconds: check.initial_delay_seconds.map(int),
        period_seconds: check.period_seconds.map(int),
        success_threshold: check.success_threshold.map(int),
        failure_threshold: check.failure_threshold.map(int),
        timeout_seconds: check.timeout_seconds.map(int),
        ..KubeProbe::default()
    };
    match check.mode? {
        ProbeMode::Exec => {
            probe.exec = Some(ExecAction {
                command: check.exec.as_ref().map(|e| e.command.clone()),
            });
        }
        ProbeMode::HttpGet => {
            let http = check.http_get.as_ref()?;
            probe.http_get = Some(HTTPGetAction {
                host: http.host.clone(),
                path: Some(http.path.clone().unwrap_or_else(|| "/".to_owned())),
                port: IntOrString::Int(http.port?),
                scheme: http.scheme.map(|s| {
                    match s {
                        super::spec::Scheme::Http => "HTTP",
                        super::spec::Scheme::Https => "HTTPS",
                    }
                    .to_owned()
                }),
                http_headers: some_vec(
                    http.header_list
                        .iter()
                        .map(|h| HTTPHeader {
                            name: h.name.clone(),
                            value: h.value.clone(),
                        })
                        .collect(),
                ),
            });
        }
        ProbeMode::TcpSocket => {
            let tcp = check.tcp_socket.as_ref()?;
            probe.tcp_socket = Some(TCPSocketAction {
                host: tcp.host.clone(),
                port: IntOrString::Int(tcp.port?),
            });
        }
    }
    Some(probe)
}

/// The autoscaler of the revision's Deployment, when the spec asks for one.
pub fn hpa(spec: &DeploySpec, w: &Workload<'_>) -> Option<HorizontalPodAutoscaler> {
    let settings: &HpaSpec = spec.hpa.as_ref().filter(|h| h.enabled)?;
    let metric = |resource: &str, utilization: Option<u32>| {
        utilization.map(|u| MetricSpec {
            type_: "Resource".to_owned(),
            resource: Some(ResourceMetricSource {
                name: resource.to_owned(),
                target: MetricTarget {
                    type_: "Utilization".to_owned(),
                    average_utilization: Some(int(u)),
                    ..MetricTarget::default()
                },
            }),
            ..MetricSpec::default()
        })
    };
    let metrics: Vec<MetricSpec> = [
        metric("cpu", settings.target_cpu_utilization),
        metric("memory", settings.target_mem_utilization),
    ]
    .into_iter()
    .flatten()
    .collect();
    Some(HorizontalPodAutoscaler {
        metadata: w.meta(w.name(), w.labels()),
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".to_owned()),
                kind: "Deployment".to_owned(),
                name: w.name(),
            },
            min_replicas: Some(int(settings.min_replicas)),
            max_replicas: int(settings.max_replicas),
            metrics: some_vec(metrics),
            behavior: None,
        }),
        status: None,
    })
}

/// A Service over the pods of every revision of the workload.
pub fn service(service: &ServiceSpec, w: &Workload<'_>) -> Service {
    let node_port = service.service_type == ServiceType::NodePort;
    let selector = BTreeMap::from([
        (NAME_LABEL.to_owned(), w.workload.to_owned()),
        (MANAGED_LABEL.to_owned(), MANAGED_BY.to_owned()),
    ]);
    let ports = service
        .services_ports
        .iter()
        .map(|p| KubeServicePort {
            name: Some(format!("{}-{}", p.protocol.as_str().to_lowercase(), p.port)),
            port: p.port,
            target_port: Some(IntOrString::Int(p.target_port)),
            protocol: Some(p.protocol.as_str().to_owned()),
            node_port: if node_port { p.node_port } else { None },
            ..KubeServicePort::default()
        })
        .collect();
    Service {
        metadata: w.meta(service.name.clone(), w.app_labels()),
        spec: Some(KubeServiceSpec {
            type_: Some(
                match service.service_type {
                    ServiceType::ClusterIP => "ClusterIP",
                    ServiceType::NodePort => "NodePort",
                }
                .to_owned(),
            ),
            selector: Some(selector),
            ports: Some(ports),
            external_traffic_policy: node_port.then(|| {
                match service.traffic_policy {
                    super::spec::TrafficPolicy::Local => "Local",
                    super::spec::TrafficPolicy::Cluster => "Cluster",
                }
                .to_owned()
            }),
            ..KubeServiceSpec::default()
        }),
        status: None,
    }
}

/// The object as YAML (`apiVersion` and `kind` included), ready for `kubectl apply -f`.
pub fn to_yaml<T: serde::Serialize>(object: &T) -> String {
    serde_saphyr::to_string(object).unwrap_or_else(|_| {
        // JSON is YAML too; the YAML writer has no reason to fail on these objects.
        serde_json::to_string_pretty(object).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    const W: Workload<'static> = Workload {
        project: "shop",
        app: "Cart",
        env: "dev",
        workload: "cart",
        namespace: "shop-dev",
        revision: 7,
        change_order: "c0ffee",
    };

    fn spec(value: Value) -> DeploySpec {
        let spec: DeploySpec = serde_json::from_value(value).expect("spec");
        spec.validate().expect("valid");
        spec
    }

    fn json_of<T: serde::Serialize>(object: &T) -> Value {
        serde_json::to_value(object).expect("json")
    }

    #[test]
    fn a_minimal_deployment_carries_wharfs_labels_and_selects_its_revision() {
        let d = json_of(&deployment(
            &spec(json!({"image": "nginx:1.25", "replicas": 3})),
            &W,
            2,
        ));
        assert_eq!(d["apiVersion"], "apps/v1");
        assert_eq!(d["kind"], "Deployment");
        assert_eq!(d["metadata"]["name"], "cart-v7");
        assert_eq!(d["metadata"]["namespace"], "shop-dev");
        assert_eq!(d["metadata"]["annotations"][CHANGE_ANNOTATION], "c0ffee");
        let labels = &d["metadata"]["labels"];
        assert_eq!(labels[NAME_LABEL], "cart");
        assert_eq!(labels[MANAGED_LABEL], "wharf");
        assert_eq!(labels[PROJECT_LABEL], "shop");
        assert_eq!(labels[APP_LABEL], "Cart");
        assert_eq!(labels[ENV_LABEL], "dev");
        assert_eq!(labels[REVISION_LABEL], "7");
        assert_eq!(d["spec"]["template"]["metadata"]["labels"], *labels);
        assert_eq!(
            d["spec"]["selector"]["matchLabels"],
            json!({NAME_LABEL: "cart", REVISION_LABEL: "7"})
        );
        assert_eq!(d["spec"]["replicas"], 2);
        assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate");
        let containers = d["spec"]["template"]["spec"]["containers"]
            .as_array()
            .expect("containers");
        assert_eq!(containers.len(), 1);
        assert_eq!(containers[0]["name"], "cart");
        assert_eq!(containers[0]["image"], "nginx:1.25");
        assert!(containers[0].get("env").is_none() && containers[0].get("command").is_none());
        // The change order id is not on the pod template: a scale must not restart pods.
        assert!(
            d["spec"]["template"]["metadata"]
                .get("annotations")
                .is_none()
        );
    }

    #[test]
    fn the_full_spec_renders_every_part() {
        let s = spec(json!({
            "image": "registry.local/cart:2", "replicas": 3,
            "podResourceSpec": {"cpuRequest": 250, "cpuLimit": 500, "memoryRequest": 256, "memoryLimit": 512},
            "startCommand": {"command": "java -jar /app.jar", "args": ["--server.port=8080"]},
            "envVariableList": [
                {"name": "MODE", "value": "prod"},
                {"name": "LEVEL", "type": "CONFIG_ITEM", "configItem": "app-config", "key": "level"},
                {"name": "PASSWORD", "type": "SECRET", "secret": "db", "key": "password"}
            ],
            "configMgtList": [
                {"mountSource": "app-config"},
                {"mountSource": "nginx-conf", "mountMasterDir": "/etc/nginx",
                 "mountConfigList": [{"name": "nginx.conf"}, {"name": "mime.types", "mountPath": "/etc/mime.types"}]}
            ],
            "lifeCycleMgt": {
                "liveness": {"mode": "HTTP_GET", "httpGet": {"port": 8080, "path": "/healthz", "scheme": "HTTP",
                    "headerList": [{"name": "X-Probe", "value": "1"}]}, "periodSeconds": 10, "failureThreshold": 3},
                "readiness": {"mode": "TCP_SOCKET", "tcpSocket": {"port": 8080}, "initialDelaySeconds": 5}
            },
            "ports": [{"name": "http", "containerPort": 8080}, {"containerPort": 9090, "protocol": "UDP"}],
            "nodeSelector": {"disktype": "ssd"},
            "labels": {"team": "cart"},
            "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0, "minReadySeconds": 5}
        }));
        let d = json_of(&deployment(&s, &W, 3));
        let pod = &d["spec"]["template"]["spec"];
        let c = &pod["containers"][0];
        assert_eq!(
            c["resources"],
            json!({"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}})
        );
        assert_eq!(c["command"], json!(["java", "-jar", "/app.jar"]));
        assert_eq!(c["args"], json!(["--server.port=8080"]));
        assert_eq!(
            c["env"],
            json!([
                {"name": "MODE", "value": "prod"},
                {"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "level"}}},
                {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}
            ])
        );
        assert_eq!(
            pod["volumes"],
            json!([
                {"name": "config-0", "configMap": {"name": "app-config"}},
                {"name": "config-1", "configMap": {"name": "nginx-conf"}}
            ])
        );
        assert_eq!(
            c["volumeMounts"],
            json!([
                {"name": "config-0", "mountPath": "/etc/config/app-config", "readOnly": true},
                {"name": "config-1", "mountPath": "/etc/nginx/nginx.conf", "subPath": "nginx.conf", "readOnly": true},
                {"name": "config-1", "mountPath": "/etc/mime.types", "subPath": "mime.types", "readOnly": true}
            ])
        );
        assert_eq!(
            c["livenessProbe"],
            json!({"httpGet": {"port": 8080, "path": "/healthz", "scheme": "HTTP",
                "httpHeaders": [{"name": "X-Probe", "value": "1"}]}, "periodSeconds": 10, "failureThreshold": 3})
        );
        assert_eq!(
            c["readinessProbe"],
            json!({"tcpSocket": {"port": 8080}, "initialDelaySeconds": 5})
        );
        assert_eq!(
            c["ports"],
            json!([{"name": "http", "containerPort": 8080, "protocol": "TCP"},
                   {"containerPort": 9090, "protocol": "UDP"}])
        );
        assert_eq!(pod["nodeSelector"], json!({"disktype": "ssd"}));
        assert_eq!(d["spec"]["template"]["metadata"]["labels"]["team"], "cart");
        assert_eq!(d["metadata"]["labels"]["team"], "cart");
        assert_eq!(
            d["spec"]["strategy"]["rollingUpdate"],
            json!({"maxSurge": "25%", "maxUnavailable": 0})
        );
        assert_eq!(d["spec"]["minReadySeconds"], 5);
    }

    #[test]
    fn an_autoscaler_targets_the_revision_only_when_asked() {
        assert!(hpa(&spec(json!({"image": "nginx", "replicas": 1})), &W).is_none());
        let s = spec(json!({"image": "nginx", "replicas": 2,
            "podResourceSpec": {"cpuRequest": 100, "cpuLimit": 200, "memoryRequest": 64, "memoryLimit": 128},
            "hpa": {"minReplicas": 2, "maxReplicas": 5, "targetCPUUtilization": 70, "targetMemUtilization": 80}}));
        let h = json_of(&hpa(&s, &W).expect("an autoscaler"));
        assert_eq!(h["apiVersion"], "autoscaling/v2");
        assert_eq!(h["kind"], "HorizontalPodAutoscaler");
        assert_eq!(h["metadata"]["name"], "cart-v7");
        assert_eq!(
            h["spec"]["scaleTargetRef"],
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "cart-v7"})
        );
        assert_eq!(h["spec"]["minReplicas"], 2);
        assert_eq!(h["spec"]["maxReplicas"], 5);
        assert_eq!(
            h["spec"]["metrics"][0],
            json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}})
        );
        assert_eq!(h["spec"]["metrics"][1]["resource"]["name"], "memory");
        let mut off = s.clone();
        if let Some(h) = off.hpa.as_mut() {
            h.enabled = false;
        }
        assert!(hpa(&off, &W).is_none());
    }

    #[test]
    fn a_service_selects_every_revision_and_maps_the_traffic_policy_for_node_ports() {
        let node: ServiceSpec = serde_json::from_value(json!({"name": "cart", "type": "NodePort",
            "servicesPorts": [{"port": 80, "targetPort": 8080, "nodePort": 30080}]}))
        .expect("service");
        let s = json_of(&service(&node, &W));
        assert_eq!(s["apiVersion"], "v1");
        assert_eq!(s["kind"], "Service");
        assert_eq!(s["metadata"]["name"], "cart");
        assert!(s["metadata"]["labels"].get(REVISION_LABEL).is_none());
        assert_eq!(
            s["spec"]["selector"],
            json!({NAME_LABEL: "cart", MANAGED_LABEL: "wharf"})
        );
        assert_eq!(s["spec"]["type"], "NodePort");
        assert_eq!(s["spec"]["externalTrafficPolicy"], "Local");
        assert_eq!(
            s["spec"]["ports"],
            json!([{"name": "tcp-80", "port": 80, "targetPort": 8080, "protocol": "TCP", "nodePort": 30080}])
        );
        let cluster: ServiceSpec =
            serde_json::from_value(json!({"name": "cart", "type": "ClusterIP",
            "trafficPolicy": "Cluster", "servicesPorts": [{"port": 80, "targetPort": 8080}]}))
            .expect("service");
        let s = json_of(&service(&cluster, &W));
        assert!(s["spec"].get("externalTrafficPolicy").is_none());
    }

    /// What a rollout does: server-side apply of every rendered object with kube-rs, on
    /// the embedded cluster; then the pods run and the Service selects them.
    #[tokio::test]
    async fn the_embedded_cluster_takes_every_rendered_object() {
        use kube::Api;
        use kube::api::{ListParams, Patch, PatchParams};

        let _ = rustls::crypto::ring::default_provider().install_default();
        let sim = crate::cluster::Simulator::start(crate::cluster::SimConfig {
            time_scale: 0.0,
            ..crate::cluster::SimConfig::default()
        })
        .expect("simulator");
        let client = sim.client();
        let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
        let namespace =
            serde_json::from_value(json!({"metadata": {"name": "shop-dev"}})).expect("namespace");
        namespaces
            .create(&Default::default(), &namespace)
            .await
            .expect("namespace created");
        let s = spec(json!({"image": "nginx:1.25", "replicas": 2,
            "podResourceSpec": {"cpuRequest": 100, "cpuLimit": 200, "memoryRequest": 64, "memoryLimit": 128},
            "envVariableList": [{"name": "PORT", "value": "8080"}],
            "lifeCycleMgt": {"readiness": {"mode": "HTTP_GET", "httpGet": {"port": 8080}}},
            "ports": [{"containerPort": 8080}],
            "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "0%"},
            "hpa": {"minReplicas": 2, "maxReplicas": 4, "targetCPUUtilization": 60}}));
        let svc: ServiceSpec = serde_json::from_value(json!({"name": "cart", "type": "NodePort",
            "servicesPorts": [{"port": 80, "targetPort": 8080}]}))
        .expect("service");
        let apply = PatchParams::apply("wharf").force();
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop-dev");
        deployments
            .patch("cart-v7", &apply, &Patch::Apply(&deployment(&s, &W, 2)))
            .await
            .expect("the Deployment applies");
        let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), "shop-dev");
        let h = hpa(&s, &W).expect("hpa");
        hpas.patch("cart-v7", &apply, &Patch::Apply(&h))
            .await
            .expect("the autoscaler applies");
        let listed = hpas
            .list(&ListParams::default())
            .await
            .expect("autoscalers list");
        assert_eq!(listed.items.len(), 1);
        assert_eq!(listed.items[0].spec, h.spec);
        let services: Api<Service> = Api::namespaced(client.clone(), "shop-dev");
        let applied = services
            .patch("cart", &apply, &Patch::Apply(&service(&svc, &W)))
            .await
            .expect("the Service applies");
        let node_port = applied
            .spec
            .as_ref()
            .and_then(|s| s.ports.as_ref())
            .and_then(|p| p[0].node_port);
        assert!(
            node_port.is_some_and(|p| (30000..=32767).contains(&p)),
            "{node_port:?}"
        );
        let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client, "shop-dev");
        let selected = format!("{NAME_LABEL}=cart,{MANAGED_LABEL}=wharf,{REVISION_LABEL}=7");
        let mut running = 0;
        for _ in 0..200 {
            running = pods
                .list(&ListParams::default().labels(&selected))
                .await
                .expect("pods")
                .items
                .len();
            if running == 2 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        assert_eq!(
            running, 2,
            "the Deployment's pods carry the Service's selector"
        );
        hpas.delete("cart-v7", &Default::default())
            .await
            .expect("the autoscaler deletes");
    }

    #[test]
    fn the_yaml_reads_back_as_the_same_objects() {
        let s = spec(json!({"image": "nginx:1.25", "replicas": 3,
            "envVariableList": [{"name": "PORT", "value": "8080"}, {"name": "ON", "value": "true"}],
            "podResourceSpec": {"cpuRequest": 100, "cpuLimit": 200, "memoryRequest": 64, "memoryLimit": 128},
            "hpa": {"minReplicas": 1, "maxReplicas": 3, "targetCPUUtilization": 50}}));
        let d = deployment(&s, &W, 3);
        let yaml = to_yaml(&d);
        assert!(yaml.contains("kind: Deployment"), "{yaml}");
        assert!(yaml.contains("apiVersion: apps/v1"), "{yaml}");
        // Strings that look like numbers or booleans stay strings.
        let back: Deployment = serde_saphyr::from_str(&yaml).expect("the YAML parses");
        assert_eq!(back, d);
        let h = hpa(&s, &W).expect("hpa");
        let back: HorizontalPodAutoscaler =
            serde_saphyr::from_str(&to_yaml(&h)).expect("the YAML parses");
        assert_eq!(back, h);
    }
}
