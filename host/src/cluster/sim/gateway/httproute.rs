//! HTTPRoutes as Gateway API defines them (any parentRefs): hostnames against the Host,
//! matches (path, method, headers, query parameters; parts ANDed, matches ORed), the
//! precedence across every rule of every route, weighted backendRefs and the
//! `RequestHeaderModifier` filters of the rule and of the chosen backendRef.

use std::cmp::Reverse;
use std::sync::Arc;

use rand::Rng;
use serde_json::Value;

use super::patterns::Patterns;
use super::request::Incoming;
use super::{Decision, ServiceRef};
use crate::cluster::sim::meta;

/// The largest backendRef weight Gateway API allows (larger ones count as this).
const MAX_WEIGHT: u64 = 1_000_000;

/// How a matched request ranks; the greatest wins. Field order is the precedence
/// order: Exact path, then RegularExpression, then PathPrefix (each longer first), then
/// a method, more headers, more query parameters, the oldest route, the first rule.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Precedence {
    path_kind: u8,
    path_length: usize,
    has_method: bool,
    headers: usize,
    query_params: usize,
    age: Reverse<(String, String, String)>,
    rule: Reverse<usize>,
}

/// The request's route among `routes`, or `None` when no rule matches.
pub fn route(
    routes: &[Arc<Value>],
    request: &Incoming,
    patterns: &Patterns,
    rng: &mut impl Rng,
) -> Option<Decision> {
    let mut best: Option<(Precedence, &Value, &Value)> = None;
    for route in routes.iter().filter(|r| !meta::is_deleting(r)) {
        if !hostnames_match(route, &request.host) {
            continue;
        }
        let rules = route.pointer("/spec/rules").and_then(Value::as_array);
        for (index, rule) in rules.into_iter().flatten().enumerate() {
            let Some(precedence) = rule_match(route, index, rule, request, patterns) else {
                continue;
            };
            if best.as_ref().is_none_or(|(b, _, _)| precedence > *b) {
                best = Some((precedence, route, rule));
            }
        }
    }
    let (precedence, route, rule) = best?;
    Some(forward(route, precedence.rule.0, rule, rng))
}

/// No hostnames: any host. Otherwise one equal (case-insensitive) or a `*.` wildcard
/// whose suffix follows at least one label.
fn hostnames_match(route: &Value, host: &str) -> bool {
    let Some(hostnames) = route
        .pointer("/spec/hostnames")
        .and_then(Value::as_array)
        .filter(|h| !h.is_empty())
    else {
        return true;
    };
    hostnames.iter().filter_map(Value::as_str).any(|name| {
        let name = name.to_ascii_lowercase();
        match name.strip_prefix("*.") {
            Some(suffix) => host
                .strip_suffix(suffix)
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
            None => name == host,
        }
    })
}

/// The best-ranked of the rule's matches the request satisfies (a rule without
/// matches matches every path).
fn rule_match(
    route: &Value,
    rule_index: usize,
    rule: &Value,
    request: &Incoming,
    patterns: &Patterns,
) -> Option<Precedence> {
    let default = [Value::Null];
    let matches = rule
        .get("matches")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .map_or(&default[..], Vec::as_slice);
    matches
        .iter()
        .filter_map(|m| match_rank(m, request, patterns))
        .max()
        .map(
            |(path_kind, path_length, has_method, headers, query_params)| Precedence {
                path_kind,
                path_length,
                has_method,
                headers,
                query_params,
                age: Reverse((
                    meta::str_at(route, "/metadata/creationTimestamp")
                        .unwrap_or("")
                        .to_owned(),
                    meta::namespace(route).to_owned(),
                    meta::name(route).to_owned(),
                )),
                rule: Reverse(rule_index),
            },
        )
}

type Rank = (u8, usize, bool, usize, usize);

