//! Identity: API keys for server-to-server calls and JWTs for users (`sub` is the owner; a configured group sees
//! everything), signed HS256 with the server's secret or RS256 with a key from a PEM public key, a JWKS file or a
//! JWKS URL ([`crate::jwks`]; the last two chosen by the token's `kid`). All modes work side by side on one API, as in AppSync. Dev-only token issuing for named demo
//! users.
//!
//! The owner of anything written always comes from here, never from request input.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use axum::http::HeaderMap;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// Who is calling, as proven by their credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// A user with a verified JWT.
    User {
        /// The token's `sub`: the owner of what they create.
        sub: String,
        /// Member of the admin group: sees everyone's orders.
        admin: bool,
        /// The token's groups (`groups` and `cognito:groups`), for `@auth` group rules.
        groups: Vec<String>,
        /// The token's expiry, seconds since the epoch.
        expires_at: i64,
    },
    /// A server-to-server caller with an API key; sees everything.
    ApiKey {
        /// The key's configured name.
        name: String,
    },
}

/// The credentials a `connection_init` payload carries, kept (rather than the whole payload) so that every
/// subscribe can verify them again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Credentials {
    /// None given.
    #[default]
    None,
    /// A JWT (`Authorization`, `authorization` or `token`).
    Token(String),
    /// An API key (`x-api-key` or `apiKey`).
    ApiKey(String),
}

impl Credentials {
    /// The credentials in HTTP headers: `Authorization` (a JWT), else `x-api-key`.
    pub fn from_headers(headers: &HeaderMap) -> Credentials {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        match (header("authorization"), header("x-api-key")) {
            (Some(token), _) => Credentials::Token(token.to_owned()),
            (None, Some(key)) => Credentials::ApiKey(key.to_owned()),
            (None, None) => Credentials::None,
        }
    }

    /// The credentials in a `connection_init` payload; a JWT wins over an API key.
    pub fn from_params(payload: &serde_json::Value) -> Credentials {
        let field = |names: &[&str]| names.iter().find_map(|n| payload.get(*n).and_then(|v| v.as_str()));
        if let Some(token) = field(&["Authorization", "authorization", "token"]) {
            return Credentials::Token(token.to_owned());
        }
        if let Some(key) = field(&["x-api-key", "apiKey"]) {
            return Credentials::ApiKey(key.to_owned());
        }
        Credentials::None
    }
}

impl Identity {
    /// The owner recorded on items this caller creates.
    pub fn owner(&self) -> String {
        match self {
            Identity::User { sub, .. } => sub.clone(),
            Identity::ApiKey { name } => format!("apikey:{name}"),
        }
    }

    /// Whether this caller sees every owner's items.
    pub fn sees_all(&self) -> bool {
        matches!(self, Identity::User { admin: true, .. } | Identity::ApiKey { .. })
    }

    /// Whether this caller may see an item of `owner`.
    pub fn can_see(&self, owner: &str) -> bool {
        self.sees_all() || self.owner() == owner
    }

    /// When this identity stops being valid (a JWT's `exp`, seconds since the epoch); API keys do not expire.
    pub fn expires_at(&self) -> Option<i64> {
        match self {
            Identity::User { expires_at, .. } => Some(*expires_at),
            Identity::ApiKey { .. } => None,
        }
    }

    /// Whether this caller may move orders between statuses by hand.
    pub fn is_operator(&self) -> bool {
        self.sees_all()
    }
}

/// Why credentials were refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// The token failed verification (signature, algorithm, expiry, issuer or audience).
    #[error("invalid token: {0}")]
    InvalidToken(String),
    /// No such API key.
    #[error("unknown API key")]
    UnknownApiKey,
    /// A dev token was asked for a user who is not a demo user, or dev tokens are off.
    #[error("{0}")]
    DevTokens(String),
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
    iat: i64,
    iss: String,
    aud: String,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default, rename = "cognito:groups")]
    cognito_groups: Vec<String>,
}

/// RS256 verifying keys: a PEM public key and/or the RSA keys of a JWKS, by `kid`.
///
/// A token with a `kid` is checked with the JWKS key of that id (an unknown `kid` is refused when a JWKS is set);
/// without a JWKS, or for a token without `kid`, the PEM key is used (or the JWKS's only key, if it has one).
#[derive(Clone, Default)]
pub struct Rs256Keys {
    pem: Option<DecodingKey>,
    jwks: Vec<(String, DecodingKey)>,
}

