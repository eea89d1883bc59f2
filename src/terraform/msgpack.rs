//! Values in msgpack, as Terraform sends them in a `DynamicValue`: cty's
//! encoding, against a type. An unknown value is extension type 0 (or 12,
//! an unknown with refinements, whose refinements are dropped); a dynamic
//! value is the pair `[type JSON, value]`; a number may come as an
//! integer, a float or its decimal text.

use std::collections::BTreeMap;

use rmp::Marker;
use rmp::decode::RmpRead;

use super::error::{Path, Step};
use super::value::NumberParts;
use super::{Number, Type, Value, ValueError};

/// cty's extension type for an unknown value.
const UNKNOWN: i8 = 0;
/// cty's extension type for an unknown value with refinements (Terraform
/// 1.6 and later: "not null", a string prefix, a length range).
const UNKNOWN_REFINED: i8 = 12;

/// Decodes one value of type `ty` that fills `bytes`.
pub(crate) fn decode(bytes: &[u8], ty: &Type) -> Result<Value, ValueError> {
    let mut decoder = Decoder {
        rd: bytes,
        path: Path::default(),
    };
    let value = decoder.value(ty)?;
    match decoder.rd.len() {
        0 => Ok(value),
        count => Err(ValueError::Trailing { count }),
    }
}

/// Encodes `value` as type `ty`.
pub(crate) fn encode(value: &Value, ty: &Type) -> Result<Vec<u8>, ValueError> {
    let mut encoder = Encoder {
        out: Vec::new(),
        path: Path::default(),
    };
    encoder.value(value, ty)?;
    Ok(encoder.out)
}

struct Decoder<'a> {
    rd: &'a [u8],
    path: Path,
}

impl<'a> Decoder<'a> {
    fn malformed(&self, reason: impl Into<String>) -> ValueError {
        ValueError::Msgpack {
            at: self.path.render(),
            reason: reason.into(),
        }
    }

    fn mismatch(&self, ty: &Type, marker: Marker) -> ValueError {
        ValueError::Mismatch {
            at: self.path.render(),
            expected: ty.to_string(),
            found: describe(marker).to_owned(),
        }
    }

    fn truncated(&self) -> ValueError {
        self.malformed("truncated")
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ValueError> {
        if self.rd.len() < n {
            return Err(self.malformed(format!("{n} bytes announced, {} left", self.rd.len())));
        }
        let (head, tail) = self.rd.split_at(n);
        self.rd = tail;
        Ok(head)
    }

    /// A length read after its marker, checked against what is left (each
    /// item takes at least `min_item` bytes), so that no hostile length
    /// makes us allocate.
    fn length(&mut self, marker: Marker, min_item: usize) -> Result<Option<usize>, ValueError> {
        let n = match marker {
            Marker::FixStr(n) | Marker::FixArray(n) | Marker::FixMap(n) => usize::from(n),
            Marker::Str8 | Marker::Bin8 => usize::from(self.u8()?),
            Marker::Str16 | Marker::Bin16 | Marker::Array16 | Marker::Map16 => {
                usize::from(self.rd.read_data_u16().map_err(|_| self.truncated())?)
            }
            Marker::Str32 | Marker::Bin32 | Marker::Array32 | Marker::Map32 => {
                self.rd.read_data_u32().map_err(|_| self.truncated())? as usize
            }
            _ => return Ok(None),
        };
        if n.saturating_mul(min_item) > self.rd.len() {
            return Err(
                self.malformed(format!("{n} items announced, {} bytes left", self.rd.len()))
            );
        }
        Ok(Some(n))
    }

    /// The length of a `kind` (array, map, string) the type asks for; a
    /// mismatch if the marker starts anything else.
    fn sized(
        &mut self,
        ty: &Type,
        marker: Marker,
        kind: fn(Marker) -> bool,
        min_item: usize,
    ) -> Result<usize, ValueError> {
        if !kind(marker) {
            return Err(self.mismatch(ty, marker));
        }
        Ok(self.length(marker, min_item)?.unwrap_or_default())
    }

    fn u8(&mut self) -> Result<u8, ValueError> {
        self.rd.read_data_u8().map_err(|_| self.truncated())
    }

    fn value(&mut self, ty: &Type) -> Result<Value, ValueError> {
        self.path.check_depth()?;
        let marker = rmp::decode::read_marker(&mut self.rd).map_err(|_| self.truncated())?;
        match marker {
            Marker::Null => return Ok(Value::Null),
            Marker::FixExt1
            | Marker::FixExt2
            | Marker::FixExt4
            | Marker::FixExt8
            | Marker::FixExt16
            | Marker::Ext8
            | Marker::Ext16
            | Marker::Ext32 => return self.unknown(marker),
            _ => {}
        }
        match ty {
            Type::Dynamic => self.dynamic(marker),
            Type::Bool => match marker {
                Marker::True => Ok(Value::Bool(true)),
                Marker::False => Ok(Value::Bool(false)),
                _ => Err(self.mismatch(ty, marker)),
            },
            Type::Number => self.number(marker).map(Value::Number),
            Type::String => {
                let n = self.sized(ty, marker, is_str, 1)?;
                self.text(n).map(Value::String)
            }
            Type::List(element) | Type::Set(element) => {
                let n = self.sized(ty, marker, is_array, 1)?;
                let elements = (0..n)
                    .map(|i| self.nested(Step::Index(i), element))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(match ty {
                    Type::Set(_) => Value::Set(elements),
                    _ => Value::List(elements),
                })
            }
            Type::Tuple(types) => {
                let n = self.sized(ty, marker, is_array, 1)?;
                if n != types.len() {
                    return Err(ValueError::TupleLength {
                        at: self.path.render(),
                        expected: types.len(),
                        found: n,
                    });
                }
                let elements = types
                    .iter()
                    .enumerate()
                    .map(|(i, t)| self.nested(Step::Index(i), t))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Value::Tuple(elements))
            }
            Type::Map(element) => {
                let entries = self.entries(ty, marker, |_| Some(element))?;
                Ok(Value::Map(entries))
            }
            Type::Object { attributes, .. } => {
                let mut entries = self.entries(ty, marker, |name| attributes.get(name))?;
                // An attribute left out is null, as in cty.
                for name in attributes.keys() {
                    entries.entry(name.clone()).or_insert(Value::Null);
                }
                Ok(Value::Object(entries))
            }
        }
    }

