//! kube-rs `Api` verbs and the watcher against the embedded cluster: the same client
//! code a real cluster gets.

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Service};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

use crate::{cluster, wait_for};

fn config_map(name: &str, labels: serde_json::Value) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "data": {"greeting": "hello"}
    }))
    .unwrap()
}

#[tokio::test]
async fn crud_through_kube_rs_keeps_metadata_semantics() {
    let (_sim, client) = cluster();
    let api: Api<ConfigMap> = Api::namespaced(client, "default");

    let created = api
        .create(
            &PostParams::default(),
            &config_map("settings", json!({"tier": "web"})),
        )
        .await
        .unwrap();
    let uid = created.metadata.uid.clone().unwrap();
    let first_rv: u64 = created
        .metadata
        .resource_version
        .clone()
        .unwrap()
        .parse()
        .unwrap();
    assert!(created.metadata.creation_timestamp.is_some());

    let again = api
        .create(&PostParams::default(), &config_map("settings", json!({})))
        .await;
    match again {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 409);
            assert_eq!(status.reason, "AlreadyExists");
        }
        other => panic!("expected AlreadyExists, got {other:?}"),
    }

    assert!(
        api.get_opt("missing").await.unwrap().is_none(),
        "get_opt needs reason NotFound"
    );
    let fetched = api.get("settings").await.unwrap();
    assert_eq!(fetched.metadata.uid.as_deref(), Some(uid.as_str()));

    // A replace with the current resourceVersion succeeds; a stale one is a 409 Conflict.
    let mut changed = fetched.clone();
    changed
        .data
        .get_or_insert_default()
        .insert("greeting".into(), "hi".into());
    let replaced = api
        .replace("settings", &PostParams::default(), &changed)
        .await
        .unwrap();
    let second_rv: u64 = replaced
        .metadata
        .resource_version
        .clone()
        .unwrap()
        .parse()
        .unwrap();
    assert!(second_rv > first_rv);
    match api
        .replace("settings", &PostParams::default(), &changed)
        .await
    {
        Err(kube::Error::Api(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
            assert!(
                status.message.contains("the object has been modified"),
                "{}",
                status.message
            );
        }
        other => panic!("expected Conflict, got {other:?}"),
    }

    // Merge, JSON and strategic patches, then server-side apply.
    let merge = api
        .patch(
            "settings",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"extra": "1"}})),
        )
        .await
        .unwrap();
    assert_eq!(merge.data.as_ref().unwrap()["extra"], "1");
    let json_patch: json_patch::Patch =
        serde_json::from_value(json!([{"op": "remove", "path": "/data/extra"}])).unwrap();
    let patched = api
        .patch(
            "settings",
            &PatchParams::default(),
            &Patch::Json::<()>(json_patch),
        )
        .await
        .unwrap();
    assert!(!patched.data.as_ref().unwrap().contains_key("extra"));
    let strategic = api
        .patch(
            "settings",
            &PatchParams::default(),
            &Patch::Strategic(json!({"metadata": {"labels": {"tier": null, "team": "a"}}})),
        )
        .await
        .unwrap();
    assert_eq!(
        strategic
            .metadata
            .labels
            .as_ref()
            .unwrap()
            .get("team")
            .map(String::as_str),
        Some("a")
    );
    assert!(
        !strategic
            .metadata
            .labels
            .as_ref()
            .unwrap()
            .contains_key("tier")
    );

    let apply = PatchParams::apply("wharf-tests").force();
    let applied = api
        .patch("applied", &apply, &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"k": "v"}})))
        .await
        .unwrap();
    assert_eq!(applied.data.as_ref().unwrap()["k"], "v");
    let reapplied = api
        .patch("applied", &apply, &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"k": "w"}})))
        .await
        .unwrap();
    assert_eq!(reapplied.data.as_ref().unwrap()["k"], "w");
    let no_manager = api
        .patch(
            "applied",
            &PatchParams::default(),
            &Patch::Apply(json!({"data": {}})),
        )
        .await;
    assert!(matches!(no_manager, Err(kube::Error::Api(s)) if s.code == 400));

    // Label selectors, set-based, and paging with continue tokens.
    for i in 0..5 {
        api.create(
            &PostParams::default(),
            &config_map(
                &format!("page-{i}"),
                json!({"batch": "paged", "n": i.to_string()}),
            ),
        )
        .await
        .unwrap();
    }
    let selected = api
        .list(&ListParams::default().labels("batch=paged,n in (1,3)"))
        .await
        .unwrap();
    let names: Vec<_> = selected
        .items
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    assert_eq!(names, ["page-1", "page-3"]);
    let first = api
        .list(&ListParams::default().labels("batch").limit(2))
        .await
        .unwrap();
    assert_eq!(first.items.len(), 2);
    let token = first.metadata.continue_.clone().expect("a continue token");
    let rest = api
        .list(
            &ListParams::default()
                .labels("batch")
                .limit(10)
                .continue_token(&token),
        )
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 3);
    assert_eq!(
        rest.metadata.resource_version, first.metadata.resource_version,
        "every page answers with the first page's resourceVersion"
    );
    assert!(rest.metadata.continue_.as_deref().unwrap_or("").is_empty());
    let bad = api
        .list(&ListParams::default().labels("batch in paged"))
        .await;
    assert!(matches!(bad, Err(kube::Error::Api(s)) if s.code == 400));
    let unsupported = api
        .list(&ListParams::default().fields("data.greeting=hello"))
        .await;
    assert!(
        matches!(unsupported, Err(kube::Error::Api(s)) if s.code == 400 && s.message.contains("field label not supported"))
    );

    // Delete answers with a Status, and the object is gone.
    let deleted = api
        .delete("settings", &DeleteParams::default())
        .await
        .unwrap();
    assert!(
        deleted.is_right(),
        "an object without finalizers is gone at once"
    );
    assert!(api.get_opt("settings").await.unwrap().is_none());
}

