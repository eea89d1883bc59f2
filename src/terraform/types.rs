//! Terraform's types (cty's), and their JSON syntax: how a schema writes
//! an attribute's type and how a dynamic value carries its own.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::Value as Json;

use super::ValueError;

/// How deep a type or value may nest: a bound, not a tuned figure. A
/// value nests as deep as its schema's blocks, a few levels in providers
/// (one in the null provider and in ours); the decoders recurse once per
/// level, so the bound keeps hostile bytes from exhausting the stack.
pub(crate) const MAX_DEPTH: usize = 64;

/// A Terraform type: what a schema attribute declares, and what a
/// [`Value`](super::Value) is encoded against.
///
/// These are Terraform's (go-cty's) types. [`Type::Dynamic`] is
/// `DynamicPseudoType`, written `any` in configuration: a value of it
/// carries its own type on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Type {
    /// `bool`.
    Bool,
    /// `number`: arbitrary precision.
    Number,
    /// `string`: UTF-8 text.
    String,
    /// `list(T)`: ordered elements of one type.
    List(Box<Type>),
    /// `set(T)`: unordered, distinct elements of one type.
    Set(Box<Type>),
    /// `map(T)`: string keys to values of one type.
    Map(Box<Type>),
    /// `object({…})`: named attributes, each of its own type.
    Object {
        /// The attributes and their types.
        attributes: BTreeMap<String, Type>,
        /// The attributes a configuration may leave out (`optional(T)`).
        optional: BTreeSet<String>,
    },
    /// `tuple([…])`: a fixed number of elements, each of its own type.
    Tuple(Vec<Type>),
    /// `any` (cty's `DynamicPseudoType`): the value says its type.
    Dynamic,
}

impl Type {
    /// `list(element)`.
    pub fn list(element: Type) -> Type {
        Type::List(Box::new(element))
    }

    /// `set(element)`.
    pub fn set(element: Type) -> Type {
        Type::Set(Box::new(element))
    }

    /// `map(element)`.
    pub fn map(element: Type) -> Type {
        Type::Map(Box::new(element))
    }

    /// An object type with these attributes, none optional.
    pub fn object<I, K>(attributes: I) -> Type
    where
        I: IntoIterator<Item = (K, Type)>,
        K: Into<String>,
    {
        Type::Object {
            attributes: attributes.into_iter().map(|(k, t)| (k.into(), t)).collect(),
            optional: BTreeSet::new(),
        }
    }

    /// Parses Terraform's JSON type syntax, as a schema attribute's `type`
    /// bytes carry it: `"string"`, `["list","number"]`,
    /// `["object",{"a":"bool"},["a"]]`, `"dynamic"`.
    ///
    /// # Errors
    ///
    /// [`ValueError::Type`] naming the text when it is not JSON or not a
    /// type, or nests deeper than 64 levels.
    pub fn from_json(bytes: &[u8]) -> Result<Type, ValueError> {
        let invalid = |reason: String| ValueError::Type {
            text: super::error::excerpt(bytes),
            reason,
        };
        let json: Json = serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
        Type::from_json_value(&json, 0).map_err(invalid)
    }