impl std::fmt::Debug for Rs256Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rs256Keys")
            .field("pem", &self.pem.is_some())
            .field("kids", &self.jwks.iter().map(|(kid, _)| kid).collect::<Vec<_>>())
            .finish()
    }
}

impl Rs256Keys {
    /// Reads a PEM public key file and/or a JWKS file. The error says what is wrong with which file.
    pub fn load(public_key: Option<&Path>, jwks: Option<&Path>) -> Result<Self, String> {
        let mut keys = Rs256Keys::default();
        if let Some(path) = public_key {
            let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            keys.pem = Some(Self::pem(&pem).map_err(|e| format!("{}: {e}", path.display()))?);
        }
        if let Some(path) = jwks {
            let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            keys.jwks = Self::jwks(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(keys)
    }

    /// An RSA public key in PEM (`-----BEGIN PUBLIC KEY-----` or `-----BEGIN RSA PUBLIC KEY-----`).
    pub fn pem(pem: &[u8]) -> Result<DecodingKey, String> {
        DecodingKey::from_rsa_pem(pem).map_err(|e| format!("not an RSA public key in PEM: {e}"))
    }

    /// The RSA keys of a JWKS document; each needs a `kid`. Keys marked for another algorithm are skipped.
    pub fn jwks(json: &str) -> Result<Vec<(String, DecodingKey)>, String> {
        let set: JwkSet = serde_json::from_str(json).map_err(|e| format!("not a JWKS document: {e}"))?;
        let mut keys = Vec::new();
        for jwk in &set.keys {
            if !matches!(jwk.algorithm, AlgorithmParameters::RSA(_))
                || jwk.common.key_algorithm.is_some_and(|a| a != KeyAlgorithm::RS256)
            {
                continue;
            }
            let kid = jwk.common.key_id.clone().ok_or("every RSA key needs a `kid`")?;
            let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("key {kid}: {e}"))?;
            keys.push((kid, key));
        }
        if keys.is_empty() {
            return Err("no RS256 key in the set".into());
        }
        Ok(keys)
    }

    /// Whether no RS256 key is configured (RS256 tokens are then refused).
    pub fn is_empty(&self) -> bool {
        self.pem.is_none() && self.jwks.is_empty()
    }

    fn select(&self, kid: Option<&str>) -> Result<&DecodingKey, AuthError> {
        let refuse = |why: String| Err(AuthError::InvalidToken(why));
        match kid {
            Some(kid) if !self.jwks.is_empty() => match self.jwks.iter().find(|(k, _)| k == kid) {
                Some((_, key)) => Ok(key),
                None => refuse(format!("no key with kid {kid:?}")),
            },
            _ => match (&self.pem, self.jwks.as_slice()) {
                (Some(key), _) => Ok(key),
                (None, [(_, key)]) => Ok(key),
                (None, []) => refuse("RS256 tokens are not accepted here (no public key configured)".into()),
                (None, _) => refuse("an RS256 token needs a kid".into()),
            },
        }
    }
}

/// Auth settings.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// HS256 secret.
    pub jwt_secret: String,
    /// RS256 public keys (PEM and/or JWKS); empty refuses RS256 tokens.
    pub rs256: Rs256Keys,
    /// Required `iss`.
    pub issuer: String,
    /// Required `aud`.
    pub audience: String,
    /// Members of this group see all orders.
    pub admin_group: String,
    /// API keys: key → name.
    pub api_keys: HashMap<String, String>,
    /// Whether `/dev/token` issues tokens.
    pub dev_tokens: bool,
    /// Demo users `/dev/token` issues tokens for; a user named like `admin_group` is an admin.
    pub demo_users: Vec<String>,
    /// Lifetime of dev tokens, seconds.
    pub dev_token_ttl_secs: i64,
    /// RS256 keys from a JWKS URL, beside `rs256`.
    pub jwks_url: Option<std::sync::Arc<crate::jwks::JwksUrl>>,
    /// The clock that tokens expire by, and that issued tokens start at.
    pub clock: crate::clock::Clock,
}

/// Verifies credentials and issues dev tokens.
#[derive(Clone)]
pub struct Auth {
    config: AuthConfig,
    decoding: DecodingKey,
    encoding: EncodingKey,
    hs256: Validation,
    rs256: Validation,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").field("issuer", &self.config.issuer).finish_non_exhaustive()
    }
}

