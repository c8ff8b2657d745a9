//! The host side of the authorizer world: which plugin decides, asking it for decisions,
//! and routing policy administration to it.
//!
//! Exactly one authorizer serves at a time (enabling another swaps them). The call path is
//! the ordinary plugin call path, so an authorizer is limited, timed and counted like any
//! plugin; a trap or timeout is reported to the caller, who must fail closed.

use std::sync::Arc;

use super::bindings::authorizer::exports::wharf::plugin::authorize;
use super::call::CallError;
use super::manifest::World;
use super::{ActivePlugin, Runtime, WorldPre};

pub use authorize::{AuthorizeError, Decision, Request, Subject};

impl Runtime {
    /// The enabled authorizer, if any.
    pub fn authorizer(&self) -> Option<Arc<ActivePlugin>> {
        self.inner
            .active
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .find(|p| p.world() == World::Authorizer)
            .cloned()
    }

    /// Asks `plugin` for one decision per request.
    pub async fn check(
        &self,
        plugin: &Arc<ActivePlugin>,
        subject: Subject,
        requests: Vec<Request>,
    ) -> Result<Result<Vec<Decision>, AuthorizeError>, CallError> {
        self.call_version(plugin, move |store, pre| {
            Box::pin(async move {
                let WorldPre::Authorizer(pre) = pre else {
                    return Err(wasmtime::format_err!("not an authorizer"));
                };
                let instance = pre.instantiate_async(&mut *store).await?;
                let result = instance
                    .wharf_plugin_authorize()
                    .call_check(&mut *store, &subject, &requests)
                    .await?;
                let size = match &result {
                    Ok(decisions) => decisions
                        .iter()
                        .map(|d| match d {
                            Decision::Allow => 1,
                            Decision::Deny(reason) => reason.len() + 1,
                        })
                        .sum(),
                    Err(_) => 0,
                };
                Ok((result, size))
            })
        })
        .await
    }

    /// Runs a policy-administration operation on `plugin` for `subject`.
    pub async fn manage(
        &self,
        plugin: &Arc<ActivePlugin>,
        subject: Subject,
        operation: String,
        input_json: String,
    ) -> Result<Result<String, AuthorizeError>, CallError> {
        self.call_version(plugin, move |store, pre| {
            Box::pin(async move {
                let WorldPre::Authorizer(pre) = pre else {
                    return Err(wasmtime::format_err!("not an authorizer"));
                };
                let instance = pre.instantiate_async(&mut *store).await?;
                let result = instance
                    .wharf_plugin_authorize()
                    .call_manage(&mut *store, &subject, &operation, &input_json)
                    .await?;
                let size = result.as_ref().map(String::len).unwrap_or(0);
                Ok((result, size))
            })
        })
        .await
    }
}