    /// The type from an already parsed JSON value (a dynamic value's type).
    pub(crate) fn from_json_value(json: &Json, depth: usize) -> Result<Type, String> {
        if depth > MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH} levels"));
        }
        let inner = |json: &Json| Type::from_json_value(json, depth + 1);
        match json {
            Json::String(name) => match name.as_str() {
                "bool" => Ok(Type::Bool),
                "number" => Ok(Type::Number),
                "string" => Ok(Type::String),
                "dynamic" => Ok(Type::Dynamic),
                other => Err(format!("unknown primitive type {other:?}")),
            },
            Json::Array(parts) => {
                let kind = parts.first().and_then(Json::as_str).unwrap_or_default();
                match (kind, &parts[..]) {
                    ("list", [_, t]) => Ok(Type::list(inner(t)?)),
                    ("set", [_, t]) => Ok(Type::set(inner(t)?)),
                    ("map", [_, t]) => Ok(Type::map(inner(t)?)),
                    ("tuple", [_, Json::Array(elements)]) => Ok(Type::Tuple(
                        elements.iter().map(inner).collect::<Result<_, _>>()?,
                    )),
                    ("object", [_, Json::Object(attrs), rest @ ..]) if rest.len() <= 1 => {
                        let attributes = attrs
                            .iter()
                            .map(|(k, t)| Ok((k.clone(), inner(t)?)))
                            .collect::<Result<BTreeMap<_, _>, String>>()?;
                        let mut optional = BTreeSet::new();
                        if let Some(names) = rest.first() {
                            let names = names.as_array().ok_or("optional attributes not a list")?;
                            for name in names {
                                let name =
                                    name.as_str().ok_or("optional attribute not a string")?;
                                if !attributes.contains_key(name) {
                                    return Err(format!(
                                        "optional attribute {name:?} not in the object"
                                    ));
                                }
                                optional.insert(name.to_owned());
                            }
                        }
                        Ok(Type::Object {
                            attributes,
                            optional,
                        })
                    }
                    _ => Err(format!(
                        "not a type: {}",
                        super::error::excerpt(json.to_string().as_bytes())
                    )),
                }
            }
            other => Err(format!(
                "not a type: {}",
                super::error::excerpt(other.to_string().as_bytes())
            )),
        }
    }

    /// This type in Terraform's JSON type syntax (what [`Type::from_json`]
    /// reads).
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising a serde_json::Value cannot fail.
        serde_json::to_vec(&self.to_json_value()).unwrap_or_default()
    }

    fn to_json_value(&self) -> Json {
        let pair = |kind: &str, t: &Type| Json::Array(vec![kind.into(), t.to_json_value()]);
        match self {
            Type::Bool => "bool".into(),
            Type::Number => "number".into(),
            Type::String => "string".into(),
            Type::Dynamic => "dynamic".into(),
            Type::List(t) => pair("list", t),
            Type::Set(t) => pair("set", t),
            Type::Map(t) => pair("map", t),
            Type::Tuple(ts) => Json::Array(vec![
                "tuple".into(),
                Json::Array(ts.iter().map(Type::to_json_value).collect()),
            ]),
            Type::Object {
                attributes,
                optional,
            } => {
                let attrs = attributes
                    .iter()
                    .map(|(k, t)| (k.clone(), t.to_json_value()))
                    .collect();
                let mut parts = vec!["object".into(), Json::Object(attrs)];
                if !optional.is_empty() {
                    parts.push(optional.iter().map(|k| Json::from(k.as_str())).collect());
                }
                Json::Array(parts)
            }
        }
    }
}

/// Terraform's own spelling: `string`, `list(number)`,
/// `object({a=bool})`, `any`.
impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Bool => f.write_str("bool"),
            Type::Number => f.write_str("number"),
            Type::String => f.write_str("string"),
            Type::Dynamic => f.write_str("any"),
            Type::List(t) => write!(f, "list({t})"),
            Type::Set(t) => write!(f, "set({t})"),
            Type::Map(t) => write!(f, "map({t})"),
            Type::Tuple(ts) => {
                f.write_str("tuple([")?;
                for (i, t) in ts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{t}")?;
                }
                f.write_str("])")
            }
            Type::Object {
                attributes,
                optional,
            } => {
                f.write_str("object({")?;
                for (i, (k, t)) in attributes.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    if optional.contains(k) {
                        write!(f, "{k}=optional({t})")?;
                    } else {
                        write!(f, "{k}={t}")?;
                    }
                }
                f.write_str("})")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_syntax_round_trips() {
        for text in [
            r#""string""#,
            r#""dynamic""#,
            r#"["list","number"]"#,
            r#"["set",["map","bool"]]"#,
            r#"["tuple",["string",["list","dynamic"]]]"#,
            r#"["object",{"a":"string","b":["list","number"]}]"#,
            r#"["object",{"a":"string","b":"bool"},["b"]]"#,
        ] {
            let ty = Type::from_json(text.as_bytes()).unwrap();
            assert_eq!(String::from_utf8(ty.to_json()).unwrap(), text);
        }
    }

    #[test]
    fn displays_as_terraform_writes_it() {
        let ty =
            Type::from_json(br#"["object",{"a":"string","b":["list","dynamic"]},["b"]]"#).unwrap();
        assert_eq!(ty.to_string(), "object({a=string, b=optional(list(any))})");
    }

    #[test]
    fn bad_types_are_named() {
        for (text, says) in [
            (&br#""strin""#[..], "unknown primitive type \"strin\""),
            (br#"["list"]"#, "not a type"),
            (
                br#"["object",{"a":"string"},["b"]]"#,
                "optional attribute \"b\" not in the object",
            ),
            (br#"{"a":1}"#, "not a type"),
            (b"\xff", "invalid type JSON"),
        ] {
            let err = Type::from_json(text).unwrap_err().to_string();
            assert!(err.contains(says), "{err}");
        }
    }

    #[test]
    fn deep_types_are_refused() {
        let mut text = String::from(r#""string""#);
        for _ in 0..100 {
            text = format!(r#"["list",{text}]"#);
        }
        let err = Type::from_json(text.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("deeper than 64"), "{err}");
    }
}
