//! Seed 000 verbatim: `POST /openapi/v1/teams/{team_id}/regions/{region_name}/apps/{app_id}/install`.
//! Team is the project, region the environment, app the app group (its id or name). The
//! store is found by URL and domain among the market connections, or added (audited, and
//! only for a caller who may add markets); a key in the body is used for this call when
//! it differs from the stored one. The answer is the group's `MarketInstall`.
//!
//! Unlike Rainbond's console: the same template into the same group is one install (the
//! second call answers it again), every store error reaches the caller, and `is_deploy`
//! means what it says (`true`/`false`; Rainbond deploys for any value present).

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::request::Parts;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::clusters::{audited, query};
use super::error::{ApiError, Problem};
use super::extract::ApiJson;
use super::guard::{AuditDetail, require};
use super::installs::authorize_install;
use super::markets::serving;
use crate::auth::Caller;
use crate::domain::market::seed::{self, MarketInstall, SeedInstallBody};
use crate::domain::market::{InstallRequest, NewMarket, connections, installation_id};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(install))
}

fn is_deploy(parts: &Parts) -> Result<bool, ApiError> {
    match query(parts, "is_deploy").as_deref() {
        None | Some("") => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("true") || v == "1" => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") || v == "0" => Ok(false),
        Some(_) => Err(ApiError::invalid("is_deploy", "must be true or false")),
    }
}

/// A market name for a store added by this route: its host and domain, made unique.
fn generated_name(url: &str, domain: &str) -> String {
    let host = url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    let base: String = format!("{host}-{domain}")
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..6];
    let base = base.trim_matches('-');
    format!("{}-{suffix}", &base[..base.len().min(50)])
}

/// Seed 000: installs an app template from a store into the team's region.
#[utoipa::path(post, path = "/openapi/v1/teams/{team_id}/regions/{region_name}/apps/{app_id}/install", tag = "markets",
    security(("bearer" = [])),
    params(("team_id" = String, Path, description = "The project's code"),
        ("region_name" = String, Path, description = "The environment's code"),
        ("app_id" = String, Path, description = "The app group's id or name"),
        ("is_deploy" = Option<bool>, Query, description = "Deploy every component")),
    request_body = SeedInstallBody,
    responses((status = 200, body = MarketInstall), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem), (status = 502, body = Problem)))]
async fn install(
    State(state): State<AppState>,
    caller: Caller,
    Path((team, region, app)): Path<(String, String, String)>,
    parts: Parts,
    ApiJson(body): ApiJson<SeedInstallBody>,
) -> Result<(Extension<AuditDetail>, axum::Json<MarketInstall>), ApiError> {
    let deploy = is_deploy(&parts)?;
    for (field, value, max) in [
        ("market_url", &body.market_url, 255),
        ("market_domain", &body.market_domain, 64),
        ("app_model_id", &body.app_model_id, 64),
        ("app_model_version", &body.app_model_version, 64),
    ] {
        if value.len() > max {
            return Err(ApiError::invalid(
                field,
                format!("at most {max} characters"),
            ));
        }
    }
    if body.app_model_id.is_empty() {
        return Err(ApiError::invalid("app_model_id", "must not be empty"));
    }
    if body.app_model_version.is_empty() {
        return Err(ApiError::invalid("app_model_version", "must not be empty"));
    }
    connections::validate_url("market_url", &body.market_url)?;
    if let Some(key) = body.market_access_key.as_deref().filter(|k| !k.is_empty()) {
        connections::validate_access_key("market_access_key", key)?;
    }
    authorize_install(&state, &caller, &team, &region, deploy).await?;
    let access_key = body.market_access_key.clone().filter(|k| !k.is_empty());
    let market_type = body
        .market_type
        .clone()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| connections::DEFAULT_TYPE.to_owned());
    let market_conns = &state.market.connections;
    let (market, added) =
        match market_conns.find_by_address(&body.market_url, &body.market_domain)? {
            Some(market) => (market, None),
            None => {
                require(&state, &caller, "market.create", "system").await?;
                let market = market_conns
                    .create(
                        NewMarket {
                            name: generated_name(&body.market_url, &body.market_domain),
                            url: body.market_url.clone(),
                            domain: Some(body.market_domain.clone()),
                            market_type: Some(market_type.clone()),
                            access_key: access_key.clone(),
                        },
                        &caller.username,
                    )
                    .await
                    .map_err(|e| match e {
                        crate::domain::market::MarketError::Invalid { field, message }
                            if field == "type" =>
                        {
                            ApiError::invalid("market_type", message)
                        }
                        other => other.into(),
                    })?;
                (market.clone(), Some(market))
            }
        };
    let request = InstallRequest {
        market: market.id.clone(),
        app_id: body.app_model_id.clone(),
        version: body.app_model_version.clone(),
        group: app,
        env: region.clone(),
        deploy,
    };
    let plugin = serving(&state, &market.plugin);
    let outcome = state
        .market
        .installs
        .create(&team, &request, access_key, &caller.username)
        .await;
    let (install, created) = match outcome {
        Ok(done) => done,
        Err(e) => {
            // A store added for this call goes with it: a failed install creates nothing.
            if let Some(added) = &added {
                let _ = market_conns.delete(&added.id, &[]).await;
            }
            return Err(ApiError::from(e).plugin(plugin));
        }
    };
    if install.state == crate::domain::market::InstallState::Deploying {
        state.market.driver.start(&install.project, &install.id);
    }
    let group = state.market.installs.group_record(&team, &install.group)?;
    let in_group: Vec<_> = state
        .market
        .installs
        .list(&team)?
        .into_iter()
        .filter(|i| i.group == install.group)
        .collect();
    let store = state.store.clone();
    let env = region.clone();
    let project = team.clone();
    let view = seed::market_install(
        &installation_id(&state.store)?,
        &group.id,
        &group.name,
        &in_group,
        &|app| {
            crate::domain::deployments::get(&store, &project, app, &env)
                .ok()
                .flatten()
        },
        &|app| {
            crate::domain::apps::get(&store, &project, app)
                .ok()
                .flatten()
                .map(|a| a.description)
        },
    );
    let mut detail = audited(
        Some(format!("{}/install:{}", install.scope(), install.id)),
        None::<&()>,
        Some(&serde_json::json!({
            "install": install.id,
            "created": created,
            "marketAdded": added.map(|m| m.id),
            "appId": install.app_id,
            "version": install.version,
        })),
    );
    detail.0.plugin = plugin;
    Ok((detail, axum::Json(view)))
}
