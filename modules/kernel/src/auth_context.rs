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
    /// An admin viewing as this user (RFC 8693's `act`): the token is
    /// read-only and short-lived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<ActingParty>,
}

/// The party acting for the token's subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActingParty {
    pub sub: Id,
}

impl AccessClaims {
    /// The caller these claims make.
    pub fn user(self) -> AuthUser {
        AuthUser { id: self.sub, session_id: self.sid, roles: self.roles, acting_admin: self.act.map(|a| a.sub) }
    }
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
    /// Tokens whose signature was already checked, with their claims: a
    /// client sends the same token for many requests, and an Ed25519
    /// verification costs more than the rest of a small request's CPU.
    /// Expiry and revocation are still checked on every use.
    verified: std::sync::Mutex<lru::LruCache<String, AccessClaims>>,
}

/// Tokens remembered as verified, at most (a few MB).
const VERIFIED_TOKENS: usize = 10_000;
/// Seconds of clock skew allowed on `exp` and `nbf`.
const LEEWAY_SECS: i64 = 5;

/// Key under which a revoked session id is remembered until its access tokens expire.
pub fn revoked_session_key(sid: &Id) -> String {
    format!("revoked-sid:{sid}")
}

impl AccessVerifier {
    pub fn new(cache: Arc<dyn Cache>) -> Arc<Self> {
        let capacity = std::num::NonZeroUsize::new(VERIFIED_TOKENS).unwrap_or(std::num::NonZeroUsize::MIN);
        Arc::new(AccessVerifier {
            keys: RwLock::new(HashMap::new()),
            cache,
            verified: std::sync::Mutex::new(lru::LruCache::new(capacity)),
        })
    }

    /// Whether any signing key is known (a gateway waiting for auth has none).
    pub async fn has_keys(&self) -> bool {
        !self.keys.read().await.is_empty()
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
        // A key taken out of the set takes its tokens with it.
        self.remembered().clear();
        Ok(())
    }

    fn remembered(&self) -> std::sync::MutexGuard<'_, lru::LruCache<String, AccessClaims>> {
        self.verified.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub async fn verify(&self, token: &str) -> Result<AccessClaims, Problem> {
        let invalid = |d: &str| Problem::new(ErrorCode::InvalidToken, d.to_owned());
        let remembered = self.remembered().get(token).cloned();
        let claims = match remembered {
            // Valid when first seen (so already past `nbf`); time only moves on.
            Some(claims) if claims.exp + LEEWAY_SECS >= chrono::Utc::now().timestamp() => claims,
            Some(_) => {
                self.remembered().pop(token);
                return Err(invalid("token expired"));
            }
            None => {
                let claims = self.verify_signature(token).await?;
                self.remembered().put(token.to_owned(), claims.clone());
                claims
            }
        };
        if self.cache.get(&revoked_session_key(&claims.sid)).await?.is_some() {
            return Err(invalid("session revoked"));
        }
        Ok(claims)
    }

    /// The token's claims if its signature, algorithm, key, issuer, audience
    /// and times check out.
    async fn verify_signature(&self, token: &str) -> Result<AccessClaims, Problem> {
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
        validation.leeway = LEEWAY_SECS.unsigned_abs();
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<AccessClaims>(token, key, &validation).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => invalid("token expired"),
            jsonwebtoken::errors::ErrorKind::ImmatureSignature => invalid("token not yet valid"),
            _ => invalid("invalid token"),
        })?;
        Ok(data.claims)
    }
}

/// Verifies the request's bearer token, if it has one.
pub async fn verify_request(req: &HttpRequest) -> Option<AuthUser> {
    if let Some(user) = forwarded_user(req) {
        return Some(user);
    }
    let token = bearer(req).ok().or_else(|| query_token(req)).or_else(|| cookie_token(req))?;
    let verifier = req.app_data::<web::Data<AccessVerifier>>()?.clone();
    let claims = verifier.verify(&token).await.ok()?;
    Some(claims.user())
}

