//! The value model on the protocols' own messages, the same for
//! `tfplugin5` and `tfplugin6`: a schema's type, `DynamicValue` and
//! `RawState` to and from [`Value`], diagnostics and attribute paths.

use std::collections::{BTreeMap, BTreeSet};

use super::{Type, Value, ValueError, json, msgpack};

/// The object type with no attributes: an absent block's.
fn empty_object() -> Type {
    Type::Object {
        attributes: BTreeMap::new(),
        optional: BTreeSet::new(),
    }
}

/// `ty` nested as a block or nested attribute nests: 1 single, 2 list,
/// 3 set, 4 map, 5 group (both protocols number them so).
fn nest(ty: Type, mode: i32, name: &str) -> Result<Type, ValueError> {
    match mode {
        1 | 5 => Ok(ty),
        2 => Ok(Type::list(ty)),
        3 => Ok(Type::set(ty)),
        4 => Ok(Type::map(ty)),
        other => Err(ValueError::Type {
            text: name.to_owned(),
            reason: format!("nesting mode {other} is none of single, list, set, map, group"),
        }),
    }
}

/// An attribute's declared type, read from its JSON, naming the attribute
/// when it is not one.
fn attribute_type(name: &str, json: &[u8]) -> Result<Type, ValueError> {
    Type::from_json(json).map_err(|err| match err {
        ValueError::Type { text, reason } => ValueError::Type {
            text,
            reason: format!("{reason} (attribute {name:?})"),
        },
        other => other,
    })
}

