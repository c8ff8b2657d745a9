//! The simulator's HTTP surface: discovery, `/version`, `/openapi/v2`, and every verb on
//! `/api/v1/...` and `/apis/{group}/{version}/...` — get, list (selectors, paging, Tables),
//! watch, create, replace, the four patch types, delete and delete-collection, plus the
//! `status`, `scale` and `log` subresources.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use serde_json::{Value, json};

use super::Shared;
use super::discovery;
use super::meta;
use super::patch::{self, PatchKind};
use super::resources::{self, ResourceType};
use super::selector::{FieldSelector, LabelSelector};
use super::status::Status;
use super::table;
use super::world::{DeleteOptions, Deleted, EventType, Propagation, UpdateScope, World};

/// Largest request body (a 1 MiB ConfigMap plus its envelope).
const MAX_BODY: usize = 3 * 1024 * 1024;
/// Longest a watch stays open when the client names no timeout.
const MAX_WATCH: Duration = Duration::from_secs(1800);
const BOOKMARK_EVERY: Duration = Duration::from_secs(60);

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/version", get(discovery::version))
        .route("/version/", get(discovery::version))
        .route("/api", get(discovery::core_versions))
        .route("/api/", get(discovery::core_versions))
        .route("/apis", get(discovery::groups))
        .route("/apis/", get(discovery::groups))
        .route("/openapi/v2", get(discovery::openapi_v2))
        .route("/healthz", get(|| async { "ok" }))
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }))
        .fallback(resource_request)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(shared)
}

/// What a resource path names.
struct Target {
    resource: &'static ResourceType,
    namespace: String,
    name: Option<String>,
    subresource: Option<String>,
}

enum Path {
    GroupVersion(String, String),
    Group(String),
    Resource(Target),
}

fn parse_path(path: &str) -> Result<Path, Status> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group] => return Ok(Path::Group((*group).to_owned())),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Err(Status::path_not_found()),
    };
    if rest.is_empty() {
        return if resources::RESOURCES
            .iter()
            .any(|r| r.group == group && r.version == version)
        {
            Ok(Path::GroupVersion(group.to_owned(), version.to_owned()))
        } else {
            Err(Status::path_not_found())
        };
    }
    let find =
        |plural: &str| resources::find(group, version, plural).ok_or_else(Status::path_not_found);
    let target = match rest {
        ["namespaces", namespace, plural, tail @ ..]
            if !(group.is_empty()
                && matches!(*plural, "status" | "finalize")
                && tail.is_empty()) =>
        {
            let resource = find(plural)?;
            if !resource.namespaced || tail.len() > 2 {
                return Err(Status::path_not_found());
            }
            Target {
                resource,
                namespace: (*namespace).to_owned(),
                name: tail.first().map(|s| (*s).to_owned()),
                subresource: tail.get(1).map(|s| (*s).to_owned()),
            }
        }
        [plural, tail @ ..] => {
            let resource = find(plural)?;
            if (resource.namespaced && !tail.is_empty()) || tail.len() > 2 {
                return Err(Status::path_not_found());
            }
            Target {
                resource,
                namespace: String::new(),
                name: tail.first().map(|s| (*s).to_owned()),
                subresource: tail.get(1).map(|s| (*s).to_owned()),
            }
        }
        [] => return Err(Status::path_not_found()),
    };
    if let Some(sub) = &target.subresource
        && !target.resource.subresources.contains(&sub.as_str())
    {
        return Err(Status::path_not_found());
    }
    Ok(Path::Resource(target))
}

/// Query parameters; kube-rs sends `?&a=b` and `+` for spaces, both handled here.
struct Query(HashMap<String, String>);

