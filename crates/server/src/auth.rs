//! Identity: API keys for server-to-server calls and HS256 JWTs for users (`sub` is the owner; a configured group
//! sees everything), plus dev-only token issuing for named demo users.
//!
//! The owner of anything written always comes from here, never from request input.

use std::collections::HashMap;

use axum::http::HeaderMap;
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
        /// The token's expiry, seconds since the epoch.
        expires_at: i64,
    },
    /// A server-to-server caller with an API key; sees everything.
    ApiKey {
        /// The key's configured name.
        name: String,
    },
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

/// Auth settings.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// HS256 secret.
    pub jwt_secret: String,
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
}

/// Verifies credentials and issues dev tokens.
#[derive(Clone)]
pub struct Auth {
    config: AuthConfig,
    decoding: DecodingKey,
    encoding: EncodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").field("issuer", &self.config.issuer).finish_non_exhaustive()
    }
}

fn now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl Auth {
    /// Builds the verifier.
    pub fn new(config: AuthConfig) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        validation.leeway = 0;
        Auth {
            decoding: DecodingKey::from_secret(config.jwt_secret.as_bytes()),
            encoding: EncodingKey::from_secret(config.jwt_secret.as_bytes()),
            validation,
            config,
        }
    }

    /// The settings.
    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// Verifies a JWT (with or without a `Bearer ` prefix).
    pub fn verify_jwt(&self, token: &str) -> Result<Identity, AuthError> {
        let token = token.strip_prefix("Bearer ").unwrap_or(token).trim();
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| AuthError::InvalidToken(e.to_string()))?;
        let claims = data.claims;
        let admin = claims.groups.iter().chain(&claims.cognito_groups).any(|g| g == &self.config.admin_group);
        Ok(Identity::User { sub: claims.sub, admin, expires_at: claims.exp })
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
    pub fn from_headers(&self, headers: &HeaderMap) -> Result<Option<Identity>, AuthError> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        if let Some(token) = header("authorization") {
            return self.verify_jwt(token).map(Some);
        }
        if let Some(key) = header("x-api-key") {
            return self.verify_api_key(key).map(Some);
        }
        Ok(None)
    }

    /// Credentials from a `connection_init` payload (browsers cannot set WebSocket headers): `Authorization`
    /// (or `authorization`, `token`) holding a JWT, or `x-api-key` (or `apiKey`).
    pub fn from_params(&self, payload: &serde_json::Value) -> Result<Option<Identity>, AuthError> {
        let field = |names: &[&str]| names.iter().find_map(|n| payload.get(*n).and_then(|v| v.as_str()));
        if let Some(token) = field(&["Authorization", "authorization", "token"]) {
            return self.verify_jwt(token).map(Some);
        }
        if let Some(key) = field(&["x-api-key", "apiKey"]) {
            return self.verify_api_key(key).map(Some);
        }
        Ok(None)
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
        let now = now_secs();
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
            issuer: "subsignal".into(),
            audience: "subsignal".into(),
            admin_group: "admin".into(),
            api_keys: HashMap::from([("k1".to_owned(), "backend".to_owned())]),
            dev_tokens: true,
            demo_users: vec!["alice".into(), "bob".into(), "admin".into()],
            dev_token_ttl_secs: 3600,
        })
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
    }

    #[test]
    fn api_keys_and_params() {
        let a = auth();
        assert_eq!(a.verify_api_key("k1").unwrap().owner(), "apikey:backend");
        assert_eq!(a.verify_api_key("nope"), Err(AuthError::UnknownApiKey));
        assert_eq!(a.from_params(&serde_json::json!({})).unwrap(), None);
        assert!(a.from_params(&serde_json::json!({"x-api-key": "k1"})).unwrap().unwrap().sees_all());
    }
}
