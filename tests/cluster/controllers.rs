//! The simulated control plane as kube-rs sees it: rolling updates within maxSurge and
//! maxUnavailable observed through watch events, Recreate, rollback to an older
//! template, scaling, owner-reference garbage collection and Jobs.

use std::collections::HashMap;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use serde_json::json;

use crate::{cluster, deployment, wait_for};

async fn rolled_out(api: &Api<Deployment>, name: &str) -> Deployment {
    wait_for("the rollout to finish", || async {
        let d = api.get(name).await.ok()?;
        let status = d.status.clone()?;
        let replicas = d.spec.as_ref()?.replicas?;
        let done = d.metadata.generation <= status.observed_generation
            && status.updated_replicas == Some(replicas)
            && status.replicas == Some(replicas)
            && status.available_replicas == Some(replicas);
        done.then_some(d)
    })
    .await
}

#[tokio::test]
async fn rolling_update_stays_within_max_surge_and_max_unavailable() {
    let (_sim, client) = cluster();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let mut spec = deployment("web", 4, "nginx:1");
    spec["spec"]["strategy"] =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}});
    deployments
        .create(
            &PostParams::default(),
            &serde_json::from_value(spec).unwrap(),
        )
        .await
        .unwrap();
    let first = rolled_out(&deployments, "web").await;
    assert_eq!(
        first.metadata.annotations.unwrap()["deployment.kubernetes.io/revision"],
        "1"
    );

    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let rv = sets
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut set_events = sets
        .watch(&WatchParams::default().timeout(30), &rv)
        .await
        .unwrap()
        .boxed();
    let mut deployment_events = deployments
        .watch(&WatchParams::default().timeout(30), &rv)
        .await
        .unwrap()
        .boxed();

    deployments
        .patch("web", &PatchParams::default(), &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:2"}]}}}})))
        .await
        .unwrap();

    // Every replica-set change: the pods asked for never exceed replicas + maxSurge.
    let mut desired: HashMap<String, i32> = HashMap::new();
    let mut peak = 0;
    let mut new_set_reached_four = false;
    while let Some(event) = set_events.next().await {
        let set = match event.unwrap() {
            WatchEvent::Added(s) | WatchEvent::Modified(s) => s,
            _ => continue,
        };
        let replicas = set.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
        desired.insert(set.metadata.name.clone().unwrap(), replicas);
        let total: i32 = desired.values().sum();
        peak = peak.max(total);
        assert!(total <= 5, "replicas + maxSurge exceeded: {desired:?}");
        let image = set
            .spec
            .as_ref()
            .and_then(|s| s.template.as_ref())
            .and_then(|t| t.spec.as_ref())
            .map(|s| s.containers[0].image.clone().unwrap_or_default());
        if image.as_deref() == Some("nginx:2") && replicas == 4 {
            new_set_reached_four = true;
        }
        if new_set_reached_four && total == 4 {
            break;
        }
    }
    assert_eq!(peak, 5, "the rollout used its surge");
    // Every deployment status on the way: available never drops below replicas − maxUnavailable.
    let done = rolled_out(&deployments, "web").await;
    let final_rv: u64 = done
        .metadata
        .resource_version
        .clone()
        .unwrap()
        .parse()
        .unwrap();
    while let Some(event) = deployment_events.next().await {
        let WatchEvent::Modified(d) = event.unwrap() else {
            continue;
        };
        let available = d
            .status
            .as_ref()
            .and_then(|s| s.available_replicas)
            .unwrap_or(0);
        assert!(
            available >= 3,
            "availability dropped to {available} during the rollout"
        );
        if d.metadata
            .resource_version
            .as_deref()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            >= final_rv
        {
            break;
        }
    }
    assert_eq!(
        done.metadata.annotations.unwrap()["deployment.kubernetes.io/revision"],
        "2"
    );
    let all = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    assert_eq!(all.items.len(), 4);
    assert!(
        all.items
            .iter()
            .all(|p| p.spec.as_ref().unwrap().containers[0].image.as_deref() == Some("nginx:2"))
    );
    let conditions = done.status.unwrap().conditions.unwrap();
    assert!(
        conditions
            .iter()
            .any(|c| c.type_ == "Progressing"
                && c.reason.as_deref() == Some("NewReplicaSetAvailable"))
    );
    assert!(
        conditions
            .iter()
            .any(|c| c.type_ == "Available" && c.status == "True")
    );
}

#[tokio::test]
async fn rollback_reuses_the_old_replica_set_as_a_new_revision() {
    let (_sim, client) = cluster();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    deployments
        .create(
            &PostParams::default(),
            &serde_json::from_value(deployment("shop", 2, "shop:1")).unwrap(),
        )
        .await
        .unwrap();
    rolled_out(&deployments, "shop").await;
    let v2 = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "shop:2"}]}}}});
    deployments
        .patch("shop", &PatchParams::default(), &Patch::Strategic(v2))
        .await
        .unwrap();
    rolled_out(&deployments, "shop").await;
    let v1 = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "shop:1"}]}}}});
    deployments
        .patch("shop", &PatchParams::default(), &Patch::Strategic(v1))
        .await
        .unwrap();
    let back = rolled_out(&deployments, "shop").await;
    assert_eq!(
        back.metadata.annotations.unwrap()["deployment.kubernetes.io/revision"],
        "3"
    );
    let sets: Api<ReplicaSet> = Api::namespaced(client, "default");
    let list = sets
        .list(&ListParams::default().labels("app=shop"))
        .await
        .unwrap();
    assert_eq!(
        list.items.len(),
        2,
        "the old replica set was reused, not duplicated"
    );
    let reused = list
        .items
        .iter()
        .find(|s| s.spec.as_ref().unwrap().replicas == Some(2))
        .unwrap();
    let annotations = reused.metadata.annotations.clone().unwrap();
    assert_eq!(annotations["deployment.kubernetes.io/revision"], "3");
    assert_eq!(
        annotations["deployment.kubernetes.io/revision-history"],
        "1"
    );
}

