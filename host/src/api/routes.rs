//! The route table: every route's action, resource and who may call it, in one place.
//!
//! The guard middleware reads it for each request (authenticate, ask the authorizer plugin
//! about `(action, resource)`, audit), and the tests read it to check that every served
//! route is listed and behaves as declared.
//! Resources are scope paths with `{param}` filled from the request path.

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No token needed (health, metrics, OpenAPI, login).
    Public,
    /// Self-service: any authenticated user may call it (every authorizer should allow
    /// it; policy checks that matter happen inside, e.g. granting in `permission.grant`).
    Authenticated,
    /// Needs a grant from the authorizer (the admin holds every grant).
    Granted,
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct RouteSpec {
    pub method: &'static str,
    /// The axum path, e.g. `/api/v1/plugins/{id}`.
    pub path: &'static str,
    /// `resource.verb`.
    pub action: &'static str,
    /// Scope path of the resource acted on.
    pub resource: &'static str,
    pub access: Access,
}

const fn route(
    method: &'static str,
    path: &'static str,
    action: &'static str,
    resource: &'static str,
    access: Access,
) -> RouteSpec {
    RouteSpec {
        method,
        path,
        action,
        resource,
        access,
    }
}

use Access::{Authenticated, Granted, Public};

#[rustfmt::skip]
pub const ROUTES: &[RouteSpec] = &[
    route("GET", "/healthz", "health.read", "system", Public),
    route("GET", "/readyz", "health.read", "system", Public),
    route("GET", "/metrics", "metrics.read", "system", Public),
    route("GET", "/api/v1/openapi.json", "openapi.read", "system", Public),
    route("POST", "/api/v1/auth/login", "session.create", "system", Public),
    route("POST", "/api/v1/auth/register", "user.register", "system", Public),
    route("GET", "/api/v1/auth/me", "session.read", "system", Authenticated),
    route("POST", "/api/v1/auth/logout", "session.delete", "system", Authenticated),
    route("POST", "/api/v1/auth/refresh", "session.refresh", "system", Authenticated),
    route("PUT", "/api/v1/auth/password", "user.change-own-password", "system", Authenticated),
    route("GET", "/api/v1/auth/tokens", "token.list", "system", Authenticated),
    route("POST", "/api/v1/auth/tokens", "token.create", "system", Authenticated),
    route("DELETE", "/api/v1/auth/tokens/{id}", "token.revoke", "token:{id}", Authenticated),
    route("GET", "/api/v1/users", "user.list", "system", Granted),
    route("POST", "/api/v1/users", "user.create", "system", Granted),
    route("GET", "/api/v1/users/{id}", "user.read", "user:{id}", Granted),
    route("PATCH", "/api/v1/users/{id}", "user.update", "user:{id}", Granted),
    route("DELETE", "/api/v1/users/{id}", "user.delete", "user:{id}", Granted),
    route("POST", "/api/v1/users/{id}/enable", "user.enable", "user:{id}", Granted),
    route("POST", "/api/v1/users/{id}/disable", "user.disable", "user:{id}", Granted),
    route("POST", "/api/v1/users/{id}/approve", "user.approve", "user:{id}", Granted),
    route("PUT", "/api/v1/users/{id}/password", "user.reset-password", "user:{id}", Granted),
    route("GET", "/api/v1/groups", "group.list", "system", Granted),
    route("POST", "/api/v1/groups", "group.create", "system", Granted),
    route("GET", "/api/v1/groups/{id}", "group.read", "group:{id}", Granted),
    route("PATCH", "/api/v1/groups/{id}", "group.update", "group:{id}", Granted),
    route("DELETE", "/api/v1/groups/{id}", "group.delete", "group:{id}", Granted),
    route("PUT", "/api/v1/groups/{id}/members/{user}", "group.add-member", "group:{id}", Granted),
    route("DELETE", "/api/v1/groups/{id}/members/{user}", "group.remove-member", "group:{id}", Granted),
    route("GET", "/api/v1/authz", "permission.read", "system", Authenticated),
    route("POST", "/api/v1/authz/check", "authz.check", "system", Authenticated),
    route("GET", "/api/v1/authz/roles", "permission.read", "system", Authenticated),
    route("POST", "/api/v1/authz/roles", "permission.grant", "system", Authenticated),
    route("DELETE", "/api/v1/authz/roles/{id}", "permission.grant", "role:{id}", Authenticated),
    route("GET", "/api/v1/authz/bindings", "permission.read", "system", Authenticated),
    route("POST", "/api/v1/authz/bindings", "permission.grant", "system", Authenticated),
    route("DELETE", "/api/v1/authz/bindings/{id}", "permission.grant", "binding:{id}", Authenticated),
    route("POST", "/api/v1/authz/who-can", "permission.read", "system", Authenticated),
    route("POST", "/api/v1/authz/what-can", "permission.read", "system", Authenticated),
    route("GET", "/api/v1/authz/pipeline-mode", "permission.read", "system", Authenticated),
    route("PUT", "/api/v1/authz/pipeline-mode", "permission.grant", "system", Authenticated),
    route("GET", "/api/v1/projects", "project.list", "system", Authenticated),
    route("POST", "/api/v1/projects", "project.create", "system", Granted),
    route("GET", "/api/v1/projects/{code}", "project.read", "project:{code}", Granted),
    route("PATCH", "/api/v1/projects/{code}", "project.update", "project:{code}", Granted),
    route("DELETE", "/api/v1/projects/{code}", "project.delete", "project:{code}", Granted),
    route("GET", "/api/v1/projects/{code}/members", "member.list", "project:{code}", Granted),
    route("POST", "/api/v1/projects/{code}/members", "member.add", "project:{code}", Granted),
    route("PUT", "/api/v1/projects/{code}/members/{user}", "member.update", "project:{code}", Granted),
    route("DELETE", "/api/v1/projects/{code}/members/{user}", "member.remove", "project:{code}", Granted),
    route("GET", "/api/v1/projects/{code}/addable-users", "member.list", "project:{code}", Granted),
    route("GET", "/api/v1/projects/{code}/apps", "app.list", "project:{code}", Granted),
    route("POST", "/api/v1/projects/{code}/apps", "app.create", "project:{code}", Granted),
    route("GET", "/api/v1/projects/{code}/apps/{app}", "app.read", "project:{code}/app:{app}", Granted),
    route("PATCH", "/api/v1/projects/{code}/apps/{app}", "app.update", "project:{code}/app:{app}", Granted),
    route("DELETE", "/api/v1/projects/{code}/apps/{app}", "app.delete", "project:{code}/app:{app}", Granted),
    route("POST", "/api/v1/projects/{code}/apps/{app}/disable", "app.disable", "project:{code}/app:{app}", Granted),
    route("POST", "/api/v1/projects/{code}/apps/{app}/enable", "app.enable", "project:{code}/app:{app}", Granted),
    route("POST", "/api/v1/projects/{code}/apps/{app}/copy", "app.copy", "project:{code}/app:{app}", Granted),
    route("PUT", "/api/v1/projects/{code}/apps/{app}/favourite", "app.favourite", "project:{code}/app:{app}", Granted),
    route("DELETE", "/api/v1/projects/{code}/apps/{app}/favourite", "app.favourite", "project:{code}/app:{app}", Granted),
    route("PUT", "/api/v1/projects/{code}/apps/{app}/group", "app.update", "project:{code}/app:{app}", Granted),
    route("GET", "/api/v1/projects/{code}/app-groups", "app-group.list", "project:{code}", Granted),
    route("POST", "/api/v1/projects/{code}/app-groups", "app-group.create", "project:{code}", Granted),
    route("PATCH", "/api/v1/projects/{code}/app-groups/{group}", "app-group.update", "project:{code}", Granted),
    route("DELETE", "/api/v1/projects/{code}/app-groups/{group}", "app-group.delete", "project:{code}", Granted),
    route("GET", "/v1/applications/{app_id}/info", "app.read", "app-id:{app_id}", Granted),
    route("GET", "/api/v1/projects/{code}/environments", "env.read", "project:{code}", Granted),
    route("POST", "/api/v1/projects/{code}/environments", "env.create", "project:{code}", Granted),
    route("GET", "/api/v1/projects/{code}/environments/{env}", "env.read", "project:{code}/env:{env}", Granted),
    route("PATCH", "/api/v1/projects/{code}/environments/{env}", "env.update", "project:{code}/env:{env}", Granted),
    route("DELETE", "/api/v1/projects/{code}/environments/{env}", "env.delete", "project:{code}/env:{env}", Granted),
    route("GET", "/api/v1/projects/{code}/environments/{env}/bindings", "env.read", "project:{code}/env:{env}", Granted),
    route("POST", "/api/v1/projects/{code}/environments/{env}/bindings", "env.bind", "project:{code}/env:{env}", Granted),
    route("DELETE", "/api/v1/projects/{code}/environments/{env}/bindings/{cluster}/{namespace}", "env.unbind", "project:{code}/env:{env}", Granted),
    route("GET", "/api/v1/projects/{code}/environments/{env}/resources", "env.read", "project:{code}/env:{env}", Granted),
    route("GET", "/api/v1/projects/{code}/environments/{env}/config-items", "config.read", "project:{code}/env:{env}", Granted),
    route("POST", "/api/v1/projects/{code}/environments/{env}/config-items", "config.create", "project:{code}/env:{env}", Granted),
    route("GET", "/api/v1/projects/{code}/environments/{env}/config-items/{name}", "config.read", "project:{code}/env:{env}/config:{name}", Granted),
    route("PUT", "/api/v1/projects/{code}/environments/{env}/config-items/{name}", "config.update", "project:{code}/env:{env}/config:{name}", Granted),
    route("DELETE", "/api/v1/projects/{code}/environments/{env}/config-items/{name}", "config.delete", "project:{code}/env:{env}/config:{name}", Granted),
    route("GET", "/api/v1/projects/{code}/apps/{app}/deploy-configs", "deploy-config.list", "project:{code}/app:{app}", Granted),
    route("POST", "/api/v1/projects/{code}/apps/{app}/deploy-configs", "deploy-config.create", "project:{code}/app:{app}", Granted),
    route("GET", "/api/v1/projects/{code}/apps/{app}/deploy-configs/{config}", "deploy-config.read", "project:{code}/app:{app}", Granted),
    route("PATCH", "/api/v1/projects/{code}/apps/{app}/deploy-configs/{config}", "deploy-config.update", "project:{code}/app:{app}", Granted),
    route("DELETE", "/api/v1/projects/{code}/apps/{app}/deploy-configs/{config}", "deploy-config.delete", "project:{code}/app:{app}", Granted),
    route("PUT", "/api/v1/projects/{code}/apps/{app}/deploy-configs/{config}/env-vars", "deploy-config.update", "project:{code}/app:{app}", Granted),
    route("PUT", "/api/v1/projects/{code}/apps/{app}/deploy-configs/{config}/pod-resources", "deploy-config.update", "project:{code}/app:{app}", Granted),
    route("GET", "/api/v1/regions", "region.list", "system", Granted),
    route("POST", "/api/v1/regions", "region.create", "system", Granted),
    route("GET", "/api/v1/regions/{region}", "region.read", "region:{region}", Granted),
    route("PATCH", "/api/v1/regions/{region}", "region.update", "region:{region}", Granted),
    route("DELETE", "/api/v1/regions/{region}", "region.delete", "region:{region}", Granted),
    route("GET", "/api/v1/resource-pools", "resource-pool.list", "system", Granted),
    route("POST", "/api/v1/resource-pools", "resource-pool.create", "system", Granted),
    route("GET", "/api/v1/resource-pools/{pool}", "resource-pool.read", "resource-pool:{pool}", Granted),
    route("PATCH", "/api/v1/resource-pools/{pool}", "resource-pool.update", "resource-pool:{pool}", Granted),
    route("DELETE", "/api/v1/resource-pools/{pool}", "resource-pool.delete", "resource-pool:{pool}", Granted),
    route("GET", "/api/v1/clusters", "cluster.list", "system", Granted),
    route("POST", "/api/v1/clusters", "cluster.create", "system", Granted),
    route("GET", "/api/v1/clusters/{cluster}", "cluster.read", "cluster:{cluster}", Granted),
    route("PATCH", "/api/v1/clusters/{cluster}", "cluster.update", "cluster:{cluster}", Granted),
    route("DELETE", "/api/v1/clusters/{cluster}", "cluster.delete", "cluster:{cluster}", Granted),
    route("GET", "/api/v1/clusters/{cluster}/kubeconfig", "cluster.kubeconfig", "cluster:{cluster}", Granted),
    route("GET", "/api/v1/clusters/{cluster}/health", "cluster.read", "cluster:{cluster}", Granted),
    route("GET", "/api/v1/clusters/{cluster}/namespaces", "namespace.list", "cluster:{cluster}", Granted),
    route("POST", "/api/v1/clusters/{cluster}/namespaces", "namespace.create", "cluster:{cluster}", Granted),
    route("DELETE", "/api/v1/clusters/{cluster}/namespaces/{namespace}", "namespace.delete", "cluster:{cluster}/namespace:{namespace}", Granted),
    route("GET", "/api/v1/clusters/{cluster}/nodes", "node.list", "cluster:{cluster}", Granted),
    route("GET", "/api/v1/clusters/{cluster}/nodes/{node}", "node.read", "cluster:{cluster}/node:{node}", Granted),
    route("PATCH", "/api/v1/clusters/{cluster}/nodes/{node}/labels", "node.label", "cluster:{cluster}/node:{node}", Granted),
    route("GET", "/api/v1/projects/{code}/apps/{app}/deployments/{env}", "deploy.read", "project:{code}/app:{app}/env:{env}", Granted),
    route("DELETE", "/api/v1/projects/{code}/apps/{app}/deployments/{env}", "deploy.delete", "project:{code}/app:{app}/env:{env}", Granted),
    route("POST", "/api/v1/projects/{code}/apps/{app}/deployments/{env}/deploy", "deploy.create", "project:{code}/app:{app}/env:{env}", Granted),
    route("POST", "/api/v1/projects/{code}/apps/{app}/deployments/{env}/redeploy", "deploy.create", "project:{code}/app:{app}/env:{env}", Granted),
    route("POST", "/api/v1/projects/{code}/apps/{app}/deployments/{env}/scale", "deploy.scale", "project:{code}/app:{app}/env:{env}", Granted),
    route("POST", "/api/v1/projects/{code}/apps/{app}/deployments/{env}/start", "deploy.start", "project:{code}/app:{app}/env:{env}", Granted),
    route("POST", "/api/v1/projects/{code}/apps/{app}/deployments/{env}/stop", "deploy.stop", "project:{code}/app:{app}/env:{env}", Granted),
    route("POST", "/api/v1/projects/{code}/apps/{app}/deployments/{env}/restart", "deploy.restart", "project:{code}/app:{app}/env:{env}", Granted),
    route("POST", "/api/v1/projects/{code}/apps/{app}/deployments/{env}/rollback", "deploy.rollback", "project:{code}/app:{app}/env:{env}", Granted),
    route("GET", "/api/v1/projects/{code}/apps/{app}/deployments/{env}/history", "deploy.read", "project:{code}/app:{app}/env:{env}", Granted),
    route("GET", "/api/v1/projects/{code}/apps/{app}/deployments/{env}/status", "deploy.read", "project:{code}/app:{app}/env:{env}", Granted),
    route("GET", "/api/v1/projects/{code}/apps/{app}/deployments/{env}/pods", "deploy.read", "project:{code}/app:{app}/env:{env}", Granted),
    route("GET", "/api/v1/projects/{code}/apps/{app}/deployments/{env}/events", "deploy.read", "project:{code}/app:{app}/env:{env}", Granted),
    route("GET", "/api/v1/projects/{code}/apps/{app}/deployments/{env}/pods/{pod}/logs", "app.view-log", "project:{code}/app:{app}/env:{env}", Granted),
    route("GET", "/api/v1/projects/{code}/environments/{env}/deployments", "deploy.list", "project:{code}/env:{env}", Granted),
    route("GET", "/api/v1/projects/{code}/apps/{app}/deployments/{env}/changes", "deploy.read", "project:{code}/app:{app}/env:{env}", Granted),
    route("GET", "/api/v1/projects/{code}/apps/{app}/deployments/{env}/services", "deploy.read", "project:{code}/app:{app}/env:{env}", Granted),
    route("POST", "/api/v1/projects/{code}/apps/{app}/deployments/{env}/services", "deploy.service", "project:{code}/app:{app}/env:{env}", Granted),
    route("PUT", "/api/v1/projects/{code}/apps/{app}/deployments/{env}/services/{service}", "deploy.service", "project:{code}/app:{app}/env:{env}", Granted),
    route("DELETE", "/api/v1/projects/{code}/apps/{app}/deployments/{env}/services/{service}", "deploy.service", "project:{code}/app:{app}/env:{env}", Granted),
    route("GET", "/api/v1/projects/{code}/change-orders", "deploy.list", "project:{code}", Granted),
    route("GET", "/api/v1/change-orders/{id}", "deploy.read", "change-order:{id}", Granted),
    route("POST", "/api/v1/gray/validate", "gray.validate", "system", Authenticated),
    route("POST", "/api/v1/gray/evaluate", "gray.evaluate", "system", Authenticated),
    route("GET", "/api/v1/change-orders/{id}/events", "deploy.read", "change-order:{id}", Granted),
    route("POST", "/api/v1/change-orders/{id}/approve", "deploy.approve", "change-order:{id}", Granted),
    route("POST", "/api/v1/change-orders/{id}/reject", "deploy.approve", "change-order:{id}", Granted),
    route("POST", "/api/v1/change-orders/{id}/delegate", "deploy.approve", "change-order:{id}", Granted),
    route("POST", "/api/v1/change-orders/{id}/next-batch", "deploy.next-batch", "change-order:{id}", Granted),
    route("POST", "/api/v1/change-orders/{id}/abort", "deploy.abort", "change-order:{id}", Granted),
    route("POST", "/api/v1/change-orders/{id}/rollback", "deploy.rollback", "change-order:{id}", Granted),
    route("GET", "/api/v1/markets", "market.list", "system", Authenticated),
    route("POST", "/api/v1/markets", "market.create", "system", Granted),
    route("GET", "/api/v1/markets/{market}", "market.read", "market:{market}", Authenticated),
    route("PATCH", "/api/v1/markets/{market}", "market.update", "market:{market}", Granted),
    route("DELETE", "/api/v1/markets/{market}", "market.delete", "market:{market}", Granted),
    route("GET", "/api/v1/markets/{market}/apps", "market.read", "market:{market}", Authenticated),
    route("POST", "/api/v1/markets/{market}/apps", "market.publish", "market:{market}", Granted),
    route("DELETE", "/api/v1/markets/{market}/apps/{app}", "market.publish", "market:{market}", Granted),
    route("GET", "/api/v1/markets/{market}/apps/{app}/versions", "market.read", "market:{market}", Authenticated),
    route("GET", "/api/v1/markets/{market}/apps/{app}/versions/{version}", "market.read", "market:{market}", Authenticated),
    route("DELETE", "/api/v1/markets/{market}/apps/{app}/versions/{version}", "market.publish", "market:{market}", Granted),
    route("GET", "/api/v1/projects/{code}/installs", "app.list", "project:{code}", Granted),
    route("POST", "/api/v1/projects/{code}/installs", "market.install", "project:{code}", Granted),
    route("GET", "/api/v1/projects/{code}/installs/{id}", "app.list", "project:{code}", Granted),
    route("DELETE", "/api/v1/projects/{code}/installs/{id}", "market.uninstall", "project:{code}", Granted),
    route("POST", "/api/v1/projects/{code}/installs/{id}/upgrade", "market.upgrade", "project:{code}", Granted),
    route("POST", "/api/v1/projects/{code}/installs/{id}/rollback", "market.upgrade", "project:{code}", Granted),
    route("POST", "/openapi/v1/teams/{team_id}/regions/{region_name}/apps/{app_id}/install", "market.install", "project:{team_id}/env:{region_name}", Granted),
    route("GET", "/api/v1/projects/{code}/apps/{app}/pipelines", "pipeline.read", "project:{code}/app:{app}", Granted),
    route("POST", "/api/v1/projects/{code}/apps/{app}/pipelines", "pipeline.create", "project:{code}/app:{app}", Granted),
    route("GET", "/api/v1/projects/{code}/pipelines", "pipeline.read", "project:{code}", Granted),
    route("GET", "/api/v1/projects/{code}/apps/{app}/pipelines/{pipeline}", "pipeline.read", "project:{code}/pipeline:{pipeline}", Granted),
    route("PUT", "/api/v1/projects/{code}/apps/{app}/pipelines/{pipeline}", "pipeline.update", "project:{code}/pipeline:{pipeline}", Granted),
    route("DELETE", "/api/v1/projects/{code}/apps/{app}/pipelines/{pipeline}", "pipeline.delete", "project:{code}/pipeline:{pipeline}", Granted),
    route("GET", "/api/v1/projects/{code}/apps/{app}/pipelines/{pipeline}/versions/{version}", "pipeline.read", "project:{code}/pipeline:{pipeline}", Granted),
    route("GET", "/api/v1/projects/{code}/apps/{app}/pipelines/{pipeline}/runs", "pipeline.read", "project:{code}/pipeline:{pipeline}", Granted),
    route("POST", "/api/v1/projects/{code}/apps/{app}/pipelines/{pipeline}/runs", "pipeline.run", "project:{code}/pipeline:{pipeline}", Granted),
    route("GET", "/api/v1/projects/{code}/apps/{app}/pipelines/{pipeline}/runs/{run}", "pipeline.read", "project:{code}/pipeline:{pipeline}", Granted),
    route("POST", "/api/v1/projects/{code}/apps/{app}/pipelines/{pipeline}/runs/{run}/abort", "pipeline.run", "project:{code}/pipeline:{pipeline}", Granted),
    route("POST", "/api/v1/projects/{code}/apps/{app}/pipelines/{pipeline}/runs/{run}/retry", "pipeline.run", "project:{code}/pipeline:{pipeline}", Granted),
    route("POST", "/api/v1/projects/{code}/apps/{app}/pipelines/{pipeline}/runs/{run}/rollback", "pipeline.rollback", "project:{code}/pipeline:{pipeline}", Granted),
    route("POST", "/api/v1/projects/{code}/apps/{app}/pipelines/{pipeline}/runs/{run}/steps/{step}/decisions", "pipeline.approve", "project:{code}/pipeline:{pipeline}", Granted),
    route("GET", "/api/v1/projects/{code}/apps/{app}/pipelines/{pipeline}/runs/{run}/steps/{step}/outputs", "pipeline.read", "project:{code}/pipeline:{pipeline}", Granted),
    route("POST", "/api/v1/projects/{code}/apps/{app}/pipelines/{pipeline}/runs/{run}/steps/{step}/replay", "pipeline.replay", "project:{code}/pipeline:{pipeline}", Granted),
    route("GET", "/api/v1/projects/{code}/apps/{app}/pipelines/{pipeline}/runs/{run}/logs", "pipeline.read", "project:{code}/pipeline:{pipeline}", Granted),
    route("GET", "/api/v1/projects/{code}/apps/{app}/pipelines/{pipeline}/runs/{run}/events", "pipeline.read", "project:{code}/pipeline:{pipeline}", Granted),
    // Seed 001 §5.6 names pipelines and runs by id alone: `pipeline.find` is self-service,
    // and each handler finds the pipeline, then asks the authorizer for the real action
    // (`pipeline.run`, `pipeline.read`, `pipeline.delete`) on it.
    route("GET", "/api/v1/projects/{code}/packages", "artifact.read", "project:{code}", Granted),
    route("POST", "/api/v1/projects/{code}/packages", "artifact.push", "project:{code}", Granted),
    route("GET", "/api/v1/projects/{code}/packages/{id}", "artifact.read", "project:{code}/package:{id}", Granted),
    route("DELETE", "/api/v1/projects/{code}/packages/{id}", "artifact.delete", "project:{code}/package:{id}", Granted),
    route("GET", "/api/v1/projects/{code}/packages/{id}/content", "artifact.read", "project:{code}/package:{id}", Granted),
    route("POST", "/api/v1/projects/{code}/retention/dry-run", "artifact.read", "project:{code}", Granted),
    route("POST", "/api/v1/projects/{code}/retention/runs", "artifact.delete", "project:{code}", Granted),
    route("GET", "/v1/product/getPackage", "artifact.find", "system", Authenticated),
    route("GET", "/v1/product/listPackagesPage", "artifact.find", "system", Authenticated),
    route("GET", "/v1/product/downloadPackage", "artifact.find", "system", Authenticated),
    route("GET", "/v1/product/getImage", "artifact.find", "system", Authenticated),
    route("GET", "/v1/product/listImagesPage", "artifact.find", "system", Authenticated),
    route("POST", "/v1/pipelines/runPipeline", "pipeline.find", "system", Authenticated),
    route("POST", "/v1/pipelines/pausePipeline", "pipeline.find", "system", Authenticated),
    route("POST", "/v1/pipelines/retryPipelineJobRun", "pipeline.find", "system", Authenticated),
    route("GET", "/v1/pipelines/pipelineRecorddetail", "pipeline.find", "system", Authenticated),
    route("GET", "/v1/pipelines/listPipelinesPage", "pipeline.find", "system", Authenticated),
    route("POST", "/v1/pipelines/deletePipeline", "pipeline.find", "system", Authenticated),
    route("GET", "/api/v1/plugins", "plugin.list", "system", Granted),
    route("POST", "/api/v1/plugins", "plugin.install", "system", Granted),
    route("GET", "/api/v1/plugins/{id}", "plugin.read", "plugin:{id}", Granted),
    route("DELETE", "/api/v1/plugins/{id}", "plugin.uninstall", "plugin:{id}", Granted),
    route("POST", "/api/v1/plugins/{id}/enable", "plugin.enable", "plugin:{id}", Granted),
    route("POST", "/api/v1/plugins/{id}/disable", "plugin.disable", "plugin:{id}", Granted),
    route("POST", "/api/v1/plugins/{id}/upgrade", "plugin.upgrade", "plugin:{id}", Granted),
    route("POST", "/api/v1/plugins/{id}/rollback", "plugin.rollback", "plugin:{id}", Granted),
    route("PUT", "/api/v1/plugins/{id}/config", "plugin.configure", "plugin:{id}", Granted),
    route("GET", "/api/v1/plugins/{id}/logs", "plugin.read-logs", "plugin:{id}", Granted),
    route("POST", "/api/v1/plugins/{id}/invoke", "plugin.invoke", "plugin:{id}", Granted),
    route("GET", "/api/v1/plugin-trust/keys", "plugin-trust.list-keys", "system", Granted),
    route("POST", "/api/v1/plugin-trust/keys", "plugin-trust.add-key", "system", Granted),
    route("DELETE", "/api/v1/plugin-trust/keys/{id}", "plugin-trust.remove-key", "trusted-key:{id}", Granted),
    route("GET", "/api/v1/plugin-trust/settings", "plugin-trust.read-settings", "system", Granted),
    route("PUT", "/api/v1/plugin-trust/settings", "plugin-trust.update-settings", "system", Granted),
    route("GET", "/api/v1/audit", "audit.list", "system", Granted),
    route("GET", "/api/v1/audit/export", "audit.export", "system", Granted),
];