/// A token without its `Bearer ` prefix.
fn bare(token: &str) -> &str {
    token.strip_prefix("Bearer ").unwrap_or(token).trim()
}

impl Auth {
    /// Builds the verifier.
    pub fn new(config: AuthConfig) -> Self {
        let validation = |algorithm| {
            let mut validation = Validation::new(algorithm);
            validation.set_issuer(&[&config.issuer]);
            validation.set_audience(&[&config.audience]);
            validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
            // `exp` is checked against the server's clock in `verify_jwt`, not against jsonwebtoken's wall clock.
            validation.validate_exp = false;
            validation.leeway = 0;
            validation
        };
        Auth {
            decoding: DecodingKey::from_secret(config.jwt_secret.as_bytes()),
            encoding: EncodingKey::from_secret(config.jwt_secret.as_bytes()),
            hs256: validation(Algorithm::HS256),
            rs256: validation(Algorithm::RS256),
            config,
        }
    }

    /// The settings.
    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// Verifies a JWT (with or without a `Bearer ` prefix) with the keys at hand: HS256 with the secret, or RS256
    /// with a configured public key or a cached key of the JWKS URL (which [`Auth::verify`] fetches first when the
    /// token needs it). Any other algorithm (`none` included) is refused, and each algorithm is checked only with its
    /// own kind of key, so an RS256 public key can never serve as an HS256 secret.
    pub fn verify_jwt(&self, token: &str) -> Result<Identity, AuthError> {
        let token = bare(token);
        let invalid = |e: jsonwebtoken::errors::Error| AuthError::InvalidToken(e.to_string());
        let header = jsonwebtoken::decode_header(token).map_err(invalid)?;
        let (key, validation) = match header.alg {
            Algorithm::HS256 => (Cow::Borrowed(&self.decoding), &self.hs256),
            Algorithm::RS256 => (self.rs256_key(header.kid.as_deref())?, &self.rs256),
            other => return Err(AuthError::InvalidToken(format!("algorithm {other:?} is not accepted"))),
        };
        let data = jsonwebtoken::decode::<Claims>(token, &key, validation).map_err(invalid)?;
        let claims = data.claims;
        if claims.exp < self.config.clock.now_secs() {
            return Err(invalid(jsonwebtoken::errors::ErrorKind::ExpiredSignature.into()));
        }
        let admin = claims.groups.iter().chain(&claims.cognito_groups).any(|g| g == &self.config.admin_group);
        let groups = claims.groups.into_iter().chain(claims.cognito_groups).collect();
        Ok(Identity::User { sub: claims.sub, admin, groups, expires_at: claims.exp })
    }

