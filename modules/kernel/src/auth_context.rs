//! The caller's identity: verification of access tokens (EdDSA JWTs, by `kid`,
//! from a JWKS) and the actix extractor handlers use.
//!
//! Only `EdDSA` is accepted: `none`, HMAC and RSA tokens are refused before any
//! key is looked at, which closes algorithm-confusion attacks.

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;

use crate::cache::Cache;
use crate::error::{ErrorCode, Problem};
use crate::ids::Id;

pub const ISSUER: &str = "hometrip";
pub const AUDIENCE: &str = "hometrip-api";

/// Claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub sub: Id,
    pub sid: Id,
    #[serde(default)]
    pub roles: Vec<String>,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: Id,
}

/// One public key of a JSON Web Key Set (OKP / Ed25519).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub kid: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub use_: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

/// Verifies access tokens against the public keys it was given.
pub struct AccessVerifier {
    keys: RwLock<HashMap<String, DecodingKey>>,
    cache: Arc<dyn Cache>,
}

/// Key under which a revoked session id is remembered until its access tokens expire.
pub fn revoked_session_key(sid: &Id) -> String {
    format!("revoked-sid:{sid}")
}

impl AccessVerifier {
    pub fn new(cache: Arc<dyn Cache>) -> Arc<Self> {
        Arc::new(AccessVerifier { keys: RwLock::new(HashMap::new()), cache })
    }

    pub async fn set_keys(&self, set: &JwkSet) -> Result<(), String> {
        let mut map = HashMap::new();
        for jwk in &set.keys {
            if jwk.kty != "OKP" || jwk.crv != "Ed25519" {
                continue;
            }
            let key = DecodingKey::from_ed_components(&jwk.x).map_err(|e| format!("jwk {}: {e}", jwk.kid))?;
            map.insert(jwk.kid.clone(), key);
        }
        *self.keys.write().await = map;
        Ok(())
    }

    pub async fn verify(&self, token: &str) -> Result<AccessClaims, Problem> {
        let invalid = |d: &str| Problem::new(ErrorCode::InvalidToken, d.to_owned());
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid("malformed token"))?;
        if header.alg != Algorithm::EdDSA {
            return Err(invalid("token algorithm not allowed"));
        }
        let kid = header.kid.ok_or_else(|| invalid("token has no key id"))?;
        let keys = self.keys.read().await;
        let key = keys.get(&kid).ok_or_else(|| invalid("unknown signing key"))?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.algorithms = vec![Algorithm::EdDSA];
        validation.validate_nbf = true;
        validation.leeway = 5;
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<AccessClaims>(token, key, &validation).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => invalid("token expired"),
            jsonwebtoken::errors::ErrorKind::ImmatureSignature => invalid("token not yet valid"),
            _ => invalid("invalid token"),
        })?;
        drop(keys);
        if self.cache.get(&revoked_session_key(&data.claims.sid)).await?.is_some() {
            return Err(invalid("session revoked"));
        }
        Ok(data.claims)
    }
}

/// Verifies the request's bearer token, if it has one.
pub async fn verify_request(req: &HttpRequest) -> Option<AuthUser> {
    let token = bearer(req).ok()?;
    let verifier = req.app_data::<web::Data<AccessVerifier>>()?.clone();
    let claims = verifier.verify(&token).await.ok()?;
    Some(AuthUser { id: claims.sub, session_id: claims.sid, roles: claims.roles })
}

/// The authenticated caller, extracted from `Authorization: Bearer <jwt>`.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: Id,
    pub session_id: Id,
    pub roles: Vec<String>,
}

impl AuthUser {
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == "admin")
    }

    pub fn require_admin(&self) -> Result<(), Problem> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(Problem::forbidden("admin role required"))
        }
    }
}

fn bearer(req: &HttpRequest) -> Result<String, Problem> {
    let value = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .ok_or_else(|| Problem::new(ErrorCode::Unauthenticated, "missing Authorization header"))?;
    let value =
        value.to_str().map_err(|_| Problem::new(ErrorCode::Unauthenticated, "malformed Authorization header"))?;
    let (scheme, token) =
        value.split_once(' ').ok_or_else(|| Problem::new(ErrorCode::Unauthenticated, "expected a Bearer token"))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(Problem::new(ErrorCode::Unauthenticated, "expected a Bearer token"));
    }
    Ok(token.trim().to_owned())
}

impl FromRequest for AuthUser {
    type Error = Problem;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, Problem>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        // The gateway may have verified the token already (for per-account limits).
        if let Some(user) = actix_web::HttpMessage::extensions(req).get::<AuthUser>().cloned() {
            return Box::pin(async move { Ok(user) });
        }
        let verifier = req.app_data::<web::Data<AccessVerifier>>().cloned();
        let token = bearer(req);
        Box::pin(async move {
            let token = token?;
            let verifier = verifier.ok_or_else(|| Problem::internal("AccessVerifier not configured"))?;
            let claims = verifier.verify(&token).await?;
            Ok(AuthUser { id: claims.sub, session_id: claims.sid, roles: claims.roles })
        })
    }
}
