//! Sessions in the browser. The auth module's tokens live in HttpOnly,
//! SameSite=Lax cookies (Secure, and named `__Host-…` so no other host can
//! plant them, when the public URL is HTTPS): the access token for its 15
//! minutes, the refresh token for the session. A page verifies the access
//! token like the edge does; when it is expired or invalid, the refresh
//! token is rotated once — however many pages ask at once — and the new
//! pair set. Forms carry a CSRF token: the HMAC of a random per-browser
//! cookie under a key of the deployment, checked on every POST; the secret
//! is renewed when someone signs in or out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::HttpRequest;
use cookie::{Cookie, SameSite};
use hmac::{Hmac, Mac};
use hometrip_auth::api::SessionTokens;
use hometrip_kernel::auth_context::{AuthUser, ACCESS_COOKIE};
use hometrip_kernel::{ErrorCode, Id, Problem};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use crate::locale::cookie_value;
use crate::Web;

const REFRESH_COOKIE: &str = "ht_refresh";
const CSRF_COOKIE: &str = "ht_csrf";
/// A sign-in with Google or Facebook under way: its binding and where to return.
const PROVIDER_COOKIE: &str = "ht_provider";
/// How long the browser keeps the refresh cookie; the session's own expiry,
/// kept by auth, decides whether it still works.
const SESSION_DAYS: i64 = 30;
/// A refresh token this process rotated is answered with the same new pair
/// for this long: two pages loading at once must not present the old token
/// twice (auth ends the session of a reused token as stolen).
const ROTATION_GRACE: Duration = Duration::from_secs(30);

/// Who is asking, and the cookies the answer must set.
pub struct Visitor {
    pub user: Option<SignedIn>,
    /// This browser's CSRF secret (its cookie).
    csrf_secret: String,
    pub cookies: Vec<Cookie<'static>>,
}

pub struct SignedIn {
    pub id: Id,
    pub display_name: String,
    /// Who the modules' traits act for.
    pub user: AuthUser,
}

type Rotation = Arc<OnceCell<Result<SessionTokens, Problem>>>;

/// Rotations of refresh tokens, by the old token's digest: pages asking at
/// once share one call to auth, and later ones within [`ROTATION_GRACE`]
/// its answer.
#[derive(Default)]
pub struct Rotations(Mutex<HashMap<String, (Instant, Rotation)>>);

impl Rotations {
    fn slot(&self, digest: &str) -> Rotation {
        let Ok(mut map) = self.0.lock() else {
            return Rotation::default();
        };
        map.retain(|_, (at, _)| at.elapsed() < ROTATION_GRACE);
        Arc::clone(&map.entry(digest.to_owned()).or_insert_with(|| (Instant::now(), Rotation::default())).1)
    }

    fn forget(&self, digest: &str) {
        if let Ok(mut map) = self.0.lock() {
            map.remove(digest);
        }
    }
}

/// What the access cookie says.
enum Access {
    Valid(SignedIn),
    /// Expired, forged, or of another key: the refresh cookie may renew it.
    Invalid,
    /// Valid, but this page cannot use it now (auth unreachable, an
    /// admin's view as the user): shown signed out, nothing renewed.
    Unusable,
}