    /// The RS256 key for `kid`: the JWKS URL's, else a configured one.
    fn rs256_key(&self, kid: Option<&str>) -> Result<Cow<'_, DecodingKey>, AuthError> {
        if let (Some(kid), Some(url)) = (kid, &self.config.jwks_url) {
            if let Some(key) = url.key(kid) {
                return Ok(Cow::Owned(key));
            }
            if self.config.rs256.is_empty() {
                return Err(AuthError::InvalidToken(format!("no key with kid {kid:?} at the JWKS URL")));
            }
        }
        self.config.rs256.select(kid).map(Cow::Borrowed)
    }

    /// Checks an API key.
    pub fn verify_api_key(&self, key: &str) -> Result<Identity, AuthError> {
        self.config
            .api_keys
            .get(key)
            .map(|name| Identity::ApiKey { name: name.clone() })
            .ok_or(AuthError::UnknownApiKey)
    }

    /// Credentials from HTTP headers: `Authorization` (a JWT) or `x-api-key`. `Ok(None)` when there are none.
    pub async fn from_headers(&self, headers: &HeaderMap) -> Result<Option<Identity>, AuthError> {
        self.verify(&Credentials::from_headers(headers)).await
    }

    /// Credentials from a `connection_init` payload (browsers cannot set WebSocket headers): `Authorization`
    /// (or `authorization`, `token`) holding a JWT, or `x-api-key` (or `apiKey`).
    pub async fn from_params(&self, payload: &serde_json::Value) -> Result<Option<Identity>, AuthError> {
        self.verify(&Credentials::from_params(payload)).await
    }

    /// Verifies credentials. An RS256 token whose `kid` the JWKS URL's cache lacks, or that finds the cache past
    /// its max-age, fetches the keys first (at most once per `jwks-min-refresh-ms`).
    pub async fn verify(&self, credentials: &Credentials) -> Result<Option<Identity>, AuthError> {
        match credentials {
            Credentials::None => Ok(None),
            Credentials::Token(token) => {
                if let Some(url) = &self.config.jwks_url {
                    if let Ok(header) = jsonwebtoken::decode_header(bare(token)) {
                        if header.alg == Algorithm::RS256 {
                            url.refresh_for(header.kid.as_deref()).await;
                        }
                    }
                }
                self.verify_jwt(token).map(Some)
            }
            Credentials::ApiKey(key) => self.verify_api_key(key).map(Some),
        }
    }

    /// Issues a token for a demo user (dev mode only).
    pub fn issue_dev_token(&self, user: &str) -> Result<String, AuthError> {
        if !self.config.dev_tokens {
            return Err(AuthError::DevTokens("dev tokens are off; start the server with --dev-tokens".into()));
        }
        if !self.config.demo_users.iter().any(|u| u == user) {
            return Err(AuthError::DevTokens(format!(
                "\"{user}\" is not a demo user; choose one of: {}",
                self.config.demo_users.join(", ")
            )));
        }
        let groups = if user == self.config.admin_group { vec![self.config.admin_group.clone()] } else { vec![] };
        self.issue(user, groups, self.config.dev_token_ttl_secs)
    }

    /// Signs a token (used by dev tokens and tests).
    pub fn issue(&self, sub: &str, groups: Vec<String>, ttl_secs: i64) -> Result<String, AuthError> {
        let now = self.config.clock.now_secs();
        let claims = Claims {
            sub: sub.to_owned(),
            exp: now + ttl_secs,
            iat: now,
            iss: self.config.issuer.clone(),
            aud: self.config.audience.clone(),
            groups,
            cognito_groups: vec![],
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| AuthError::InvalidToken(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn auth() -> Auth {
        Auth::new(AuthConfig {
            jwt_secret: "s3cret-s3cret-s3cret".into(),
            rs256: Rs256Keys::default(),
            issuer: "subsignal".into(),
            audience: "subsignal".into(),
            admin_group: "admin".into(),
            api_keys: HashMap::from([("k1".to_owned(), "backend".to_owned())]),
            dev_tokens: true,
            demo_users: vec!["alice".into(), "bob".into(), "admin".into()],
            dev_token_ttl_secs: 3600,
            jwks_url: None,
            clock: crate::clock::Clock::system(),
        })
    }

    fn now_secs() -> i64 {
        crate::clock::Clock::system().now_secs()
    }

    #[test]
    fn dev_tokens_verify_and_carry_admin() {
        let a = auth();
        let alice = a.verify_jwt(&a.issue_dev_token("alice").unwrap()).unwrap();
        assert_eq!(alice.owner(), "alice");
        assert!(!alice.sees_all());
        let admin = a.verify_jwt(&format!("Bearer {}", a.issue_dev_token("admin").unwrap())).unwrap();
        assert!(admin.sees_all());
        assert!(a.issue_dev_token("mallory").is_err());
    }

    #[test]
    fn forged_expired_and_unsigned_tokens_are_refused() {
        let a = auth();
        let other = Auth::new(AuthConfig { jwt_secret: "another-secret".into(), ..a.config().clone() });
        assert!(a.verify_jwt(&other.issue("alice", vec![], 60).unwrap()).is_err());
        assert!(a.verify_jwt(&a.issue("alice", vec![], -10).unwrap()).is_err());
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let none = format!(
            "{}.{}.",
            b64.encode(r#"{"alg":"none","typ":"JWT"}"#),
            b64.encode(format!(r#"{{"sub":"alice","exp":{},"iss":"subsignal","aud":"subsignal"}}"#, now_secs() + 60))
        );
        assert!(a.verify_jwt(&none).is_err());
        let wrong_aud = Auth::new(AuthConfig { audience: "elsewhere".into(), ..a.config().clone() });
        assert!(a.verify_jwt(&wrong_aud.issue("alice", vec![], 60).unwrap()).is_err());
        let wrong_iss = Auth::new(AuthConfig { issuer: "elsewhere".into(), ..a.config().clone() });
        assert!(a.verify_jwt(&wrong_iss.issue("alice", vec![], 60).unwrap()).is_err());
    }

    #[test]
    fn tokens_expire_by_the_server_clock() {
        let clock = crate::clock::Clock::adjustable();
        let a = Auth::new(AuthConfig { clock: clock.clone(), ..auth().config().clone() });
        let token = a.issue("alice", vec![], 60).unwrap();
        assert_eq!(a.verify_jwt(&token).unwrap().owner(), "alice");
        clock.advance(std::time::Duration::from_secs(61));
        assert_eq!(a.verify_jwt(&token), Err(AuthError::InvalidToken("ExpiredSignature".into())));
    }

    const RS_KEY: &[u8] = include_bytes!("../../../tests/fixtures/rs256.key.pem");
    const RS_PUB: &[u8] = include_bytes!("../../../tests/fixtures/rs256.pub.pem");
    const OTHER_KEY: &[u8] = include_bytes!("../../../tests/fixtures/rs256-other.key.pem");
    const JWKS: &str = include_str!("../../../tests/fixtures/jwks.json");

    fn rs256_token(key: &[u8], kid: Option<&str>, sub: &str, ttl: i64) -> String {
        let now = now_secs();
        let claims =
            serde_json::json!({"sub": sub, "exp": now + ttl, "iat": now, "iss": "subsignal", "aud": "subsignal"});
        let mut header = Header::new(Algorithm::RS256);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_rsa_pem(key).unwrap()).unwrap()
    }

    #[test]
    fn rs256_with_a_pem_key_beside_hs256_and_api_keys() {
        let base = auth();
        let a = Auth::new(AuthConfig {
            rs256: Rs256Keys { pem: Some(Rs256Keys::pem(RS_PUB).unwrap()), jwks: vec![] },
            ..base.config().clone()
        });
        assert_eq!(a.verify_jwt(&rs256_token(RS_KEY, None, "carol", 60)).unwrap().owner(), "carol");
        // HS256 and API keys still work on the same API.
        assert_eq!(a.verify_jwt(&a.issue("alice", vec![], 60).unwrap()).unwrap().owner(), "alice");
        assert!(a.verify_api_key("k1").is_ok());
        // Signed by another key, expired: refused.
        assert!(a.verify_jwt(&rs256_token(OTHER_KEY, None, "carol", 60)).is_err());
        assert!(a.verify_jwt(&rs256_token(RS_KEY, None, "carol", -5)).is_err());
        // Without a configured key, RS256 is refused.
        assert!(base.verify_jwt(&rs256_token(RS_KEY, None, "carol", 60)).is_err());
        // Algorithm confusion: an HS256 token "signed" with the public key as secret is refused.
        let confused =
            Auth::new(AuthConfig { jwt_secret: String::from_utf8(RS_PUB.to_vec()).unwrap(), ..base.config().clone() })
                .issue("mallory", vec![], 60)
                .unwrap();
        assert!(a.verify_jwt(&confused).is_err());
    }

    #[test]
    fn rs256_with_a_jwks_selects_the_key_by_kid() {
        let a = Auth::new(AuthConfig {
            rs256: Rs256Keys { pem: None, jwks: Rs256Keys::jwks(JWKS).unwrap() },
            ..auth().config().clone()
        });
        assert_eq!(a.verify_jwt(&rs256_token(RS_KEY, Some("test-key-1"), "dave", 60)).unwrap().owner(), "dave");
        assert_eq!(a.verify_jwt(&rs256_token(OTHER_KEY, Some("test-key-2"), "erin", 60)).unwrap().owner(), "erin");
        // The right key under the wrong kid is a bad signature; an unknown kid, or none among two keys, is refused.
        assert!(a.verify_jwt(&rs256_token(OTHER_KEY, Some("test-key-1"), "dave", 60)).is_err());
        assert!(a.verify_jwt(&rs256_token(RS_KEY, Some("nope"), "dave", 60)).is_err());
        assert!(a.verify_jwt(&rs256_token(RS_KEY, None, "dave", 60)).is_err());
        assert!(Rs256Keys::jwks(r#"{"keys": []}"#).is_err());
        assert!(Rs256Keys::jwks("not json").is_err());
    }

    #[tokio::test]
    async fn api_keys_and_params() {
        let a = auth();
        assert_eq!(a.verify_api_key("k1").unwrap().owner(), "apikey:backend");
        assert_eq!(a.verify_api_key("nope"), Err(AuthError::UnknownApiKey));
        assert_eq!(a.from_params(&serde_json::json!({})).await.unwrap(), None);
        assert!(a.from_params(&serde_json::json!({"x-api-key": "k1"})).await.unwrap().unwrap().sees_all());
    }
}