#[tokio::test]
async fn finalizers_hold_deletion_until_cleared() {
    let (_sim, client) = cluster();
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let mut held = config_map("held", json!({}));
    held.metadata.finalizers = Some(vec!["wharf.dev/test".into()]);
    api.create(&PostParams::default(), &held).await.unwrap();
    let pending = api.delete("held", &DeleteParams::default()).await.unwrap();
    let marked = pending
        .left()
        .expect("the object is returned while finalizers hold it");
    assert!(marked.metadata.deletion_timestamp.is_some());
    let adding = api
        .patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["wharf.dev/test", "another"]}})),
        )
        .await;
    assert!(matches!(adding, Err(kube::Error::Api(s)) if s.code == 422));
    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert!(api.get_opt("held").await.unwrap().is_none());
}

#[tokio::test]
async fn namespaces_terminate_with_their_contents_and_refuse_new_ones() {
    let (_sim, client) = cluster();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "doomed"}})).unwrap(),
        )
        .await
        .unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "doomed");
    maps.create(&PostParams::default(), &config_map("inside", json!({})))
        .await
        .unwrap();
    let missing: Api<ConfigMap> = Api::namespaced(client.clone(), "nowhere");
    let refused = missing
        .create(&PostParams::default(), &config_map("x", json!({})))
        .await;
    assert!(
        matches!(refused, Err(kube::Error::Api(s)) if s.code == 404 && s.message.contains("namespaces \"nowhere\" not found"))
    );

    namespaces
        .delete("doomed", &DeleteParams::default())
        .await
        .unwrap();
    wait_for("the namespace to go", || async {
        namespaces
            .get_opt("doomed")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    assert!(maps.get_opt("inside").await.unwrap().is_none());
    let protected = namespaces.delete("default", &DeleteParams::default()).await;
    assert!(matches!(protected, Err(kube::Error::Api(s)) if s.code == 403));
}

#[tokio::test]
async fn services_get_cluster_ips_and_endpoints_follow_ready_pods() {
    let (_sim, client) = cluster();
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), "default");
    deployments
        .create(
            &PostParams::default(),
            &serde_json::from_value(crate::deployment("api", 2, "registry.local/api:1")).unwrap(),
        )
        .await
        .unwrap();
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "api"},
        "spec": {"selector": {"app": "api"}, "ports": [{"port": 80, "targetPort": 8080}]}
    }))
    .unwrap();
    let created = services
        .create(&PostParams::default(), &service)
        .await
        .unwrap();
    let ip = created.spec.as_ref().unwrap().cluster_ip.clone().unwrap();
    assert!(
        ip.starts_with("10.9"),
        "a cluster IP from 10.96.0.0/12, got {ip}"
    );
    let endpoints: Api<k8s_openapi::api::core::v1::Endpoints> = Api::namespaced(client, "default");
    wait_for("two ready endpoints", || async {
        let ep = endpoints.get_opt("api").await.unwrap()?;
        let ready = ep.subsets?.first()?.addresses.clone()?.len();
        (ready == 2).then_some(())
    })
    .await;
    let taken: Service = serde_json::from_value(
        json!({"metadata": {"name": "again"}, "spec": {"clusterIP": ip, "ports": [{"port": 80}]}}),
    )
    .unwrap();
    let refused = services.create(&PostParams::default(), &taken).await;
    assert!(
        matches!(refused, Err(kube::Error::Api(s)) if s.code == 422 && s.message.contains("already allocated"))
    );
}

