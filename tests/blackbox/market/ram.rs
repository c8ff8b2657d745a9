//! Builders of Rainbond application-model ("RAM") templates as a store serves them
//! (`reference/rainstore.md` §4): a `web` component depending on a `mysql` one, with ports,
//! inner envs, connection info, a config-file volume and resources, plus a `worker` and a
//! `cache` for upgrades. Component keys are stable across versions, as a publisher's are,
//! so install and upgrade can match them.

use serde_json::{Value, json};

/// `service_key` (and publisher `service_id`) of each component.
pub const MYSQL_KEY: &str = "5b1c6a0e2f9d4c3b8a7e6d5c4b3a2910";
pub const WEB_KEY: &str = "9f8e7d6c5b4a39281706f5e4d3c2b1a0";
pub const WORKER_KEY: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";
pub const CACHE_KEY: &str = "c0ffee00c0ffee00c0ffee00c0ffee00";

/// What a test checks a component against after install.
#[derive(Debug, Clone, Copy)]
pub struct Expect {
    pub key: &'static str,
    pub cname: &'static str,
    pub k8s_name: &'static str,
    /// `share_image`: the image pushed to the store's registry, preferred at install.
    pub image: &'static str,
    pub instances: u64,
    pub cpu: u64,
    pub memory: u64,
}

pub const MYSQL: Expect = Expect {
    key: MYSQL_KEY,
    cname: "MySQL",
    k8s_name: "mysql",
    image: "hub.store.test/market/mysql:8.0",
    instances: 1,
    cpu: 500,
    memory: 1024,
};

pub const WEB: Expect = Expect {
    key: WEB_KEY,
    cname: "Web",
    k8s_name: "web",
    image: "hub.store.test/market/web:1.0",
    instances: 2,
    cpu: 250,
    memory: 256,
};

fn share_uuid(key: &str) -> String {
    format!("{key}+{key}")
}

fn hub() -> Value {
    json!({"hub_url": "hub.store.test", "hub_user": "puller", "hub_password": "pull-secret",
           "namespace": "market", "is_trust": true})
}

fn port(container_port: u16, protocol: &str, alias: &str, outer: bool, k8s: &str) -> Value {
    json!({"container_port": container_port, "protocol": protocol, "port_alias": alias,
           "is_inner_service": true, "is_outer_service": outer, "k8s_service_name": k8s,
           "name": format!("{k8s}-{container_port}"), "tenant_id": "publisher-team"})
}

fn env(name: &str, value: &str) -> Value {
    json!({"attr_name": name, "attr_value": value, "name": name.to_lowercase(), "is_change": true})
}

fn connect(name: &str, value: &str, container_port: u16) -> Value {
    json!({"attr_name": name, "attr_value": value, "name": name.to_lowercase(),
           "is_change": true, "container_port": container_port})
}

fn tcp_probe(key: &str, port: u16) -> Value {
    json!({"mode": "readiness", "scheme": "tcp", "port": port, "path": "", "cmd": "",
           "http_header": "", "initial_delay_second": 2, "period_second": 3,
           "timeout_second": 5, "success_threshold": 1, "failure_threshold": 3,
           "is_used": true, "probe_id": format!("probe-{key}"), "service_id": key})
}

/// A component with every field a publisher's export carries.
#[allow(clippy::too_many_arguments)]
fn component(
    expect: &Expect,
    source_image: &str,
    version: &str,
    category: &str,
    extend_method: &str,
    cmd: &str,
    ports: Vec<Value>,
    probes: Vec<Value>,
) -> Value {
    let max_node = if extend_method.ends_with("singleton") {
        1
    } else {
        64
    };
    json!({
        "service_id": expect.key,
        "service_key": expect.key,
        "service_share_uuid": share_uuid(expect.key),
        "service_cname": expect.cname,
        "service_alias": format!("gr{}", &expect.key[26..]),
        "service_name": format!("gr{}", &expect.key[26..]),
        "k8s_component_name": expect.k8s_name,
        "image": source_image,
        "share_image": expect.image,
        "service_image": hub(),
        "share_type": "image",
        "cmd": cmd,
        "version": version,
        "deploy_version": "20260301080000",
        "extend_method": extend_method,
        "extend_method_map": {
            "min_node": expect.instances, "max_node": max_node, "step_node": 1,
            "min_memory": 64, "max_memory": 65536, "step_memory": 64,
            "init_memory": expect.memory, "container_cpu": expect.cpu, "is_restart": 0
        },
        "memory": expect.memory,
        "cpu": expect.cpu,
        "arch": "amd64",
        "category": category,
        "language": "",
        "service_type": "application",
        "service_source": "docker_image",
        "port_map_list": ports,
        "service_env_map_list": [],
        "service_connect_info_map_list": [],
        "service_volume_map_list": [],
        "dep_service_map_list": [],
        "mnt_relation_list": [],
        "probes": probes,
        "service_related_plugin_config": [],
        "component_monitors": [],
        "component_graphs": [],
        "labels": {},
        "component_k8s_attributes": [],
    })
}