/// The web app's access cookie (`__Host-` prefixed under HTTPS).
pub const ACCESS_COOKIE: &str = "ht_access";

/// The web app's access cookie on a `/ws` handshake from a page of this
/// very site: the page's script cannot read the HttpOnly cookie to pass it
/// as `access_token`, and the browser sends it along. A handshake whose
/// `Origin` is another site (cross-site WebSocket hijacking) gets nothing.
pub fn cookie_token(req: &HttpRequest) -> Option<String> {
    if req.path() != "/ws" {
        return None;
    }
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let origin_host = header("origin")?.split_once("://")?.1;
    if !origin_host.eq_ignore_ascii_case(header("host")?) {
        return None;
    }
    let secure = format!("__Host-{ACCESS_COOKIE}");
    req.headers()
        .get_all(actix_web::http::header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| (*name == ACCESS_COOKIE || *name == secure) && !value.is_empty())
        .map(|(_, value)| value.to_owned())
}

/// The `access_token` query parameter, which only `/ws` takes (a browser
/// cannot set headers on a WebSocket).
pub fn query_token(req: &HttpRequest) -> Option<String> {
    if req.path() != "/ws" {
        return None;
    }
    web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
        .ok()?
        .get("access_token")
        .filter(|t| !t.is_empty())
        .cloned()
}

/// The caller the gateway verified and forwarded, when the request carries
/// the service credential (a module process behind the gateway does not
/// verify tokens again).
pub fn forwarded_user(req: &HttpRequest) -> Option<AuthUser> {
    let value = req.headers().get(crate::http::FORWARDED_USER_HEADER)?.to_str().ok()?;
    if !crate::http::from_service(req) {
        return None;
    }
    parse_forwarded_user(value)
}

fn parse_forwarded_user(value: &str) -> Option<AuthUser> {
    let mut parts = value.splitn(4, ';');
    let id = parts.next()?.parse().ok()?;
    let session_id = parts.next()?.parse().ok()?;
    let roles = parts.next().unwrap_or("").split(',').filter(|r| !r.is_empty()).map(str::to_owned).collect();
    let acting_admin = match parts.next() {
        Some(act) => Some(act.strip_prefix("act=")?.parse().ok()?),
        None => None,
    };
    Some(AuthUser { id, session_id, roles, acting_admin })
}

impl AuthUser {
    /// The value of [`crate::http::FORWARDED_USER_HEADER`] for this caller.
    pub fn forwarded(&self) -> String {
        match self.acting_admin {
            Some(admin) => format!("{};{};{};act={admin}", self.id, self.session_id, self.roles.join(",")),
            None => format!("{};{};{}", self.id, self.session_id, self.roles.join(",")),
        }
    }
}

/// The authenticated caller, extracted from `Authorization: Bearer <jwt>`.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: Id,
    pub session_id: Id,
    pub roles: Vec<String>,
    /// An admin viewing as this user: only reads are allowed (the edge
    /// refuses the rest).
    pub acting_admin: Option<Id>,
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

