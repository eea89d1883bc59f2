//! Terraform's value model, for providers: [`Type`] and [`Value`] (with
//! unknown values and nulls), the msgpack and JSON encodings of the
//! protocols' `DynamicValue` and `RawState`, schemas as types, and
//! diagnostics, for both [`tfplugin5`](crate::proto::tfplugin5) and
//! [`tfplugin6`](crate::proto::tfplugin6).
//!
//! Terraform sends every configuration, plan and state as a
//! `DynamicValue`: msgpack encoded against the schema's type, in which an
//! attribute may be unknown (known only after apply) or null. The
//! protocols' own messages gain methods here:
//!
//! - `Schema::value_type` and `schema::Block::value_type`: the [`Type`] of
//!   a resource's state, a data source's or the provider's configuration;
//! - `DynamicValue::to_value`, `DynamicValue::from_value` (msgpack),
//!   `DynamicValue::from_value_json` and `DynamicValue::null`;
//! - `RawState::to_value`: stored state, for `UpgradeResourceState`;
//! - `Diagnostic::error`, `Diagnostic::warning`,
//!   `Diagnostic::with_attribute` and `AttributePath::attribute`,
//!   `then_attribute`, `then_key`, `then_index`.
//!
//! Decoding is bounded whatever the bytes: no length is trusted beyond the
//! input, values nest at most 64 levels, and every error names where it
//! went wrong in Terraform's path syntax (`.rule[0].port`).
//!
//! # Example
//!
//! Planning a new resource: Terraform proposes its configuration with the
//! computed `id` null; the plan makes it unknown; apply makes it known.
//!
//! ```
//! use rpcplugin::proto::tfplugin6::DynamicValue;
//! use rpcplugin::terraform::{Type, Value};
//!
//! # fn main() -> Result<(), rpcplugin::terraform::ValueError> {
//! let ty = Type::from_json(br#"["object",{"id":"string","path":"string"}]"#)?;
//! // {"id": null, "path": "a.txt"}, as Terraform sends it.
//! let proposed = DynamicValue {
//!     msgpack: b"\x82\xa2id\xc0\xa4path\xa5a.txt".to_vec(),
//!     json: Vec::new(),
//! };
//! let Value::Object(mut planned) = proposed.to_value(&ty)? else {
//!     unreachable!("an object type decodes to an object or null");
//! };
//! planned.insert("id".into(), Value::Unknown);
//! let planned = DynamicValue::from_value(&Value::Object(planned), &ty)?;
//! assert_eq!(planned.msgpack, b"\x82\xa2id\xd4\x00\x00\xa4path\xa5a.txt");
//!
//! let applied = Value::object([("id", "a.txt".into()), ("path", "a.txt".into())]);
//! let state = DynamicValue::from_value(&applied, &ty)?;
//! assert_eq!(state.to_value(&ty)?, applied);
//! # Ok(())
//! # }
//! ```

mod error;
mod json;
mod msgpack;
#[cfg(test)]
mod proptests;
mod protocol;
mod types;
mod value;

pub use error::ValueError;
pub use types::Type;
pub use value::{Number, Value};
