//! The problems an operation can answer besides those its handler names:
//! the edge's (401 for a bad credential, 403 for a key without the scope,
//! 429 for a limit) and the extractors' (400 for a malformed path, query or
//! body, 413, 415, 422), added to the OpenAPI document so a client made
//! from it knows every answer it can get. Every error answer is
//! `application/problem+json`, and the document says so.

use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::{Content, OpenApi, Ref, RefOr};

const PROBLEM_JSON: &str = "application/problem+json";

/// What each added status means, whatever the operation.
fn meaning(status: &str) -> &'static str {
    match status {
        "400" => "A malformed path parameter, query or body (`invalid_path`, `invalid_query`, `malformed_json`)",
        "401" => {
            "No credential, or a bad or expired one (`unauthenticated`, `invalid_token`); \
             `WWW-Authenticate` carries the Bearer challenge"
        }
        "403" => {
            "Not allowed: another's resource, a missing role, or an API key without the scope \
             (`forbidden`; `insufficient_scope` with `required_scope`, also in `WWW-Authenticate`)"
        }
        "404" => "Not found",
        "409" => "Conflicts with the resource's state",
        "413" => "The body is too large",
        "415" => "The body's Content-Type is not the one the operation takes",
        "422" => "Invalid fields (`validation_failed`, with `errors: [{field, message}]`)",
        "429" => "Too many requests (per address, per account or per API key); `Retry-After` says when to retry",
        _ => "",
    }
}

/// Adds the problems every operation can answer and marks error answers as
/// problem+json.
pub fn document(doc: &mut OpenApi) {
    for item in doc.paths.paths.values_mut() {
        for operation in operations(item) {
            for status in statuses(operation) {
                operation.responses.responses.entry(status.to_owned()).or_insert_with(|| problem(meaning(status)));
            }
            for (status, answer) in operation.responses.responses.iter_mut() {
                if let (true, RefOr::T(response)) = (status.as_str() >= "400", answer) {
                    as_problem(status, response);
                }
            }
        }
    }
}

/// The statuses the edge and the extractors may give `operation`.
fn statuses(operation: &Operation) -> Vec<&'static str> {
    let mut statuses = vec!["429"];
    let params = operation.parameters.as_deref().unwrap_or_default();
    let in_path = params.iter().any(|p| matches!(p.parameter_in, ParameterIn::Path));
    let in_query = params.iter().any(|p| matches!(p.parameter_in, ParameterIn::Query));
    if in_path {
        statuses.extend(["400", "404"]);
    }
    if in_query {
        statuses.extend(["400", "422"]);
    }
    if operation.request_body.is_some() {
        statuses.extend(["400", "413", "415", "422"]);
    }
    // `{}` alone means open to anyone; a credential named beside it is
    // still checked when sent.
    let credentials = operation.security.as_deref().unwrap_or_default().iter().any(|requirement| {
        serde_json::to_value(requirement).is_ok_and(|v| v.as_object().is_some_and(|o| !o.is_empty()))
    });
    if credentials {
        statuses.extend(["401", "403"]);
    }
    statuses
}

fn problem(description: &str) -> RefOr<Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(PROBLEM_JSON, Content::new(Some(Ref::from_schema_name("Problem"))))
            .build(),
    )
}

/// An error answer named by a handler: its JSON body is a problem, and an
/// answer without a description gets the status's.
fn as_problem(status: &str, response: &mut Response) {
    if let Some(content) = response.content.shift_remove("application/json") {
        response.content.insert(PROBLEM_JSON.to_owned(), content);
    }
    if response.description.is_empty() {
        response.description = meaning(status).to_owned();
    }
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, PathsBuilder};
    use utoipa::openapi::security::SecurityRequirement;
    use utoipa::openapi::{OpenApiBuilder, PathItem};

    fn op(id: &str) -> OperationBuilder {
        OperationBuilder::new().operation_id(Some(id))
    }

    #[test]
    fn each_operation_gets_the_problems_it_can_answer() {
        let by_id = op("show")
            .parameter(ParameterBuilder::new().name("id").parameter_in(ParameterIn::Path))
            .response("404", ResponseBuilder::new().content("application/json", Content::new(None::<Ref>)).build())
            .security(SecurityRequirement::default());
        let mine = op("mine").security(SecurityRequirement::new("bearer", Vec::<String>::new()));
        let paths = PathsBuilder::new()
            .path("/a/{id}", PathItem::new(HttpMethod::Get, by_id))
            .path("/b", PathItem::new(HttpMethod::Get, mine))
            .build();
        let mut doc = OpenApiBuilder::new().paths(paths).build();
        document(&mut doc);
        let json = serde_json::to_value(&doc).unwrap();
        let a = &json["paths"]["/a/{id}"]["get"];
        let b = &json["paths"]["/b"]["get"];
        let codes = |o: &serde_json::Value| o["responses"].as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(codes(a), ["400", "404", "429"], "open to anyone: no 401");
        assert_eq!(codes(b), ["401", "403", "429"]);
        assert!(a["responses"]["404"]["content"][PROBLEM_JSON].is_object(), "{a}");
        assert!(a["responses"]["404"]["content"]["application/json"].is_null());
        assert_eq!(a["responses"]["404"]["description"], "Not found");
    }
}
