//! RFC 9457 problem details, with a stable snake_case error code in `type`.
//!
//! Every module maps its own error type into [`Problem`] at the HTTP edge; the
//! codes come from one table ([`ErrorCode`]) so clients can branch on them.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::{Deserialize, Serialize};

/// The one table of error codes. The `type` of a problem is its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    MalformedJson,
    InvalidPath,
    InvalidQuery,
    UnsupportedMediaType,
    PayloadTooLarge,
    ValidationFailed,
    Unauthenticated,
    InvalidToken,
    InvalidCredentials,
    TotpRequired,
    Forbidden,
    /// An API key without the scope the call needs.
    InsufficientScope,
    NotFound,
    MethodNotAllowed,
    Conflict,
    EmailTaken,
    RateLimited,
    BadGateway,
    ServiceUnavailable,
    GatewayTimeout,
    Internal,
}

impl ErrorCode {
    pub fn status(self) -> StatusCode {
        use ErrorCode::*;
        match self {
            BadRequest | MalformedJson | InvalidPath | InvalidQuery => StatusCode::BAD_REQUEST,
            UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ValidationFailed => StatusCode::UNPROCESSABLE_ENTITY,
            Unauthenticated | InvalidToken | InvalidCredentials | TotpRequired => StatusCode::UNAUTHORIZED,
            Forbidden | InsufficientScope => StatusCode::FORBIDDEN,
            NotFound => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Conflict | EmailTaken => StatusCode::CONFLICT,
            RateLimited => StatusCode::TOO_MANY_REQUESTS,
            BadGateway => StatusCode::BAD_GATEWAY,
            ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            GatewayTimeout => StatusCode::GATEWAY_TIMEOUT,
            Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn title(self) -> &'static str {
        use ErrorCode::*;
        match self {
            BadRequest => "Bad request",
            MalformedJson => "Malformed JSON body",
            InvalidPath => "Invalid path parameter",
            InvalidQuery => "Invalid query parameter",
            UnsupportedMediaType => "Unsupported media type",
            PayloadTooLarge => "Payload too large",
            ValidationFailed => "Validation failed",
            Unauthenticated => "Authentication required",
            InvalidToken => "Invalid or expired token",
            InvalidCredentials => "Invalid credentials",
            TotpRequired => "Two-factor code required",
            Forbidden => "Forbidden",
            InsufficientScope => "Insufficient scope",
            NotFound => "Not found",
            MethodNotAllowed => "Method not allowed",
            Conflict => "Conflict",
            EmailTaken => "Email already registered",
            RateLimited => "Too many requests",
            BadGateway => "Upstream service failed",
            ServiceUnavailable => "Service unavailable",
            GatewayTimeout => "Upstream service timed out",
            Internal => "Internal error",
        }
    }

    /// The code for a bare status (used to wrap framework errors).
    pub fn from_status(status: u16) -> ErrorCode {
        use ErrorCode::*;
        match status {
            401 => Unauthenticated,
            403 => Forbidden,
            404 => NotFound,
            405 => MethodNotAllowed,
            409 => Conflict,
            413 => PayloadTooLarge,
            415 => UnsupportedMediaType,
            422 => ValidationFailed,
            429 => RateLimited,
            502 => BadGateway,
            503 => ServiceUnavailable,
            504 => GatewayTimeout,
            400..=499 => BadRequest,
            _ => Internal,
        }
    }

    pub fn as_str(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "internal".to_owned())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError { field: field.into(), message: message.into() }
    }
}

/// An RFC 9457 problem document, and the error every handler returns.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Problem {
    /// The stable error code (snake_case), e.g. `validation_failed`.
    #[serde(rename = "type")]
    pub code: ErrorCode,
    pub title: String,
    pub status: u16,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Extra members (e.g. `totp_required: true`).
    #[serde(flatten, default)]
    #[schema(value_type = Object)]
    pub extensions: serde_json::Map<String, serde_json::Value>,
    /// Seconds, sent as the `Retry-After` header with 429/503.
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

impl Problem {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Problem {
            code,
            title: code.title().to_owned(),
            status: code.status().as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
            extensions: serde_json::Map::new(),
            retry_after: None,
        }
    }

    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; ");
        Problem { errors, ..Problem::new(ErrorCode::ValidationFailed, detail) }
    }

    pub fn field(field: &str, message: &str) -> Self {
        Self::validation(vec![FieldError::new(field, message)])
    }

    pub fn not_found(what: &str) -> Self {
        Problem::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    pub fn forbidden(detail: &str) -> Self {
        Problem::new(ErrorCode::Forbidden, detail)
    }

    /// An unexpected failure: logged with its cause, answered without it.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Problem::new(ErrorCode::Internal, "an unexpected error occurred")
    }

    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.extensions.insert(key.to_owned(), value.into());
        self
    }

    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }
}

impl Problem {
    /// The `WWW-Authenticate` challenge of a refused credential (RFC 6750 §3):
    /// every 401 names the scheme; a bad token and a key without the scope
    /// say why, so a client library can tell "sign in again" from "ask for
    /// another scope".
    fn challenge(&self) -> Option<String> {
        const BEARER: &str = "Bearer realm=\"HomeTrip\"";
        match self.code {
            ErrorCode::InvalidToken => Some(format!("{BEARER}, error=\"invalid_token\"")),
            ErrorCode::InsufficientScope => {
                let scope = self.extensions.get("required_scope").and_then(|s| s.as_str());
                // A scope is `word:word`: nothing to escape in a quoted string.
                let scope = scope.filter(|s| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b':' || b == b'_'));
                Some(match scope {
                    Some(scope) => format!("{BEARER}, error=\"insufficient_scope\", scope=\"{scope}\""),
                    None => format!("{BEARER}, error=\"insufficient_scope\""),
                })
            }
            _ if self.status == 401 => Some(BEARER.to_owned()),
            _ => None,
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.title, self.status, self.detail)
    }
}

impl std::error::Error for Problem {}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        res.content_type("application/problem+json");
        if let Some(secs) = self.retry_after {
            res.insert_header(("Retry-After", secs.to_string()));
        }
        if let Some(challenge) = self.challenge() {
            res.insert_header((actix_web::http::header::WWW_AUTHENTICATE, challenge));
        }
        res.body(serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned()))
    }
}

impl From<crate::db::DbError> for Problem {
    fn from(e: crate::db::DbError) -> Self {
        match e {
            crate::db::DbError::Conflict(what) => Problem::new(ErrorCode::Conflict, what),
            crate::db::DbError::NotFound => Problem::not_found("resource"),
            crate::db::DbError::Unavailable(msg) => {
                tracing::error!(error = %msg, "database unavailable");
                Problem::new(ErrorCode::ServiceUnavailable, "the database is unavailable").retry_after(1)
            }
            other => Problem::internal(other),
        }
    }
}

/// The result of every handler and service call.
pub type Result<T, E = Problem> = std::result::Result<T, E>;