    fn nested(&mut self, step: Step, ty: &Type) -> Result<Value, ValueError> {
        self.path.push(step);
        let value = self.value(ty)?;
        self.path.pop();
        Ok(value)
    }

    /// A map's entries, each value of the type `type_of` gives its key
    /// (`None`: a key the object type lacks).
    fn entries<'t>(
        &mut self,
        ty: &Type,
        marker: Marker,
        type_of: impl Fn(&str) -> Option<&'t Type>,
    ) -> Result<BTreeMap<String, Value>, ValueError> {
        let n = self.sized(ty, marker, is_map, 2)?;
        let mut entries = BTreeMap::new();
        for _ in 0..n {
            let key_marker =
                rmp::decode::read_marker(&mut self.rd).map_err(|_| self.truncated())?;
            let key = match self.length(key_marker, 1)? {
                Some(len) if is_str(key_marker) => self.text(len)?,
                _ => return Err(self.malformed(format!("a {} as a key", describe(key_marker)))),
            };
            let Some(element) = type_of(&key) else {
                return Err(ValueError::UnexpectedAttribute {
                    at: self.path.render(),
                    name: key,
                });
            };
            let step = match ty {
                Type::Object { .. } => Step::Attribute(key.clone()),
                _ => Step::Key(key.clone()),
            };
            let value = self.nested(step, element)?;
            if entries.insert(key.clone(), value).is_some() {
                return Err(self.malformed(format!("key {key:?} twice")));
            }
        }
        Ok(entries)
    }

    fn text(&mut self, n: usize) -> Result<String, ValueError> {
        let bytes = self.take(n)?;
        std::str::from_utf8(bytes).map(str::to_owned).map_err(|_| {
            self.malformed(format!("text not UTF-8: {}", super::error::excerpt(bytes)))
        })
    }

    fn number(&mut self, marker: Marker) -> Result<Number, ValueError> {
        Ok(match marker {
            Marker::FixPos(n) => i64::from(n).into(),
            Marker::FixNeg(n) => i64::from(n).into(),
            Marker::U8 => i64::from(self.u8()?).into(),
            Marker::U16 => i64::from(self.rd.read_data_u16().map_err(|_| self.truncated())?).into(),
            Marker::U32 => i64::from(self.rd.read_data_u32().map_err(|_| self.truncated())?).into(),
            Marker::U64 => self
                .rd
                .read_data_u64()
                .map_err(|_| self.truncated())?
                .into(),
            Marker::I8 => i64::from(self.rd.read_data_i8().map_err(|_| self.truncated())?).into(),
            Marker::I16 => i64::from(self.rd.read_data_i16().map_err(|_| self.truncated())?).into(),
            Marker::I32 => i64::from(self.rd.read_data_i32().map_err(|_| self.truncated())?).into(),
            Marker::I64 => self
                .rd
                .read_data_i64()
                .map_err(|_| self.truncated())?
                .into(),
            Marker::F32 => f64::from(self.rd.read_data_f32().map_err(|_| self.truncated())?).into(),
            Marker::F64 => self
                .rd
                .read_data_f64()
                .map_err(|_| self.truncated())?
                .into(),
            // cty writes a number beyond int64 and float64 as its text.
            _ if is_str(marker) => {
                let n = self.length(marker, 1)?.unwrap_or_default();
                let text = self.text(n)?;
                Number::parse(&text).ok_or_else(|| {
                    self.malformed(format!(
                        "{:?} is not a number",
                        super::error::excerpt(text.as_bytes())
                    ))
                })?
            }
            _ => return Err(self.mismatch(&Type::Number, marker)),
        })
    }

    /// `[type JSON, value]`.
    fn dynamic(&mut self, marker: Marker) -> Result<Value, ValueError> {
        if self.sized(&Type::Dynamic, marker, is_array, 1)? != 2 {
            return Err(self.malformed("a dynamic value is not a [type, value] pair"));
        }
        let type_marker = rmp::decode::read_marker(&mut self.rd).map_err(|_| self.truncated())?;
        let type_json = match self.length(type_marker, 1)? {
            Some(n) if is_str(type_marker) || is_bin(type_marker) => self.take(n)?,
            _ => {
                return Err(self.malformed(format!(
                    "a dynamic value's type is a {}, not its JSON",
                    describe(type_marker)
                )));
            }
        };
        let actual = Type::from_json(type_json).map_err(|err| self.malformed(err.to_string()))?;
        self.value(&actual)
    }

    fn unknown(&mut self, marker: Marker) -> Result<Value, ValueError> {
        let len = match marker {
            Marker::FixExt1 => 1,
            Marker::FixExt2 => 2,
            Marker::FixExt4 => 4,
            Marker::FixExt8 => 8,
            Marker::FixExt16 => 16,
            Marker::Ext8 => usize::from(self.u8()?),
            Marker::Ext16 => usize::from(self.rd.read_data_u16().map_err(|_| self.truncated())?),
            _ => self.rd.read_data_u32().map_err(|_| self.truncated())? as usize,
        };
        let kind = self.rd.read_data_i8().map_err(|_| self.truncated())?;
        self.take(len)?;
        match kind {
            UNKNOWN => Ok(Value::Unknown),
            UNKNOWN_REFINED => {
                tracing::trace!(
                    at = %self.path.render(),
                    "an unknown value with refinements, read as unknown (refinements dropped)"
                );
                Ok(Value::Unknown)
            }
            other => Err(self.malformed(format!(
                "extension type {other} (only 0 and 12, unknown values, are Terraform's)"
            ))),
        }
    }
}