macro_rules! protocol {
    ($proto:ident, |$attribute:ident| $attribute_type:expr) => {
        impl crate::proto::$proto::Schema {
            /// The type of this schema's values (a resource's state, a
            /// data source's, the provider's configuration): an object of
            /// its block's attributes and nested blocks.
            ///
            /// # Errors
            ///
            /// [`ValueError::Type`] when an attribute's type is not
            /// Terraform's JSON type syntax, naming the attribute.
            pub fn value_type(&self) -> Result<Type, ValueError> {
                self.block
                    .as_ref()
                    .map_or_else(|| Ok(empty_object()), |block| block.value_type())
            }
        }

        impl crate::proto::$proto::schema::Block {
            /// This block's object type: each attribute's declared type,
            /// each nested block as an object (single, group), or a list,
            /// set or map of them.
            ///
            /// # Errors
            ///
            /// [`ValueError::Type`] when an attribute's type is not
            /// Terraform's JSON type syntax or a nesting mode is invalid.
            pub fn value_type(&self) -> Result<Type, ValueError> {
                let mut attributes = BTreeMap::new();
                for $attribute in &self.attributes {
                    attributes.insert($attribute.name.clone(), $attribute_type);
                }
                for nested in &self.block_types {
                    let inner = nested
                        .block
                        .as_ref()
                        .map_or_else(|| Ok(empty_object()), |block| block.value_type())?;
                    attributes.insert(
                        nested.type_name.clone(),
                        nest(inner, nested.nesting, &nested.type_name)?,
                    );
                }
                Ok(Type::Object {
                    attributes,
                    optional: BTreeSet::new(),
                })
            }
        }

        impl crate::proto::$proto::DynamicValue {
            /// `value` encoded as type `ty` in msgpack, as Terraform
            /// expects it (unknown values included).
            ///
            /// # Errors
            ///
            /// [`ValueError`] naming the path where `value` does not fit
            /// `ty`.
            pub fn from_value(value: &Value, ty: &Type) -> Result<Self, ValueError> {
                Ok(Self {
                    msgpack: msgpack::encode(value, ty)?,
                    json: Vec::new(),
                })
            }

            /// `value` encoded as type `ty` in JSON (which cannot hold
            /// unknown values).
            ///
            /// # Errors
            ///
            /// [`ValueError`] naming the path where `value` does not fit
            /// `ty`, or where it is unknown.
            pub fn from_value_json(value: &Value, ty: &Type) -> Result<Self, ValueError> {
                Ok(Self {
                    msgpack: Vec::new(),
                    json: json::encode(value, ty)?,
                })
            }

            /// A null value (of any type): a resource's state once it is
            /// deleted or found gone.
            pub fn null() -> Self {
                Self {
                    msgpack: vec![0xc0],
                    json: Vec::new(),
                }
            }

            /// The value, decoded as type `ty` from msgpack, or from JSON
            /// when there is no msgpack; an empty `DynamicValue` (as a
            /// missing message decodes) is null.
            ///
            /// # Errors
            ///
            /// [`ValueError`] naming the path where the bytes are malformed
            /// or not of type `ty`.
            pub fn to_value(&self, ty: &Type) -> Result<Value, ValueError> {
                if !self.msgpack.is_empty() {
                    msgpack::decode(&self.msgpack, ty)
                } else if !self.json.is_empty() {
                    json::decode(&self.json, ty)
                } else {
                    Ok(Value::Null)
                }
            }
        }

        impl crate::proto::$proto::RawState {
            /// The stored state, decoded from its JSON as type `ty`: what
            /// `UpgradeResourceState` reads (then answers as a
            /// `DynamicValue`). No JSON and no flatmap is null.
            ///
            /// # Errors
            ///
            /// [`ValueError::Flatmap`] for a Terraform 0.11 flatmap state;
            /// otherwise [`ValueError`] naming where the JSON is not of
            /// type `ty`.
            pub fn to_value(&self, ty: &Type) -> Result<Value, ValueError> {
                if !self.json.is_empty() {
                    json::decode(&self.json, ty)
                } else if !self.flatmap.is_empty() {
                    Err(ValueError::Flatmap {
                        entries: self.flatmap.len(),
                    })
                } else {
                    Ok(Value::Null)
                }
            }
        }

        impl crate::proto::$proto::Diagnostic {
            /// An error: Terraform stops and shows `summary` and `detail`.
            pub fn error(summary: impl Into<String>, detail: impl Into<String>) -> Self {
                Self {
                    severity: crate::proto::$proto::diagnostic::Severity::Error.into(),
                    summary: summary.into(),
                    detail: detail.into(),
                    attribute: None,
                }
            }

            /// A warning: Terraform shows it and goes on.
            pub fn warning(summary: impl Into<String>, detail: impl Into<String>) -> Self {
                Self {
                    severity: crate::proto::$proto::diagnostic::Severity::Warning.into(),
                    summary: summary.into(),
                    detail: detail.into(),
                    attribute: None,
                }
            }

            /// The same diagnostic about the attribute at `path`, which
            /// Terraform points at in the configuration.
            pub fn with_attribute(self, path: crate::proto::$proto::AttributePath) -> Self {
                Self {
                    attribute: Some(path),
                    ..self
                }
            }
        }

        impl crate::proto::$proto::AttributePath {
            /// The path of a top-level attribute.
            pub fn attribute(name: impl Into<String>) -> Self {
                Self { steps: Vec::new() }.then_attribute(name)
            }

            /// This path, then the attribute `name` of the object there.
            pub fn then_attribute(self, name: impl Into<String>) -> Self {
                self.then(
                    crate::proto::$proto::attribute_path::step::Selector::AttributeName(
                        name.into(),
                    ),
                )
            }

            /// This path, then the map element with key `key`.
            pub fn then_key(self, key: impl Into<String>) -> Self {
                self.then(
                    crate::proto::$proto::attribute_path::step::Selector::ElementKeyString(
                        key.into(),
                    ),
                )
            }

            /// This path, then the list or tuple element at `index`.
            pub fn then_index(self, index: i64) -> Self {
                self.then(
                    crate::proto::$proto::attribute_path::step::Selector::ElementKeyInt(index),
                )
            }

            fn then(
                mut self,
                selector: crate::proto::$proto::attribute_path::step::Selector,
            ) -> Self {
                self.steps.push(crate::proto::$proto::attribute_path::Step {
                    selector: Some(selector),
                });
                self
            }
        }
    };
}

