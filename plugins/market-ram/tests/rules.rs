//! Each rule of the Rainbond application model, refused (or defaulted) at its JSON path.

use market_ram::{Identity, MAX_COMPONENTS, MAX_TEMPLATE_BYTES, Template, Violation, parse};
use serde_json::{Value, json};

/// A minimal valid component with key `key`.
fn component(key: &str) -> Value {
    json!({
        "service_key": key,
        "service_id": format!("{key}-id"),
        "image": format!("registry.local/{key}:1"),
        "extend_method": "stateless_multiple",
    })
}

fn template(apps: Vec<Value>) -> Value {
    json!({"group_key": "app", "group_name": "App", "group_version": "1.0", "apps": apps})
}

fn read(doc: &Value) -> Result<Template, Vec<Violation>> {
    parse(&doc.to_string(), Identity::Required).map_err(|v| v.0)
}

fn ok(doc: &Value) -> Template {
    match read(doc) {
        Ok(t) => t,
        Err(v) => panic!("expected a valid template, got {v:?}"),
    }
}

/// The fields of the violations `doc` gets.
fn refused(doc: &Value) -> Vec<String> {
    match read(doc) {
        Ok(_) => panic!("expected violations for {doc}"),
        Err(v) => v.into_iter().map(|v| v.field).collect(),
    }
}

/// `doc` with `apps[0]` changed by `edit`.
fn with_first(edit: impl FnOnce(&mut Value)) -> Value {
    let mut app = component("web");
    edit(&mut app);
    template(vec![app])
}

fn message(doc: &Value, field: &str) -> String {
    match read(doc) {
        Ok(_) => panic!("expected violations"),
        Err(v) => v
            .into_iter()
            .find(|v| v.field == field)
            .map(|v| v.message)
            .unwrap_or_else(|| panic!("no violation at {field}")),
    }
}

#[test]
fn the_document_must_be_a_json_object_with_components() {
    assert_eq!(
        parse("not json", Identity::FromStore).map_err(|v| v.0[0].field.clone()),
        Err(String::new())
    );
    assert_eq!(refused(&json!([1])), [""]);
    assert_eq!(
        refused(&json!({"group_key": "a", "group_name": "A", "group_version": "1"})),
        ["apps"]
    );
    assert_eq!(refused(&template(vec![])), ["apps"]);
    assert_eq!(
        refused(&json!({"group_key": "a", "group_name": "A", "group_version": "1", "apps": {}})),
        ["apps"]
    );
}

#[test]
fn publishing_needs_the_app_id_name_and_version() {
    let doc = json!({"apps": [component("web")]});
    assert_eq!(refused(&doc), ["group_key", "group_name", "group_version"]);
    let empty = json!({"group_key": " ", "group_name": "", "group_version": "", "apps": [component("web")]});
    assert_eq!(
        refused(&empty),
        ["group_key", "group_name", "group_version"]
    );
    // A store's template may lack them: the store's answer names the app.
    let served = parse(&doc.to_string(), Identity::FromStore).expect("valid for serving");
    assert_eq!((served.app_id.as_str(), served.version.as_str()), ("", ""));
    // A numeric version is read as its text.
    let numeric = json!({"group_key": "a", "group_name": "A", "group_version": 2.1, "apps": [component("web")]});
    assert_eq!(ok(&numeric).version, "2.1");
}

#[test]
fn at_most_a_hundred_components_and_four_mebibytes() {
    let many = template(
        (0..=MAX_COMPONENTS)
            .map(|i| component(&format!("c{i}")))
            .collect(),
    );
    assert_eq!(refused(&many), ["apps"]);
    let fits = template(
        (0..MAX_COMPONENTS)
            .map(|i| component(&format!("c{i}")))
            .collect(),
    );
    assert_eq!(ok(&fits).components.len(), MAX_COMPONENTS);
    let huge = format!(
        "{}{}",
        " ".repeat(MAX_TEMPLATE_BYTES),
        template(vec![component("web")])
    );
    let violations = parse(&huge, Identity::Required).expect_err("too big").0;
    assert_eq!(violations[0].field, "");
    assert!(
        violations[0].message.contains("at most 4194304"),
        "{}",
        violations[0].message
    );
}

