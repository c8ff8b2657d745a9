//! Harness tests of `check` and `manage` against the in-memory kv.

use serde_json::{Value, json};
use wharf_sdk::HostError;
use wharf_sdk::authorizer::{AuthorizeError, Authorizer, Decision, Request, Subject, Violation};
use wharf_sdk::harness::{self, Host};

use super::*;

fn admin() -> Subject {
    Subject {
        is_admin: true,
        ..Subject::user("admin", &[])
    }
}

fn manage(host: &Host, who: &Subject, op: &str, input: Value) -> Result<Value, AuthorizeError> {
    host.run(|| AuthzRbac::manage(who.clone(), op.to_string(), input.to_string()))
        .map(|out| serde_json::from_str(&out).expect("manage output is JSON"))
}

/// Binds as the admin, so tests can set up any policy.
fn bind(host: &Host, subject: &str, role: &str, scope: &str) -> Value {
    let input = json!({ "subject": subject, "role": role, "scope": scope });
    manage(host, &admin(), "binding.create", input).expect("admin binds")
}

fn decide(host: &Host, who: &Subject, action: &str, resource: &str) -> Decision {
    let decisions = host
        .run(|| AuthzRbac::check(who.clone(), vec![Request::new(action, resource)]))
        .expect("check succeeds");
    assert_eq!(decisions.len(), 1);
    decisions.into_iter().next().unwrap_or(Decision::Allow)
}

fn allowed(host: &Host, who: &Subject, action: &str, resource: &str) -> bool {
    decide(host, who, action, resource).is_allow()
}

fn fields(result: Result<Value, AuthorizeError>) -> Vec<String> {
    match result {
        Err(AuthorizeError::InvalidRequest(violations)) => {
            violations.into_iter().map(|v| v.field).collect()
        }
        other => panic!("expected InvalidRequest, got {other:?}"),
    }
}

#[test]
fn builtin_roles_come_from_code() {
    let host = Host::new();
    let roles = manage(&host, &Subject::user("u", &[]), "role.list", json!({})).expect("list");
    let names: Vec<&str> = roles["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "system-admin",
            "project-owner",
            "maintainer",
            "developer",
            "viewer",
            "pipeline-viewer",
            "pipeline-runner",
            "pipeline-editor",
            "pipeline-manager"
        ]
    );
    assert_eq!(roles["items"][0]["actions"], json!(["*"]));
    assert_eq!(roles["items"][0]["builtin"], json!(true));
    assert!(host.kv_keys().is_empty(), "built-ins are not stored");
}

#[test]
fn bindings_inherit_down_the_scope_path() {
    let host = Host::new();
    bind(&host, "user:alice", "developer", "project:shop");
    let alice = Subject::user("alice", &[]);
    assert!(allowed(
        &host,
        &alice,
        "app.deploy",
        "project:shop/app:cart/env:prod"
    ));
    assert!(allowed(&host, &alice, "project.read", "project:shop"));
    assert!(!allowed(
        &host,
        &alice,
        "app.delete",
        "project:shop/app:cart"
    ));
    assert!(!allowed(&host, &alice, "project.read", "system"));
    assert_eq!(
        decide(&host, &alice, "app.deploy", "project:other/app:cart"),
        Decision::Deny("no role grants `app.deploy` on `project:other/app:cart`".into())
    );
    // A prefix of the name is not a parent scope.
    assert!(!allowed(
        &host,
        &alice,
        "app.deploy",
        "project:shopping/app:cart"
    ));
}

#[test]
fn one_decision_per_request_in_order() {
    let host = Host::new();
    bind(&host, "user:alice", "viewer", "project:shop/app:cart");
    let decisions = host
        .run(|| {
            AuthzRbac::check(
                Subject::user("alice", &[]),
                vec![
                    Request::new("app.read", "project:shop/app:cart/env:prod"),
                    Request::new("app.update", "project:shop/app:cart"),
                    Request::new("session.delete", "system"),
                    Request::new("app.list", "project:shop"),
                ],
            )
        })
        .expect("check");
    let allows: Vec<bool> = decisions.iter().map(Decision::is_allow).collect();
    assert_eq!(allows, [true, false, true, false]);
}

#[test]
fn group_bindings_apply_to_members() {
    let host = Host::new();
    bind(&host, "group:ops", "maintainer", "project:shop");
    let bob = Subject::user("bob", &["dev", "ops"]);
    let carol = Subject::user("carol", &["dev"]);
    assert!(allowed(
        &host,
        &bob,
        "env.update",
        "project:shop/app:cart/env:prod"
    ));
    assert!(!allowed(&host, &bob, "member.create", "project:shop"));
    assert!(!allowed(
        &host,
        &carol,
        "env.update",
        "project:shop/app:cart/env:prod"
    ));
}

