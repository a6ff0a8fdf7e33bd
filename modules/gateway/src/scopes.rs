//! The one table of what an API key needs: each public endpoint a key may
//! call, with its scope. The edge refuses a key on any other endpoint
//! (keys, password, two-factor, sessions, admin, pages: no scope grants
//! them), and the OpenAPI document lists each operation's scope from here.

use actix_web::http::Method;
use hometrip_kernel::api_keys::Scope;

/// `(method, path pattern, scope)`; `{name}` matches one path segment.
pub const SCOPED_ENDPOINTS: &[(&str, &str, Scope)] = &[
    ("GET", "/api/v1/listings", Scope::ListingsRead),
    ("GET", "/api/v1/listings/{id}", Scope::ListingsRead),
    ("GET", "/api/v1/listings/{id}/quote", Scope::ListingsRead),
    ("GET", "/api/v1/listings/{id}/reviews", Scope::ListingsRead),
    ("GET", "/api/v1/listings/{id}/similar", Scope::ListingsRead),
    ("GET", "/api/v1/amenities", Scope::ListingsRead),
    ("GET", "/api/v1/search/listings", Scope::ListingsRead),
    ("GET", "/api/v1/search/autocomplete", Scope::ListingsRead),
    ("GET", "/api/v1/bookings/quote", Scope::ListingsRead),
    ("POST", "/api/v1/listings", Scope::ListingsWrite),
    ("PATCH", "/api/v1/listings/{id}", Scope::ListingsWrite),
    ("DELETE", "/api/v1/listings/{id}", Scope::ListingsWrite),
    ("POST", "/api/v1/listings/{id}/photos", Scope::ListingsWrite),
    ("PUT", "/api/v1/listings/{id}/photos/order", Scope::ListingsWrite),
    ("PATCH", "/api/v1/listings/{id}/photos/{photo_id}", Scope::ListingsWrite),
    ("DELETE", "/api/v1/listings/{id}/photos/{photo_id}", Scope::ListingsWrite),
    ("POST", "/api/v1/listings/{id}/publish", Scope::ListingsWrite),
    ("POST", "/api/v1/listings/{id}/unlist", Scope::ListingsWrite),
    ("GET", "/api/v1/listings/{id}/calendar", Scope::CalendarRead),
    ("GET", "/api/v1/listings/{id}/calendar.ics", Scope::CalendarRead),
    ("GET", "/api/v1/listings/{id}/calendar/export", Scope::CalendarRead),
    ("GET", "/api/v1/listings/{id}/calendar/imports", Scope::CalendarRead),
    ("PUT", "/api/v1/listings/{id}/calendar", Scope::CalendarWrite),
    ("POST", "/api/v1/listings/{id}/calendar/export/rotate", Scope::CalendarWrite),
    ("POST", "/api/v1/listings/{id}/calendar/imports", Scope::CalendarWrite),
    ("DELETE", "/api/v1/listings/{id}/calendar/imports/{import_id}", Scope::CalendarWrite),
    ("POST", "/api/v1/listings/{id}/calendar/imports/{import_id}/sync", Scope::CalendarWrite),
    ("GET", "/api/v1/bookings", Scope::BookingsRead),
    ("GET", "/api/v1/bookings/{id}", Scope::BookingsRead),
    ("POST", "/api/v1/bookings/{id}/accept", Scope::BookingsWrite),
    ("POST", "/api/v1/bookings/{id}/decline", Scope::BookingsWrite),
    ("POST", "/api/v1/bookings/{id}/cancel", Scope::BookingsWrite),
    ("GET", "/api/v1/conversations", Scope::MessagesRead),
    ("GET", "/api/v1/conversations/{id}/messages", Scope::MessagesRead),
    ("GET", "/api/v1/conversations/{id}/attachments/{attachment_id}", Scope::MessagesRead),
    ("GET", "/api/v1/conversations/{id}/scheduled-messages", Scope::MessagesRead),
    ("GET", "/api/v1/quick-replies", Scope::MessagesRead),
    ("POST", "/api/v1/conversations", Scope::MessagesWrite),
    ("POST", "/api/v1/conversations/{id}/messages", Scope::MessagesWrite),
    ("POST", "/api/v1/conversations/{id}/read", Scope::MessagesWrite),
    ("POST", "/api/v1/conversations/{id}/scheduled-messages", Scope::MessagesWrite),
    ("DELETE", "/api/v1/conversations/{id}/scheduled-messages/{scheduled_id}", Scope::MessagesWrite),
    ("POST", "/api/v1/quick-replies", Scope::MessagesWrite),
    ("DELETE", "/api/v1/quick-replies/{id}", Scope::MessagesWrite),
];