#[test]
fn component_keys_are_required_and_unique() {
    let doc = with_first(|app| {
        app.as_object_mut().map(|o| o.remove("service_key"));
    });
    assert_eq!(refused(&doc), ["apps[0].service_key"]);
    let twice = template(vec![component("web"), component("db"), component("web")]);
    assert_eq!(refused(&twice), ["apps[2].service_key"]);
    assert_eq!(
        message(&twice, "apps[2].service_key"),
        "`web` is already the key of apps[0]"
    );
    let no_id = with_first(|app| app["service_id"] = json!(""));
    assert_eq!(refused(&no_id), ["apps[0].service_id"]);
    let not_object = template(vec![json!("web")]);
    assert_eq!(refused(&not_object), ["apps[0]"]);
}

#[test]
fn share_image_wins_over_image_and_one_is_required() {
    let shared = with_first(|app| app["share_image"] = json!("store.local/web:1"));
    assert_eq!(ok(&shared).components[0].image, "store.local/web:1");
    let blank_share = with_first(|app| app["share_image"] = json!(""));
    assert_eq!(ok(&blank_share).components[0].image, "registry.local/web:1");
    let none = with_first(|app| {
        app.as_object_mut().map(|o| o.remove("image"));
    });
    assert_eq!(refused(&none), ["apps[0].image"]);
    let slug = with_first(|app| app["share_type"] = json!("slug"));
    assert_eq!(refused(&slug), ["apps[0].share_type"]);
}

#[test]
fn names_commands_and_metadata_take_their_defaults() {
    let bare = ok(&template(vec![component("web")]));
    let web = &bare.components[0];
    assert_eq!(web.name, "default-name");
    assert_eq!(web.k8s_name, "");
    assert_eq!(web.command, None);
    assert_eq!((web.version.as_str(), web.category.as_str()), ("", ""));
    let full = ok(&with_first(|app| {
        app["service_cname"] = json!("Web");
        app["k8s_component_name"] = json!("web-svc");
        app["cmd"] = json!("  serve --port 80 ");
        app["version"] = json!("1.2");
        app["category"] = json!("application");
    }));
    let web = &full.components[0];
    assert_eq!(web.name, "Web");
    assert_eq!(web.k8s_name, "web-svc");
    assert_eq!(web.command.as_deref(), Some("serve --port 80"));
    assert_eq!(
        (web.version.as_str(), web.category.as_str()),
        ("1.2", "application")
    );
    let blank_cmd = ok(&with_first(|app| app["cmd"] = json!("   ")));
    assert_eq!(blank_cmd.components[0].command, None);
    let bad_name = with_first(|app| app["service_cname"] = json!(7));
    assert_eq!(refused(&bad_name), ["apps[0].service_cname"]);
}

#[test]
fn extend_methods_map_legacy_names_and_refuse_unknown_ones() {
    let method = |m: &str| {
        let t = ok(&with_first(|app| app["extend_method"] = json!(m)));
        (
            t.components[0].extend_method.clone(),
            t.components[0].stateful,
        )
    };
    assert_eq!(method("state"), ("state_multiple".into(), true));
    assert_eq!(method("stateless"), ("stateless_multiple".into(), false));
    assert_eq!(method("state_singleton"), ("state_singleton".into(), true));
    assert_eq!(method("job"), ("job".into(), false));
    assert_eq!(
        method("kubeblocks_component"),
        ("kubeblocks_component".into(), false)
    );
    let unknown = with_first(|app| app["extend_method"] = json!("serverless"));
    assert_eq!(refused(&unknown), ["apps[0].extend_method"]);
    assert!(message(&unknown, "apps[0].extend_method").contains("`serverless`"));
    let missing = with_first(|app| {
        app.as_object_mut().map(|o| o.remove("extend_method"));
    });
    assert_eq!(refused(&missing), ["apps[0].extend_method"]);
}