/// The rank of one `HTTPRouteMatch` when the request satisfies all of it.
fn match_rank(m: &Value, request: &Incoming, patterns: &Patterns) -> Option<Rank> {
    let path = m.get("path");
    let kind = path
        .and_then(|p| p.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("PathPrefix");
    let value = path
        .and_then(|p| p.get("value"))
        .and_then(Value::as_str)
        .unwrap_or("/");
    let path_kind = match kind {
        "Exact" if request.path == value => 2,
        "RegularExpression" if patterns.full_match(value, &request.path) => 1,
        "PathPrefix" if prefix_matches(value, &request.path) => 0,
        _ => return None,
    };
    let method = m.get("method").and_then(Value::as_str);
    if method.is_some_and(|method| method != request.method) {
        return None;
    }
    let headers = first_by_name(m.get("headers"), true);
    for header in &headers {
        let actual = request.header(header.name);
        if !value_matches(header, actual.as_deref(), patterns) {
            return None;
        }
    }
    let query_params = first_by_name(m.get("queryParams"), false);
    for param in &query_params {
        if !value_matches(param, request.query_param(param.name), patterns) {
            return None;
        }
    }
    Some((
        path_kind,
        value.len(),
        method.is_some(),
        headers.len(),
        query_params.len(),
    ))
}

/// Path-element prefix: `/api` (or `/api/`) matches `/api`, `/api/` and `/api/x`,
/// never `/apix`; `/` matches every path.
pub(super) fn prefix_matches(prefix: &str, path: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    prefix.is_empty()
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// One header or query-parameter condition.
struct ValueMatch<'a> {
    name: &'a str,
    regex: bool,
    value: &'a str,
}

/// The conditions of a list, keeping only the first of equal names (Gateway API).
fn first_by_name(list: Option<&Value>, case_insensitive: bool) -> Vec<ValueMatch<'_>> {
    let mut kept: Vec<ValueMatch<'_>> = Vec::new();
    for item in list.and_then(Value::as_array).into_iter().flatten() {
        let Some(name) = item.get("name").and_then(Value::as_str) else {
            continue;
        };
        let seen = kept.iter().any(|k| {
            if case_insensitive {
                k.name.eq_ignore_ascii_case(name)
            } else {
                k.name == name
            }
        });
        if !seen {
            kept.push(ValueMatch {
                name,
                regex: item.get("type").and_then(Value::as_str) == Some("RegularExpression"),
                value: item.get("value").and_then(Value::as_str).unwrap_or(""),
            });
        }
    }
    kept
}

fn value_matches(condition: &ValueMatch<'_>, actual: Option<&str>, patterns: &Patterns) -> bool {
    match actual {
        None => false,
        Some(actual) if condition.regex => patterns.full_match(condition.value, actual),
        Some(actual) => actual == condition.value,
    }
}

/// The weighted pick among the rule's backendRefs, with the filters that apply.
fn forward(route: &Value, rule_index: usize, rule: &Value, rng: &mut impl Rng) -> Decision {
    let which = format!(
        "httproute {}/{} rule {rule_index}",
        meta::namespace(route),
        meta::name(route)
    );
    let refs: Vec<(&Value, u64)> = rule
        .get("backendRefs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|b| {
            let weight = b.get("weight").and_then(Value::as_u64).unwrap_or(1);
            (b, weight.min(MAX_WEIGHT))
        })
        .filter(|(_, weight)| *weight > 0)
        .collect();
    let total: u64 = refs.iter().map(|(_, w)| w).sum();
    if total == 0 {
        return Decision::Broken(format!("{which} has no backendRef with a weight above 0"));
    }
    let mut draw = rng.random_range(0..total);
    let chosen = refs
        .iter()
        .find(|(_, weight)| {
            let here = draw < *weight;
            draw = draw.saturating_sub(*weight);
            here
        })
        .map_or(refs[0].0, |(b, _)| *b);
    let group = chosen.get("group").and_then(Value::as_str).unwrap_or("");
    let kind = chosen
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("Service");
    let Some(name) = chosen.get("name").and_then(Value::as_str) else {
        return Decision::Broken(format!("{which} has a backendRef without a name"));
    };
    if !group.is_empty() || kind != "Service" {
        return Decision::Broken(format!(
            "{which}: backendRef {name} of kind {kind} is not a Service"
        ));
    }
    let namespace = chosen
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or(meta::namespace(route));
    let mut filters = header_modifiers(rule.get("filters"));
    filters.extend(header_modifiers(chosen.get("filters")));
    Decision::Service {
        service: ServiceRef {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        },
        filters,
    }
}