impl Query {
    fn parse(uri: &Uri) -> Self {
        Self(
            url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
    fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }
}

async fn resource_request(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query = Query::parse(&uri);
    let target = match parse_path(uri.path()) {
        Ok(Path::GroupVersion(group, version)) if method == Method::GET => {
            return discovery::resource_list(&group, &version).into_response();
        }
        Ok(Path::Group(group)) if method == Method::GET => {
            return discovery::group(&group).into_response();
        }
        Ok(Path::Resource(target)) => target,
        Ok(_) => return Status::method_not_allowed("only GET is allowed here").into_response(),
        Err(status) => return status.into_response(),
    };
    if query.get("dryRun").is_some() && method != Method::GET {
        return Status::bad_request("dryRun is not supported by the embedded cluster")
            .into_response();
    }
    let wants_table = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("as=Table"));
    let result = match (
        &method,
        target.name.as_deref(),
        target.subresource.as_deref(),
    ) {
        (&Method::GET, None, _) if query.flag("watch") => return watch(shared, &target, &query),
        (&Method::GET, None, _) => list(&shared, &target, &query, wants_table),
        (&Method::GET, Some(name), Some("log")) => return logs(shared, &target, name, &query),
        (&Method::GET, Some(name), Some("scale")) => get_scale(&shared, &target, name),
        (&Method::GET, Some(name), _) => get_one(&shared, &target, name, wants_table),
        (&Method::POST, None, None) => create(&shared, &target, &body).await,
        (&Method::PUT, Some(name), sub) => replace(&shared, &target, name, sub, &body).await,
        (&Method::PATCH, Some(name), sub) => {
            patch_object(&shared, &target, name, sub, &headers, &query, &body).await
        }
        (&Method::DELETE, Some(name), None) => delete(&shared, &target, name, &query, &body).await,
        (&Method::DELETE, None, None) => delete_collection(&shared, &target, &query, &body).await,
        _ => Err(Status::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({method})"
        ))),
    };
    match result {
        Ok(response) => response,
        Err(status) => status.into_response(),
    }
}

fn object_response(code: StatusCode, object: &Value) -> Response {
    (code, axum::Json(object)).into_response()
}

fn parse_body(body: &Bytes) -> Result<Value, Status> {
    serde_json::from_slice(body)
        .map_err(|e| Status::bad_request(format!("the request body is not valid JSON: {e}")))
}

fn selectors(target: &Target, query: &Query) -> Result<(LabelSelector, FieldSelector), Status> {
    Ok((
        LabelSelector::parse(query.get("labelSelector").unwrap_or(""))?,
        FieldSelector::parse(query.get("fieldSelector").unwrap_or(""), target.resource)?,
    ))
}

fn namespace_filter(target: &Target) -> Option<&str> {
    (target.resource.namespaced && !target.namespace.is_empty())
        .then_some(target.namespace.as_str())
}

fn get_one(
    shared: &Shared,
    target: &Target,
    name: &str,
    wants_table: bool,
) -> Result<Response, Status> {
    let object = shared
        .world()
        .get(target.resource, &target.namespace, name)
        .ok_or_else(|| Status::not_found(target.resource, name))?;
    if wants_table {
        let rv = meta::str_at(&object, "/metadata/resourceVersion")
            .unwrap_or("")
            .to_owned();
        return Ok(axum::Json(table::table(target.resource, &[object], &rv, None)).into_response());
    }
    Ok(object_response(StatusCode::OK, &object))
}