/// The row for a method and matched path.
pub fn find(method: &str, path: &str) -> Option<&'static RouteSpec> {
    ROUTES.iter().find(|r| r.method == method && r.path == path)
}

/// Whether the method changes state (and so is always audited).
pub fn is_mutation(method: &str) -> bool {
    matches!(method, "POST" | "PUT" | "PATCH" | "DELETE")
}

/// Reads that hand out a credential: audited like mutations.
pub const CREDENTIAL_READS: &[&str] = &["cluster.kubeconfig"];

/// Whether every call of the route leaves an audit record, whatever its outcome.
pub fn is_audited(spec: &RouteSpec) -> bool {
    is_mutation(spec.method) || CREDENTIAL_READS.contains(&spec.action)
}

/// The resource with `{param}`s filled from the concrete request path.
pub fn resource_for(spec: &RouteSpec, request_path: &str) -> String {
    let mut resource = spec.resource.to_owned();
    for (template, actual) in spec.path.split('/').zip(request_path.split('/')) {
        if template.starts_with('{') && template.ends_with('}') {
            resource = resource.replace(template, actual);
        }
    }
    resource
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_route_is_listed_once_and_resources_fill_in() {
        for (i, a) in ROUTES.iter().enumerate() {
            assert!(
                ROUTES
                    .iter()
                    .skip(i + 1)
                    .all(|b| (a.method, a.path) != (b.method, b.path)),
                "{} {} listed twice",
                a.method,
                a.path
            );
        }
        let spec = find("POST", "/api/v1/plugins/{id}/enable").unwrap();
        assert_eq!(
            resource_for(spec, "/api/v1/plugins/hello/enable"),
            "plugin:hello"
        );
    }
}
