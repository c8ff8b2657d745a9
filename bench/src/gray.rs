//! `gray`: what evaluating gray rules through a plugin costs. 10,000 generated sample
//! requests go through the bundled `gray-gateway-api` plugin in batches of 1,000 (the
//! host's own batch size), and through the same rule code natively (`gray-rules`, the
//! crate the plugin is built from) in the same batches, alternating per round so machine
//! drift hits both alike. Prints both rates and the plugin/native ratio (goal ≥ 0.5×).

use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};
use wharf_host::artifacts::BUNDLED;
use wharf_host::runtime::router::{MAX_EVALUATE_BATCH, SampleRequest};
use wharf_host::runtime::{HostLimits, Runtime};
use wharf_host::store::Store as HostStore;

use crate::plugins::TempDir;

const REQUESTS: usize = 10_000;
const ROUNDS: usize = 5;
const PROVIDER: &str = "gray-gateway-api";

fn rules() -> Vec<(&'static str, Value)> {
    vec![
        (
            "header in-list OR cookie",
            json!({"grayType": "CONTENT", "content": {"tag": "beta", "rules": [{
                "serviceType": "springCloud", "path": "/", "condition": "OR", "conditions": [
                {"type": "header", "param": "x-user", "cond": "in", "value": "alice,bob,carol,dave"},
                {"type": "cookie", "param": "beta", "cond": "=", "value": "1"}]}]}}),
        ),
        (
            "regex AND mod on two rules",
            json!({"grayType": "CONTENT", "content": {"tag": "beta", "rules": [
                {"serviceType": "springCloud", "path": "/api", "condition": "AND", "conditions": [
                    {"type": "header", "param": "x-region", "cond": "regex", "value": "eu-(west|north)-[0-9]"},
                    {"type": "param", "param": "uid", "cond": "mod", "operator": "<", "value": "20"}]},
                {"serviceType": "springCloud", "path": "/", "conditions": [
                    {"type": "header", "param": "x-user", "cond": "=", "value": "eve"}]}]}}),
        ),
    ]
}

/// Request `i` of the generated set: users, regions, cookies and ids that make some of
/// them match each rule.
fn sample(i: usize) -> gray_rules::Sample {
    let users = ["alice", "bob", "carol", "dave", "eve", "frank", "grace"];
    let regions = ["eu-west-1", "eu-north-2", "us-east-1", "ap-south-1"];
    let mut cookies = Vec::new();
    if i % 5 == 0 {
        cookies.push(("beta".to_owned(), "1".to_owned()));
    }
    gray_rules::Sample {
        method: "GET".into(),
        path: if i % 2 == 0 {
            "/api/cart".into()
        } else {
            "/".into()
        },
        headers: vec![
            ("x-user".into(), users[i % users.len()].into()),
            ("x-region".into(), regions[i % regions.len()].into()),
        ],
        cookies,
        query: vec![("uid".into(), (i * 7).to_string())],
        body: String::new(),
        dubbo: None,
    }
}

fn to_wit(s: &gray_rules::Sample) -> SampleRequest {
    SampleRequest {
        method: s.method.clone(),
        path: s.path.clone(),
        headers: s.headers.clone(),
        cookies: s.cookies.clone(),
        query: s.query.clone(),
        body: s.body.clone(),
        dubbo: None,
    }
}

pub async fn run() -> anyhow::Result<()> {
    let dir = TempDir::new("gray")?;
    let store = HostStore::open_sled(&dir.0.join("db"))?;
    let runtime = Runtime::new(store, HostLimits::default(), dir.0.join("cache"))?;
    let bundled = BUNDLED
        .iter()
        .find(|b| b.name == PROVIDER)
        .context("bundled gray-gateway-api")?;
    runtime
        .install_bundled(bundled.manifest, bundled.component)
        .await?;
    let samples: Vec<gray_rules::Sample> = (0..REQUESTS).map(sample).collect();
    let wit: Vec<SampleRequest> = samples.iter().map(to_wit).collect();

    println!(
        "# gray benchmark: {REQUESTS} requests per round in batches of {MAX_EVALUATE_BATCH}, {ROUNDS} rounds, median"
    );
    for (name, rule) in rules() {
        let (mut plugin, mut native) = (Vec::new(), Vec::new());
        let mut agree = true;
        for round in 0..=ROUNDS {
            // The requests are the caller's to hand over: copying them is not the plugin's cost.
            let requests = wit.clone();
            let t = Instant::now();
            let through_plugin = runtime
                .evaluate_rule(PROVIDER, &rule, requests)
                .await?
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            let plugin_time = t.elapsed();
            let t = Instant::now();
            let mut natively = Vec::with_capacity(REQUESTS);
            for batch in samples.chunks(MAX_EVALUATE_BATCH) {
                natively.extend(
                    gray_rules::evaluate_json(&rule, batch)
                        .map_err(|e| anyhow::anyhow!("{e:?}"))?,
                );
            }
            let native_time = t.elapsed();
            agree &= through_plugin.len() == natively.len()
                && through_plugin
                    .iter()
                    .zip(&natively)
                    .all(|(p, n)| p.canary_share == n.canary_share && p.decided_by == n.decided_by);
            // Round 0 warms the instance cache and the allocator.
            if round > 0 {
                plugin.push(plugin_time);
                native.push(native_time);
            }
        }
        let rate = |d: Duration| REQUESTS as f64 / d.as_secs_f64();
        let plugin_rate = rate(median(&mut plugin));
        let native_rate = rate(median(&mut native));
        let canary = runtime
            .evaluate_rule(PROVIDER, &rule, wit.clone())
            .await?
            .map_err(|e| anyhow::anyhow!("{e:?}"))?
            .iter()
            .filter(|e| e.canary_share == 100)
            .count();
        println!("{name}: {canary} of {REQUESTS} to the canary");
        println!("  plugin  {plugin_rate:>12.0} requests/s");
        println!("  native  {native_rate:>12.0} requests/s");
        println!(
            "  ratio   {:>12.2}× native (goal ≥ 0.5×); plugin and native agree: {agree}",
            plugin_rate / native_rate
        );
        anyhow::ensure!(
            agree,
            "the plugin and the native evaluation disagree on {name}"
        );
    }
    Ok(())
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}
