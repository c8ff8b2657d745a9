//! Ingresses as ingress-nginx serves them (class `nginx` or none): a rule for the
//! request's host is preferred over host-less ones, then the longest matching path
//! (Prefix element-wise, Exact, ImplementationSpecific as Prefix), then Exact over
//! Prefix, then the oldest Ingress. A canary Ingress (`canary: "true"`) with the same
//! host and path then decides by header, else cookie, else weight, as ingress-nginx's
//! balancer does.

use std::cmp::Reverse;
use std::sync::Arc;

use rand::Rng;
use serde_json::Value;

use super::httproute::prefix_matches;
use super::patterns::Patterns;
use super::request::Incoming;
use super::{Decision, ServiceRef};
use crate::cluster::sim::meta;

const ANNOTATION: &str = "nginx.ingress.kubernetes.io/";

/// One path of one Ingress rule.
struct PathRule<'a> {
    ingress: &'a Value,
    host: Option<String>,
    path: &'a str,
    exact: bool,
    service: Option<&'a str>,
}

/// The request's Service among `ingresses`, or `None` when no path matches.
pub fn route(
    ingresses: &[Arc<Value>],
    request: &Incoming,
    patterns: &Patterns,
    rng: &mut impl Rng,
) -> Option<Decision> {
    let served: Vec<&Value> = ingresses
        .iter()
        .map(Arc::as_ref)
        .filter(|i| !meta::is_deleting(i) && is_nginx(i))
        .collect();
    let main = served
        .iter()
        .filter(|i| !is_canary(i))
        .flat_map(|i| paths(i))
        .filter(|p| p.host.as_ref().is_none_or(|h| *h == request.host))
        .filter(|p| {
            if p.exact {
                request.path == p.path
            } else {
                prefix_matches(p.path, &request.path)
            }
        })
        .max_by_key(|p| {
            (
                p.host.is_some(),
                p.path.len(),
                p.exact,
                Reverse(age(p.ingress)),
            )
        })?;
    let canary = served
        .iter()
        .filter(|i| is_canary(i))
        .flat_map(|i| paths(i))
        .filter(|c| c.host == main.host && c.path == main.path)
        .min_by_key(|c| age(c.ingress));
    let chosen = match canary {
        Some(canary) if takes_canary(canary.ingress, request, patterns, rng) => canary,
        _ => main,
    };
    Some(match chosen.service {
        Some(name) => Decision::Service {
            service: ServiceRef {
                namespace: meta::namespace(chosen.ingress).to_owned(),
                name: name.to_owned(),
            },
            filters: Vec::new(),
        },
        None => Decision::Broken(format!(
            "ingress {}/{} path {} has no service backend",
            meta::namespace(chosen.ingress),
            meta::name(chosen.ingress),
            chosen.path
        )),
    })
}

fn is_nginx(ingress: &Value) -> bool {
    let class = meta::str_at(ingress, "/spec/ingressClassName").or_else(|| {
        ingress
            .pointer("/metadata/annotations")
            .and_then(|a| a.get("kubernetes.io/ingress.class"))
            .and_then(Value::as_str)
    });
    class.is_none_or(|c| c == "nginx")
}

fn annotation<'a>(ingress: &'a Value, key: &str) -> Option<&'a str> {
    ingress
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(format!("{ANNOTATION}{key}")))
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
}

fn is_canary(ingress: &Value) -> bool {
    annotation(ingress, "canary") == Some("true")
}

/// Older first, then by namespace and name.
fn age(ingress: &Value) -> (&str, &str, &str) {
    (
        meta::str_at(ingress, "/metadata/creationTimestamp").unwrap_or(""),
        meta::namespace(ingress),
        meta::name(ingress),
    )
}

fn paths(ingress: &Value) -> Vec<PathRule<'_>> {
    let mut found = Vec::new();
    for rule in ingress
        .pointer("/spec/rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let host = rule
            .get("host")
            .and_then(Value::as_str)
            .filter(|h| !h.is_empty())
            .map(str::to_ascii_lowercase);
        for path in rule
            .pointer("/http/paths")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            found.push(PathRule {
                ingress,
                host: host.clone(),
                path: path.get("path").and_then(Value::as_str).unwrap_or("/"),
                exact: path.get("pathType").and_then(Value::as_str) == Some("Exact"),
                service: path
                    .pointer("/backend/service/name")
                    .and_then(Value::as_str),
            });
        }
    }
    found
}

