//! Values in JSON, as Terraform stores state (`RawState`) and as a
//! provider may answer in a `DynamicValue`: cty's JSON encoding, against a
//! type. A dynamic value is `{"value": …, "type": …}`; JSON has no unknown
//! values. Numbers read beyond 64-bit integers and f64's precision keep
//! only f64's (serde_json's reading); numbers written keep every digit.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value as Json;

use super::error::{Path, Step};
use super::msgpack::value_kind;
use super::value::NumberParts;
use super::{Number, Type, Value, ValueError};

/// Decodes JSON text holding one value of type `ty`.
pub(crate) fn decode(bytes: &[u8], ty: &Type) -> Result<Value, ValueError> {
    // serde_json refuses nesting beyond 128 levels, so this cannot
    // exhaust the stack either.
    let json: Json = serde_json::from_slice(bytes).map_err(|e| ValueError::Json {
        at: "(root)".into(),
        reason: e.to_string(),
    })?;
    Decoder {
        path: Path::default(),
    }
    .value(&json, ty)
}

/// Encodes `value` as JSON text of type `ty`.
pub(crate) fn encode(value: &Value, ty: &Type) -> Result<Vec<u8>, ValueError> {
    let mut encoder = Encoder {
        out: String::new(),
        path: Path::default(),
    };
    encoder.value(value, ty)?;
    Ok(encoder.out.into_bytes())
}

struct Decoder {
    path: Path,
}

fn json_kind(json: &Json) -> &'static str {
    match json {
        Json::Null => "null",
        Json::Bool(_) => "a bool",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

impl Decoder {
    fn mismatch(&self, ty: &Type, json: &Json) -> ValueError {
        ValueError::Mismatch {
            at: self.path.render(),
            expected: ty.to_string(),
            found: json_kind(json).to_owned(),
        }
    }

    fn malformed(&self, reason: impl Into<String>) -> ValueError {
        ValueError::Json {
            at: self.path.render(),
            reason: reason.into(),
        }
    }

    fn nested(&mut self, step: Step, json: &Json, ty: &Type) -> Result<Value, ValueError> {
        self.path.push(step);
        let value = self.value(json, ty)?;
        self.path.pop();
        Ok(value)
    }

    fn value(&mut self, json: &Json, ty: &Type) -> Result<Value, ValueError> {
        self.path.check_depth()?;
        Ok(match (json, ty) {
            (Json::Null, _) => Value::Null,
            (Json::Object(pair), Type::Dynamic) => {
                let (Some(value), Some(type_json), 2) =
                    (pair.get("value"), pair.get("type"), pair.len())
                else {
                    return Err(
                        self.malformed("a dynamic value is not {\"value\": …, \"type\": …}")
                    );
                };
                let actual = Type::from_json_value(type_json, 0)
                    .map_err(|reason| self.malformed(format!("its type: {reason}")))?;
                self.value(value, &actual)?
            }
            (Json::Bool(b), Type::Bool) => Value::Bool(*b),
            (Json::Number(n), Type::Number) => Value::Number(if let Some(i) = n.as_i64() {
                i.into()
            } else if let Some(u) = n.as_u64() {
                u.into()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into()
            }),
            (Json::String(text), Type::Number) => {
                Value::Number(Number::parse(text).ok_or_else(|| {
                    self.malformed(format!(
                        "{:?} is not a number",
                        super::error::excerpt(text.as_bytes())
                    ))
                })?)
            }
            (Json::String(s), Type::String) => Value::String(s.clone()),
            (Json::Array(items), Type::List(element) | Type::Set(element)) => {
                let elements = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| self.nested(Step::Index(i), item, element))
                    .collect::<Result<Vec<_>, _>>()?;
                match ty {
                    Type::Set(_) => Value::Set(elements),
                    _ => Value::List(elements),
                }
            }
            (Json::Array(items), Type::Tuple(types)) => {
                if items.len() != types.len() {
                    return Err(ValueError::TupleLength {
                        at: self.path.render(),
                        expected: types.len(),
                        found: items.len(),
                    });
                }
                Value::Tuple(
                    items
                        .iter()
                        .zip(types)
                        .enumerate()
                        .map(|(i, (item, t))| self.nested(Step::Index(i), item, t))
                        .collect::<Result<_, _>>()?,
                )
            }
            (Json::Object(entries), Type::Map(element)) => Value::Map(
                entries
                    .iter()
                    .map(|(k, item)| {
                        Ok((k.clone(), self.nested(Step::Key(k.clone()), item, element)?))
                    })
                    .collect::<Result<_, ValueError>>()?,
            ),
            (Json::Object(entries), Type::Object { attributes, .. }) => {
                let mut values = BTreeMap::new();
                for (k, item) in entries {
                    let Some(t) = attributes.get(k) else {
                        return Err(ValueError::UnexpectedAttribute {
                            at: self.path.render(),
                            name: k.clone(),
                        });
                    };
                    values.insert(k.clone(), self.nested(Step::Attribute(k.clone()), item, t)?);
                }
                for name in attributes.keys() {
                    values.entry(name.clone()).or_insert(Value::Null);
                }
                Value::Object(values)
            }
            _ => return Err(self.mismatch(ty, json)),
        })
    }
}

struct Encoder {
    out: String,
    path: Path,
}

impl Encoder {
    fn nested(&mut self, step: Step, value: &Value, ty: &Type) -> Result<(), ValueError> {
        self.path.push(step);
        self.value(value, ty)?;
        self.path.pop();
        Ok(())
    }

    fn string(&mut self, s: &str) {
        // serde_json's escaping; serialising a str cannot fail.
        self.out
            .push_str(&serde_json::to_string(s).unwrap_or_default());
    }

