//! Schemas of the request fields the server reads more loosely than their Rust types say
//! (a size as a number *or* a string holding one, an object of variables), for the OpenAPI
//! document (`api::openapi`). The patterns are the server's own rules; `tests` pins them to
//! the functions that enforce them.

use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{Object, RefOr};

/// A session id: what `util::valid_session_id` accepts.
pub const SESSION_ID: &str = r"^(?!\.$|multicast$|broadcast$)(?!.*\.\.)[A-Za-z0-9._-]{1,128}$";

/// The largest count (milliseconds, a generation) a body may hold: 15 digits, exact as a
/// JSON number in every client.
pub const MAX_COUNT: i64 = 999_999_999_999_999;

/// A terminal dimension, 1–1000, as a number or a string holding one (spawn, register).
pub fn dimension() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([
            Type::Integer,
            Type::String,
            Type::Null,
        ]))
        .minimum(Some(1))
        .maximum(Some(1000))
        .pattern(Some(r"^\s*\+?0*([1-9][0-9]{0,2}|1000)\s*$"))
        .description(Some("1-1000, as a number or a string holding one"))
        .build()
}

/// A count (milliseconds, a generation) as a number or a string holding one.
pub fn count() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([
            Type::Integer,
            Type::String,
            Type::Null,
        ]))
        .minimum(Some(0))
        .maximum(Some(MAX_COUNT))
        .pattern(Some(r"^\s*\+?[0-9]{1,15}\s*$"))
        .build()
}

/// A spawn's `env`: names as a shell accepts them, values up to 32 KiB, at most 128.
pub fn env() -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .max_properties(Some(128))
        .property_names(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[A-Za-z_][A-Za-z0-9_]*$")),
        ))
        .additional_properties(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(32 * 1024)),
        ))
        .description(Some(
            "Extension: variables for the program, over the daemon's own environment",
        ))
        .build()
}

/// Any JSON value: a field the server reads by its own rules (described beside it).
pub fn any() -> RefOr<Schema> {
    RefOr::T(Schema::Object(
        ObjectBuilder::new()
            .schema_type(SchemaType::AnyValue)
            .build(),
    ))
}