#[tokio::test]
async fn watcher_sees_adds_changes_and_deletes_and_resumes_after_a_restart_of_the_stream() {
    let (_sim, client) = cluster();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let stream = watcher(
        api.clone(),
        watcher::Config::default().labels("watched=yes"),
    )
    .applied_objects()
    .map_ok(|cm| {
        (
            cm.metadata.name.clone().unwrap_or_default(),
            cm.data.unwrap_or_default().get("v").cloned(),
        )
    });
    let mut stream = Box::pin(stream);
    api.create(&PostParams::default(), &config_map("ignored", json!({})))
        .await
        .unwrap();
    let mut watched = config_map("seen", json!({"watched": "yes"}));
    watched.data = Some([("v".to_owned(), "1".to_owned())].into());
    api.create(&PostParams::default(), &watched).await.unwrap();
    let (name, value) = stream.try_next().await.unwrap().unwrap();
    assert_eq!((name.as_str(), value.as_deref()), ("seen", Some("1")));
    api.patch(
        "seen",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"v": "2"}})),
    )
    .await
    .unwrap();
    let (_, value) = stream.try_next().await.unwrap().unwrap();
    assert_eq!(value.as_deref(), Some("2"));

    // A raw watch from an old resourceVersion replays; losing the label reads as DELETED.
    let rv = api
        .get("seen")
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    api.patch(
        "seen",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"watched": "no"}}})),
    )
    .await
    .unwrap();
    let mut raw = api
        .watch(
            &WatchParams::default().labels("watched=yes").timeout(5),
            &rv,
        )
        .await
        .unwrap()
        .boxed();
    match raw.try_next().await.unwrap() {
        Some(WatchEvent::Deleted(cm)) => assert_eq!(cm.metadata.name.as_deref(), Some("seen")),
        other => panic!("expected DELETED for an object leaving the selector, got {other:?}"),
    }
}

#[tokio::test]
async fn discovery_lists_every_served_kind() {
    let (_sim, client) = cluster();
    let discovery = kube::discovery::Discovery::new(client.clone())
        .run()
        .await
        .unwrap();
    let mut kinds = Vec::new();
    for group in discovery.groups() {
        for (resource, _) in group.recommended_resources() {
            kinds.push(format!("{}/{}", resource.api_version, resource.kind));
        }
    }
    for wanted in [
        "v1/Pod",
        "apps/v1/Deployment",
        "batch/v1/Job",
        "networking.k8s.io/v1/Ingress",
        "gateway.networking.k8s.io/v1/HTTPRoute",
        "v1/Node",
        "v1/Event",
    ] {
        assert!(
            kinds.iter().any(|k| k == wanted),
            "{wanted} missing from {kinds:?}"
        );
    }
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(version.major, "1");
    let pods: Api<Pod> = Api::all(client);
    assert!(
        pods.list(&ListParams::default())
            .await
            .unwrap()
            .metadata
            .resource_version
            .is_some()
    );
}