fn list(
    shared: &Shared,
    target: &Target,
    query: &Query,
    wants_table: bool,
) -> Result<Response, Status> {
    let (labels, fields) = selectors(target, query)?;
    let limit = match query.get("limit") {
        Some(text) => Some(
            text.parse::<usize>()
                .map_err(|_| Status::bad_request(format!("invalid limit: {text}")))?,
        ),
        None => None,
    }
    .filter(|l| *l > 0);
    let after = match query.get("continue") {
        Some(token) => Some(decode_continue(token)?),
        None => None,
    };
    let world = shared.world();
    let rv = match &after {
        Some((first_rv, _, _)) if *first_rv < world.oldest_replayable() => {
            return Err(Status::expired(
                "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
            ));
        }
        Some((first_rv, _, _)) => first_rv.to_string(),
        None => world.resource_version().to_string(),
    };
    let mut matching = world
        .list(target.resource, namespace_filter(target))
        .filter(|object| {
            after.as_ref().is_none_or(|(_, ns, name)| {
                (meta::namespace(object), meta::name(object)) > (ns.as_str(), name.as_str())
            })
        })
        .filter(|object| labels.matches_object(object) && fields.matches(object));
    let mut items: Vec<Arc<Value>> = match limit {
        Some(limit) => matching.by_ref().take(limit).cloned().collect(),
        None => matching.by_ref().cloned().collect(),
    };
    let remaining = matching.count();
    drop(world);
    let continue_token = (remaining > 0)
        .then(|| {
            items
                .last()
                .map(|last| encode_continue(&rv, meta::namespace(last), meta::name(last)))
        })
        .flatten();
    if wants_table {
        return Ok(axum::Json(table::table(
            target.resource,
            &items,
            &rv,
            continue_token.as_deref(),
        ))
        .into_response());
    }
    let mut metadata = json!({"resourceVersion": rv});
    if let Some(token) = continue_token {
        metadata["continue"] = json!(token);
        metadata["remainingItemCount"] = json!(remaining);
    }
    let items: Vec<Value> = items.drain(..).map(|o| o.as_ref().clone()).collect();
    Ok(axum::Json(json!({
        "kind": target.resource.list_kind(),
        "apiVersion": target.resource.api_version(),
        "metadata": metadata,
        "items": items,
    }))
    .into_response())
}

/// A continue token: the first page's resourceVersion (every page answers with it, so a
/// watch that follows a paged list replays what changed meanwhile) and the last key.
fn encode_continue(rv: &str, namespace: &str, name: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("{rv}\u{0}{namespace}\u{0}{name}"))
}

/// (first page's resourceVersion, namespace, name) of a continue token.
fn decode_continue(token: &str) -> Result<(u64, String, String), Status> {
    let invalid = || Status::bad_request("invalid continue token");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let mut parts = text.splitn(3, '\u{0}');
    let rv = parts
        .next()
        .and_then(|rv| rv.parse().ok())
        .ok_or_else(invalid)?;
    let namespace = parts.next().ok_or_else(invalid)?;
    let name = parts.next().ok_or_else(invalid)?;
    Ok((rv, namespace.to_owned(), name.to_owned()))
}

async fn create(shared: &Shared, target: &Target, body: &Bytes) -> Result<Response, Status> {
    let object = parse_body(body)?;
    let namespace = if target.resource.namespaced {
        if target.namespace.is_empty() {
            meta::namespace(&object).to_owned()
        } else {
            target.namespace.clone()
        }
    } else {
        String::new()
    };
    if target.resource.namespaced && namespace.is_empty() {
        return Err(Status::bad_request(
            "a namespace is required to create this object",
        ));
    }
    let created = shared
        .write(|world| world.create(target.resource, &namespace, object))
        .await?;
    Ok(object_response(StatusCode::CREATED, &created))
}

async fn replace(
    shared: &Shared,
    target: &Target,
    name: &str,
    sub: Option<&str>,
    body: &Bytes,
) -> Result<Response, Status> {
    let object = parse_body(body)?;
    if sub == Some("scale") {
        return set_scale(shared, target, name, &object).await;
    }
    let scope = if sub == Some("status") {
        UpdateScope::Status
    } else {
        UpdateScope::Object
    };
    let updated = shared
        .write(|world| world.update(target.resource, &target.namespace, name, object, scope))
        .await?;
    Ok(object_response(StatusCode::OK, &updated))
}