#[test]
fn ids_that_cannot_be_bound_cannot_borrow_grants() {
    let host = Host::new();
    bind(&host, "group:a", "system-admin", "system");
    // `group:a|system` is a key prefix of group `a`'s system grant; it must not match.
    let mallory = Subject::user("mallory", &["a|system"]);
    assert!(!allowed(&host, &mallory, "plugin.enable", "plugin:hello"));
    let member = Subject::user("m", &["a"]);
    assert!(allowed(&host, &member, "plugin.enable", "plugin:hello"));
}

#[test]
fn admin_is_allowed_everything_without_kv() {
    let host = Host::new().fail_kv(HostError::Unavailable("store offline".into()));
    let decisions = host
        .run(|| {
            AuthzRbac::check(
                admin(),
                vec![
                    Request::new("plugin.enable", "plugin:hello"),
                    Request::new("user.delete", "user:42"),
                ],
            )
        })
        .expect("check");
    assert_eq!(decisions, vec![Decision::Allow, Decision::Allow]);
}

#[test]
fn self_service_is_allowed_to_anyone_without_kv() {
    let host = Host::new().fail_kv(HostError::Unavailable("store offline".into()));
    let nobody = Subject::user("nobody", &[]);
    for action in [
        "session.read",
        "token.revoke",
        "user.change-own-password",
        "permission.read",
        "permission.grant",
        "authz.check",
        "market.list",
        "market.read",
    ] {
        assert!(allowed(&host, &nobody, action, "system"), "{action}");
    }
    // Anything else needs the bindings, and a kv failure must fail closed.
    let result = host.run(|| AuthzRbac::check(nobody, vec![Request::new("user.list", "system")]));
    assert_eq!(
        result,
        Err(AuthorizeError::Unavailable(
            "unavailable: store offline".into()
        ))
    );
}

