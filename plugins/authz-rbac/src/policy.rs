//! The RBAC rules as pure functions: built-in roles, self-service actions, action patterns
//! (syntax, matching, one pattern covering another), scope paths (syntax, inheritance) and
//! the syntax of role names and binding subjects. No kv, no host calls: unit-tested here.

/// A role defined in code: always present, never stored, never deletable.
pub struct BuiltinRole {
    pub name: &'static str,
    pub description: &'static str,
    pub actions: &'static [&'static str],
}

pub const BUILTIN_ROLES: &[BuiltinRole] = &[
    BuiltinRole {
        name: "system-admin",
        description: "Everything, everywhere.",
        actions: &["*"],
    },
    BuiltinRole {
        name: "project-owner",
        description: "Runs a project: its apps, environments, pipelines, deployments, configuration, images, market installs and members, and grants permissions within it.",
        actions: &[
            "project.*",
            "app.*",
            "app-group.*",
            "env.*",
            "pipeline.*",
            "deploy.*",
            "deploy-config.*",
            "config.*",
            "member.*",
            "artifact.*",
            "market.install",
            "market.upgrade",
            "market.uninstall",
            "*.manage-permissions",
        ],
    },
    BuiltinRole {
        name: "maintainer",
        description: "Manages apps, environments, pipelines, deployments, configuration, images and market installs; reads the project and its members.",
        actions: &[
            "project.read",
            "app.*",
            "app-group.*",
            "env.*",
            "pipeline.*",
            "deploy.*",
            "deploy-config.*",
            "config.*",
            "artifact.*",
            "market.install",
            "market.upgrade",
            "market.uninstall",
            "member.read",
        ],
    },
    BuiltinRole {
        name: "developer",
        description: "Works on apps: updates, deploys, restarts and observes them, runs pipelines, and pulls and pushes images.",
        actions: &[
            "project.read",
            "app.read",
            "app.list",
            "app.favourite",
            "app-group.list",
            "app.update",
            "app.deploy",
            "app.restart",
            "app.view-log",
            "app.view-monitor",
            "env.read",
            "pipeline.read",
            "pipeline.list",
            "pipeline.run",
            "config.read",
            "deploy-config.read",
            "deploy-config.list",
            "deploy.read",
            "deploy.list",
            "deploy.create",
            "deploy.scale",
            "deploy.start",
            "deploy.stop",
            "deploy.restart",
            "deploy.rollback",
            "deploy.next-batch",
            "deploy.abort",
            "deploy.service",
            "artifact.read",
            "artifact.push",
        ],
    },
    BuiltinRole {
        name: "viewer",
        description: "Reads and lists everything in its scope, and marks apps as favourites.",
        actions: &["*.read", "*.list", "app.favourite"],
    },
    // Seed 001 §5.12 pipeline members (view, run, edit, manage), meant to be bound at a
    // pipeline scope (`project:<code>/pipeline:<id>`); each holds what the previous does.
    BuiltinRole {
        name: "pipeline-viewer",
        description: "Sees a pipeline, its runs, logs and outputs.",
        actions: &["pipeline.read", "pipeline.list"],
    },
    BuiltinRole {
        name: "pipeline-runner",
        description: "Sees a pipeline and starts, aborts and retries its runs.",
        actions: &["pipeline.read", "pipeline.list", "pipeline.run"],
    },
    BuiltinRole {
        name: "pipeline-editor",
        description: "Runs a pipeline, changes its definition, rolls its runs back and replays their steps.",
        actions: &[
            "pipeline.read",
            "pipeline.list",
            "pipeline.run",
            "pipeline.update",
            "pipeline.rollback",
            "pipeline.replay",
        ],
    },
    BuiltinRole {
        name: "pipeline-manager",
        description: "Everything on a pipeline: also approves its steps, deletes it and manages its members.",
        actions: &["pipeline.*"],
    },
];

/// Actions any authenticated subject may take. `permission.grant` is here because the real
/// check (may this caller grant that role there?) happens in `binding.create`.
pub const SELF_SERVICE: &[&str] = &[
    "session.*",
    "token.*",
    "user.change-own-password",
    "permission.read",
    "permission.grant",
    "authz.check",
    // Listing projects is filtered project by project by the host.
    "project.list",
    // Gray-rule dry runs change nothing; naming an environment or a change order in
    // one is checked by the host as reading it.
    "gray.validate",
    "gray.evaluate",
    // Browsing a market (its apps, versions and templates) changes nothing and returns no
    // secret: the access key never leaves the host. Creating, changing, deleting and
    // publishing to markets stay with the system administrator.
    "market.list",
    "market.read",
    // Seed 001's pipeline routes name a pipeline or run by id only; the host finds it and
    // then asks for the real action (`pipeline.run`, `pipeline.read`, …) on the pipeline.
    "pipeline.find",
    // Likewise seed 001's artifact routes (`getPackage`, `listImagesPage`, …): the host
    // finds the package or project and asks for `artifact.read` on it.
    "artifact.find",
];