fn matches(pattern: &str, path: &str) -> bool {
    let mut want = pattern.split('/');
    let mut have = path.split('/');
    loop {
        match (want.next(), have.next()) {
            (None, None) => return true,
            (Some(w), Some(h)) if w.starts_with('{') && w.ends_with('}') => {
                if h.is_empty() {
                    return false;
                }
            }
            (Some(w), Some(h)) if w == h => {}
            _ => return false,
        }
    }
}

/// The scope a call needs; `None` when no scope grants it. `HEAD` is a `GET`.
pub fn required(method: &Method, path: &str) -> Option<Scope> {
    let method = if *method == Method::HEAD { "GET" } else { method.as_str() };
    SCOPED_ENDPOINTS.iter().find(|(m, pattern, _)| *m == method && matches(pattern, path)).map(|(_, _, scope)| *scope)
}

/// The security scheme of API keys, and on each operation the scope it
/// needs (beside the bearer token every operation takes).
pub fn document(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
    let scopes: Vec<String> = Scope::ALL.iter().map(|s| format!("`{s}`: {}", s.describe())).collect();
    let description = format!(
        "An API key (`Authorization: Bearer htk_...`), made at `POST /api/v1/api-keys`; it acts as its owner, \
         limited to its scopes. An operation lists the scope it needs; a key on any other operation gets 403 \
         `insufficient_scope`. Scopes: {}.",
        scopes.join("; ")
    );
    let mut scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("htk").build();
    scheme.description = Some(description);
    doc.components.get_or_insert_with(Default::default).add_security_scheme("api_key", SecurityScheme::Http(scheme));
    for (path, item) in doc.paths.paths.iter_mut() {
        let operations = [
            ("GET", &mut item.get),
            ("PUT", &mut item.put),
            ("POST", &mut item.post),
            ("PATCH", &mut item.patch),
            ("DELETE", &mut item.delete),
        ];
        for (method, operation) in operations {
            let (Some(operation), Some((_, _, scope))) =
                (operation.as_mut(), SCOPED_ENDPOINTS.iter().find(|(m, p, _)| *m == method && p == path))
            else {
                continue;
            };
            // An operation open to anyone stays so: `{}` says no credential is needed.
            let mut security = operation.security.take().unwrap_or_else(|| vec![SecurityRequirement::default()]);
            security.push(SecurityRequirement::new("api_key", [scope.as_str()]));
            operation.security = Some(security);
            operation
                .extensions
                .get_or_insert_with(Default::default)
                .insert("x-api-key-scope".to_owned(), serde_json::Value::String(scope.as_str().to_owned()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_find_their_scope_and_the_rest_none() {
        let id = "0190c0a4-0000-7000-8000-000000000001";
        assert_eq!(required(&Method::GET, &format!("/api/v1/listings/{id}/calendar")), Some(Scope::CalendarRead));
        assert_eq!(required(&Method::HEAD, &format!("/api/v1/listings/{id}/calendar")), Some(Scope::CalendarRead));
        assert_eq!(required(&Method::PUT, &format!("/api/v1/listings/{id}/calendar")), Some(Scope::CalendarWrite));
        assert_eq!(required(&Method::GET, &format!("/api/v1/listings/{id}")), Some(Scope::ListingsRead));
        assert_eq!(required(&Method::GET, "/api/v1/listings//calendar"), None);
        assert_eq!(required(&Method::GET, &format!("/api/v1/listings/{id}/calendar/")), None);
        for refused in ["/api/v1/api-keys", "/api/v1/auth/password/change", "/api/v1/admin/audit", "/api/v1/users/me"] {
            assert_eq!(required(&Method::POST, refused), None, "{refused}");
            assert_eq!(required(&Method::GET, refused), None, "{refused}");
        }
    }

    #[test]
    fn every_entry_is_one_endpoint() {
        let mut seen = std::collections::HashSet::new();
        for (method, pattern, _) in SCOPED_ENDPOINTS {
            assert!(seen.insert((method, pattern)), "{method} {pattern} twice");
            assert!(pattern.starts_with("/api/v1/"), "{pattern}");
        }
    }
}
