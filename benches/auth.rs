//! Criterion benches of the auth hot paths: access-token verification (every
//! authenticated request pays it) and password hashing (every login and
//! registration pays it; argon2id at OWASP cost is slow on purpose).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use ed25519_dalek::pkcs8::EncodePrivateKey;
use hometrip_kernel::auth_context::{AccessClaims, AccessVerifier, Jwk, JwkSet, AUDIENCE, ISSUER};
use hometrip_kernel::cache::MemoryCache;
use hometrip_kernel::Id;

fn token_and_verifier(rt: &tokio::runtime::Runtime) -> (String, Arc<AccessVerifier>) {
    use base64::Engine;
    let signing = ed25519_dalek::SigningKey::from_bytes(&[42u8; 32]);
    let der = signing.to_pkcs8_der().unwrap();
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signing.verifying_key().to_bytes());
    let now = chrono::Utc::now().timestamp();
    let claims = AccessClaims {
        sub: Id::new(),
        sid: Id::new(),
        roles: vec![],
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        iat: now,
        nbf: now,
        exp: now + 900,
        jti: Id::new(),
        act: None,
    };
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some("bench".into());
    let token =
        jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes())).unwrap();
    let verifier = AccessVerifier::new(MemoryCache::new());
    let set = JwkSet {
        keys: vec![Jwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x,
            kid: "bench".into(),
            alg: "EdDSA".into(),
            use_: "sig".into(),
        }],
    };
    rt.block_on(verifier.set_keys(&set)).unwrap();
    (token, verifier)
}

fn jwt_verification(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (token, verifier) = token_and_verifier(&rt);
    c.bench_function("jwt_verify_eddsa_with_revocation_check", |b| {
        b.iter(|| rt.block_on(verifier.verify(std::hint::black_box(&token))).unwrap())
    });
}

fn password_hashing(c: &mut Criterion) {
    let mut group = c.benchmark_group("argon2id_owasp");
    group.sample_size(10);
    group.bench_function("hash", |b| {
        b.iter(|| {
            hometrip_auth::service::hash_password_blocking(std::hint::black_box("correct horse battery staple"))
                .unwrap()
        })
    });
    let hash = hometrip_auth::service::hash_password_blocking("correct horse battery staple").unwrap();
    group.bench_function("verify", |b| {
        b.iter(|| assert!(hometrip_auth::service::verify_password_blocking("correct horse battery staple", &hash)))
    });
    group.finish();
}

criterion_group!(benches, jwt_verification, password_hashing);
criterion_main!(benches);