/// Resource names a custom role's action pattern may name (`*` is always allowed).
pub const KNOWN_RESOURCES: &[&str] = &[
    "project",
    "app",
    "app-group",
    "env",
    "pipeline",
    "deploy",
    "deploy-config",
    "config",
    "member",
    "plugin",
    "plugin-trust",
    "user",
    "token",
    "session",
    "audit",
    "permission",
    "role",
    "binding",
    "group",
    "authz",
    "health",
    "metrics",
    "openapi",
    "artifact",
    "market",
    "gray-rule",
    "cluster",
    "region",
    "resource-pool",
    "namespace",
    "node",
    "system",
];

pub fn builtin(name: &str) -> Option<&'static BuiltinRole> {
    BUILTIN_ROLES.iter().find(|r| r.name == name)
}

/// `[a-z][a-z0-9-]*`: a resource or verb name.
fn is_word(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Splits a pattern or action into (resource, verb); `*` alone means (`*`, `*`).
fn parts(pattern: &str) -> (&str, &str) {
    match pattern.split_once('.') {
        Some(parts) => parts,
        None if pattern == "*" => ("*", "*"),
        // No dot: not an action at all. Parts no pattern can name keep it unmatched except
        // by `*`, which matches everything by definition.
        None => ("\0", "\0"),
    }
}

/// Checks a pattern's syntax: `*`, `<res>.*`, `*.<verb>` or `<res>.<verb>`.
pub fn check_pattern(pattern: &str) -> Result<(), String> {
    const SHAPE: &str =
        "must be `*`, `<resource>.*`, `*.<verb>` or `<resource>.<verb>` (lowercase words)";
    if pattern == "*" {
        return Ok(());
    }
    match pattern.split_once('.') {
        Some(("*", "*")) => Err("`*.*` is written `*`".to_string()),
        Some((res, verb)) if (res == "*" || is_word(res)) && (verb == "*" || is_word(verb)) => {
            Ok(())
        }
        _ => Err(SHAPE.to_string()),
    }
}

/// The resource a well-formed pattern names, `None` for `*` and `*.<verb>`.
pub fn pattern_resource(pattern: &str) -> Option<&str> {
    match parts(pattern).0 {
        "*" => None,
        res => Some(res),
    }
}

/// Whether `holder` allows everything `pattern` allows. An action is a pattern without
/// wildcards, so this is also "does `holder` match this action".
pub fn covers(holder: &str, pattern: &str) -> bool {
    let (hr, hv) = parts(holder);
    let (pr, pv) = parts(pattern);
    (hr == "*" || hr == pr) && (hv == "*" || hv == pv)
}

pub fn is_self_service(action: &str) -> bool {
    SELF_SERVICE.iter().any(|p| covers(p, action))
}

/// Whether a binding at `scope` applies to `resource`: bindings inherit downwards.
pub fn scope_covers(scope: &str, resource: &str) -> bool {
    scope == "system"
        || resource
            .strip_prefix(scope)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Whether USER_DEFINED pipeline scopes cut `action` off from bindings above them. Not for
/// administering permissions (`*.manage-permissions`): a project's administrators must
/// still be able to give a USER_DEFINED pipeline its members, or set it back to DEFAULT;
/// reaching the pipeline's other actions then takes a binding at the pipeline, like anyone.
pub fn isolation_applies(action: &str) -> bool {
    !covers("*.manage-permissions", action)
}

/// Whether a binding at `scope` reaches `resource`: it covers it, and no USER_DEFINED
/// pipeline scope lies strictly between the two (seed 001: such a pipeline's permissions
/// are its own, not inherited from the project).
pub fn reaches(scope: &str, resource: &str, isolated: &[String]) -> bool {
    scope_covers(scope, resource)
        && !isolated
            .iter()
            .any(|cut| cut != scope && scope_covers(scope, cut) && scope_covers(cut, resource))
}

/// An id inside a scope or subject: 1–64 of `[A-Za-z0-9._@-]`. Narrow on purpose: ids end
/// up inside kv keys, where `|` and `/` are separators.
fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 64 {
        return Err("ids must be 1 to 64 characters".to_string());
    }
    match id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-')))
    {
        Some(c) => Err(format!(
            "`{c}` is not allowed in an id (letters, digits, `._@-`)"
        )),
        None => Ok(()),
    }
}

/// Checks a binding scope: `system`, `project:<code>`, `project:<code>/app:<name>`,
/// `project:<code>/app:<name>/env:<code>` or `project:<code>/pipeline:<id>`.
pub fn check_scope(scope: &str) -> Result<(), String> {
    if scope == "system" {
        return Ok(());
    }
    let segments: Vec<&str> = scope.split('/').collect();
    let kinds: Vec<&str> = segments
        .iter()
        .map(|s| s.split_once(':').map_or("", |(kind, _)| kind))
        .collect();
    if !matches!(
        kinds.as_slice(),
        ["project"] | ["project", "app"] | ["project", "app", "env"] | ["project", "pipeline"]
    ) {
        return Err(
            "must be `system`, `project:<code>`, `project:<code>/app:<name>`, \
                    `project:<code>/app:<name>/env:<code>` or `project:<code>/pipeline:<id>`"
                .to_string(),
        );
    }
    segments.iter().try_for_each(|s| {
        let (kind, id) = s.split_once(':').unwrap_or((s, ""));
        check_id(id).map_err(|e| format!("`{kind}`: {e}"))
    })
}

/// Checks a scope pattern for removing everything at or below it: a binding scope other
/// than `system`, in which any segment after the project may name every id of its kind
/// with `*` (`project:shop/app:*/env:prod`: that environment of every app).
pub fn check_scope_pattern(pattern: &str) -> Result<(), String> {
    if pattern == "system" {
        return Err("must be below `system`: everything cannot be removed at once".to_string());
    }
    let concrete: Vec<String> = pattern
        .split('/')
        .enumerate()
        .map(|(i, segment)| match segment.split_once(':') {
            // Any valid id stands in for `*`, so the rest of the syntax is checked as usual.
            Some((kind, "*")) if i > 0 => format!("{kind}:x"),
            _ => segment.to_string(),
        })
        .collect();
    check_scope(&concrete.join("/"))
}

/// Whether a binding at `scope` lies at or below `pattern`, segment by segment (so
/// `project:shop` never matches `project:shopping`), `<kind>:*` matching any id of its kind.
pub fn pattern_covers(pattern: &str, scope: &str) -> bool {
    let mut segments = scope.split('/');
    pattern.split('/').all(|wanted| {
        segments.next().is_some_and(|segment| {
            segment == wanted
                || wanted.strip_suffix(":*").is_some_and(|kind| {
                    segment
                        .split_once(':')
                        .is_some_and(|(segment_kind, _)| segment_kind == kind)
                })
        })
    })
}

/// The segments of a pattern before its first `*`: where its bindings are administered.
pub fn pattern_base(pattern: &str) -> &str {
    match pattern.find(":*") {
        Some(at) => pattern[..at]
            .rfind('/')
            .map_or(pattern, |slash| &pattern[..slash]),
        None => pattern,
    }
}

/// The kind of a scope's last segment (`system`, `project`, `app`, `env`, `pipeline`):
/// granting at a scope needs `<kind>.manage-permissions` there.
pub fn scope_kind(scope: &str) -> &str {
    let last = scope.rsplit('/').next().unwrap_or(scope);
    last.split_once(':').map_or(last, |(kind, _)| kind)
}

/// Checks a binding subject: `user:<id>` or `group:<id>`.
pub fn check_subject(subject: &str) -> Result<(), String> {
    match subject.split_once(':') {
        Some(("user" | "group", id)) => check_id(id),
        _ => Err("must be `user:<id>` or `group:<id>`".to_string()),
    }
}

/// Checks a custom role name: 3–32 of `^[a-z][a-z0-9-]*$`.
pub fn check_role_name(name: &str) -> Result<(), String> {
    if !(3..=32).contains(&name.len()) || !is_word(name) {
        return Err(
            "must be 3 to 32 characters: a lowercase letter, then lowercase letters, digits or `-`"
                .to_string(),
        );
    }
    if builtin(name).is_some() {
        return Err(format!("`{name}` is a built-in role"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_actions() {
        assert!(covers("*", "app.deploy"));
        assert!(covers("app.*", "app.deploy"));
        assert!(!covers("app.*", "env.deploy"));
        assert!(covers("*.read", "plugin.read"));
        assert!(!covers("*.read", "plugin.list"));
        assert!(covers("app.deploy", "app.deploy"));
        assert!(!covers("app.deploy", "app.deploy-all"));
        assert!(!covers("app.read", "app"));
        assert!(!covers("app.*", "app"));
        assert!(covers("*", "garbage"));
    }

    #[test]
    fn patterns_cover_patterns() {
        assert!(covers("*", "*"));
        assert!(covers("*", "app.*"));
        assert!(covers("app.*", "app.*"));
        assert!(!covers("app.*", "*"));
        assert!(!covers("app.*", "*.read"));
        assert!(covers("*.read", "*.read"));
        assert!(covers("*.read", "app.read"));
        assert!(!covers("*.read", "app.*"));
        assert!(!covers("app.read", "app.*"));
    }

    #[test]
    fn pattern_syntax() {
        for ok in ["*", "app.*", "*.read", "plugin-trust.list-keys", "a1.b-2"] {
            assert_eq!(check_pattern(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "*.*",
            "app",
            "App.read",
            "app.",
            ".read",
            "app.read.x",
            "a b.c",
            "**",
        ] {
            assert!(check_pattern(bad).is_err(), "{bad}");
        }
        assert_eq!(pattern_resource("*.read"), None);
        assert_eq!(pattern_resource("app.*"), Some("app"));
        assert_eq!(pattern_resource("*"), None);
    }

    #[test]
    fn every_builtin_pattern_is_well_formed_and_known() {
        for role in BUILTIN_ROLES {
            for p in role.actions {
                assert_eq!(check_pattern(p), Ok(()), "{}: {p}", role.name);
                if let Some(res) = pattern_resource(p) {
                    assert!(KNOWN_RESOURCES.contains(&res), "{}: {p}", role.name);
                }
            }
        }
    }

    #[test]
    fn scopes_inherit_downwards() {
        assert!(scope_covers("system", "plugin:hello"));
        assert!(scope_covers("project:shop", "project:shop"));
        assert!(scope_covers(
            "project:shop",
            "project:shop/app:cart/env:prod"
        ));
        assert!(!scope_covers("project:shop", "project:shopping"));
        assert!(!scope_covers("project:shop/app:cart", "project:shop"));
        assert!(!scope_covers("project:shop", "system"));
    }

    #[test]
    fn scope_syntax_and_kind() {
        for ok in [
            "system",
            "project:shop",
            "project:shop/app:cart",
            "project:shop/app:cart/env:prod",
            "project:shop/pipeline:42",
        ] {
            assert_eq!(check_scope(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "project",
            "project:",
            "app:cart",
            "project:shop/env:prod",
            "project:shop/pipeline:1/env:x",
            "project:shop/app:cart/",
            "project:a|b",
            "system/project:shop",
        ] {
            assert!(check_scope(bad).is_err(), "{bad}");
        }
        assert_eq!(scope_kind("system"), "system");
        assert_eq!(scope_kind("project:shop"), "project");
        assert_eq!(scope_kind("project:shop/app:cart/env:prod"), "env");
        assert_eq!(scope_kind("project:shop/pipeline:7"), "pipeline");
    }

    #[test]
    fn patterns_match_whole_segments_at_or_below() {
        assert!(pattern_covers("project:shop", "project:shop"));
        assert!(pattern_covers(
            "project:shop",
            "project:shop/app:cart/env:prod"
        ));
        assert!(pattern_covers("project:shop", "project:shop/pipeline:7"));
        assert!(!pattern_covers("project:shop", "project:shopping"));
        assert!(!pattern_covers("project:shop", "project:shopping/app:cart"));
        assert!(!pattern_covers("project:shop/app:cart", "project:shop"));
        assert!(!pattern_covers(
            "project:shop/app:cart",
            "project:shop/app:cartel"
        ));
        assert!(!pattern_covers("project:shop", "system"));
        let every_prod = "project:shop/app:*/env:prod";
        assert!(pattern_covers(every_prod, "project:shop/app:cart/env:prod"));
        assert!(pattern_covers(every_prod, "project:shop/app:pay/env:prod"));
        assert!(!pattern_covers(
            every_prod,
            "project:shop/app:cart/env:production"
        ));
        assert!(!pattern_covers(every_prod, "project:shop/app:cart"));
        assert!(!pattern_covers(every_prod, "project:shop/pipeline:7"));
        assert!(!pattern_covers(
            every_prod,
            "project:other/app:cart/env:prod"
        ));
    }

    #[test]
    fn scope_pattern_syntax_and_base() {
        for ok in [
            "project:shop",
            "project:shop/app:cart",
            "project:shop/app:*/env:prod",
            "project:shop/pipeline:7",
        ] {
            assert_eq!(check_scope_pattern(ok), Ok(()), "{ok}");
        }
        for bad in [
            "system",
            "",
            "project:*",
            "project:shop/app:*x",
            "project:shop/env:prod",
        ] {
            assert!(check_scope_pattern(bad).is_err(), "{bad}");
        }
        assert_eq!(pattern_base("project:shop"), "project:shop");
        assert_eq!(
            pattern_base("project:shop/app:cart"),
            "project:shop/app:cart"
        );
        assert_eq!(pattern_base("project:shop/app:*/env:prod"), "project:shop");
    }

    #[test]
    fn subjects_and_role_names() {
        assert_eq!(check_subject("user:6f1c-aa"), Ok(()));
        assert_eq!(check_subject("group:ops"), Ok(()));
        for bad in ["alice", "user:", "team:x", "user:a/b", "group:a|b"] {
            assert!(check_subject(bad).is_err(), "{bad}");
        }
        assert_eq!(check_role_name("app-deployer"), Ok(()));
        for bad in ["ab", "1abc", "App", "a_b", "viewer", &"a".repeat(33)] {
            assert!(check_role_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn self_service() {
        assert!(is_self_service("session.delete"));
        assert!(is_self_service("token.revoke"));
        assert!(is_self_service("permission.grant"));
        assert!(!is_self_service("user.list"));
        assert!(!is_self_service("permission.revoke"));
        assert!(is_self_service("market.list"));
        assert!(is_self_service("market.read"));
        for admin_only in [
            "market.create",
            "market.update",
            "market.delete",
            "market.publish",
            "market.install",
        ] {
            assert!(!is_self_service(admin_only), "{admin_only}");
        }
    }

    fn holds(role: &str, action: &str) -> bool {
        builtin(role).is_some_and(|r| r.actions.iter().any(|p| covers(p, action)))
    }

    #[test]
    fn pipeline_member_roles_nest() {
        let levels: [(&str, &[&str]); 4] = [
            ("pipeline-viewer", &["pipeline.read", "pipeline.list"]),
            ("pipeline-runner", &["pipeline.run"]),
            (
                "pipeline-editor",
                &["pipeline.update", "pipeline.rollback", "pipeline.replay"],
            ),
            (
                "pipeline-manager",
                &[
                    "pipeline.approve",
                    "pipeline.create",
                    "pipeline.delete",
                    "pipeline.manage-permissions",
                ],
            ),
        ];
        for (level, (role, _)) in levels.iter().enumerate() {
            for (other, (_, actions)) in levels.iter().enumerate() {
                for action in *actions {
                    assert_eq!(
                        holds(role, action),
                        other <= level,
                        "{role} holding {action}"
                    );
                }
            }
            assert!(!holds(role, "app.deploy"), "{role} stays within pipelines");
        }
    }

    #[test]
    fn maintainers_and_owners_approve_pipeline_steps_and_developers_do_not() {
        for role in ["project-owner", "maintainer", "system-admin"] {
            assert!(holds(role, "pipeline.approve"), "{role}");
        }
        for role in ["developer", "viewer", "pipeline-editor"] {
            assert!(!holds(role, "pipeline.approve"), "{role}");
        }
        for action in ["pipeline.read", "pipeline.list", "pipeline.run"] {
            assert!(holds("developer", action), "developer: {action}");
        }
        assert!(!holds("developer", "pipeline.update"));
    }

    #[test]
    fn isolation_spares_permission_administration_only() {
        let cut = ["project:shop/pipeline:7".to_string()];
        assert!(isolation_applies("pipeline.run"));
        assert!(isolation_applies("pipeline.approve"));
        assert!(!isolation_applies("pipeline.manage-permissions"));
        assert!(!reaches("project:shop", "project:shop/pipeline:7", &cut));
        assert!(reaches(
            "project:shop/pipeline:7",
            "project:shop/pipeline:7",
            &cut
        ));
        assert!(reaches("project:shop", "project:shop/pipeline:8", &cut));
    }

    #[test]
    fn project_owners_and_maintainers_install_from_markets_and_developers_do_not() {
        let holds = |role: &str, action: &str| {
            builtin(role).is_some_and(|r| r.actions.iter().any(|p| covers(p, action)))
        };
        for role in ["project-owner", "maintainer"] {
            for action in ["market.install", "market.upgrade", "market.uninstall"] {
                assert!(holds(role, action), "{role} should hold {action}");
            }
            for action in ["market.create", "market.publish", "market.delete"] {
                assert!(!holds(role, action), "{role} should not hold {action}");
            }
        }
        assert!(!holds("developer", "market.install"));
        assert!(!holds("viewer", "market.install"));
    }
}