pub fn user_agent(req: &HttpRequest) -> Option<String> {
    req.headers().get(actix_web::http::header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Web {
    /// A cookie's name: `__Host-` prefixed when cookies are `Secure`.
    fn cookie_name(&self, base: &str) -> String {
        if self.secure_cookies {
            format!("__Host-{base}")
        } else {
            base.to_owned()
        }
    }

    fn cookie(&self, base: &str, value: String, max_age_secs: i64) -> Cookie<'static> {
        Cookie::build((self.cookie_name(base), value))
            .path("/")
            .http_only(true)
            .secure(self.secure_cookies)
            .same_site(SameSite::Lax)
            .max_age(cookie::time::Duration::seconds(max_age_secs))
            .build()
    }

    fn read(&self, req: &HttpRequest, base: &str) -> Option<String> {
        cookie_value(req, &self.cookie_name(base)).filter(|v| !v.is_empty())
    }

    /// The cookie binding a sign-in with a provider to this browser, with
    /// the page to return to (ten minutes; empty `value` ends it).
    pub(crate) fn provider_cookie(&self, value: String) -> Cookie<'static> {
        let max_age = if value.is_empty() { 0 } else { 600 };
        self.cookie(PROVIDER_COOKIE, value, max_age)
    }

    pub(crate) fn provider_binding(&self, req: &HttpRequest) -> Option<String> {
        self.read(req, PROVIDER_COOKIE)
    }

    /// The cookies of a new or rotated session.
    fn session_cookies(&self, tokens: &SessionTokens) -> Vec<Cookie<'static>> {
        vec![
            self.cookie(ACCESS_COOKIE, tokens.access_token.clone(), tokens.expires_in),
            self.cookie(REFRESH_COOKIE, tokens.refresh_token.clone(), SESSION_DAYS * 86_400),
        ]
    }

    /// The cookies of someone who just signed in: the session, and a new
    /// CSRF secret.
    pub fn signed_in_cookies(&self, tokens: &SessionTokens) -> Vec<Cookie<'static>> {
        let mut cookies = self.session_cookies(tokens);
        cookies.push(self.new_csrf_secret().1);
        cookies
    }

    /// Cookies that end the session in the browser (and renew its CSRF secret).
    pub fn signed_out_cookies(&self) -> Vec<Cookie<'static>> {
        vec![
            self.cookie(ACCESS_COOKIE, String::new(), 0),
            self.cookie(REFRESH_COOKIE, String::new(), 0),
            self.new_csrf_secret().1,
        ]
    }

    fn new_csrf_secret(&self) -> (String, Cookie<'static>) {
        let secret = hex::encode(rand::random::<[u8; 32]>());
        let cookie = self.cookie(CSRF_COOKIE, secret.clone(), SESSION_DAYS * 86_400);
        (secret, cookie)
    }

    /// The refresh cookie, to end its session.
    pub fn refresh_token(&self, req: &HttpRequest) -> Option<String> {
        self.read(req, REFRESH_COOKIE)
    }

    /// Signing out: the token's rotation is forgotten too.
    pub async fn end_session(&self, refresh: &str) -> Result<(), Problem> {
        self.rotations.forget(&digest(refresh));
        self.sessions.sign_out(refresh).await
    }

    /// The visitor of a request: signed in by the access cookie, or by the
    /// refresh cookie (rotated once); a CSRF secret given if it has none.
    pub async fn visitor(&self, req: &HttpRequest) -> Visitor {
        let mut cookies = Vec::new();
        let csrf_secret = match self.read(req, CSRF_COOKIE).filter(|s| s.len() == 64) {
            Some(secret) => secret,
            None => {
                let (secret, cookie) = self.new_csrf_secret();
                cookies.push(cookie);
                secret
            }
        };
        let access = match self.read(req, ACCESS_COOKIE) {
            Some(token) => self.access(&token).await,
            None => Access::Invalid,
        };
        let user = match access {
            Access::Valid(user) => Some(user),
            Access::Unusable => None,
            Access::Invalid => match self.read(req, REFRESH_COOKIE) {
                Some(refresh) => self.renew(req, &refresh, &mut cookies).await,
                None => None,
            },
        };
        Visitor { user, csrf_secret, cookies }
    }

    /// Rotates the refresh token once, whoever else asks at the same time.
    async fn renew(&self, req: &HttpRequest, refresh: &str, cookies: &mut Vec<Cookie<'static>>) -> Option<SignedIn> {
        let old = digest(refresh);
        let slot = self.rotations.slot(&old);
        let rotated = slot
            .get_or_init(|| async { self.sessions.refresh(refresh, user_agent(req).as_deref()).await })
            .await
            .clone();
        match rotated {
            Ok(tokens) => {
                cookies.extend(self.session_cookies(&tokens));
                match self.access(&tokens.access_token).await {
                    Access::Valid(user) => Some(user),
                    _ => None,
                }
            }
            Err(p) if p.status == 401 || p.status == 400 => {
                cookies.extend(self.signed_out_cookies());
                None
            }
            // Auth unreachable: shown signed out, the cookies kept, and
            // the next page asks again.
            Err(p) => {
                self.rotations.forget(&old);
                tracing::warn!(detail = %p.detail, "web: refreshing a session failed");
                None
            }
        }
    }

    async fn access(&self, token: &str) -> Access {
        let claims = match self.verifier.verify(token).await {
            Ok(claims) => claims,
            Err(p) if p.code == ErrorCode::InvalidToken => return Access::Invalid,
            Err(p) => {
                tracing::warn!(detail = %p.detail, "web: verifying an access token failed");
                return Access::Unusable;
            }
        };
        // An admin's view as a user is for the API; pages stay signed out.
        if claims.act.is_some() {
            return Access::Unusable;
        }
        match self.accounts.account(claims.sub).await {
            Ok(Some(account)) => {
                Access::Valid(SignedIn { id: claims.sub, display_name: account.display_name, user: claims.user() })
            }
            Ok(None) => Access::Invalid,
            Err(p) => {
                tracing::warn!(detail = %p.detail, "web: reading the signed-in account failed");
                Access::Unusable
            }
        }
    }

    /// The token a form of this visitor carries.
    pub fn csrf_token(&self, visitor: &Visitor) -> String {
        hex::encode(self.csrf_mac(&visitor.csrf_secret).finalize().into_bytes())
    }

    /// Whether a submitted form's token belongs to this browser.
    pub fn csrf_ok(&self, req: &HttpRequest, submitted: &str) -> bool {
        let (Some(secret), Ok(sent)) = (self.read(req, CSRF_COOKIE), hex::decode(submitted)) else {
            return false;
        };
        self.csrf_mac(&secret).verify_slice(&sent).is_ok()
    }

    fn csrf_mac(&self, secret: &str) -> Hmac<Sha256> {
        // A key of SHA-256's block size: HMAC uses it as is.
        let mut mac = <Hmac<Sha256> as hmac::digest::KeyInit>::new(&self.csrf_key.into());
        mac.update(secret.as_bytes());
        mac
    }
}

/// A path of this site to return to after signing in: one `/` then
/// printable ASCII only (a browser drops tabs and line breaks, so
/// `/\t/evil.example` would become `//evil.example`, another site).
pub fn local_path(next: &str) -> String {
    let bytes = next.as_bytes();
    let safe = bytes.first() == Some(&b'/')
        && !matches!(bytes.get(1), Some(b'/' | b'\\'))
        && bytes.iter().all(|b| (0x21..=0x7e).contains(b));
    if safe {
        next.to_owned()
    } else {
        "/".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_returned_to() {
        assert_eq!(local_path("/trips?x=1"), "/trips?x=1");
        assert_eq!(local_path("/search?q=http://lyon"), "/search?q=http://lyon");
        for outside in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/a\r\nSet-Cookie: x",
            "/\x7f",
            "evil",
            "",
        ] {
            assert_eq!(local_path(outside), "/", "{outside}");
        }
    }
}