/// A `RequestHeaderModifier`: set, then add, then remove.
#[derive(Debug, Default, PartialEq)]
pub struct HeaderModifier {
    set: Vec<(String, String)>,
    add: Vec<(String, String)>,
    remove: Vec<String>,
}

impl HeaderModifier {
    pub fn apply(&self, request: &mut Incoming) {
        for (name, value) in &self.set {
            request.set_header(name, value);
        }
        for (name, value) in &self.add {
            request.add_header(name, value);
        }
        for name in &self.remove {
            request.remove_header(name);
        }
    }
}

/// The `RequestHeaderModifier` filters of a list; other filter types do not change
/// what the pod receives and are left out.
fn header_modifiers(filters: Option<&Value>) -> Vec<HeaderModifier> {
    let pairs = |list: Option<&Value>| -> Vec<(String, String)> {
        list.and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|h| {
                Some((
                    h.get("name")?.as_str()?.to_owned(),
                    h.get("value")?.as_str()?.to_owned(),
                ))
            })
            .collect()
    };
    filters
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|f| f.get("type").and_then(Value::as_str) == Some("RequestHeaderModifier"))
        .filter_map(|f| f.get("requestHeaderModifier"))
        .map(|m| HeaderModifier {
            set: pairs(m.get("set")),
            add: pairs(m.get("add")),
            remove: m
                .get("remove")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use serde_json::json;

    use super::super::request::sample;
    use super::*;

    fn http_route(name: &str, created: &str, spec: Value) -> Arc<Value> {
        Arc::new(json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": name, "namespace": "shop", "creationTimestamp": created},
            "spec": spec,
        }))
    }

    fn to(service: &str) -> Value {
        json!([{"name": service, "port": 80}])
    }

    /// The Service a request reaches, or the reason it cannot.
    fn reach(routes: &[Arc<Value>], request: &Incoming) -> Option<String> {
        let mut rng = StdRng::seed_from_u64(7);
        route(routes, request, &Patterns::default(), &mut rng).map(|d| match d {
            Decision::Service { service, .. } => service.name,
            Decision::Broken(why) => format!("broken: {why}"),
        })
    }

    fn get(path: &str, headers: &[(&str, &str)]) -> Incoming {
        sample("GET", "cart.shop.svc:16480", path, headers)
    }

    #[test]
    fn path_prefix_matches_whole_path_elements() {
        assert!(prefix_matches("/api", "/api"));
        assert!(prefix_matches("/api", "/api/"));
        assert!(prefix_matches("/api", "/api/cart"));
        assert!(prefix_matches("/api/", "/api"));
        assert!(!prefix_matches("/api", "/apix"));
        assert!(!prefix_matches("/api", "/"));
        assert!(prefix_matches("/", "/anything"));
    }

    #[test]
    fn hostnames_are_exact_or_wildcard_and_absent_means_any() {
        let routes = [http_route(
            "r",
            "2026-01-01T00:00:00Z",
            json!({"hostnames": ["Cart.Shop.svc", "*.example.com"], "rules": [{"backendRefs": to("a")}]}),
        )];
        assert_eq!(reach(&routes, &get("/", &[])).as_deref(), Some("a"));
        let on = |host: &str| reach(&routes, &sample("GET", host, "/", &[]));
        assert_eq!(on("x.example.com").as_deref(), Some("a"));
        assert_eq!(on("a.b.example.com").as_deref(), Some("a"));
        assert_eq!(on("example.com"), None);
        assert_eq!(on("other.shop.svc"), None);
        let any = [http_route(
            "r",
            "2026-01-01T00:00:00Z",
            json!({"rules": [{"backendRefs": to("a")}]}),
        )];
        assert_eq!(
            reach(&any, &sample("GET", "whatever", "/", &[])).as_deref(),
            Some("a")
        );
    }

    #[test]
    fn precedence_exact_then_longest_prefix_then_method_headers_query_age_rule_order() {
        let t = "2026-01-01T00:00:00Z";
        let routes = [
            http_route(
                "newer",
                "2026-01-02T00:00:00Z",
                json!({"rules": [
                    {"matches": [{"path": {"type": "PathPrefix", "value": "/"}, "headers": [{"name": "x-a", "value": "1"}]}], "backendRefs": to("newer-header")},
                ]}),
            ),
            http_route(
                "older",
                t,
                json!({"rules": [
                    {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], "backendRefs": to("root")},
                    {"matches": [{"path": {"type": "PathPrefix", "value": "/api"}}], "backendRefs": to("api")},
                    {"matches": [{"path": {"type": "Exact", "value": "/api/cart"}}], "backendRefs": to("exact")},
                    {"matches": [{"path": {"type": "PathPrefix", "value": "/"}, "method": "POST"}], "backendRefs": to("post")},
                    {"matches": [{"headers": [{"name": "x-a", "value": "1"}]}], "backendRefs": to("older-header")},
                    {"matches": [{"headers": [{"name": "x-a", "value": "1"}]}], "backendRefs": to("later-rule")},
                    {"matches": [{"headers": [{"name": "x-a", "value": "1"}, {"name": "x-b", "value": "2"}]}], "backendRefs": to("two-headers")},
                    {"matches": [{"headers": [{"name": "x-a", "value": "1"}], "queryParams": [{"name": "q", "value": "1"}]}], "backendRefs": to("header-query")},
                    {"matches": [{"path": {"type": "RegularExpression", "value": "/re/[0-9]+"}}], "backendRefs": to("regex")},
                ]}),
            ),
        ];
        let at = |path: &str, headers: &[(&str, &str)]| reach(&routes, &get(path, headers));
        assert_eq!(at("/", &[]).as_deref(), Some("root"));
        assert_eq!(at("/api/cart", &[("x-a", "1")]).as_deref(), Some("exact"));
        assert_eq!(at("/api/cart/", &[]).as_deref(), Some("api"));
        assert_eq!(at("/api/x", &[("x-a", "1")]).as_deref(), Some("api"));
        assert_eq!(at("/re/12", &[]).as_deref(), Some("regex"));
        assert_eq!(at("/re/12x", &[]).as_deref(), Some("root"));
        assert_eq!(
            reach(&routes, &sample("POST", "h", "/", &[("x-a", "1")])).as_deref(),
            Some("post")
        );
        assert_eq!(at("/", &[("x-a", "1")]).as_deref(), Some("older-header"));
        assert_eq!(
            at("/", &[("x-a", "1"), ("x-b", "2")]).as_deref(),
            Some("two-headers")
        );
        assert_eq!(
            at("/?q=1", &[("x-a", "1")]).as_deref(),
            Some("header-query")
        );
    }

    #[test]
    fn header_and_query_matches_are_exact_or_full_regex() {
        let routes = [http_route(
            "r",
            "2026-01-01T00:00:00Z",
            json!({"rules": [
                {"matches": [{"headers": [{"type": "RegularExpression", "name": "X-User", "value": "alice|bob"}]}], "backendRefs": to("by-header")},
                {"matches": [{"queryParams": [{"type": "Exact", "name": "beta", "value": "on"}]}], "backendRefs": to("by-exact-query")},
                {"matches": [{"queryParams": [{"type": "RegularExpression", "name": "v", "value": "[0-9]+"}]}], "backendRefs": to("by-query")},
                {"matches": [{"headers": [{"type": "RegularExpression", "name": "cookie", "value": "^(.*;\\s*)?beta=1(\\s*;.*)?$"}]}], "backendRefs": to("by-cookie")},
                {"backendRefs": to("stable")},
            ]}),
        )];
        let at = |path: &str, headers: &[(&str, &str)]| reach(&routes, &get(path, headers));
        assert_eq!(at("/", &[("x-user", "bob")]).as_deref(), Some("by-header"));
        assert_eq!(at("/", &[("x-user", "bobby")]).as_deref(), Some("stable"));
        assert_eq!(at("/", &[("x-user", "Bob")]).as_deref(), Some("stable"));
        assert_eq!(at("/?beta=on", &[]).as_deref(), Some("by-exact-query"));
        assert_eq!(at("/?beta=On", &[]).as_deref(), Some("stable"));
        assert_eq!(at("/?v=42", &[]).as_deref(), Some("by-query"));
        assert_eq!(at("/?v=42a", &[]).as_deref(), Some("stable"));
        for cookie in ["beta=1", "a=2; beta=1", "beta=1; a=2", "a=1;beta=1"] {
            assert_eq!(
                at("/", &[("cookie", cookie)]).as_deref(),
                Some("by-cookie"),
                "{cookie}"
            );
        }
        for cookie in ["beta=10", "xbeta=1", "beta=0"] {
            assert_eq!(
                at("/", &[("cookie", cookie)]).as_deref(),
                Some("stable"),
                "{cookie}"
            );
        }
    }

    #[test]
    fn a_path_miss_is_no_route() {
        let routes = [http_route(
            "r",
            "2026-01-01T00:00:00Z",
            json!({"rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/api"}}], "backendRefs": to("a")}]}),
        )];
        assert_eq!(reach(&routes, &get("/web", &[])), None);
    }

    #[test]
    fn weights_split_traffic_and_weight_zero_gets_none() {
        let split = |stable: u64, canary: u64| {
            let routes = [http_route(
                "r",
                "2026-01-01T00:00:00Z",
                json!({"rules": [{"backendRefs": [
                    {"name": "stable", "port": 80, "weight": stable},
                    {"name": "canary", "port": 80, "weight": canary},
                ]}]}),
            )];
            let mut rng = StdRng::seed_from_u64(11);
            let patterns = Patterns::default();
            (0..1000)
                .filter(|_| {
                    matches!(
                        route(&routes, &get("/", &[]), &patterns, &mut rng),
                        Some(Decision::Service { service, .. }) if service.name == "canary"
                    )
                })
                .count()
        };
        assert_eq!(split(100, 0), 0);
        assert_eq!(split(0, 100), 1000);
        let quarter = split(75, 25);
        assert!((150..350).contains(&quarter), "{quarter} of 1000");
        let routes = [http_route(
            "r",
            "2026-01-01T00:00:00Z",
            json!({"rules": [{"backendRefs": [{"name": "a", "port": 80, "weight": 0}]}]}),
        )];
        assert!(
            reach(&routes, &get("/", &[]))
                .is_some_and(|r| r.starts_with("broken: httproute shop/r rule 0"))
        );
    }

    #[test]
    fn request_header_modifiers_of_rule_then_backend_apply() {
        let routes = [http_route(
            "r",
            "2026-01-01T00:00:00Z",
            json!({"rules": [{
                "filters": [{"type": "RequestHeaderModifier", "requestHeaderModifier": {
                    "set": [{"name": "X-Set", "value": "rule"}],
                    "add": [{"name": "x-add", "value": "two"}],
                    "remove": ["x-drop"]}}],
                "backendRefs": [{"name": "canary", "port": 80, "filters": [
                    {"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": [{"name": "x-gray-tag", "value": "beta"}]}}]}],
            }]}),
        )];
        let mut request = get(
            "/",
            &[
                ("x-set", "client"),
                ("x-add", "one"),
                ("x-drop", "1"),
                ("x-keep", "k"),
            ],
        );
        let mut rng = StdRng::seed_from_u64(1);
        let Some(Decision::Service { filters, .. }) =
            route(&routes, &request, &Patterns::default(), &mut rng)
        else {
            panic!("the route matches");
        };
        for filter in &filters {
            filter.apply(&mut request);
        }
        let headers = request.headers_json();
        assert_eq!(headers["x-set"], "rule");
        assert_eq!(headers["x-add"], "one,two");
        assert_eq!(headers["x-gray-tag"], "beta");
        assert_eq!(headers["x-keep"], "k");
        assert!(headers.get("x-drop").is_none());
    }
}
