//! Mutual TLS between the services of a deployment: `hometrip certs` (a
//! development CA and a certificate per module), and, in a module process,
//! who may call it: the gateway and the modules the table says call one of
//! its modules (auth: everyone, as every process reads its token keys).
//! Health and metrics take any certificate of the CA (probes, Prometheus).

use std::path::Path;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, ResponseError as _};
use hometrip_kernel::tls::PeerCertificate;
use hometrip_kernel::{ErrorCode, Problem};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};

use crate::modules::{self, Module};

/// Writes `ca.pem` and `ca.key`, then `<module>.pem` and `<module>.key` for
/// each module: its name as a DNS name, plus `hosts` (names or addresses the
/// services are reached at besides their module name, e.g. 127.0.0.1).
pub fn write_certificates(out: &Path, names: &[String], hosts: &[String]) -> Result<(), String> {
    for name in names {
        if modules::find(name).is_none() {
            return Err(format!("--modules: no module {name}"));
        }
    }
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let fail = |e: rcgen::Error| format!("certificate: {e}");
    let ca_key = KeyPair::generate().map_err(fail)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name.push(DnType::CommonName, "HomeTrip services CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).map_err(fail)?;
    write(out, "ca.pem", &ca_cert.pem(), false)?;
    write(out, "ca.key", &ca_key.serialize_pem(), true)?;
    let issuer = Issuer::new(ca, ca_key);
    for name in names {
        let mut sans = vec![name.clone()];
        sans.extend(hosts.iter().cloned());
        let mut params = CertificateParams::new(sans).map_err(fail)?;
        params.distinguished_name.push(DnType::CommonName, name.as_str());
        // Each process both serves and calls.
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().map_err(fail)?;
        let cert = params.signed_by(&key, &issuer).map_err(fail)?;
        write(out, &format!("{name}.pem"), &cert.pem(), false)?;
        write(out, &format!("{name}.key"), &key.serialize_pem(), true)?;
    }
    println!("wrote ca.pem and a certificate per module ({}) into {}", names.join(", "), out.display());
    Ok(())
}

fn write(dir: &Path, file: &str, text: &str, secret: bool) -> Result<(), String> {
    let path = dir.join(file);
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The modules allowed to call a process running `local`.
pub fn allowed_callers(local: &[&'static Module]) -> Vec<&'static str> {
    let mut allowed = vec!["gateway"];
    for caller in modules::MODULES.iter().filter(|m| m.exists) {
        let calls_us = local.iter().any(|m| m.name == "auth" || caller.calls.contains(&m.name));
        if calls_us && !allowed.contains(&caller.name) {
            allowed.push(caller.name);
        }
    }
    allowed
}

/// Callers allowed here, as the request's app data.
#[derive(Clone)]
pub struct AllowedCallers(pub Vec<&'static str>);

/// Refuses a request whose client certificate names no allowed caller.
pub async fn only_allowed_callers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let operational = req.path().starts_with("/health/") || req.path() == "/metrics";
    let allowed = req.app_data::<actix_web::web::Data<AllowedCallers>>().cloned();
    let peer = req.conn_data::<PeerCertificate>().cloned();
    // Mounted only on mTLS listeners, where the handshake required a certificate.
    let admitted = match (allowed, peer) {
        (Some(allowed), Some(peer)) => operational || allowed.0.iter().any(|m| peer.names(m)),
        _ => true,
    };
    if admitted {
        return next.call(req).await.map(ServiceResponse::map_into_left_body);
    }
    let problem =
        Problem::new(ErrorCode::Forbidden, "the client certificate names no module that may call this service");
    Ok(req.into_response(problem.error_response()).map_into_right_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn callers_of(name: &str) -> Vec<&'static str> {
        let module = modules::find(name).unwrap();
        let mut callers = allowed_callers(&[module]);
        callers.sort_unstable();
        callers
    }

    #[test]
    fn a_module_takes_calls_from_the_gateway_and_the_modules_that_call_it() {
        assert_eq!(
            callers_of("listing"),
            ["analytics", "booking", "gateway", "message", "notification", "realtime", "search"]
        );
        assert_eq!(callers_of("message"), ["gateway", "realtime"]);
        assert_eq!(callers_of("payment"), ["booking", "gateway"]);
        assert_eq!(callers_of("booking"), ["gateway", "message", "notification", "review"]);
        // Every process reads auth's token keys.
        assert_eq!(callers_of("auth").len(), modules::MODULES.iter().filter(|m| m.exists).count());
    }
}