async fn patch_object(
    shared: &Shared,
    target: &Target,
    name: &str,
    sub: Option<&str>,
    headers: &HeaderMap,
    query: &Query,
    body: &Bytes,
) -> Result<Response, Status> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let kind = PatchKind::from_content_type(content_type)
        .ok_or_else(|| Status::unsupported_media_type(content_type))?;
    if kind == PatchKind::Strategic && !target.resource.builtin {
        return Err(Status::unsupported_media_type(content_type));
    }
    if kind != PatchKind::Apply && query.get("force").is_some() {
        return Err(Status::bad_request("force is only valid for apply patches"));
    }
    if kind == PatchKind::Apply && query.get("fieldManager").is_none() {
        return Err(Status::bad_request(
            "PATCH request with apply content type requires a fieldManager",
        ));
    }
    let patch_body: Value = match kind {
        PatchKind::Apply => serde_json::from_slice(body).or_else(|_| {
            let text = std::str::from_utf8(body)
                .map_err(|_| Status::bad_request("the apply body is not UTF-8"))?;
            serde_saphyr::from_str::<Value>(text)
                .map_err(|e| Status::bad_request(format!("the apply body is not valid YAML: {e}")))
        })?,
        _ => parse_body(body)?,
    };
    if sub == Some("scale") {
        let mut scale = scale_of(shared, target, name)?;
        patch::apply(kind, &mut scale, &patch_body)
            .map_err(|e| Status::invalid(target.resource, name, &[("", e.0)]))?;
        return set_scale(shared, target, name, &scale).await;
    }
    let scope = if sub == Some("status") {
        UpdateScope::Status
    } else {
        UpdateScope::Object
    };
    let resource = target.resource;
    let namespace = target.namespace.clone();
    let (code, object) = shared
        .write(|world| {
            let Some(current) = world.get(resource, &namespace, name) else {
                if kind == PatchKind::Apply {
                    let mut fresh = patch_body.clone();
                    meta::metadata_mut(&mut fresh).insert("name".into(), json!(name));
                    return world
                        .create(resource, &namespace, fresh)
                        .map(|o| (StatusCode::CREATED, o));
                }
                return Err(Status::not_found(resource, name));
            };
            let mut patched = current.as_ref().clone();
            patch::apply(kind, &mut patched, &patch_body)
                .map_err(|e| Status::invalid(resource, name, &[("", e.0)]))?;
            if patch_body.pointer("/metadata/resourceVersion").is_none() {
                patched["metadata"]["resourceVersion"] =
                    current["metadata"]["resourceVersion"].clone();
            }
            world
                .update(resource, &namespace, name, patched, scope)
                .map(|o| (StatusCode::OK, o))
        })
        .await?;
    Ok(object_response(code, &object))
}

fn scale_of(shared: &Shared, target: &Target, name: &str) -> Result<Value, Status> {
    let object = shared
        .world()
        .get(target.resource, &target.namespace, name)
        .ok_or_else(|| Status::not_found(target.resource, name))?;
    let selector = object
        .pointer("/spec/selector")
        .and_then(LabelSelector::from_object)
        .map(|s| s.to_query())
        .unwrap_or_default();
    Ok(json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": name,
            "namespace": target.namespace,
            "uid": meta::uid(&object),
            "resourceVersion": object["metadata"]["resourceVersion"],
            "creationTimestamp": object["metadata"]["creationTimestamp"],
        },
        "spec": {"replicas": object.pointer("/spec/replicas").cloned().unwrap_or(json!(0))},
        "status": {"replicas": object.pointer("/status/replicas").cloned().unwrap_or(json!(0)), "selector": selector},
    }))
}

fn get_scale(shared: &Shared, target: &Target, name: &str) -> Result<Response, Status> {
    Ok(object_response(
        StatusCode::OK,
        &scale_of(shared, target, name)?,
    ))
}

async fn set_scale(
    shared: &Shared,
    target: &Target,
    name: &str,
    scale: &Value,
) -> Result<Response, Status> {
    let Some(replicas) = scale
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .filter(|r| *r >= 0)
    else {
        return Err(Status::invalid(
            target.resource,
            name,
            &[(
                "spec.replicas",
                "Invalid value: must be greater than or equal to 0".into(),
            )],
        ));
    };
    let resource = target.resource;
    let namespace = target.namespace.clone();
    let precondition = scale
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .map(str::to_owned);
    shared
        .write(|world| {
            let current = world
                .get(resource, &namespace, name)
                .ok_or_else(|| Status::not_found(resource, name))?;
            let mut updated = current.as_ref().clone();
            updated["spec"]["replicas"] = json!(replicas);
            if let Some(rv) = precondition {
                updated["metadata"]["resourceVersion"] = json!(rv);
            }
            world.update(resource, &namespace, name, updated, UpdateScope::Object)
        })
        .await?;
    get_scale(shared, target, name)
}