    fn value(&mut self, value: &Value, ty: &Type) -> Result<(), ValueError> {
        self.path.check_depth()?;
        match (value, ty) {
            (Value::Unknown, _) => {
                return Err(ValueError::UnknownInJson {
                    at: self.path.render(),
                });
            }
            (Value::Null, _) => self.out.push_str("null"),
            (_, Type::Dynamic) => {
                let actual = value.inferred_type();
                self.out.push_str("{\"value\":");
                self.value(value, &actual)?;
                self.out.push_str(",\"type\":");
                self.out
                    .push_str(&String::from_utf8_lossy(&actual.to_json()));
                self.out.push('}');
            }
            (Value::Bool(b), Type::Bool) => self.out.push_str(if *b { "true" } else { "false" }),
            (Value::Number(n), Type::Number) => match n.parts() {
                NumberParts::Int(i) => {
                    let _ = write!(self.out, "{i}");
                }
                NumberParts::Float(f) if f.is_finite() => {
                    // serde_json writes the shortest text that reads back
                    // as the same f64.
                    self.out
                        .push_str(&serde_json::to_string(&f).unwrap_or_default());
                }
                NumberParts::Float(f) => {
                    return Err(ValueError::Json {
                        at: self.path.render(),
                        reason: format!("{f} has no JSON form"),
                    });
                }
                NumberParts::Decimal(text) => self.out.push_str(text),
            },
            (Value::String(s), Type::String) => self.string(s),
            (
                Value::List(vs) | Value::Set(vs) | Value::Tuple(vs),
                Type::List(_) | Type::Set(_) | Type::Tuple(_),
            ) => {
                if let Type::Tuple(types) = ty
                    && types.len() != vs.len()
                {
                    return Err(ValueError::TupleLength {
                        at: self.path.render(),
                        expected: types.len(),
                        found: vs.len(),
                    });
                }
                self.out.push('[');
                for (i, v) in vs.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    let element = match ty {
                        Type::List(t) | Type::Set(t) => t,
                        Type::Tuple(types) => &types[i],
                        _ => unreachable!("matched a sequence type above"),
                    };
                    self.nested(Step::Index(i), v, element)?;
                }
                self.out.push(']');
            }
            (Value::Map(m) | Value::Object(m), Type::Map(element)) => {
                self.out.push('{');
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.string(k);
                    self.out.push(':');
                    self.nested(Step::Key(k.clone()), v, element)?;
                }
                self.out.push('}');
            }
            (Value::Map(m) | Value::Object(m), Type::Object { attributes, .. }) => {
                if let Some(extra) = m.keys().find(|k| !attributes.contains_key(*k)) {
                    return Err(ValueError::UnexpectedAttribute {
                        at: self.path.render(),
                        name: extra.clone(),
                    });
                }
                self.out.push('{');
                for (i, (k, t)) in attributes.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    self.string(k);
                    self.out.push(':');
                    self.nested(
                        Step::Attribute(k.clone()),
                        m.get(k).unwrap_or(&Value::Null),
                        t,
                    )?;
                }
                self.out.push('}');
            }
            _ => {
                return Err(ValueError::Mismatch {
                    at: self.path.render(),
                    expected: ty.to_string(),
                    found: value_kind(value).to_owned(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state_type() -> Type {
        Type::object([
            ("id", Type::String),
            ("size", Type::Number),
            ("tags", Type::map(Type::String)),
            ("extra", Type::Dynamic),
        ])
    }

    #[test]
    fn state_as_terraform_stores_it() {
        let text = br#"{"id":"a","size":12,"tags":{"env":"prod"},"extra":{"value":[true,"x"],"type":["tuple",["bool","string"]]}}"#;
        let value = decode(text, &state_type()).unwrap();
        assert_eq!(value.get("id").and_then(Value::as_str), Some("a"));
        assert_eq!(
            value.get("extra"),
            Some(&Value::Tuple(vec![Value::Bool(true), "x".into()]))
        );
        let again = encode(&value, &state_type()).unwrap();
        assert_eq!(decode(&again, &state_type()).unwrap(), value);
    }

    #[test]
    fn missing_attributes_are_null_and_numbers_may_be_text() {
        let value = decode(br#"{"size":"1e400"}"#, &state_type()).unwrap();
        assert_eq!(value.get("id"), Some(&Value::Null));
        assert_eq!(
            value.get("size").unwrap().as_number().unwrap().to_string(),
            "1e400"
        );
        let text = encode(&value, &state_type()).unwrap();
        assert_eq!(
            String::from_utf8(text).unwrap(),
            r#"{"extra":null,"id":null,"size":1e400,"tags":null}"#
        );
    }

    #[test]
    fn errors_name_the_path() {
        for (text, says) in [
            (
                &br#"{"tags":{"env":1}}"#[..],
                r#".tags["env"]: expected string, found a number"#,
            ),
            (br#"{"nope":1}"#, r#"unexpected attribute "nope""#),
            (
                br#"{"extra":{"value":1}}"#,
                ".extra: malformed JSON: a dynamic value",
            ),
            (
                br#"{"size":"ten"}"#,
                r#".size: malformed JSON: "ten" is not a number"#,
            ),
            (b"{", "(root): malformed JSON: EOF"),
        ] {
            let err = decode(text, &state_type()).unwrap_err().to_string();
            assert!(err.contains(says), "{err}");
        }
        let unknown = Value::object([("id", Value::Unknown)]);
        let err = encode(&unknown, &state_type()).unwrap_err().to_string();
        assert_eq!(err, ".id: an unknown value cannot be written as JSON");
    }
}