protocol!(tfplugin5, |attribute| attribute_type(
    &attribute.name,
    &attribute.r#type
)?);
protocol!(tfplugin6, |attribute| match &attribute.nested_type {
    Some(object) => object.value_type()?,
    None => attribute_type(&attribute.name, &attribute.r#type)?,
});

impl crate::proto::tfplugin6::schema::Object {
    /// A nested attribute's type (protocol 6 only): an object of these
    /// attributes, nested as `nesting` says.
    ///
    /// # Errors
    ///
    /// [`ValueError::Type`] when an attribute's type is not Terraform's
    /// JSON type syntax or the nesting mode is invalid.
    pub fn value_type(&self) -> Result<Type, ValueError> {
        let mut attributes = BTreeMap::new();
        for attribute in &self.attributes {
            let ty = match &attribute.nested_type {
                Some(object) => object.value_type()?,
                None => attribute_type(&attribute.name, &attribute.r#type)?,
            };
            attributes.insert(attribute.name.clone(), ty);
        }
        // Group (5) is a block's nesting, not a nested attribute's: refused
        // as invalid.
        nest(
            Type::Object {
                attributes,
                optional: BTreeSet::new(),
            },
            if self.nesting == 5 { 0 } else { self.nesting },
            "nested attribute",
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::proto::{tfplugin5, tfplugin6};
    use crate::terraform::{Type, Value};

    #[test]
    fn schemas_give_their_types() {
        use tfplugin6::schema::{Attribute, Block, NestedBlock, Object};
        let string = |name: &str| Attribute {
            name: name.into(),
            r#type: br#""string""#.to_vec(),
            ..Attribute::default()
        };
        let schema = tfplugin6::Schema {
            version: 0,
            block: Some(Block {
                attributes: vec![
                    string("id"),
                    Attribute {
                        name: "ports".into(),
                        nested_type: Some(Object {
                            attributes: vec![string("name")],
                            nesting: 3,
                            ..Object::default()
                        }),
                        ..Attribute::default()
                    },
                ],
                block_types: vec![NestedBlock {
                    type_name: "rule".into(),
                    block: Some(Block {
                        attributes: vec![string("to")],
                        ..Block::default()
                    }),
                    nesting: 2,
                    ..NestedBlock::default()
                }],
                ..Block::default()
            }),
        };
        assert_eq!(
            schema.value_type().unwrap().to_string(),
            "object({id=string, ports=set(object({name=string})), rule=list(object({to=string}))})"
        );
        let mut broken = schema.clone();
        broken.block.as_mut().unwrap().attributes[0].r#type = b"\"text\"".to_vec();
        let err = broken.value_type().unwrap_err().to_string();
        assert!(err.contains(r#"(attribute "id")"#), "{err}");
    }

    #[test]
    fn dynamic_values_both_ways() {
        let ty = Type::object([("id", Type::String)]);
        let value = Value::object([("id", Value::Unknown)]);
        let dv = tfplugin5::DynamicValue::from_value(&value, &ty).unwrap();
        assert_eq!(dv.to_value(&ty).unwrap(), value);
        let known = Value::object([("id", "x".into())]);
        let dv = tfplugin6::DynamicValue::from_value_json(&known, &ty).unwrap();
        assert_eq!(dv.json, br#"{"id":"x"}"#);
        assert_eq!(dv.to_value(&ty).unwrap(), known);
        assert_eq!(
            tfplugin6::DynamicValue::null().to_value(&ty).unwrap(),
            Value::Null
        );
        assert_eq!(
            tfplugin6::DynamicValue::default().to_value(&ty).unwrap(),
            Value::Null
        );
    }

    #[test]
    fn raw_state_reads_json_and_refuses_flatmap() {
        let ty = Type::object([("id", Type::String)]);
        let raw = tfplugin5::RawState {
            json: br#"{"id":"x"}"#.to_vec(),
            flatmap: Default::default(),
        };
        assert_eq!(
            raw.to_value(&ty).unwrap(),
            Value::object([("id", "x".into())])
        );
        let flat = tfplugin5::RawState {
            json: Vec::new(),
            flatmap: [("id".to_owned(), "x".to_owned())].into(),
        };
        let err = flat.to_value(&ty).unwrap_err().to_string();
        assert!(err.contains("legacy flatmap of 1 entries"), "{err}");
    }

    #[test]
    fn diagnostics_point_at_attributes() {
        let diag = tfplugin6::Diagnostic::error("Invalid path", "must be relative").with_attribute(
            tfplugin6::AttributePath::attribute("rule")
                .then_index(0)
                .then_key("k"),
        );
        assert_eq!(diag.severity, tfplugin6::diagnostic::Severity::Error as i32);
        let steps = diag.attribute.unwrap().steps;
        assert_eq!(steps.len(), 3);
        assert_eq!(
            steps[1].selector,
            Some(tfplugin6::attribute_path::step::Selector::ElementKeyInt(0))
        );
        let warning = tfplugin5::Diagnostic::warning("w", "");
        assert_eq!(
            warning.severity,
            tfplugin5::diagnostic::Severity::Warning as i32
        );
    }
}