#[test]
fn resources_follow_the_consoles_fallbacks() {
    let resources = |edit: Value| {
        let t = ok(&with_first(|app| {
            if let (Some(app), Some(edit)) = (app.as_object_mut(), edit.as_object()) {
                app.extend(edit.clone());
            }
        }));
        let r = t.components[0].resources;
        (r.instances, r.memory_mb, r.cpu_millicores, r.gpu)
    };
    // Nothing given: one instance, 512 MB, 512/128*20 = 80 millicores.
    assert_eq!(resources(json!({})), (1, 512, 80, 0));
    // init_memory → memory → min_memory; container_cpu → cpu.
    assert_eq!(
        resources(json!({"memory": 300, "cpu": 100, "container_gpu": 2,
            "extend_method_map": {"min_node": 3, "init_memory": 256, "min_memory": 64, "container_cpu": 750}})),
        (3, 256, 750, 2)
    );
    assert_eq!(
        resources(json!({"memory": 300, "cpu": 100, "extend_method_map": {"min_memory": 64}})),
        (1, 300, 100, 0)
    );
    assert_eq!(
        resources(json!({"extend_method_map": {"min_memory": "1024"}})),
        (1, 1024, 160, 0)
    );
    // Zeros fall through, as Python's `or` does; 64 MB derives 10 millicores, and a
    // memory so small that the rule derives nothing gives the 250 fallback.
    assert_eq!(
        resources(
            json!({"memory": 0, "cpu": 0, "extend_method_map": {"min_node": 0, "init_memory": 0, "min_memory": 64}})
        ),
        (1, 64, 10, 0)
    );
    assert_eq!(resources(json!({"memory": 6})), (1, 6, 250, 0));
    // Numeric strings are numbers.
    assert_eq!(
        resources(
            json!({"extend_method_map": {"min_node": "2", "init_memory": "128", "container_cpu": "200"}})
        ),
        (2, 128, 200, 0)
    );
}

#[test]
fn negative_or_non_numeric_resources_are_refused_at_their_path() {
    let doc = with_first(|app| {
        app["memory"] = json!(-1);
        app["cpu"] = json!("lots");
        app["container_gpu"] = json!(true);
        app["extend_method_map"] = json!({"min_node": "-2", "init_memory": 1.5});
    });
    assert_eq!(
        refused(&doc),
        [
            "apps[0].extend_method_map.min_node",
            "apps[0].extend_method_map.init_memory",
            "apps[0].memory",
            "apps[0].cpu",
            "apps[0].container_gpu",
        ]
    );
    let not_object = with_first(|app| app["extend_method_map"] = json!([1]));
    assert_eq!(refused(&not_object), ["apps[0].extend_method_map"]);
}

#[test]
fn ports_need_a_container_port_in_range_and_unique() {
    let doc = with_first(|app| {
        app["port_map_list"] = json!([
            {"container_port": 8080},
            {"container_port": 0},
            {"container_port": 70000},
            {"protocol": "tcp"},
            {"container_port": "8080"},
            {"container_port": "x"},
        ])
    });
    assert_eq!(
        refused(&doc),
        [
            "apps[0].port_map_list[1].container_port",
            "apps[0].port_map_list[2].container_port",
            "apps[0].port_map_list[3].container_port",
            "apps[0].port_map_list[4].container_port",
            "apps[0].port_map_list[5].container_port",
        ]
    );
    assert_eq!(
        message(&doc, "apps[0].port_map_list[4].container_port"),
        "8080 is already a port of this component (apps[0].port_map_list[0])"
    );
    // The same port in two components is fine.
    let two = template(vec![
        json!({"service_key": "a", "service_id": "1", "image": "x", "extend_method": "job", "port_map_list": [{"container_port": 80}]}),
        json!({"service_key": "b", "service_id": "2", "image": "x", "extend_method": "job", "port_map_list": [{"container_port": 80}]}),
    ]);
    assert_eq!(ok(&two).components.len(), 2);
}

#[test]
fn ports_default_to_tcp_and_keep_alias_and_flags() {
    let t = ok(&with_first(|app| {
        app["port_map_list"] = json!([
            {"container_port": 5000},
            {"container_port": 80, "protocol": "HTTP", "port_alias": "WEB", "is_inner_service": true, "is_outer_service": true},
            {"container_port": 53, "protocol": "", "is_inner_service": null},
        ])
    }));
    let ports: Vec<(u16, &str, &str, bool, bool)> = t.components[0]
        .ports
        .iter()
        .map(|p| {
            (
                p.container_port,
                p.protocol.as_str(),
                p.alias.as_str(),
                p.inner,
                p.outer,
            )
        })
        .collect();
    assert_eq!(
        ports,
        [
            (5000, "tcp", "", false, false),
            (80, "http", "WEB", true, true),
            (53, "tcp", "", false, false)
        ]
    );
    let bad_flag = with_first(|app| {
        app["port_map_list"] = json!([{"container_port": 80, "is_outer_service": "yes"}])
    });
    assert_eq!(
        refused(&bad_flag),
        ["apps[0].port_map_list[0].is_outer_service"]
    );
}