#[test]
fn per_app_permission_flags_as_a_custom_role() {
    let host = Host::new();
    let role = manage(
        &host,
        &admin(),
        "role.create",
        json!({
            "name": "app-deployer",
            "description": "Deploys and reviews deploy tasks",
            "actions": ["app.read", "app.deploy", "app.review-deploy", "app.read"],
        }),
    )
    .expect("created");
    assert_eq!(
        role,
        json!({
            "name": "app-deployer",
            "description": "Deploys and reviews deploy tasks",
            "actions": ["app.read", "app.deploy", "app.review-deploy"],
            "builtin": false,
        })
    );
    assert_eq!(host.kv_get_json::<Value>("role/app-deployer"), Some(role));
    let names: Vec<Value> = manage(&host, &admin(), "role.list", json!({})).expect("list")["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|r| r["name"].clone())
        .collect();
    assert_eq!(names.last(), Some(&json!("app-deployer")));

    bind(&host, "user:bob", "app-deployer", "project:shop/app:cart");
    let bob = Subject::user("bob", &[]);
    assert!(allowed(
        &host,
        &bob,
        "app.review-deploy",
        "project:shop/app:cart/env:prod"
    ));
    assert!(!allowed(
        &host,
        &bob,
        "app.restart",
        "project:shop/app:cart"
    ));
    assert!(!allowed(&host, &bob, "app.deploy", "project:shop/app:web"));
}

#[test]
fn custom_role_with_unknown_permission_is_rejected() {
    let host = Host::new();
    let result = manage(
        &host,
        &admin(),
        "role.create",
        json!({ "name": "odd", "actions": ["app.read", "widget.spin"] }),
    );
    assert_eq!(
        result,
        Err(AuthorizeError::UnknownPermission("widget.spin".into()))
    );
    assert!(host.kv_keys().is_empty());
}

#[test]
fn custom_role_input_is_validated_field_by_field() {
    let host = Host::new();
    let create = |input: Value| manage(&host, &admin(), "role.create", input);
    assert_eq!(
        fields(create(
            json!({ "name": "X", "actions": ["app.read", "app", "*.*"] })
        )),
        ["name", "actions[1]", "actions[2]"]
    );
    assert_eq!(
        fields(create(json!({ "name": "viewer", "actions": ["*"] }))),
        ["name"]
    );
    assert_eq!(
        fields(create(json!({ "actions": [] }))),
        ["name", "actions"]
    );
    assert_eq!(
        fields(create(
            json!({ "name": "abc", "actions": "app.read", "colour": 1 })
        )),
        ["colour", "actions"]
    );
    create(json!({ "name": "abc", "actions": ["*.read"] })).expect("created");
    assert_eq!(
        create(json!({ "name": "abc", "actions": ["*.list"] })),
        Err(AuthorizeError::invalid("name", "role `abc` already exists"))
    );
}

#[test]
fn only_role_managers_create_and_delete_roles() {
    let host = Host::new();
    bind(&host, "user:owner", "project-owner", "project:shop");
    bind(&host, "user:root", "system-admin", "system");
    let input = json!({ "name": "auditor", "actions": ["audit.*"] });
    let owner = Subject::user("owner", &[]);
    assert!(matches!(
        manage(&host, &owner, "role.create", input.clone()),
        Err(AuthorizeError::Forbidden(m)) if m.contains("role.manage")
    ));
    manage(&host, &Subject::user("root", &[]), "role.create", input).expect("root creates");
    assert!(matches!(
        manage(&host, &owner, "role.delete", json!({ "name": "auditor" })),
        Err(AuthorizeError::Forbidden(_))
    ));
}

#[test]
fn role_delete_refuses_builtin_unknown_and_used_roles() {
    let host = Host::new();
    let delete = |name: &str| manage(&host, &admin(), "role.delete", json!({ "name": name }));
    assert_eq!(
        delete("viewer"),
        Err(AuthorizeError::Forbidden(
            "built-in roles cannot be deleted".into()
        ))
    );
    assert_eq!(
        delete("ghost"),
        Err(AuthorizeError::NotFound(
            "role `ghost` does not exist".into()
        ))
    );
    manage(
        &host,
        &admin(),
        "role.create",
        json!({ "name": "restarter", "actions": ["app.restart"] }),
    )
    .expect("created");
    let b1 = bind(&host, "user:a", "restarter", "project:shop");
    bind(&host, "group:g", "restarter", "project:web");
    assert_eq!(
        delete("restarter"),
        Err(AuthorizeError::Forbidden(
            "role `restarter` is used by 2 bindings".into()
        ))
    );
    manage(&host, &admin(), "binding.delete", json!({ "id": b1["id"] })).expect("unbound");
    assert_eq!(
        delete("restarter"),
        Err(AuthorizeError::Forbidden(
            "role `restarter` is used by 1 binding".into()
        ))
    );
    let list = manage(
        &host,
        &admin(),
        "binding.list",
        json!({ "subject": "group:g" }),
    );
    let id = list.expect("list")["items"][0]["id"].clone();
    manage(&host, &admin(), "binding.delete", json!({ "id": id })).expect("unbound");
    assert_eq!(delete("restarter"), Ok(json!({})));
    assert_eq!(host.kv_get("role/restarter"), None);
}

#[test]
fn grants_never_exceed_what_the_granter_holds() {
    let host = Host::new();
    bind(&host, "user:maint", "maintainer", "project:shop");
    bind(&host, "user:owner", "project-owner", "project:shop");
    let maint = Subject::user("maint", &[]);
    let owner = Subject::user("owner", &[]);
    let grant = |who: &Subject, role: &str, scope: &str| {
        let input = json!({ "subject": "user:dev", "role": role, "scope": scope });
        manage(&host, who, "binding.create", input)
    };

    assert_eq!(
        grant(&maint, "project-owner", "project:shop"),
        Err(AuthorizeError::Forbidden(
            "not allowed to grant role `project-owner` at `project:shop`: \
             no role grants `project.manage-permissions` there"
                .into()
        ))
    );
    let binding = grant(&owner, "developer", "project:shop/app:cart").expect("owner grants");
    assert_eq!(binding["subject"], "user:dev");
    assert_eq!(binding["createdBy"], "user:owner");
    assert!(matches!(
        grant(&owner, "developer", "project:other"),
        Err(AuthorizeError::Forbidden(m)) if m.contains("project.manage-permissions")
    ));
    assert_eq!(
        grant(&owner, "system-admin", "project:shop"),
        Err(AuthorizeError::Forbidden(
            "not allowed to grant role `system-admin` at `project:shop`: \
             it includes `*`, which you do not hold there"
                .into()
        ))
    );
    // `*.read` reaches beyond the project's resources, so an owner cannot hand it out.
    assert!(grant(&owner, "viewer", "project:shop").is_err());
    // The granted developer can now deploy the app, but cannot grant anything.
    let dev = Subject::user("dev", &[]);
    assert!(allowed(
        &host,
        &dev,
        "app.deploy",
        "project:shop/app:cart/env:prod"
    ));
    assert!(matches!(
        grant(&dev, "developer", "project:shop/app:cart"),
        Err(AuthorizeError::Forbidden(_))
    ));
}

#[test]
fn binding_create_validates_and_is_idempotent() {
    let host = Host::new();
    let create = |input: Value| manage(&host, &admin(), "binding.create", input);
    assert_eq!(
        fields(create(
            json!({ "subject": "alice", "role": "viewer", "scope": "project:shop/env:x" })
        )),
        ["subject", "scope"]
    );
    assert_eq!(fields(create(json!({}))), ["subject", "role", "scope"]);
    assert_eq!(
        create(json!({ "subject": "user:a", "role": "ghost", "scope": "system" })),
        Err(AuthorizeError::NotFound(
            "role `ghost` does not exist".into()
        ))
    );
    let input = json!({ "subject": "user:a", "role": "viewer", "scope": "project:shop" });
    let first = create(input.clone()).expect("created");
    assert_eq!(
        first,
        json!({ "id": "1", "subject": "user:a", "role": "viewer", "scope": "project:shop", "createdBy": "user:admin" })
    );
    assert_eq!(create(input), Ok(first));
    assert_eq!(host.kv_get_json::<u64>("next-binding-id"), Some(1));
}

#[test]
fn binding_delete_needs_manage_permissions_at_its_scope() {
    let host = Host::new();
    bind(&host, "user:owner", "project-owner", "project:shop");
    let in_shop = bind(&host, "user:dev", "developer", "project:shop/app:cart");
    let elsewhere = bind(&host, "user:dev", "developer", "project:web");
    let owner = Subject::user("owner", &[]);
    let delete = |id: &Value| manage(&host, &owner, "binding.delete", json!({ "id": id }));

    assert!(matches!(
        delete(&elsewhere["id"]),
        Err(AuthorizeError::Forbidden(_))
    ));
    assert_eq!(delete(&in_shop["id"]), Ok(json!({ "deleted": true })));
    assert_eq!(
        delete(&in_shop["id"]),
        Err(AuthorizeError::NotFound(format!(
            "binding `{}` does not exist",
            in_shop["id"].as_str().unwrap_or_default()
        )))
    );
    let dev = Subject::user("dev", &[]);
    assert!(!allowed(&host, &dev, "app.deploy", "project:shop/app:cart"));
    assert!(allowed(&host, &dev, "app.deploy", "project:web/app:api"));
}

#[test]
fn binding_list_filters_by_subject_and_scope() {
    let host = Host::new();
    bind(&host, "user:a", "viewer", "project:shop");
    bind(&host, "user:a", "developer", "project:shop/app:cart");
    bind(&host, "group:g", "viewer", "project:shop");
    let list = |input: Value| {
        let out = manage(&host, &admin(), "binding.list", input).expect("list");
        out["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|b| b["id"].as_str().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(list(json!({})), ["1", "2", "3"]);
    assert_eq!(list(json!({ "subject": "user:a" })), ["1", "2"]);
    assert_eq!(list(json!({ "scope": "project:shop" })), ["1", "3"]);
    assert_eq!(
        list(json!({ "subject": "user:a", "scope": "project:shop/app:cart" })),
        ["2"]
    );
    assert!(list(json!({ "subject": "nobody" })).is_empty());
}

#[test]
fn who_can_and_what_can_read_both_sides() {
    let host = Host::new();
    manage(
        &host,
        &admin(),
        "role.create",
        json!({ "name": "app-deployer", "actions": ["app.read", "app.deploy"] }),
    )
    .expect("created");
    bind(&host, "user:alice", "project-owner", "project:shop");
    bind(&host, "group:qa", "viewer", "project:shop");
    bind(&host, "user:bob", "app-deployer", "project:shop/app:cart");
    bind(&host, "user:zed", "developer", "project:web");
    let inspector = admin();
    let who = |action: &str, resource: &str| {
        let input = json!({ "action": action, "resource": resource });
        manage(&host, &inspector, "query.who-can", input).expect("who-can")
    };
    assert_eq!(
        who("app.deploy", "project:shop/app:cart"),
        json!({ "subjects": ["user:alice", "user:bob"] })
    );
    assert_eq!(
        who("app.read", "project:shop/app:cart/env:prod"),
        json!({ "subjects": ["group:qa", "user:alice", "user:bob"] })
    );
    assert_eq!(
        who("app.deploy", "project:shop/app:web"),
        json!({ "subjects": ["user:alice"] })
    );

    let what = |subject: &str, resource: &str| {
        let input = json!({ "subject": subject, "resource": resource });
        manage(&host, &inspector, "query.what-can", input).expect("what-can")
    };
    assert_eq!(
        what("user:bob", "project:shop/app:cart/env:prod"),
        json!({ "actions": ["app.deploy", "app.read"] })
    );
    assert_eq!(what("user:bob", "project:shop"), json!({ "actions": [] }));
    assert_eq!(
        what("group:qa", "project:shop"),
        json!({ "actions": ["*.list", "*.read", "app.favourite"] })
    );

    assert_eq!(
        fields(manage(
            &host,
            &inspector,
            "query.who-can",
            json!({ "action": "app.*" })
        )),
        ["resource", "action"]
    );
    assert_eq!(
        fields(manage(
            &host,
            &inspector,
            "query.what-can",
            json!({ "subject": "bob", "resource": "system" })
        )),
        ["subject"]
    );
}

#[test]
fn listings_page_past_one_kv_page() {
    let host = Host::new();
    host.run(|| {
        for i in 0..1100 {
            store::create_binding(
                &format!("user:u{i}"),
                "viewer",
                "project:shop",
                "user:admin",
            )
            .expect("stored");
        }
    });
    let input = json!({ "action": "app.read", "resource": "project:shop" });
    let out = manage(&host, &admin(), "query.who-can", input).expect("who-can");
    assert_eq!(out["subjects"].as_array().map(Vec::len), Some(1100));
}

#[test]
fn bad_input_and_unknown_operations() {
    let host = Host::new();
    let anyone = Subject::user("x", &[]);
    let raw = |op: &str, input: &str| {
        host.run(|| AuthzRbac::manage(anyone.clone(), op.to_string(), input.to_string()))
    };
    assert!(matches!(
        raw("binding.list", "{nope"),
        Err(AuthorizeError::InvalidRequest(v)) if v.len() == 1 && v[0].field == "input"
    ));
    assert_eq!(
        raw("binding.list", "[]"),
        Err(AuthorizeError::InvalidRequest(vec![Violation::new(
            "input",
            "must be a JSON object"
        )]))
    );
    assert!(raw("role.list", "").is_ok(), "empty input means {{}}");
    assert_eq!(
        raw("role.rename", "{}"),
        Err(AuthorizeError::Unsupported(
            "operation `role.rename` is not offered by authz-rbac".into()
        ))
    );
}

#[test]
fn mutations_are_logged() {
    let host = Host::new();
    bind(&host, "user:a", "viewer", "project:shop");
    assert_eq!(
        host.log_messages(),
        ["binding 1: role `viewer` to user:a at `project:shop`, by user:admin"]
    );
}

#[test]
fn manifest_matches_info() {
    let manifest = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/wharf-plugin.toml"));
    harness::assert_manifest_matches(manifest, &info());
}

#[test]
fn who_holds_what_is_visible_only_to_those_who_administer_it() {
    let host = Host::new();
    bind(&host, "user:owner", "project-owner", "project:shop");
    bind(&host, "user:dev", "developer", "project:shop/app:cart");
    bind(&host, "user:other", "viewer", "project:web");
    let ids = |who: &Subject| {
        let out = manage(&host, who, "binding.list", json!({})).expect("list");
        out["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|b| b["subject"].as_str().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(&Subject::user("dev", &[])),
        ["user:dev"],
        "a plain member sees only its own bindings"
    );
    assert_eq!(
        ids(&Subject::user("owner", &[])),
        ["user:owner", "user:dev"],
        "an owner sees its project's bindings"
    );
    let who = json!({ "action": "app.read", "resource": "project:web" });
    assert!(matches!(
        manage(&host, &Subject::user("dev", &[]), "query.who-can", who),
        Err(AuthorizeError::Forbidden(_))
    ));
    let own = json!({ "subject": "user:dev", "resource": "project:shop/app:cart" });
    assert!(
        manage(&host, &Subject::user("dev", &[]), "query.what-can", own).is_ok(),
        "anyone may ask about itself"
    );
    let other = json!({ "subject": "user:other", "resource": "project:web" });
    assert!(matches!(
        manage(&host, &Subject::user("dev", &[]), "query.what-can", other),
        Err(AuthorizeError::Forbidden(_))
    ));
}

#[test]
fn a_user_defined_pipeline_ignores_project_bindings() {
    let host = Host::new();
    bind(&host, "user:dev", "developer", "project:shop");
    bind(&host, "user:owner", "project-owner", "project:shop");
    let dev = Subject::user("dev", &[]);
    let pipeline = "project:shop/pipeline:release";
    assert!(
        allowed(&host, &dev, "pipeline.run", pipeline),
        "DEFAULT inherits the project"
    );
    let set = json!({ "scope": pipeline, "mode": "USER_DEFINED" });
    assert!(matches!(
        manage(&host, &dev, "pipeline.set-mode", set.clone()),
        Err(AuthorizeError::Forbidden(_))
    ));
    manage(
        &host,
        &Subject::user("owner", &[]),
        "pipeline.set-mode",
        set,
    )
    .expect("owner sets the mode");
    assert!(
        !allowed(&host, &dev, "pipeline.run", pipeline),
        "USER_DEFINED cuts inheritance"
    );
    assert!(
        allowed(&host, &dev, "pipeline.run", "project:shop/pipeline:other"),
        "other pipelines still inherit"
    );
    bind(&host, "user:dev", "developer", pipeline);
    assert!(
        allowed(&host, &dev, "pipeline.run", pipeline),
        "a binding at the pipeline itself counts"
    );
    let mode = manage(
        &host,
        &admin(),
        "pipeline.get-mode",
        json!({ "scope": pipeline }),
    )
    .expect("mode");
    assert_eq!(mode["mode"], "USER_DEFINED");
    let bad = manage(
        &host,
        &admin(),
        "pipeline.set-mode",
        json!({ "scope": "project:shop", "mode": "DEFAULT" }),
    );
    assert!(matches!(bad, Err(AuthorizeError::InvalidRequest(_))));
}

#[test]
fn user_defined_pipeline_members_get_exactly_their_role() {
    let host = Host::new();
    let pipeline = "project:shop/pipeline:6f1c2b7e-0d4a-4b8e-9c1f-2a3b4c5d6e7f";
    bind(&host, "user:dev", "developer", "project:shop");
    bind(&host, "user:lead", "maintainer", "project:shop");
    bind(&host, "user:owner", "project-owner", "project:shop");
    let owner = Subject::user("owner", &[]);
    let set = |mode: &str| json!({ "scope": pipeline, "mode": mode });
    manage(&host, &owner, "pipeline.set-mode", set("USER_DEFINED")).expect("owner sets the mode");

    let dev = Subject::user("dev", &[]);
    for action in ["pipeline.read", "pipeline.run", "pipeline.approve"] {
        assert!(
            !allowed(&host, &dev, action, pipeline),
            "project developer: {action}"
        );
    }
    assert!(
        !allowed(&host, &owner, "pipeline.run", pipeline),
        "the project's roles do not reach in, the owner's neither"
    );
    // The project's administrators still administer it: give it members, or set it back.
    assert!(allowed(
        &host,
        &owner,
        "pipeline.manage-permissions",
        pipeline
    ));
    let grant = json!({ "subject": "user:dev", "role": "pipeline-runner", "scope": pipeline });
    manage(&host, &owner, "binding.create", grant).expect("owner adds a member");
    let grant = json!({ "subject": "group:qa", "role": "pipeline-viewer", "scope": pipeline });
    manage(&host, &Subject::user("lead", &[]), "binding.create", grant)
        .expect("a maintainer (pipeline.*) adds a member too");
    let grant = json!({ "subject": "user:x", "role": "pipeline-manager", "scope": pipeline });
    assert!(
        matches!(
            manage(&host, &dev, "binding.create", grant),
            Err(AuthorizeError::Forbidden(_))
        ),
        "a runner does not manage members"
    );

    assert!(allowed(&host, &dev, "pipeline.run", pipeline));
    assert!(allowed(&host, &dev, "pipeline.read", pipeline));
    assert!(!allowed(&host, &dev, "pipeline.update", pipeline));
    assert!(!allowed(&host, &dev, "pipeline.approve", pipeline));
    let qa = Subject::user("tess", &["qa"]);
    assert!(allowed(&host, &qa, "pipeline.read", pipeline));
    assert!(!allowed(&host, &qa, "pipeline.run", pipeline));
    let who = json!({ "action": "pipeline.run", "resource": pipeline });
    let runners = manage(&host, &owner, "query.who-can", who).expect("who-can");
    assert_eq!(runners["subjects"], json!(["user:dev"]));

    manage(&host, &owner, "pipeline.set-mode", set("DEFAULT")).expect("and back");
    assert!(allowed(&host, &owner, "pipeline.run", pipeline));
    assert!(allowed(&host, &dev, "pipeline.run", pipeline));
    assert!(!allowed(&host, &dev, "pipeline.approve", pipeline));
}

#[test]
fn pipeline_approval_follows_project_roles_in_default_mode() {
    let host = Host::new();
    let pipeline = "project:shop/pipeline:release";
    bind(&host, "user:dev", "developer", "project:shop");
    bind(&host, "user:lead", "maintainer", "project:shop");
    bind(&host, "user:owner", "project-owner", "project:shop");
    bind(&host, "user:mgr", "pipeline-manager", pipeline);
    for (user, may) in [
        ("dev", false),
        ("lead", true),
        ("owner", true),
        ("mgr", true),
    ] {
        assert_eq!(
            allowed(
                &host,
                &Subject::user(user, &[]),
                "pipeline.approve",
                pipeline
            ),
            may,
            "{user}"
        );
    }
    assert!(
        !allowed(
            &host,
            &Subject::user("mgr", &[]),
            "pipeline.approve",
            "project:shop/pipeline:other"
        ),
        "a pipeline binding covers that pipeline only"
    );
}

fn ids(host: &Host, input: Value) -> Vec<String> {
    let out = manage(host, &admin(), "binding.list", input).expect("list");
    out["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|b| b["id"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn delete_under_takes_every_binding_at_or_below_whole_segments_only() {
    let host = Host::new();
    bind(&host, "user:a", "project-owner", "project:shop");
    bind(&host, "user:b", "developer", "project:shop/app:cart");
    bind(&host, "user:b", "viewer", "project:shop/app:cart/env:prod");
    bind(
        &host,
        "group:g",
        "developer",
        "project:shop/pipeline:release",
    );
    let kept = [
        bind(&host, "user:a", "project-owner", "project:shopping"),
        bind(&host, "user:b", "viewer", "system"),
    ];
    let pipeline = json!({ "scope": "project:shop/pipeline:release", "mode": "USER_DEFINED" });
    manage(&host, &admin(), "pipeline.set-mode", pipeline).expect("mode set");

    let out = manage(
        &host,
        &admin(),
        "binding.delete-under",
        json!({ "scope": "project:shop" }),
    );
    assert_eq!(out, Ok(json!({ "deleted": 4 })));
    let left: Vec<String> = kept
        .iter()
        .filter_map(|b| b["id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(ids(&host, json!({})), left);
    assert!(
        !host
            .kv_keys()
            .iter()
            .any(|k| k.contains("project:shop/") || k.contains("project:shop|")),
        "no record of project:shop is left: {:?}",
        host.kv_keys()
    );
    // Granted again, the new project starts from nothing.
    bind(&host, "user:c", "project-owner", "project:shop");
    let b = Subject::user("b", &[]);
    assert!(!allowed(
        &host,
        &b,
        "app.deploy",
        "project:shop/app:cart/env:prod"
    ));
    assert!(allowed(
        &host,
        &Subject::user("a", &[]),
        "app.deploy",
        "project:shopping/app:x"
    ));
}

#[test]
fn delete_under_one_environment_of_every_app() {
    let host = Host::new();
    bind(
        &host,
        "user:b",
        "developer",
        "project:shop/app:cart/env:prod",
    );
    bind(
        &host,
        "user:b",
        "developer",
        "project:shop/app:pay/env:prod",
    );
    let kept = [
        bind(
            &host,
            "user:b",
            "developer",
            "project:shop/app:cart/env:production",
        ),
        bind(&host, "user:b", "developer", "project:shop/app:cart"),
    ];
    let out = manage(
        &host,
        &admin(),
        "binding.delete-under",
        json!({ "scope": "project:shop/app:*/env:prod" }),
    );
    assert_eq!(out, Ok(json!({ "deleted": 2 })));
    let left: Vec<String> = kept
        .iter()
        .filter_map(|b| b["id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(ids(&host, json!({})), left);
}

#[test]
fn delete_under_needs_manage_permissions_where_the_pattern_is_fixed() {
    let host = Host::new();
    bind(&host, "user:owner", "project-owner", "project:shop");
    bind(&host, "user:dev", "developer", "project:shop/app:cart");
    let under = |who: &str, scope: &str| {
        manage(
            &host,
            &Subject::user(who, &[]),
            "binding.delete-under",
            json!({ "scope": scope }),
        )
    };
    assert!(matches!(
        under("dev", "project:shop/app:cart"),
        Err(AuthorizeError::Forbidden(_))
    ));
    assert!(matches!(
        under("owner", "project:web"),
        Err(AuthorizeError::Forbidden(_))
    ));
    assert_eq!(fields(under("owner", "system")), ["scope"]);
    assert_eq!(fields(under("owner", "project:*")), ["scope"]);
    assert_eq!(
        under("owner", "project:shop/app:*/env:prod"),
        Ok(json!({ "deleted": 0 }))
    );
    assert_eq!(
        under("owner", "project:shop/app:cart"),
        Ok(json!({ "deleted": 1 }))
    );
}

#[test]
fn delete_under_reports_storage_failures() {
    let failing = Host::new()
        .kv("grant/user:a|project:shop|project-owner|1", Vec::new())
        .fail_kv(HostError::Unavailable("disk gone".into()));
    let out = manage(
        &failing,
        &admin(),
        "binding.delete-under",
        json!({ "scope": "project:shop" }),
    );
    assert!(
        matches!(out, Err(AuthorizeError::Unavailable(_))),
        "{out:?}"
    );
}

#[test]
fn keep_role_refuses_to_remove_the_last_user_holding_it() {
    let host = Host::new();
    let first = bind(&host, "user:a", "project-owner", "project:shop");
    let second = bind(&host, "user:b", "project-owner", "project:shop");
    bind(&host, "group:ops", "project-owner", "project:shop");
    let developer = bind(&host, "user:c", "developer", "project:shop");
    let delete = |binding: &Value| {
        manage(
            &host,
            &admin(),
            "binding.delete",
            json!({ "id": binding["id"], "keepRole": "project-owner" }),
        )
        .expect("delete answers")
    };
    assert_eq!(delete(&first), json!({ "deleted": true }));
    // A group is not a user who can run the project.
    assert_eq!(
        delete(&second),
        json!({
            "deleted": false,
            "reason": "user:b is the last user holding `project-owner` at `project:shop`"
        })
    );
    assert!(allowed(
        &host,
        &Subject::user("b", &[]),
        "project.delete",
        "project:shop"
    ));
    // Other roles are not guarded by it.
    assert_eq!(delete(&developer), json!({ "deleted": true }));
    // Without the guard the last owner goes (an admin repairing the policy).
    let plain = manage(
        &host,
        &admin(),
        "binding.delete",
        json!({ "id": second["id"] }),
    );
    assert_eq!(plain, Ok(json!({ "deleted": true })));
}

#[test]
fn keep_role_decides_on_the_holders_record_that_a_racing_removal_swapped() {
    let host = Host::new();
    let first = bind(&host, "user:a", "project-owner", "project:shop");
    let second = bind(&host, "user:b", "project-owner", "project:shop");
    let record = |b: &Value| -> store::Binding {
        let id = b["id"].as_str().expect("id").to_owned();
        host.run(|| store::binding(&id))
            .expect("read")
            .expect("exists")
    };
    let (first, second) = (record(&first), record(&second));
    // Another host's removal of `a` has swapped the holders record but not yet deleted
    // `a`'s grant key: the index still shows two owners, the record one.
    let key = "holders/project:shop|project-owner";
    let mut holders: Vec<store::Holder> = host.kv_get_json(key).expect("holders record");
    assert_eq!(holders.len(), 2);
    holders.retain(|h| h.id != first.id);
    host.run(|| wharf_sdk::kv::set_json(key, &holders))
        .expect("swapped");
    let removal = host.run(|| store::delete_binding(&second, Some("project-owner")));
    assert_eq!(removal, Ok(store::Removal::LastHolder));
}

#[test]
fn bindings_made_before_holders_records_are_derived_from_the_index() {
    // Two owners bound by an older authz-rbac: grant keys and records, no holders record.
    let host = Host::new()
        .kv("binding/1", br#"{"id":"1","subject":"user:a","role":"project-owner","scope":"project:shop","createdBy":"user:admin"}"#.to_vec())
        .kv("grant/user:a|project:shop|project-owner|1", Vec::new())
        .kv("binding/2", br#"{"id":"2","subject":"user:b","role":"project-owner","scope":"project:shop","createdBy":"user:admin"}"#.to_vec())
        .kv("grant/user:b|project:shop|project-owner|2", Vec::new())
        .kv("next-binding-id", b"2".to_vec());
    let delete = |id: &str| {
        manage(
            &host,
            &admin(),
            "binding.delete",
            json!({ "id": id, "keepRole": "project-owner" }),
        )
        .expect("delete answers")
    };
    assert_eq!(delete("1")["deleted"], json!(true));
    assert_eq!(delete("2")["deleted"], json!(false));
    assert_eq!(ids(&host, json!({})), ["2"]);
}

#[test]
fn maintainers_install_market_apps_in_their_project_only() {
    let host = Host::new();
    bind(&host, "user:mia", "maintainer", "project:shop");
    bind(&host, "user:dave", "developer", "project:shop");
    let mia = Subject::user("mia", &[]);
    let dave = Subject::user("dave", &[]);
    for action in ["market.install", "market.upgrade", "market.uninstall"] {
        assert!(allowed(&host, &mia, action, "project:shop"), "{action}");
        assert!(!allowed(&host, &mia, action, "project:bank"), "{action}");
        assert!(!allowed(&host, &dave, action, "project:shop"), "{action}");
    }
    // Market administration is for the system administrator.
    assert!(!allowed(&host, &mia, "market.create", "system"));
    assert!(!allowed(&host, &mia, "market.publish", "system"));
}
