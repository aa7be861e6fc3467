//! The OpenAPI document served at `/api/openapi.json`, generated from the code: each route's
//! `#[utoipa::path]` next to its handler, and the schemas derived from the `wire` types the
//! handlers read and write (`utoipa::ToSchema`), so the document cannot drift from the server.
//! What every route shares (the access checks' errors, the body limits, the `{id}` parameter)
//! is added here once rather than repeated on 37 operations. `scripts/schemathesis.sh` holds
//! the server to the document.

use std::sync::OnceLock;

use serde_json::{Value, json};
use utoipa::OpenApi;

use super::error::ErrorBody;
use super::{pair, routes, ws};
use crate::wire;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "telepty daemon API",
        description = include_str!("../../assets/openapi-intro.md"),
        license(name = "MIT", identifier = "MIT"),
    ),
    servers((url = "http://127.0.0.1:3848", description = "Default local daemon")),
    paths(
        routes::health, routes::meta, routes::peers, serve, routes::list,
        routes::spawn, routes::register, ws::session_get, routes::rename,
        routes::delete_session, routes::get_state, routes::post_state, routes::inject,
        routes::multicast, routes::broadcast, routes::submit, routes::submit_all,
        routes::screen, routes::wait, routes::keys, routes::resize, routes::recording,
        routes::mailbox, routes::mailbox_ack, routes::mailbox_clear,
        routes::mailbox_dead_clear, ws::bus, routes::publish, routes::handoff_create,
        routes::handoff_list, routes::handoff_get, routes::handoff_claim,
        routes::handoff_patch, routes::thread_create, routes::thread_list, routes::thread_get,
        routes::thread_patch, routes::lost, routes::resurrect, pair::start, pair::status,
        pair::claim,
    ),
    components(schemas(ErrorBody, wire::event::BusGap)),
    tags(
        (name = "daemon"), (name = "sessions"), (name = "inject"), (name = "screen"),
        (name = "mailbox"), (name = "bus"), (name = "handoff"), (name = "threads"),
    )
)]
struct ApiDoc;

/// This document
#[utoipa::path(
    get, path = "/api/openapi.json", operation_id = "getOpenApi", tag = "daemon",
    summary = "This OpenAPI 3.1 document",
    responses((status = 200, body = Object)),
)]
pub async fn serve() -> axum::response::Response {
    super::error::json_response(axum::http::StatusCode::OK, document())
}

/// The document, built once.
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or(Value::Null);
        add_shared(&mut doc);
        doc
    })
}

/// Responses every operation can get from the access checks and the connection limits, the
/// body limits of those with a body, and the lookup errors of session routes.
fn add_shared(doc: &mut Value) {
    let error = |description: &str| {
        json!({"description": description,
               "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}})
    };
    doc["info"]["version"] = json!(super::VERSION);
    doc["security"] = json!([{"tokenHeader": []}, {"tokenQuery": []}, {"bearer": []}]);
    let components = &mut doc["components"];
    components["securitySchemes"] = json!({
        "tokenHeader": {"type": "apiKey", "in": "header", "name": "x-telepty-token",
            "description": "The daemon's token (~/.telepty/config.json). Not needed by the owner on this machine, nor by allowlisted peers."},
        "tokenQuery": {"type": "apiKey", "in": "query", "name": "token",
            "description": "The same token as a query parameter (WebSocket clients)."},
        "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "token or HS256 JWT",
            "description": "`Authorization: Bearer <token>` (or a JWT when TELEPTY_JWT_SECRET is set)."}
    });
    for (name, description) in SHARED {
        components["responses"][*name] = error(description);
    }
    let schemas = doc["components"]["schemas"].clone();
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let id = id_parameter(path);
        if let Some(p) = &id {
            item["parameters"] = json!([p]);
        }
        let Some(ops) = item.as_object_mut() else {
            continue;
        };
        for op in ops.values_mut().filter(|op| op.get("responses").is_some()) {
            // An empty body reads as `{}` (API.md §1): a body is required only by routes
            // with required fields.
            if let Some(body) = op.get_mut("requestBody") {
                let schema = &body["content"]["application/json"]["schema"]["$ref"];
                let name = schema
                    .as_str()
                    .and_then(|r| r.rsplit('/').next())
                    .map(str::to_string);
                let required = name
                    .as_deref()
                    .and_then(|n| schemas[n]["required"].as_array())
                    .is_some_and(|r| !r.is_empty());
                body["required"] = json!(required);
                if !required && name.is_some() {
                    // Another top-level value counts as `{}` too (API.md §1; the bus's
                    // publish, with an inline schema, refuses it).
                    let schema = &mut body["content"]["application/json"]["schema"];
                    *schema = json!({"anyOf": [schema.take(),
                        {"type": ["array", "string", "number", "boolean", "null"]}]});
                }
            }
            let mut shared = vec!["401", "403", "500", "503"];
            if op.get("requestBody").is_some() {
                shared.extend(["400", "408", "413"]);
            }
            if path.starts_with("/api/sessions/{id}") {
                shared.extend(["400", "404"]);
            }
            for status in shared {
                let name = SHARED_BY_STATUS
                    .iter()
                    .find(|(s, _)| *s == status)
                    .map_or("Internal", |(_, n)| n);
                let name = match (status, path.starts_with("/api/sessions/{id}")) {
                    ("400", true) if op.get("requestBody").is_none() => "BadSessionId",
                    ("404", true) => "SessionNotFound",
                    _ => name,
                };
                let responses = &mut op["responses"];
                if responses.get(status).is_none() {
                    responses[status] = json!({"$ref": format!("#/components/responses/{name}")});
                }
            }
        }
    }
}