#[tokio::test]
async fn recreate_stops_every_old_pod_before_starting_new_ones() {
    let (_sim, client) = cluster();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let mut spec = deployment("batch", 3, "batch:1");
    spec["spec"]["strategy"] = json!({"type": "Recreate"});
    deployments
        .create(
            &PostParams::default(),
            &serde_json::from_value(spec).unwrap(),
        )
        .await
        .unwrap();
    rolled_out(&deployments, "batch").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let rv = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut events = pods
        .watch(&WatchParams::default().labels("app=batch").timeout(30), &rv)
        .await
        .unwrap()
        .boxed();
    deployments
        .patch("batch", &PatchParams::default(), &Patch::Merge(json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "batch:2"}]}}}})))
        .await
        .unwrap();
    let (mut old_alive, mut new_seen) = (3, 0);
    while let Some(event) = events.next().await {
        match event.unwrap() {
            WatchEvent::Deleted(_) => old_alive -= 1,
            WatchEvent::Added(pod) => {
                assert_eq!(
                    old_alive, 0,
                    "a new pod ({:?}) started while old ones ran",
                    pod.metadata.name
                );
                new_seen += 1;
                if new_seen == 3 {
                    break;
                }
            }
            _ => {}
        }
    }
    rolled_out(&deployments, "batch").await;
}

#[tokio::test]
async fn scaling_and_cascading_delete_through_owner_references() {
    let (_sim, client) = cluster();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    deployments
        .create(
            &PostParams::default(),
            &serde_json::from_value(deployment("scaled", 1, "app:1")).unwrap(),
        )
        .await
        .unwrap();
    rolled_out(&deployments, "scaled").await;
    deployments
        .patch_scale(
            "scaled",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    rolled_out(&deployments, "scaled").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    assert_eq!(
        pods.list(&ListParams::default().labels("app=scaled"))
            .await
            .unwrap()
            .items
            .len(),
        3
    );
    deployments
        .delete("scaled", &DeleteParams::background())
        .await
        .unwrap();
    wait_for("the pods to be collected", || async {
        pods.list(&ListParams::default().labels("app=scaled"))
            .await
            .ok()?
            .items
            .is_empty()
            .then_some(())
    })
    .await;
    let sets: Api<ReplicaSet> = Api::namespaced(client, "default");
    assert!(
        sets.list(&ListParams::default().labels("app=scaled"))
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

fn job(name: &str, image: &str, backoff_limit: i32) -> Job {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": backoff_limit,
            "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "work", "image": image}]}}
        }
    }))
    .unwrap()
}

#[tokio::test]
async fn jobs_complete_or_fail_after_their_backoff_limit() {
    let (_sim, client) = cluster();
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    jobs.create(&PostParams::default(), &job("migrate", "tools:1", 2))
        .await
        .unwrap();
    jobs.create(
        &PostParams::default(),
        &job("broken", "tools:crash-loop", 2),
    )
    .await
    .unwrap();
    let condition = |job: &Job, kind: &str| {
        job.status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == kind && c.status == "True")
            .map(|c| c.reason.clone().unwrap_or_default())
    };
    let done = wait_for("the job to complete", || async {
        let j = jobs.get("migrate").await.ok()?;
        condition(&j, "Complete").map(|_| j)
    })
    .await;
    assert_eq!(done.status.as_ref().unwrap().succeeded, Some(1));
    assert!(done.status.as_ref().unwrap().completion_time.is_some());
    let failed = wait_for("the job to fail", || async {
        let j = jobs.get("broken").await.ok()?;
        condition(&j, "Failed").map(|r| (j, r))
    })
    .await;
    assert_eq!(failed.1, "BackoffLimitExceeded");
    assert_eq!(
        failed.0.status.unwrap().failed,
        Some(3),
        "backoffLimit 2 allows three failed pods"
    );
    let invalid = jobs.create(&PostParams::default(), &serde_json::from_value(json!({
        "metadata": {"name": "bad"},
        "spec": {"template": {"spec": {"restartPolicy": "Always", "containers": [{"name": "w", "image": "x"}]}}}
    })).unwrap()).await;
    assert!(
        matches!(invalid, Err(kube::Error::Api(s)) if s.code == 422 && s.message.contains("restartPolicy"))
    );
}

#[tokio::test]
async fn foreground_deletion_keeps_the_owner_until_its_dependents_are_gone() {
    let (_sim, client) = cluster();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    deployments
        .create(
            &PostParams::default(),
            &serde_json::from_value(deployment("front", 2, "app:1")).unwrap(),
        )
        .await
        .unwrap();
    rolled_out(&deployments, "front").await;
    let pending = deployments
        .delete("front", &DeleteParams::foreground())
        .await
        .unwrap();
    let marked = pending
        .left()
        .expect("the owner stays while its dependents go");
    assert!(
        marked
            .metadata
            .finalizers
            .unwrap()
            .iter()
            .any(|f| f == "foregroundDeletion")
    );
    wait_for("the owner to go", || async {
        deployments
            .get_opt("front")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    assert!(
        pods.list(&ListParams::default().labels("app=front"))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let sets: Api<ReplicaSet> = Api::namespaced(client, "default");
    assert!(
        sets.list(&ListParams::default().labels("app=front"))
            .await
            .unwrap()
            .items
            .is_empty()
    );
}
