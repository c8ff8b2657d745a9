//! One store connection: GETs under the market's base URL with the access key, redirects
//! followed, and every answer that is not the protocol's mapped to a typed error. Nothing
//! is swallowed, unlike the console's client (rainstore.md §3, §9).
//!
//! | store answer | error |
//! |---|---|
//! | 401 | unauthorized: the store needs an access key |
//! | 403 | unauthorized: the store refused the access key |
//! | 404 | not-found: the market domain, app or version, with the store's `msg` |
//! | other 4xx, 5xx | unavailable, with the status and `msg` |
//! | refused by the host | unavailable: only the market's own URL may be reached |
//! | connection failure | unavailable, with the transport error |
//! | 2xx that is not the protocol's JSON | unavailable: not a rainstore answer |

use serde::de::DeserializeOwned;
use serde_json::Value;
use wharf_sdk::http::{self, HttpError, Request, Response};
use wharf_sdk::marketplace::{CatalogError, Market};

use crate::url::{self, Origin};

/// Redirects followed per request, as urllib3 does by default for the console.
const MAX_REDIRECTS: usize = 5;
/// Characters of a store's error text quoted in a message.
const MAX_QUOTED: usize = 300;

/// What a request is about, so a 404 can say what was not found.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    /// The list routes answer 404 for an unknown market domain.
    MarketDomain,
    App(&'a str),
    Version(&'a str, &'a str),
}

pub struct Client {
    base: String,
    origin: Origin,
    domain: String,
    access_key: Option<String>,
}

impl Client {
    pub fn new(market: &Market) -> Result<Client, CatalogError> {
        let (base, origin) = url::base(&market.url)?;
        Ok(Client {
            base,
            origin,
            domain: market.domain.clone(),
            access_key: market.access_key.clone().filter(|k| !k.is_empty()),
        })
    }

    /// `GET {base}/app-server/openapi/{route}?marketDomain=…&{query}`, decoded as `T` once
    /// the body is a JSON object holding `required` (the field that makes it this route's
    /// answer).
    pub fn get<T: DeserializeOwned>(
        &self,
        route: &str,
        query: &[(&str, &str)],
        required: Option<&str>,
        subject: Subject<'_>,
    ) -> Result<T, CatalogError> {
        let mut pairs = vec![("marketDomain", self.domain.as_str())];
        pairs.extend_from_slice(query);
        let url = format!(
            "{}/app-server/openapi/{route}?{}",
            self.base,
            url::query(&pairs)
        );
        let (final_url, response) = self.follow(url)?;
        if !response.is_success() {
            return Err(self.status_error(&final_url, &response, subject));
        }
        decode(&final_url, &response, required)
    }

    /// Sends the GET, following up to [`MAX_REDIRECTS`] redirects; the key is sent to the
    /// market's own origin only.
    fn follow(&self, mut url: String) -> Result<(String, Response), CatalogError> {
        for _ in 0..=MAX_REDIRECTS {
            let mut request = Request::get(&url).header("Accept", "application/json");
            if let Some(key) = &self.access_key
                && Origin::of(&url).as_ref() == Some(&self.origin)
            {
                // The raw key, no scheme prefix: what the store's SDK sends.
                request = request.header("Authorization", key);
            }
            let response = http::send(request).map_err(|e| self.transport_error(&url, e))?;
            wharf_sdk::debug!("GET {url} -> {}", response.status);
            if !matches!(response.status, 301 | 302 | 303 | 307 | 308) {
                return Ok((url, response));
            }
            let location = response.header("Location").unwrap_or_default();
            url = url::resolve(&url, location).ok_or_else(|| {
                CatalogError::Unavailable(format!(
                    "the store answered {} for {url} without a usable Location (`{location}`)",
                    response.status
                ))
            })?;
        }
        Err(CatalogError::Unavailable(format!(
            "the store redirected more than {MAX_REDIRECTS} times; last to {url}"
        )))
    }

    fn transport_error(&self, url: &str, error: HttpError) -> CatalogError {
        CatalogError::Unavailable(match error {
            HttpError::Denied(_) => format!(
                "the request to {url} was denied: the host allows this plugin only the market's own URL ({})",
                self.origin
            ),
            HttpError::Transport(why) => format!("the store at {url} could not be reached: {why}"),
            HttpError::InvalidRequest(why) => format!("no request could be made to {url}: {why}"),
        })
    }

    fn status_error(&self, url: &str, response: &Response, subject: Subject<'_>) -> CatalogError {
        let status = response.status;
        let said = store_message(response);
        let quoted = if said.is_empty() {
            String::new()
        } else {
            format!(" (store: {said})")
        };
        match status {
            401 => CatalogError::Unauthorized(format!(
                "the store needs an access key: give the market connection one{quoted}"
            )),
            403 => CatalogError::Unauthorized(format!("the store refused the access key{quoted}")),
            404 => CatalogError::NotFound(match subject {
                Subject::MarketDomain => format!(
                    "market domain `{}` not found on the store{quoted}",
                    self.domain
                ),
                Subject::App(app) => format!(
                    "app `{app}` not found in market domain `{}`{quoted}",
                    self.domain
                ),
                Subject::Version(app, version) => format!(
                    "version `{version}` of app `{app}` not found in market domain `{}`{quoted}",
                    self.domain
                ),
            }),
            _ => {
                let said = if said.is_empty() {
                    String::new()
                } else {
                    format!(": {said}")
                };
                CatalogError::Unavailable(format!("store answered {status}{said} (GET {url})"))
            }
        }
    }
}

/// The `msg` of a `{code, msg}` error body, else the start of the body as text.
fn store_message(response: &Response) -> String {
    let from_json = serde_json::from_slice::<Value>(&response.body)
        .ok()
        .and_then(|v| v.get("msg").and_then(Value::as_str).map(str::to_string));
    let text = from_json.unwrap_or_else(|| response.text().trim().to_string());
    match text.char_indices().nth(MAX_QUOTED) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

fn decode<T: DeserializeOwned>(
    url: &str,
    response: &Response,
    required: Option<&str>,
) -> Result<T, CatalogError> {
    let not_protocol = |why: String| {
        CatalogError::Unavailable(format!("not a rainstore answer from {url}: {why}"))
    };
    let body: Value = serde_json::from_slice(&response.body)
        .map_err(|e| not_protocol(format!("the body is not JSON ({e})")))?;
    let Some(object) = body.as_object() else {
        return Err(not_protocol("the body is not a JSON object".to_string()));
    };
    if let Some(field) = required
        && !object.contains_key(field)
    {
        return Err(not_protocol(format!("the answer has no `{field}`")));
    }
    serde_json::from_value(body).map_err(|e| not_protocol(e.to_string()))
}