/// The `{id}` of a path, with the rules the router applies to it.
fn id_parameter(path: &str) -> Option<Value> {
    let mut schema = json!({"type": "string"});
    let description = if path.starts_with("/api/sessions/{id}") {
        schema["pattern"] = json!(wire::schema::SESSION_ID);
        "Session id (percent-decoded once, then validated: 1-128 characters from A-Z a-z 0-9 . _ -, not `.` or `..`). HTTP routes resolve the exact id, then an alias. Invalid: 400 `INVALID_SESSION_ID`."
    } else if path.starts_with("/api/handoff/{id}") {
        "Handoff id (a UUID v4; anything else is not found)"
    } else if path.starts_with("/api/threads/{id}") {
        "Thread id (a UUID v4; anything else is not found)"
    } else {
        return None;
    };
    Some(
        json!({"name": "id", "in": "path", "required": true, "description": description,
                "schema": schema}),
    )
}

const SHARED: &[(&str, &str)] = &[
    (
        "Unauthorized",
        "`PERMISSION_DENIED` `Unauthorized: Invalid or missing token.`: another user of this machine, or a remote peer without a valid token",
    ),
    (
        "Forbidden",
        "`FORBIDDEN_ORIGIN` `Origin not allowed.` / `FORBIDDEN_HOST` `Host not allowed.`",
    ),
    (
        "BadRequest",
        "`INVALID_JSON` (a body that is not JSON) or `INVALID_REQUEST` (a field out of its bounds; the message names it)",
    ),
    (
        "RequestTimeout",
        "`REQUEST_TIMEOUT` `Request body not received in time.`",
    ),
    (
        "PayloadTooLarge",
        "`PAYLOAD_TOO_LARGE` `Request body exceeds 1 MiB.`",
    ),
    ("Internal", "`INTERNAL` `Internal error`"),
    (
        "ServerBusy",
        "`SERVER_BUSY` `Too many open connections.`: the daemon's connection cap (`TELEPTY_MAX_CONNECTIONS`, 4096) or, off loopback, the per-address cap (256)",
    ),
    (
        "BadSessionId",
        "`INVALID_SESSION_ID` `Invalid session id: use 1-128 characters from A-Z a-z 0-9 . _ -` (`requested`: the id as given)",
    ),
    (
        "SessionNotFound",
        "`SESSION_NOT_FOUND` `Session not found` (`requested`: the id as given)",
    ),
];

const SHARED_BY_STATUS: &[(&str, &str)] = &[
    ("401", "Unauthorized"),
    ("403", "Forbidden"),
    ("400", "BadRequest"),
    ("408", "RequestTimeout"),
    ("413", "PayloadTooLarge"),
    ("500", "Internal"),
    ("503", "ServerBusy"),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// A schema attribute takes only a literal, so the session-id pattern is written out on
    /// each field that carries an id; they must all be the one the `{id}` parameter uses.
    #[test]
    fn every_session_id_field_has_the_one_pattern() {
        let doc = document();
        let schemas = &doc["components"]["schemas"];
        for (schema, field) in [
            ("SpawnRequest", "session_id"),
            ("RegisterBody", "session_id"),
            ("RenameRequest", "new_id"),
            ("PairClaim", "name"),
        ] {
            assert_eq!(
                schemas[schema]["properties"][field]["pattern"],
                wire::schema::SESSION_ID,
                "{schema}.{field}"
            );
        }
        let inject = &doc["paths"]["/api/sessions/{id}/inject"];
        assert_eq!(
            inject["parameters"][0]["schema"]["pattern"],
            wire::schema::SESSION_ID
        );
        // Every operation answers the access checks' errors.
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if method != "parameters" {
                    assert!(op["responses"].get("401").is_some(), "{method} {path}");
                }
            }
        }
    }
}