/// The token of `Authorization: Bearer <token>`.
pub fn bearer(req: &HttpRequest) -> Result<String, Problem> {
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
        if let Some(user) = forwarded_user(req) {
            return Box::pin(async move { Ok(user) });
        }
        let verifier = req.app_data::<web::Data<AccessVerifier>>().cloned();
        let token = bearer(req).or_else(|missing| query_token(req).or_else(|| cookie_token(req)).ok_or(missing));
        Box::pin(async move {
            let token = token?;
            let verifier = verifier.ok_or_else(|| Problem::internal("AccessVerifier not configured"))?;
            Ok(verifier.verify(&token).await?.user())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::MemoryCache;

    /// A throwaway Ed25519 key for these tests only.
    const TEST_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEICvpwkwbfeGfCJPR35ybO9e5k/76fOowjE4aYIVygrOJ\n-----END PRIVATE KEY-----\n";
    const TEST_KEY_X: &str = "ip35KjTt13XhsCTtAcHHh7w2_m16CSi1kWhBOfsyuVU";

    fn key_set() -> JwkSet {
        JwkSet {
            keys: vec![Jwk {
                kty: "OKP".into(),
                crv: "Ed25519".into(),
                x: TEST_KEY_X.into(),
                kid: "test".into(),
                alg: "EdDSA".into(),
                use_: "sig".into(),
            }],
        }
    }

    fn token(exp_in_secs: i64) -> (String, AccessClaims) {
        let now = chrono::Utc::now().timestamp();
        let claims = AccessClaims {
            sub: Id::new(),
            sid: Id::new(),
            roles: Vec::new(),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat: now,
            nbf: now,
            exp: now + exp_in_secs,
            jti: Id::new(),
            act: None,
        };
        let mut header = jsonwebtoken::Header::new(Algorithm::EdDSA);
        header.kid = Some("test".into());
        let key = jsonwebtoken::EncodingKey::from_ed_pem(TEST_KEY_PEM.as_bytes()).unwrap();
        (jsonwebtoken::encode(&header, &claims, &key).unwrap(), claims)
    }

    async fn verifier() -> (Arc<AccessVerifier>, Arc<MemoryCache>) {
        let cache = MemoryCache::new();
        let verifier = AccessVerifier::new(Arc::clone(&cache) as Arc<dyn Cache>);
        verifier.set_keys(&key_set()).await.unwrap();
        (verifier, cache)
    }

    #[tokio::test]
    async fn a_remembered_token_is_still_checked_for_expiry_revocation_and_keys() {
        let (verifier, cache) = verifier().await;
        let (good, claims) = token(600);
        assert_eq!(verifier.verify(&good).await.unwrap().jti, claims.jti);
        assert!(verifier.remembered().contains(&good));
        // Served from memory again, then refused once its session is revoked.
        assert_eq!(verifier.verify(&good).await.unwrap().sub, claims.sub);
        cache.set(&revoked_session_key(&claims.sid), "1", std::time::Duration::from_secs(60)).await.unwrap();
        assert_eq!(verifier.verify(&good).await.unwrap_err().detail, "session revoked");

        // A remembered token past its expiry (and the leeway) is refused.
        let (old, mut expired) = token(600);
        expired.exp = chrono::Utc::now().timestamp() - LEEWAY_SECS - 1;
        verifier.remembered().put(old.clone(), expired);
        assert_eq!(verifier.verify(&old).await.unwrap_err().detail, "token expired");

        // Replacing the keys forgets what they verified.
        let (other, _) = token(600);
        verifier.verify(&other).await.unwrap();
        verifier.set_keys(&JwkSet { keys: Vec::new() }).await.unwrap();
        assert_eq!(verifier.verify(&other).await.unwrap_err().detail, "unknown signing key");
        // A token signed by nobody we know is never remembered.
        assert!(!verifier.remembered().contains(&other));
        let mut tampered = good.clone();
        tampered.push('x');
        assert!(verifier.verify(&tampered).await.is_err());
    }

    #[test]
    fn the_access_cookie_opens_a_socket_from_this_site_only() {
        let handshake = |path: &str, origin: Option<&str>| {
            let mut req = actix_web::test::TestRequest::get()
                .uri(path)
                .insert_header(("host", "rentals.example:8443"))
                .insert_header(("cookie", "lang=fr; __Host-ht_access=tok.en.sig; ht_csrf=x"));
            if let Some(origin) = origin {
                req = req.insert_header(("origin", origin));
            }
            req.to_http_request()
        };
        assert_eq!(
            cookie_token(&handshake("/ws", Some("https://rentals.example:8443"))).as_deref(),
            Some("tok.en.sig")
        );
        for (path, origin) in [
            ("/ws", Some("https://evil.example")),
            ("/ws", Some("https://rentals.example")),
            ("/ws", None),
            ("/api/v1/users/me", Some("https://rentals.example:8443")),
        ] {
            assert_eq!(cookie_token(&handshake(path, origin)), None, "{path} {origin:?}");
        }
    }
}