#[test]
fn envs_and_connection_info_need_valid_variable_names() {
    let t = ok(&with_first(|app| {
        app["service_env_map_list"] = json!([{"attr_name": "A_B", "attr_value": "1"}, {"attr_name": "my.var", "attr_value": 5}, {"attr_name": "EMPTY"}]);
        app["service_connect_info_map_list"] =
            json!([{"attr_name": "DB_USER", "attr_value": "root"}]);
    }));
    let web = &t.components[0];
    let envs: Vec<(&str, &str)> = web
        .envs
        .iter()
        .map(|e| (e.name.as_str(), e.value.as_str()))
        .collect();
    assert_eq!(envs, [("A_B", "1"), ("my.var", "5"), ("EMPTY", "")]);
    assert_eq!(web.connection_info[0].name, "DB_USER");
    let doc = with_first(|app| {
        app["service_env_map_list"] =
            json!([{"attr_name": "1ST"}, {"attr_name": "A B"}, {"attr_value": "x"}]);
        app["service_connect_info_map_list"] = json!([{"attr_name": "OK"}, {"attr_name": "NO=PE"}]);
    });
    assert_eq!(
        refused(&doc),
        [
            "apps[0].service_env_map_list[0].attr_name",
            "apps[0].service_env_map_list[1].attr_name",
            "apps[0].service_env_map_list[2].attr_name",
            "apps[0].service_connect_info_map_list[1].attr_name",
        ]
    );
    assert!(message(&doc, "apps[0].service_env_map_list[0].attr_name").contains("`1ST`"));
}

#[test]
fn volumes_need_a_name_an_absolute_path_and_a_type() {
    let doc = with_first(|app| {
        app["service_volume_map_list"] = json!([
            {"volume_name": "data", "volume_path": "data", "volume_type": "local"},
            {"volume_path": "/a", "volume_type": "local"},
            {"volume_name": "b", "volume_path": "/b"},
            {"volume_name": "c", "volume_path": "/c", "volume_type": "local", "volume_capacity": -5},
            {"volume_name": "d", "volume_path": "/d", "volume_type": "local"},
            {"volume_name": "d", "volume_path": "/e", "volume_type": "local"},
            {"volume_name": "f", "volume_path": "/d", "volume_type": "local"},
        ])
    });
    assert_eq!(
        refused(&doc),
        [
            "apps[0].service_volume_map_list[0].volume_path",
            "apps[0].service_volume_map_list[1].volume_name",
            "apps[0].service_volume_map_list[2].volume_type",
            "apps[0].service_volume_map_list[3].volume_capacity",
            "apps[0].service_volume_map_list[5].volume_name",
            "apps[0].service_volume_map_list[6].volume_path",
        ]
    );
}

#[test]
fn config_files_keep_their_content_and_octal_mode() {
    let t = ok(&with_first(|app| {
        app["service_volume_map_list"] = json!([
            {"volume_name": "conf", "volume_path": "/etc/app.conf", "volume_type": "config-file", "file_content": "a=1\n", "mode": 644},
            {"volume_name": "script", "volume_path": "/bin/run.sh", "volume_type": "config-file", "file_content": "#!/bin/sh", "mode": "755"},
            {"volume_name": "data", "volume_path": "/data", "volume_type": "share-file", "volume_capacity": "1024", "file_content": "ignored"},
        ])
    }));
    let volumes = &t.components[0].volumes;
    assert_eq!(volumes[0].content.as_deref(), Some("a=1\n"));
    assert_eq!(volumes[0].mode, Some(0o644));
    assert_eq!(volumes[0].mode, Some(420));
    assert_eq!(volumes[1].mode, Some(0o755));
    assert_eq!(
        (
            volumes[2].content.as_deref(),
            volumes[2].mode,
            volumes[2].capacity_mb
        ),
        (None, None, 1024)
    );
    let bad = with_first(|app| {
        app["service_volume_map_list"] = json!([
            {"volume_name": "a", "volume_path": "/a", "volume_type": "config-file", "mode": 648},
            {"volume_name": "b", "volume_path": "/b", "volume_type": "config-file", "mode": "rw"},
            {"volume_name": "c", "volume_path": "/c", "volume_type": "config-file", "mode": 17777},
        ])
    });
    assert_eq!(
        refused(&bad),
        [
            "apps[0].service_volume_map_list[0].mode",
            "apps[0].service_volume_map_list[1].mode",
            "apps[0].service_volume_map_list[2].mode",
        ]
    );
    assert!(message(&bad, "apps[0].service_volume_map_list[0].mode").contains("not octal"));
}

