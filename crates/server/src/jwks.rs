//! RS256 keys from a JWKS URL (`jwks-url`), as Cognito, Auth0 and Keycloak publish them: fetched at start, cached by
//! `kid` for the `Cache-Control: max-age` the server sends, and fetched again when that has passed or when a token
//! names a `kid` the cache lacks (a key rotation), at most once per `jwks-min-refresh-ms` so that tokens with made-up
//! `kid`s cannot turn the server into a flood of requests to the identity provider. Each fetch replaces the whole
//! set: a key the provider withdraws stops verifying (that is how a leaked key is revoked), while keys it keeps
//! publishing during a rotation keep their tokens valid until they expire.

use std::sync::RwLock;
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;

use crate::auth::Rs256Keys;

/// How long keys are kept when the response names no `max-age`.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(3600);
/// The longest `max-age` believed.
const LONGEST_MAX_AGE: Duration = Duration::from_secs(86_400);
/// How long one fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// The keys of one JWKS URL.
pub struct JwksUrl {
    url: String,
    client: reqwest::Client,
    min_refresh: Duration,
    cache: RwLock<Cache>,
    /// Held while fetching: tokens that find the cache wanting at once cause one fetch.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Cache {
    keys: Vec<(String, DecodingKey)>,
    /// When the keys are to be fetched again (`None`: never fetched successfully).
    fresh_until: Option<Instant>,
    last_attempt: Option<Instant>,
}

impl std::fmt::Debug for JwksUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
        f.debug_struct("JwksUrl")
            .field("url", &self.url)
            .field("kids", &cache.keys.iter().map(|(kid, _)| kid).collect::<Vec<_>>())
            .finish()
    }
}

impl JwksUrl {
    /// Fetches the keys of `url` once. A failure is logged, not fatal: the server starts, refuses RS256 tokens, and
    /// fetches again when one arrives (at most once per `min_refresh`).
    pub async fn start(url: &str, min_refresh: Duration) -> JwksUrl {
        let client = reqwest::Client::builder().timeout(FETCH_TIMEOUT).build().unwrap_or_default();
        let jwks = JwksUrl {
            url: url.to_owned(),
            client,
            min_refresh,
            cache: RwLock::default(),
            fetching: tokio::sync::Mutex::new(()),
        };
        jwks.fetch().await;
        jwks
    }

    /// The cached key of `kid`.
    pub fn key(&self, kid: &str) -> Option<DecodingKey> {
        let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
        cache.keys.iter().find(|(k, _)| k == kid).map(|(_, key)| key.clone())
    }

    /// Fetches the keys again if a token needs it: its `kid` is not cached, or the cache's max-age has passed, and
    /// no fetch was tried within `min_refresh`.
    pub async fn refresh_for(&self, kid: Option<&str>) {
        if !self.wants_fetch(kid) {
            return;
        }
        let _fetching = self.fetching.lock().await;
        // Another token may have caused the fetch this one waited for.
        if self.wants_fetch(kid) {
            self.fetch().await;
        }
    }

    fn wants_fetch(&self, kid: Option<&str>) -> bool {
        let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let stale = cache.fresh_until.is_none_or(|until| now >= until);
        let unknown = kid.is_some_and(|kid| cache.keys.iter().all(|(k, _)| k != kid));
        let allowed = cache.last_attempt.is_none_or(|at| now.duration_since(at) >= self.min_refresh);
        (stale || unknown) && allowed
    }

    async fn fetch(&self) {
        self.cache.write().unwrap_or_else(|e| e.into_inner()).last_attempt = Some(Instant::now());
        match self.get().await {
            Ok((keys, max_age)) => {
                tracing::info!(url = %self.url, kids = ?keys.iter().map(|(k, _)| k).collect::<Vec<_>>(),
                    max_age_secs = max_age.as_secs(), "fetched the JWKS");
                let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
                cache.keys = keys;
                cache.fresh_until = Some(Instant::now() + max_age);
            }
            Err(reason) => tracing::warn!(url = %self.url, %reason, "cannot fetch the JWKS; keeping the keys I have"),
        }
    }

    async fn get(&self) -> Result<(Vec<(String, DecodingKey)>, Duration), String> {
        let response = self.client.get(&self.url).send().await.map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("HTTP {}", response.status()));
        }
        let max_age = response
            .headers()
            .get_all(reqwest::header::CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .find_map(|directive| directive.trim().strip_prefix("max-age=")?.trim_matches('"').parse().ok())
            .map_or(DEFAULT_MAX_AGE, Duration::from_secs)
            .clamp(self.min_refresh, LONGEST_MAX_AGE.max(self.min_refresh));
        let text = response.text().await.map_err(|e| e.to_string())?;
        Ok((Rs256Keys::jwks(&text)?, max_age))
    }
}