fn delete_options(query: &Query, body: &Bytes) -> Result<DeleteOptions, Status> {
    let body: Value = if body.is_empty() {
        json!({})
    } else {
        parse_body(body)?
    };
    let policy = body
        .get("propagationPolicy")
        .and_then(Value::as_str)
        .or_else(|| query.get("propagationPolicy"));
    let propagation = match policy {
        None => None,
        Some("Background") => Some(Propagation::Background),
        Some("Foreground") => Some(Propagation::Foreground),
        Some("Orphan") => Some(Propagation::Orphan),
        Some(other) => {
            return Err(Status::bad_request(format!(
                "unsupported propagationPolicy: {other}"
            )));
        }
    };
    let propagation =
        propagation.or_else(
            || match body.get("orphanDependents").and_then(Value::as_bool) {
                Some(true) => Some(Propagation::Orphan),
                _ => None,
            },
        );
    Ok(DeleteOptions {
        propagation,
        precondition_uid: meta::str_at(&body, "/preconditions/uid").map(str::to_owned),
        precondition_rv: meta::str_at(&body, "/preconditions/resourceVersion").map(str::to_owned),
    })
}

fn deleted_status(resource: &ResourceType, object: &Value) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": meta::name(object), "group": resource.group, "kind": resource.plural, "uid": meta::uid(object)},
    })
}

async fn delete(
    shared: &Shared,
    target: &Target,
    name: &str,
    query: &Query,
    body: &Bytes,
) -> Result<Response, Status> {
    let options = delete_options(query, body)?;
    let outcome = shared
        .write(|world| world.delete(target.resource, &target.namespace, name, &options))
        .await?;
    Ok(match outcome {
        Deleted::Gone(last) => {
            object_response(StatusCode::OK, &deleted_status(target.resource, &last))
        }
        Deleted::Pending(object) => object_response(StatusCode::OK, &object),
    })
}

async fn delete_collection(
    shared: &Shared,
    target: &Target,
    query: &Query,
    body: &Bytes,
) -> Result<Response, Status> {
    let options = delete_options(query, body)?;
    let (labels, fields) = selectors(target, query)?;
    let resource = target.resource;
    let namespace = namespace_filter(target).map(str::to_owned);
    let items = shared
        .write(|world| {
            let names: Vec<(String, String)> = world
                .list(resource, namespace.as_deref())
                .filter(|o| labels.matches_object(o) && fields.matches(o))
                .map(|o| (meta::namespace(o).to_owned(), meta::name(o).to_owned()))
                .collect();
            let mut items = Vec::new();
            for (ns, name) in names {
                match world.delete(resource, &ns, &name, &options)? {
                    Deleted::Gone(object) | Deleted::Pending(object) => {
                        items.push(object.as_ref().clone())
                    }
                }
            }
            Ok(items)
        })
        .await?;
    let rv = shared.world().resource_version().to_string();
    Ok(axum::Json(json!({
        "kind": resource.list_kind(),
        "apiVersion": resource.api_version(),
        "metadata": {"resourceVersion": rv},
        "items": items,
    }))
    .into_response())
}