fn is_str(marker: Marker) -> bool {
    matches!(
        marker,
        Marker::FixStr(_) | Marker::Str8 | Marker::Str16 | Marker::Str32
    )
}

fn is_bin(marker: Marker) -> bool {
    matches!(marker, Marker::Bin8 | Marker::Bin16 | Marker::Bin32)
}

fn is_array(marker: Marker) -> bool {
    matches!(
        marker,
        Marker::FixArray(_) | Marker::Array16 | Marker::Array32
    )
}

fn is_map(marker: Marker) -> bool {
    matches!(marker, Marker::FixMap(_) | Marker::Map16 | Marker::Map32)
}

/// What a marker starts, for "expected string, found …".
fn describe(marker: Marker) -> &'static str {
    match marker {
        Marker::Null => "null",
        Marker::True | Marker::False => "a bool",
        Marker::FixPos(_)
        | Marker::FixNeg(_)
        | Marker::U8
        | Marker::U16
        | Marker::U32
        | Marker::U64
        | Marker::I8
        | Marker::I16
        | Marker::I32
        | Marker::I64
        | Marker::F32
        | Marker::F64 => "a number",
        m if is_str(m) => "a string",
        m if is_bin(m) => "binary data",
        m if is_array(m) => "an array",
        m if is_map(m) => "a map",
        Marker::Reserved => "the reserved byte 0xc1",
        _ => "an extension",
    }
}

struct Encoder {
    out: Vec<u8>,
    path: Path,
}

/// Writing msgpack to a `Vec` cannot fail.
const INFALLIBLE: &str = "writing to a Vec cannot fail";

impl Encoder {
    fn mismatch(&self, ty: &Type, value: &Value) -> ValueError {
        ValueError::Mismatch {
            at: self.path.render(),
            expected: ty.to_string(),
            found: value_kind(value).to_owned(),
        }
    }

