//! The `authorizer` world: decides whether a subject may perform actions on resources, and
//! administers its own policy (`manage`).
//!
//! Implement [`Meta`] and [`Authorizer`] on one type and call
//! [`export_authorizer!`](crate::export_authorizer) with it. [`Violation`] is the same type
//! as [`step::Violation`](crate::step::Violation).

/// Bindings for the world's own export. `meta`, the other half of the world, is generated
/// once in [`crate::meta`]: wit-bindgen defines a crate-root macro per exported interface,
/// so generating `meta` in every world module would collide.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit/plugin",
        inline: "package wharf:sdk-authorizer; world authorizer-exports { export wharf:plugin/authorize@0.1.0; }",
        world: "wharf:sdk-authorizer/authorizer-exports",
        // One `Violation` type for every world, generated in `step`.
        with: {
            "wharf:plugin/types@0.1.0": crate::step::bindings::wharf::plugin::types,
        },
        additional_derives: [PartialEq, Eq],
        pub_export_macro: true,
        export_macro_name: "__export_world",
        default_bindings_module: "$crate::authorizer::bindings",
        type_section_suffix: "wharf-sdk",
    });
}

pub use crate::meta::{Meta, PluginInfo};
pub use crate::step::Violation;
pub use bindings::exports::wharf::plugin::authorize::{
    AuthorizeError, Decision, Guest as Authorizer, Request, Subject,
};

impl AuthorizeError {
    /// `InvalidRequest` with a single violation on `field` (a path such as `actions[0]`).
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        AuthorizeError::InvalidRequest(vec![Violation::new(field, message)])
    }
}

impl Decision {
    /// `Deny` with `reason`, which the host shows to the caller.
    pub fn deny(reason: impl Into<String>) -> Self {
        Decision::Deny(reason.into())
    }

    /// Whether this is `Allow`.
    pub fn is_allow(&self) -> bool {
        matches!(self, Decision::Allow)
    }
}

impl Subject {
    /// A non-admin subject (`username` = `id`), mostly for tests.
    pub fn user(id: impl Into<String>, groups: &[&str]) -> Self {
        let id = id.into();
        Subject {
            username: id.clone(),
            id,
            groups: groups.iter().map(|g| g.to_string()).collect(),
            is_admin: false,
        }
    }
}

impl Request {
    /// A request for `action` (`resource.verb`) on `resource` (a scope path).
    pub fn new(action: impl Into<String>, resource: impl Into<String>) -> Self {
        Request {
            action: action.into(),
            resource: resource.into(),
        }
    }
}

/// Exports `$ty` (which implements [`Meta`] and [`Authorizer`]) as the authorizer world.
#[macro_export]
macro_rules! export_authorizer {
    ($ty:ident) => {
        // Exports exist only in the component. Native builds (the plugin's tests) skip them:
        // export names like `wharf:plugin/meta@0.1.0#info` are not valid native symbols.
        #[cfg(target_arch = "wasm32")]
        $crate::__export_meta!($ty);
        #[cfg(target_arch = "wasm32")]
        $crate::authorizer::bindings::__export_world!($ty);
        // Still check natively that the type implements the world, so `cargo test` catches it.
        #[cfg(not(target_arch = "wasm32"))]
        const _: () = {
            const fn implements_world<T: $crate::meta::Meta + $crate::authorizer::Authorizer>() {}
            implements_world::<$ty>()
        };
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers_build_the_wit_shapes() {
        assert_eq!(
            AuthorizeError::invalid("name", "is required"),
            AuthorizeError::InvalidRequest(vec![Violation {
                field: "name".into(),
                message: "is required".into()
            }])
        );
        assert!(Decision::Allow.is_allow());
        assert_eq!(Decision::deny("no"), Decision::Deny("no".into()));
        let subject = Subject::user("u1", &["devs"]);
        assert_eq!(subject.groups, vec!["devs".to_string()]);
        assert!(!subject.is_admin);
        assert_eq!(Request::new("app.read", "system").resource, "system");
    }
}
