//! The embedded cluster's data plane: real HTTP on a loopback port, routed by the
//! routing objects in the simulated cluster at the moment a request arrives, to a
//! simulated ready pod that answers `200 application/json` with its name, namespace,
//! node, image, labels and the request as it received it.
//!
//! A request goes to the first source that takes it:
//! 1. HTTPRoutes (`httproute.rs`: hostnames, matches, precedence, weighted backendRefs,
//!    RequestHeaderModifier filters);
//! 2. Ingresses of class nginx or none (`ingress.rs`: longest path, canary annotations);
//! 3. a Host of `<svc>.<ns>`, `<svc>.<ns>.svc` or `<svc>.<ns>.svc.cluster.local` names
//!    an existing Service directly;
//!
//! else 404 `{"error": "no route for <host><path>"}`. A route that matches but names
//! nothing usable (every weight 0, a backendRef that is not a Service) answers 500, as
//! Gateway API asks. The Service's ready pods (`backend.rs`) take it at random; none → 503. `request.rs` is the request as routing
//! reads it, `patterns.rs` the full-match regex cache. The world's lock is held only to
//! copy out the routing objects and, after matching, the chosen Service's pods.

mod backend;
mod httproute;
mod ingress;
mod patterns;
mod request;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rand::Rng as _;
use serde_json::{Value, json};

use super::Shared;
use super::resources::kinds;
use httproute::HeaderModifier;
use patterns::Patterns;
use request::Incoming;

/// A Service by namespace and name.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceRef {
    pub namespace: String,
    pub name: String,
}

/// Where a matched request goes.
pub enum Decision {
    /// To this Service's pods, after these filters.
    Service {
        service: ServiceRef,
        filters: Vec<HeaderModifier>,
    },
    /// A routing object matched but names nothing that can answer (Gateway API: 500).
    Broken(String),
}

struct Gateway {
    shared: Arc<Shared>,
    patterns: Patterns,
}

/// Binds `address` and serves the gateway there until the process ends; the bound address.
pub(super) async fn serve(shared: Arc<Shared>, address: SocketAddr) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("listening for the embedded cluster's gateway on {address}"))?;
    let bound = listener.local_addr()?;
    let gateway = Arc::new(Gateway {
        shared,
        patterns: Patterns::default(),
    });
    let app = Router::new().fallback(handle).with_state(gateway);
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "the embedded cluster's gateway stopped");
        }
    });
    Ok(bound)
}

async fn handle(
    State(gateway): State<Arc<Gateway>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    gateway.answer(Incoming::read(&method, &uri, &headers))
}

impl Gateway {
    fn answer(&self, mut request: Incoming) -> Response {
        let (routes, ingresses) = {
            let world = self.shared.world();
            let routes: Vec<Arc<Value>> = world.list(kinds::http_route(), None).cloned().collect();
            let ingresses: Vec<Arc<Value>> = world.list(kinds::ingress(), None).cloned().collect();
            (routes, ingresses)
        };
        let mut rng = rand::rng();
        let decision = httproute::route(&routes, &request, &self.patterns, &mut rng)
            .or_else(|| ingress::route(&ingresses, &request, &self.patterns, &mut rng))
            .or_else(|| self.service_named_by_host(&request.host));
        let (service, filters) = match decision {
            Some(Decision::Service { service, filters }) => (service, filters),
            Some(Decision::Broken(why)) => return error(StatusCode::INTERNAL_SERVER_ERROR, why),
            None => {
                return error(
                    StatusCode::NOT_FOUND,
                    format!("no route for {}{}", request.host, request.path),
                );
            }
        };
        let pods = backend::ready_pods(&self.shared.world(), &service);
        if pods.is_empty() {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "no ready endpoints for service {}/{}",
                    service.namespace, service.name
                ),
            );
        }
        for filter in &filters {
            filter.apply(&mut request);
        }
        let pod = &pods[rng.random_range(0..pods.len())];
        axum::Json(backend::pod_answer(pod, &request)).into_response()
    }

    /// The cluster-DNS fallback: `<svc>.<ns>[.svc[.cluster.local]]` when that Service exists.
    fn service_named_by_host(&self, host: &str) -> Option<Decision> {
        let service = service_in_host(host)?;
        self.shared
            .world()
            .get(kinds::service(), &service.namespace, &service.name)?;
        Some(Decision::Service {
            service,
            filters: Vec::new(),
        })
    }
}

fn service_in_host(host: &str) -> Option<ServiceRef> {
    let short = host
        .strip_suffix(".svc.cluster.local")
        .or_else(|| host.strip_suffix(".svc"))
        .unwrap_or(host);
    match short.split('.').collect::<Vec<_>>().as_slice() {
        [name, namespace] if !name.is_empty() && !namespace.is_empty() => Some(ServiceRef {
            namespace: (*namespace).to_owned(),
            name: (*name).to_owned(),
        }),
        _ => None,
    }
}

fn error(status: StatusCode, message: String) -> Response {
    (status, axum::Json(json!({"error": message}))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_dns_names_map_to_services() {
        let cart = Some(ServiceRef {
            namespace: "shop".into(),
            name: "cart".into(),
        });
        assert_eq!(service_in_host("cart.shop"), cart);
        assert_eq!(service_in_host("cart.shop.svc"), cart);
        assert_eq!(service_in_host("cart.shop.svc.cluster.local"), cart);
        assert_eq!(service_in_host("cart"), None);
        assert_eq!(service_in_host("127.0.0.1"), None);
        assert_eq!(service_in_host("a.b.c"), None);
        assert_eq!(service_in_host(".shop.svc"), None);
    }
}