    fn len(&self, n: usize) -> Result<u32, ValueError> {
        u32::try_from(n).map_err(|_| ValueError::Msgpack {
            at: self.path.render(),
            reason: format!("{n} items, more than msgpack can count"),
        })
    }

    fn nested(&mut self, step: Step, value: &Value, ty: &Type) -> Result<(), ValueError> {
        self.path.push(step);
        self.value(value, ty)?;
        self.path.pop();
        Ok(())
    }

    fn value(&mut self, value: &Value, ty: &Type) -> Result<(), ValueError> {
        self.path.check_depth()?;
        match (value, ty) {
            (Value::Null, _) => rmp::encode::write_nil(&mut self.out).expect(INFALLIBLE),
            (Value::Unknown, _) => {
                rmp::encode::write_ext_meta(&mut self.out, 1, UNKNOWN).expect(INFALLIBLE);
                self.out.push(0);
            }
            (_, Type::Dynamic) => {
                let actual = value.inferred_type();
                rmp::encode::write_array_len(&mut self.out, 2).expect(INFALLIBLE);
                rmp::encode::write_bin(&mut self.out, &actual.to_json()).expect(INFALLIBLE);
                self.value(value, &actual)?;
            }
            (Value::Bool(b), Type::Bool) => {
                rmp::encode::write_bool(&mut self.out, *b).expect(INFALLIBLE);
            }
            (Value::Number(n), Type::Number) => match n.parts() {
                NumberParts::Int(i) => {
                    rmp::encode::write_sint(&mut self.out, i).expect(INFALLIBLE);
                }
                NumberParts::Float(f) => {
                    rmp::encode::write_f64(&mut self.out, f).expect(INFALLIBLE);
                }
                NumberParts::Decimal(text) => {
                    rmp::encode::write_str(&mut self.out, text).expect(INFALLIBLE);
                }
            },
            (Value::String(s), Type::String) => {
                rmp::encode::write_str(&mut self.out, s).expect(INFALLIBLE);
            }
            (
                Value::List(vs) | Value::Set(vs) | Value::Tuple(vs),
                Type::List(element) | Type::Set(element),
            ) => {
                let n = self.len(vs.len())?;
                rmp::encode::write_array_len(&mut self.out, n).expect(INFALLIBLE);
                for (i, v) in vs.iter().enumerate() {
                    self.nested(Step::Index(i), v, element)?;
                }
            }
            (Value::List(vs) | Value::Set(vs) | Value::Tuple(vs), Type::Tuple(types)) => {
                if vs.len() != types.len() {
                    return Err(ValueError::TupleLength {
                        at: self.path.render(),
                        expected: types.len(),
                        found: vs.len(),
                    });
                }
                let n = self.len(vs.len())?;
                rmp::encode::write_array_len(&mut self.out, n).expect(INFALLIBLE);
                for (i, (v, t)) in vs.iter().zip(types).enumerate() {
                    self.nested(Step::Index(i), v, t)?;
                }
            }
            (Value::Map(m) | Value::Object(m), Type::Map(element)) => {
                let n = self.len(m.len())?;
                rmp::encode::write_map_len(&mut self.out, n).expect(INFALLIBLE);
                for (k, v) in m {
                    rmp::encode::write_str(&mut self.out, k).expect(INFALLIBLE);
                    self.nested(Step::Key(k.clone()), v, element)?;
                }
            }
            (Value::Map(m) | Value::Object(m), Type::Object { attributes, .. }) => {
                if let Some(extra) = m.keys().find(|k| !attributes.contains_key(*k)) {
                    return Err(ValueError::UnexpectedAttribute {
                        at: self.path.render(),
                        name: extra.clone(),
                    });
                }
                let n = self.len(attributes.len())?;
                rmp::encode::write_map_len(&mut self.out, n).expect(INFALLIBLE);
                for (k, t) in attributes {
                    rmp::encode::write_str(&mut self.out, k).expect(INFALLIBLE);
                    self.nested(
                        Step::Attribute(k.clone()),
                        m.get(k).unwrap_or(&Value::Null),
                        t,
                    )?;
                }
            }
            _ => return Err(self.mismatch(ty, value)),
        }
        Ok(())
    }
}

/// What a value is, for "expected number, found …".
pub(crate) fn value_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Unknown => "an unknown value",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::List(_) => "a list",
        Value::Set(_) => "a set",
        Value::Tuple(_) => "a tuple",
        Value::Map(_) => "a map",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
#[path = "msgpack_tests.rs"]
mod tests;