/// ingress-nginx's order: the header (`always`/`never`, or its value or pattern), else
/// the cookie (`always`/`never`), else the weight; a header or cookie that decides
/// nothing falls through to the next.
fn takes_canary(
    canary: &Value,
    request: &Incoming,
    patterns: &Patterns,
    rng: &mut impl Rng,
) -> bool {
    if let Some(name) = annotation(canary, "canary-by-header")
        && let Some(value) = request.header(name)
    {
        if let Some(wanted) = annotation(canary, "canary-by-header-value") {
            if value == wanted {
                return true;
            }
        } else if let Some(pattern) = annotation(canary, "canary-by-header-pattern") {
            if patterns.full_match(pattern, &value) {
                return true;
            }
        } else if value == "always" {
            return true;
        } else if value == "never" {
            return false;
        }
    }
    if let Some(name) = annotation(canary, "canary-by-cookie")
        && let Some(value) = request.cookie(name)
    {
        match value.as_str() {
            "always" => return true,
            "never" => return false,
            _ => {}
        }
    }
    let weight: u64 = annotation(canary, "canary-weight")
        .and_then(|w| w.trim().parse().ok())
        .unwrap_or(0);
    let total: u64 = annotation(canary, "canary-weight-total")
        .and_then(|w| w.trim().parse().ok())
        .filter(|t| *t > 0)
        .unwrap_or(100);
    weight > 0 && rng.random_range(0..total) < weight
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use serde_json::{Value, json};

    use super::super::request::sample;
    use super::*;

    fn ingress(name: &str, annotations: Value, host: Option<&str>, paths: Value) -> Arc<Value> {
        let mut rule = json!({"http": {"paths": paths}});
        if let Some(host) = host {
            rule["host"] = json!(host);
        }
        Arc::new(json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "namespace": "shop", "creationTimestamp": "2026-01-01T00:00:00Z", "annotations": annotations},
            "spec": {"ingressClassName": "nginx", "rules": [rule]},
        }))
    }

    fn prefix(path: &str, service: &str) -> Value {
        json!({"path": path, "pathType": "Prefix", "backend": {"service": {"name": service, "port": {"number": 80}}}})
    }

    fn canary(annotations: &[(&str, &str)]) -> Arc<Value> {
        let mut all = json!({"nginx.ingress.kubernetes.io/canary": "true"});
        for (key, value) in annotations {
            all[format!("{ANNOTATION}{key}")] = json!(value);
        }
        ingress(
            "cart-canary",
            all,
            Some("cart.shop.svc"),
            json!([prefix("/", "cart-canary")]),
        )
    }

    fn with(annotations: &[(&str, &str)]) -> Vec<Arc<Value>> {
        vec![
            ingress(
                "cart",
                json!({}),
                Some("cart.shop.svc"),
                json!([prefix("/", "cart-stable")]),
            ),
            canary(annotations),
        ]
    }

    fn reach(ingresses: &[Arc<Value>], headers: &[(&str, &str)]) -> Option<String> {
        reach_path(ingresses, "/", headers)
    }

    fn reach_path(
        ingresses: &[Arc<Value>],
        path: &str,
        headers: &[(&str, &str)],
    ) -> Option<String> {
        let mut rng = StdRng::seed_from_u64(3);
        let request = sample("GET", "cart.shop.svc", path, headers);
        route(ingresses, &request, &Patterns::default(), &mut rng).map(|d| match d {
            Decision::Service { service, .. } => service.name,
            Decision::Broken(why) => format!("broken: {why}"),
        })
    }

    #[test]
    fn longest_path_on_the_host_wins_and_exact_beats_prefix() {
        let ingresses = [
            ingress(
                "any-host",
                json!({}),
                None,
                json!([prefix("/api/cart/items", "hostless")]),
            ),
            ingress(
                "cart",
                json!({}),
                Some("cart.shop.svc"),
                json!([
                    prefix("/", "root"),
                    prefix("/api", "api"),
                    {"path": "/api/cart", "pathType": "Exact", "backend": {"service": {"name": "exact", "port": {"number": 80}}}},
                    {"path": "/api/cart", "pathType": "ImplementationSpecific", "backend": {"service": {"name": "impl", "port": {"number": 80}}}},
                ]),
            ),
            ingress(
                "other-class",
                json!({}),
                Some("cart.shop.svc"),
                json!([prefix("/api/cart/x", "traefik")]),
            ),
        ];
        let mut other = ingresses[2].as_ref().clone();
        other["spec"]["ingressClassName"] = json!("traefik");
        let ingresses = [ingresses[0].clone(), ingresses[1].clone(), Arc::new(other)];
        let at = |path: &str| reach_path(&ingresses, path, &[]);
        assert_eq!(at("/").as_deref(), Some("root"));
        assert_eq!(at("/apix").as_deref(), Some("root"));
        assert_eq!(at("/api/x").as_deref(), Some("api"));
        assert_eq!(at("/api/cart").as_deref(), Some("exact"));
        assert_eq!(at("/api/cart/1").as_deref(), Some("impl"));
        assert_eq!(
            at("/api/cart/x").as_deref(),
            Some("impl"),
            "another class is not served"
        );
        let request = sample("GET", "elsewhere", "/api/cart/items/1", &[]);
        let mut rng = StdRng::seed_from_u64(1);
        assert!(matches!(
            route(&ingresses, &request, &Patterns::default(), &mut rng),
            Some(Decision::Service { service, .. }) if service.name == "hostless"
        ));
        let request = sample("GET", "elsewhere", "/web", &[]);
        assert!(route(&ingresses, &request, &Patterns::default(), &mut rng).is_none());
    }

    #[test]
    fn canary_by_header_always_never_value_and_pattern() {
        let plain = with(&[("canary-by-header", "x-canary")]);
        assert_eq!(
            reach(&plain, &[("x-canary", "always")]).as_deref(),
            Some("cart-canary")
        );
        assert_eq!(
            reach(&plain, &[("X-Canary", "never")]).as_deref(),
            Some("cart-stable")
        );
        assert_eq!(
            reach(&plain, &[("x-canary", "yes")]).as_deref(),
            Some("cart-stable")
        );
        assert_eq!(reach(&plain, &[]).as_deref(), Some("cart-stable"));

        let value = with(&[
            ("canary-by-header", "x-user"),
            ("canary-by-header-value", "alice"),
        ]);
        assert_eq!(
            reach(&value, &[("x-user", "alice")]).as_deref(),
            Some("cart-canary")
        );
        assert_eq!(
            reach(&value, &[("x-user", "always")]).as_deref(),
            Some("cart-stable")
        );
        assert_eq!(
            reach(&value, &[("x-user", "alice2")]).as_deref(),
            Some("cart-stable")
        );

        let pattern = with(&[
            ("canary-by-header", "x-user"),
            ("canary-by-header-pattern", "^(alice|bob)$"),
        ]);
        assert_eq!(
            reach(&pattern, &[("x-user", "bob")]).as_deref(),
            Some("cart-canary")
        );
        assert_eq!(
            reach(&pattern, &[("x-user", "bobby")]).as_deref(),
            Some("cart-stable")
        );
        let unanchored = with(&[
            ("canary-by-header", "x-user"),
            ("canary-by-header-pattern", "bo"),
        ]);
        assert_eq!(
            reach(&unanchored, &[("x-user", "bob")]).as_deref(),
            Some("cart-stable"),
            "a pattern matches the whole value"
        );
    }

    #[test]
    fn canary_tries_header_then_cookie_then_weight() {
        let all = with(&[
            ("canary-by-header", "x-canary"),
            ("canary-by-cookie", "beta"),
            ("canary-weight", "100"),
        ]);
        assert_eq!(
            reach(&all, &[("x-canary", "never"), ("cookie", "beta=always")]).as_deref(),
            Some("cart-stable"),
            "the header decides first"
        );
        assert_eq!(
            reach(&all, &[("x-canary", "other"), ("cookie", "beta=never")]).as_deref(),
            Some("cart-stable"),
            "an undecided header falls to the cookie"
        );
        assert_eq!(
            reach(&all, &[("cookie", "a=1; beta=always")]).as_deref(),
            Some("cart-canary")
        );
        assert_eq!(
            reach(&all, &[("cookie", "beta=1")]).as_deref(),
            Some("cart-canary"),
            "an undecided cookie falls to the weight"
        );
        let cookie_only = with(&[("canary-by-cookie", "beta")]);
        assert_eq!(
            reach(&cookie_only, &[("cookie", "beta=1")]).as_deref(),
            Some("cart-stable")
        );
        assert_eq!(
            reach(&cookie_only, &[("cookie", "beta=always")]).as_deref(),
            Some("cart-canary")
        );
    }

    #[test]
    fn canary_weight_is_out_of_the_total() {
        let share = |annotations: &[(&str, &str)]| {
            let ingresses = with(annotations);
            let mut rng = StdRng::seed_from_u64(5);
            let patterns = Patterns::default();
            let request = sample("GET", "cart.shop.svc", "/", &[]);
            (0..1000)
                .filter(|_| {
                    matches!(
                        route(&ingresses, &request, &patterns, &mut rng),
                        Some(Decision::Service { service, .. }) if service.name == "cart-canary"
                    )
                })
                .count()
        };
        assert_eq!(share(&[("canary-weight", "0")]), 0);
        assert_eq!(share(&[("canary-weight", "100")]), 1000);
        assert_eq!(
            share(&[("canary-weight", "100"), ("canary-weight-total", "100")]),
            1000
        );
        let tenth = share(&[("canary-weight", "10")]);
        assert!((50..160).contains(&tenth), "{tenth} of 1000");
        let half = share(&[("canary-weight", "500"), ("canary-weight-total", "1000")]);
        assert!((400..600).contains(&half), "{half} of 1000");
    }

    #[test]
    fn a_canary_applies_only_to_its_own_host_and_path() {
        let ingresses = vec![
            ingress(
                "cart",
                json!({}),
                Some("cart.shop.svc"),
                json!([prefix("/", "cart-stable"), prefix("/api", "cart-stable")]),
            ),
            ingress(
                "cart-canary",
                json!({"nginx.ingress.kubernetes.io/canary": "true", "nginx.ingress.kubernetes.io/canary-weight": "100"}),
                Some("cart.shop.svc"),
                json!([prefix("/api", "cart-canary")]),
            ),
        ];
        assert_eq!(
            reach_path(&ingresses, "/api/x", &[]).as_deref(),
            Some("cart-canary")
        );
        assert_eq!(
            reach_path(&ingresses, "/web", &[]).as_deref(),
            Some("cart-stable")
        );
        let only_canary = vec![ingresses[1].clone()];
        assert_eq!(
            reach_path(&only_canary, "/api", &[]),
            None,
            "a canary without its main Ingress serves nothing"
        );
    }
}