/// `pods/{name}/log`: the simulated container's lines (`tailLines`, `limitBytes`,
/// `container`), or with `follow=true` those lines and then each new one as the pod's
/// state changes, until the pod is deleted, `limitBytes` is reached or the client goes.
/// Following waits on the event feed, never while holding the world lock.
fn logs(shared: Arc<Shared>, target: &Target, name: &str, query: &Query) -> Response {
    let follow = query.flag("follow");
    let (pod, feed) = {
        let world = shared.world();
        let pod = world.get(target.resource, &target.namespace, name);
        let feed = follow
            .then(|| world.subscribe(world.resource_version()))
            .flatten()
            .map(|(_, live)| live);
        (pod, feed)
    };
    let Some(pod) = pod else {
        return Status::not_found(target.resource, name).into_response();
    };
    let container = query.get("container").map(str::to_owned);
    let lines = match super::controllers::kubelet::log_lines(&pod, container.as_deref()) {
        Ok(lines) => lines,
        Err(status) => return status.into_response(),
    };
    let tail = query.get("tailLines").and_then(|t| t.parse::<usize>().ok());
    let mut budget = query
        .get("limitBytes")
        .and_then(|b| b.parse::<usize>().ok())
        .filter(|b| *b > 0);
    let skip = tail.map_or(0, |t| lines.len().saturating_sub(t));
    let mut text: String = lines.iter().skip(skip).map(|l| format!("{l}\n")).collect();
    let exhausted = take_budget(&mut text, &mut budget);
    let Some(mut feed) = feed.filter(|_| !exhausted) else {
        return ([(header::CONTENT_TYPE, "text/plain")], text).into_response();
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let index = resources::index_of(target.resource);
    let (namespace, name) = (target.namespace.clone(), name.to_owned());
    let resource = target.resource;
    tokio::spawn(async move {
        if !text.is_empty() && tx.send(Bytes::from(text)).await.is_err() {
            return;
        }
        let mut sent = lines.len();
        loop {
            let pod = tokio::select! {
                _ = tx.closed() => return,
                received = feed.recv() => match received {
                    Ok(event) if event.resource == index
                        && meta::namespace(&event.object) == namespace
                        && meta::name(&event.object) == name => {
                        if event.kind == EventType::Deleted {
                            return;
                        }
                        event.object.clone()
                    }
                    Ok(_) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        match shared.world().get(resource, &namespace, &name) {
                            Some(pod) => pod,
                            None => return,
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
            };
            let Ok(now) = super::controllers::kubelet::log_lines(&pod, container.as_deref()) else {
                continue;
            };
            if now.len() <= sent {
                continue;
            }
            let mut text: String = now[sent..].iter().map(|l| format!("{l}\n")).collect();
            sent = now.len();
            let exhausted = take_budget(&mut text, &mut budget);
            if tx.send(Bytes::from(text)).await.is_err() || exhausted {
                return;
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, Infallible>(chunk), rx))
    });
    (
        [
            (header::CONTENT_TYPE, "text/plain"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

/// Cuts `text` to what is left of a `limitBytes` budget; true once the budget is spent.
fn take_budget(text: &mut String, budget: &mut Option<usize>) -> bool {
    let Some(left) = budget else {
        return false;
    };
    if text.len() >= *left {
        let mut cut = *left;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        *left = 0;
        return true;
    }
    *left -= text.len();
    false
}

/// A watch: initial ADDED events (when no resourceVersion is given), the replay of
/// events after the given one, then live events, one JSON object per line.
fn watch(shared: Arc<Shared>, target: &Target, query: &Query) -> Response {
    if query.flag("sendInitialEvents") {
        return Status::invalid(target.resource, "", &[("sendInitialEvents", "Forbidden: sendInitialEvents is not supported by the embedded cluster; list, then watch".into())]).into_response();
    }
    let (labels, fields) = match selectors(target, query) {
        Ok(pair) => pair,
        Err(status) => return status.into_response(),
    };
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map_or(MAX_WATCH, |t| Duration::from_secs(t).min(MAX_WATCH));
    let bookmarks = query.flag("allowWatchBookmarks");
    let since = match query.get("resourceVersion") {
        None | Some("0") => None,
        Some(text) => match text.parse::<u64>() {
            Ok(rv) => Some(rv),
            Err(_) => {
                return Status::bad_request(format!("invalid resourceVersion: {text}"))
                    .into_response();
            }
        },
    };
    let resource = target.resource;
    let index = resources::index_of(resource);
    let namespace = namespace_filter(target).map(str::to_owned);
    let matches = move |object: &Value| {
        namespace
            .as_deref()
            .is_none_or(|ns| meta::namespace(object) == ns)
            && labels.matches_object(object)
            && fields.matches(object)
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(256);
    let (mut first, subscription, mut last_rv) = {
        let world = shared.world();
        let current = world.resource_version();
        match since {
            None => {
                let initial: Vec<Bytes> = world
                    .list(resource, None)
                    .filter(|o| matches(o))
                    .map(|o| event_line(EventType::Added.as_str(), o))
                    .collect();
                (
                    initial,
                    world.subscribe(current).map(|(_, rx)| (Vec::new(), rx)),
                    current,
                )
            }
            Some(rv) => (Vec::new(), world.subscribe(rv), rv),
        }
    };
    let Some((replay, mut live)) = subscription else {
        let oldest = shared.world().oldest_replayable();
        let line = gone_line(since.unwrap_or(0), oldest);
        return watch_response(futures::stream::once(
            async move { Ok::<_, Infallible>(line) },
        ));
    };
    for event in replay.iter().filter(|e| e.resource == index) {
        if let Some(line) = filtered_event(event, &matches) {
            first.push(line);
        }
        last_rv = event.rv;
    }
    let api_version = resource.api_version();
    let kind = resource.kind;
    tokio::spawn(async move {
        for line in first {
            if tx.send(line).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut bookmark =
            tokio::time::interval_at(tokio::time::Instant::now() + BOOKMARK_EVERY, BOOKMARK_EVERY);
        loop {
            let line = tokio::select! {
                _ = tokio::time::sleep_until(deadline) => {
                    if bookmarks {
                        let _ = tx.send(bookmark_line(&api_version, kind, last_rv)).await;
                    }
                    return;
                }
                _ = bookmark.tick(), if bookmarks => Some(bookmark_line(&api_version, kind, last_rv)),
                _ = tx.closed() => return,
                received = live.recv() => match received {
                    Ok(event) => {
                        if event.rv <= last_rv {
                            None
                        } else {
                            last_rv = event.rv;
                            if event.resource == index { filtered_event(&event, &matches) } else { None }
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        let _ = tx.send(gone_line(last_rv, last_rv + 1)).await;
                        return;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
            };
            if let Some(line) = line
                && tx.send(line).await.is_err()
            {
                return;
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|line| (Ok::<_, Infallible>(line), rx))
    });
    watch_response(stream)
}

fn watch_response<S>(stream: S) -> Response
where
    S: futures::Stream<Item = Result<Bytes, Infallible>> + Send + 'static,
{
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

/// The line a watcher sees for `event`, given its selector: an object that stops
/// matching is reported DELETED, one that starts matching ADDED.
fn filtered_event(event: &super::world::Event, matches: &impl Fn(&Value) -> bool) -> Option<Bytes> {
    let now = matches(&event.object);
    let before = event.previous.as_deref().is_some_and(matches);
    let kind = match event.kind {
        EventType::Deleted => (now || before).then_some(EventType::Deleted),
        EventType::Added => now.then_some(EventType::Added),
        EventType::Modified => match (before, now) {
            (true, true) => Some(EventType::Modified),
            (false, true) => Some(EventType::Added),
            (true, false) => Some(EventType::Deleted),
            (false, false) => None,
        },
    }?;
    Some(event_line(kind.as_str(), &event.object))
}

fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut line = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

fn bookmark_line(api_version: &str, kind: &str, rv: u64) -> Bytes {
    event_line(
        "BOOKMARK",
        &json!({"apiVersion": api_version, "kind": kind, "metadata": {"resourceVersion": rv.to_string()}}),
    )
}

fn gone_line(asked: u64, oldest: u64) -> Bytes {
    let status = Status::expired(format!("too old resource version: {asked} ({oldest})"));
    event_line("ERROR", &status.to_json())
}

impl Shared {
    /// Runs a write under the lock, wakes the controllers, and makes it durable before
    /// the caller answers.
    pub(super) async fn write<T>(
        &self,
        change: impl FnOnce(&mut World) -> Result<T, Status>,
    ) -> Result<T, Status> {
        let (result, store) = {
            let mut world = self.world();
            (change(&mut world), world.store())
        };
        if result.is_ok() {
            self.wake.ring();
            World::commit(&store).await;
        }
        result
    }
}