#[test]
fn dependencies_resolve_by_share_uuid_or_key() {
    let mut web = component("web");
    web["dep_service_map_list"] = json!([{"dep_service_key": "db+db-id"}, {"dep_service_key": "cache"}, {"dep_service_key": "db+db-id"}]);
    let mut db = component("db");
    db["service_share_uuid"] = json!("db+db-id");
    // No share uuid: named by its key.
    let cache = component("cache");
    let t = ok(&template(vec![web, db, cache]));
    assert_eq!(t.components[0].depends_on, ["db", "cache"]);
    assert!(t.components[1].depends_on.is_empty());
}

#[test]
fn unknown_dependencies_are_refused_not_dropped() {
    let mut web = component("web");
    web["dep_service_map_list"] = json!([{"dep_service_key": "gone+1"}, {}]);
    let doc = template(vec![web]);
    assert_eq!(
        refused(&doc),
        [
            "apps[0].dep_service_map_list[1].dep_service_key",
            "apps[0].dep_service_map_list[0].dep_service_key",
        ]
    );
    assert!(
        message(&doc, "apps[0].dep_service_map_list[0].dep_service_key")
            .contains("`gone+1` matches no component")
    );
    // A key is not an alias for a share uuid: a component with a uuid is named by it only.
    let mut web = component("web");
    web["dep_service_map_list"] = json!([{"dep_service_key": "db"}]);
    let mut db = component("db");
    db["service_share_uuid"] = json!("db+db-id");
    assert_eq!(
        refused(&template(vec![web, db])),
        ["apps[0].dep_service_map_list[0].dep_service_key"]
    );
}

#[test]
fn dependency_cycles_are_refused_naming_the_components() {
    let dep = |key: &str, on: &[&str]| {
        let mut c = component(key);
        c["dep_service_map_list"] = on.iter().map(|k| json!({"dep_service_key": k})).collect();
        c
    };
    let doc = template(vec![
        dep("web", &["api"]),
        dep("api", &["db"]),
        dep("db", &["web"]),
        dep("cron", &["db"]),
    ]);
    assert_eq!(refused(&doc), ["apps[0].dep_service_map_list"]);
    assert_eq!(
        message(&doc, "apps[0].dep_service_map_list"),
        "dependency cycle: web → api → db → web"
    );
    let itself = template(vec![dep("web", &["web"])]);
    assert_eq!(
        refused(&itself),
        ["apps[0].dep_service_map_list[0].dep_service_key"]
    );
    let duplicate_uuid = {
        let mut a = component("a");
        a["service_share_uuid"] = json!("same");
        let mut b = component("b");
        b["service_share_uuid"] = json!("same");
        template(vec![a, b])
    };
    assert_eq!(refused(&duplicate_uuid), ["apps[1].service_share_uuid"]);
}

#[test]
fn every_violation_is_reported_at_once() {
    let mut broken = component("web");
    broken["extend_method"] = json!("nope");
    broken["port_map_list"] = json!([{"container_port": -1}]);
    let doc =
        json!({"group_name": "App", "group_version": "1", "apps": [broken, json!({"image": "x"})]});
    assert_eq!(
        refused(&doc),
        [
            "group_key",
            "apps[0].extend_method",
            "apps[0].port_map_list[0].container_port",
            "apps[1].service_key",
            "apps[1].service_id",
            "apps[1].extend_method",
        ]
    );
}