/// MySQL: stateful, port 3306 (alias `MYSQL`, inner only), a data volume, a root password
/// for itself and a user and password exported to dependents.
pub fn mysql() -> Value {
    let mut mysql = component(
        &MYSQL,
        "mysql:8.0",
        "8.0",
        "database",
        "state_singleton",
        "",
        vec![port(3306, "mysql", "MYSQL", false, "mysql")],
        vec![tcp_probe(MYSQL_KEY, 3306)],
    );
    mysql["service_env_map_list"] = json!([
        env("MYSQL_ROOT_PASSWORD", "root-secret"),
        env("MYSQL_DATABASE", "shop"),
    ]);
    mysql["service_connect_info_map_list"] = json!([
        connect("MYSQL_USER", "shop", 3306),
        connect("MYSQL_PASSWORD", "shop-secret", 3306),
    ]);
    mysql["service_volume_map_list"] = json!([{
        "volume_name": "data", "volume_path": "/var/lib/mysql", "volume_type": "share-file",
        "file_content": "", "volume_capacity": 10240, "access_mode": "RWO",
        "share_policy": "exclusive", "category": "app_publish", "volume_provider_name": "",
        "backup_policy": "exclusive"
    }]);
    mysql
}

/// The nginx config the web component mounts, reading the database's connection variables.
pub const WEB_CONFIG: &str = "server {\n  listen 8080;\n  location / { proxy_pass http://127.0.0.1:9000; }\n  # database: ${MYSQL_HOST}:${MYSQL_PORT}\n}\n";

/// Web: two stateless replicas on port 8080 (inner and outer), a command line, its own env,
/// a config-file volume, and a dependency on MySQL. `tag` is its version and image tag.
pub fn web(tag: &str) -> Value {
    let expect = WEB;
    let image = format!("hub.store.test/market/web:{tag}");
    let mut web = component(
        &expect,
        &format!("acme/web:{tag}"),
        tag,
        "application",
        "stateless_multiple",
        "web --listen 8080",
        vec![port(8080, "http", "WEB", true, "web")],
        vec![tcp_probe(WEB_KEY, 8080)],
    );
    web["share_image"] = json!(image);
    web["service_env_map_list"] = json!([env("LOG_LEVEL", "info"), env("WEB_WORKERS", "4")]);
    web["service_volume_map_list"] = json!([{
        "volume_name": "nginx-conf", "volume_path": "/etc/nginx/conf.d/default.conf",
        "volume_type": "config-file", "file_content": WEB_CONFIG, "volume_capacity": 0,
        "access_mode": "RWO", "share_policy": "exclusive", "mode": 644,
        "category": "app_publish", "volume_provider_name": "", "backup_policy": "exclusive"
    }]);
    web["dep_service_map_list"] = json!([{"dep_service_key": share_uuid(MYSQL_KEY)}]);
    web
}

/// A background worker with no ports; depends on MySQL.
pub fn worker() -> Value {
    let expect = Expect {
        key: WORKER_KEY,
        cname: "Worker",
        k8s_name: "worker",
        image: "hub.store.test/market/worker:1.0",
        instances: 1,
        cpu: 100,
        memory: 128,
    };
    let mut worker = component(
        &expect,
        "acme/worker:1.0",
        "1.0",
        "application",
        "stateless_multiple",
        "worker --queue default",
        vec![],
        vec![],
    );
    worker["dep_service_map_list"] = json!([{"dep_service_key": share_uuid(MYSQL_KEY)}]);
    worker
}

/// A Redis cache on 6379 (alias `REDIS`).
pub fn cache() -> Value {
    let expect = Expect {
        key: CACHE_KEY,
        cname: "Cache",
        k8s_name: "cache",
        image: "hub.store.test/market/redis:7",
        instances: 1,
        cpu: 200,
        memory: 256,
    };
    component(
        &expect,
        "redis:7",
        "7",
        "cache",
        "state_singleton",
        "",
        vec![port(6379, "tcp", "REDIS", false, "cache")],
        vec![tcp_probe(CACHE_KEY, 6379)],
    )
}

/// A whole template: `group_key` = app id, `group_version` = version.
pub fn template(app_id: &str, name: &str, version: &str, apps: Vec<Value>) -> Value {
    json!({
        "group_key": app_id,
        "group_name": name,
        "group_version": version,
        "group_dev_status": "release",
        "template_version": "v2",
        "governance_mode": "KUBERNETES_NATIVE_SERVICE",
        "arch": "amd64",
        "describe": format!("{name}, published to the fake store"),
        "update_time": "2026-03-01T08:00:00Z",
        "apps": apps,
        "plugins": [],
        "app_config_groups": [],
        "ingress_http_routes": [],
        "ingress_stream_routes": [],
        "k8s_resources": [],
        "annotations": {},
    })
}

/// The two-component shop: `web` (`tag`) depending on `mysql`.
pub fn shop(version: &str, tag: &str) -> Value {
    template("shop-suite", "Shop Suite", version, vec![mysql(), web(tag)])
}

/// `value` with the member at JSON pointer `pointer` removed.
pub fn without(mut value: Value, pointer: &str) -> Value {
    let (parent, last) = pointer
        .rsplit_once('/')
        .expect("a pointer like /apps/0/image");
    let removed = match value.pointer_mut(parent) {
        Some(Value::Object(map)) => map.remove(last).is_some(),
        Some(Value::Array(items)) => match last.parse::<usize>() {
            Ok(i) if i < items.len() => {
                items.remove(i);
                true
            }
            _ => false,
        },
        _ => false,
    };
    assert!(removed, "nothing at {pointer} to remove");
    value
}
