//! Terraform's values: known, null or unknown, of any [`Type`].

use std::collections::BTreeMap;
use std::fmt;

use super::Type;

/// A Terraform value, as a provider reads it from a configuration, a plan
/// or a state and writes it back.
///
/// Besides known values there are two others every attribute can hold:
/// [`Value::Null`] (not set) and [`Value::Unknown`] (set, but only known
/// after apply: a computed attribute before its resource exists, or a
/// configuration value that depends on one).
///
/// A value does not carry its type: it is decoded against one and encoded
/// against one (the schema's, see
/// [`Schema::value_type`](crate::proto::tfplugin6::Schema::value_type)).
/// When encoding, any sequence variant (`List`, `Set`, `Tuple`) fits any
/// sequence type and `Map` or `Object` fit either keyed type; decoding
/// gives the variant of the type.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// Not set.
    Null,
    /// Known only after apply.
    Unknown,
    /// A `bool`.
    Bool(bool),
    /// A `number`.
    Number(Number),
    /// A `string`.
    String(String),
    /// A `list(T)`'s elements, in order.
    List(Vec<Value>),
    /// A `set(T)`'s elements (Terraform compares sets without order).
    Set(Vec<Value>),
    /// A `tuple([…])`'s elements.
    Tuple(Vec<Value>),
    /// A `map(T)`'s entries.
    Map(BTreeMap<String, Value>),
    /// An `object({…})`'s attributes.
    Object(BTreeMap<String, Value>),
}

impl Value {
    /// An object from `(name, value)` pairs.
    pub fn object<I, K>(attributes: I) -> Value
    where
        I: IntoIterator<Item = (K, Value)>,
        K: Into<String>,
    {
        Value::Object(attributes.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// Whether this is [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Whether this is [`Value::Unknown`] (not whether something inside
    /// it is: see [`Value::is_wholly_known`]).
    pub fn is_unknown(&self) -> bool {
        matches!(self, Value::Unknown)
    }

    /// Whether nothing in this value, at any depth, is unknown.
    pub fn is_wholly_known(&self) -> bool {
        match self {
            Value::Unknown => false,
            Value::List(vs) | Value::Set(vs) | Value::Tuple(vs) => {
                vs.iter().all(Value::is_wholly_known)
            }
            Value::Map(m) | Value::Object(m) => m.values().all(Value::is_wholly_known),
            _ => true,
        }
    }

    /// An object's attribute or a map's entry; `None` for anything else
    /// or a name it lacks.
    pub fn get(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Object(m) | Value::Map(m) => m.get(name),
            _ => None,
        }
    }

    /// The text of a known string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// A known bool.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// A known number.
    pub fn as_number(&self) -> Option<&Number> {
        match self {
            Value::Number(n) => Some(n),
            _ => None,
        }
    }

    /// The elements of a known list, set or tuple.
    pub fn as_elements(&self) -> Option<&[Value]> {
        match self {
            Value::List(vs) | Value::Set(vs) | Value::Tuple(vs) => Some(vs),
            _ => None,
        }
    }

    /// The type a value of [`Type::Dynamic`] is sent with: the value's own
    /// shape. A list, set or map takes its first known element's type
    /// (`any` when it has none); `Null` and `Unknown` are `any`.
    pub fn inferred_type(&self) -> Type {
        fn first<'v>(mut vs: impl Iterator<Item = &'v Value>) -> Type {
            vs.find(|v| !v.is_null() && !v.is_unknown())
                .map_or(Type::Dynamic, Value::inferred_type)
        }
        match self {
            Value::Null | Value::Unknown => Type::Dynamic,
            Value::Bool(_) => Type::Bool,
            Value::Number(_) => Type::Number,
            Value::String(_) => Type::String,
            Value::List(vs) => Type::list(first(vs.iter())),
            Value::Set(vs) => Type::set(first(vs.iter())),
            Value::Map(m) => Type::map(first(m.values())),
            Value::Tuple(vs) => Type::Tuple(vs.iter().map(Value::inferred_type).collect()),
            Value::Object(m) => Type::object(m.iter().map(|(k, v)| (k.clone(), v.inferred_type()))),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(s)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Value {
        Value::Number(n.into())
    }
}

impl From<f64> for Value {
    fn from(n: f64) -> Value {
        Value::Number(n.into())
    }
}

/// A Terraform number: an integer, a binary float, or a decimal beyond
/// both kept as its text (Terraform's numbers have arbitrary precision).
///
/// A float with an integral value that fits an `i64` is kept as the
/// integer, so `1.0` and `1` compare equal, as they do in Terraform.
#[derive(Clone, Debug, PartialEq)]
pub struct Number(Repr);

#[derive(Clone, Debug, PartialEq)]
enum Repr {
    Int(i64),
    Float(f64),
    Decimal(String),
}

impl Number {
    /// Parses a decimal literal (`-12`, `3.25`, `1e400`,
    /// `123456789012345678901234567890`); `None` if it is not one.
    pub fn parse(text: &str) -> Option<Number> {
        if !is_decimal_literal(text) {
            return None;
        }
        if let Ok(i) = text.parse::<i64>() {
            return Some(Number(Repr::Int(i)));
        }
        // Any decimal of at most 15 significant digits survives a round
        // trip through f64; keep longer ones, and those beyond f64's range,
        // as their text.
        let mantissa = text.split(['e', 'E']).next().unwrap_or_default();
        let significant = mantissa
            .bytes()
            .filter(u8::is_ascii_digit)
            .skip_while(|&b| b == b'0')
            .count();
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() && significant <= 15 => Some(f.into()),
            _ => Some(Number(Repr::Decimal(text.to_owned()))),
        }
    }

    /// The number as an `i64`, if it is an integer in range.
    pub fn as_i64(&self) -> Option<i64> {
        match self.0 {
            Repr::Int(i) => Some(i),
            _ => None,
        }
    }

    /// The number as the nearest `f64` (infinite beyond its range).
    pub fn as_f64(&self) -> f64 {
        match &self.0 {
            Repr::Int(i) => *i as f64,
            Repr::Float(f) => *f,
            // A validated literal always parses as f64.
            Repr::Decimal(text) => text.parse().unwrap_or(f64::NAN),
        }
    }

    /// The integer, float or decimal text, for the encoders.
    pub(crate) fn parts(&self) -> NumberParts<'_> {
        match &self.0 {
            Repr::Int(i) => NumberParts::Int(*i),
            Repr::Float(f) => NumberParts::Float(*f),
            Repr::Decimal(text) => NumberParts::Decimal(text),
        }
    }
}

/// What [`Number::parts`] gives.
pub(crate) enum NumberParts<'a> {
    Int(i64),
    Float(f64),
    Decimal(&'a str),
}

impl From<i64> for Number {
    fn from(i: i64) -> Number {
        Number(Repr::Int(i))
    }
}

impl From<u64> for Number {
    fn from(u: u64) -> Number {
        match i64::try_from(u) {
            Ok(i) => Number(Repr::Int(i)),
            Err(_) => Number(Repr::Decimal(u.to_string())),
        }
    }
}

impl From<f64> for Number {
    fn from(f: f64) -> Number {
        // -2^63 ..= 2^63 - 1024 (the largest f64 below 2^63) convert exactly.
        if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 {
            Number(Repr::Int(f as i64))
        } else {
            Number(Repr::Float(f))
        }
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Int(i) => write!(f, "{i}"),
            Repr::Float(x) => write!(f, "{x}"),
            Repr::Decimal(text) => f.write_str(text),
        }
    }
}

/// `-?digits(.digits)?([eE][+-]?digits)?`: JSON's number syntax, which is
/// also what Terraform writes numbers as when it sends them as text.
fn is_decimal_literal(text: &str) -> bool {
    let digits = |s: &str| -> usize { s.bytes().take_while(u8::is_ascii_digit).count() };
    let mut rest = text.strip_prefix('-').unwrap_or(text);
    let n = digits(rest);
    if n == 0 {
        return false;
    }
    rest = &rest[n..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = digits(frac);
        if n == 0 {
            return false;
        }
        rest = &frac[n..];
    }
    if let Some(exp) = rest.strip_prefix(['e', 'E']) {
        let exp = exp.strip_prefix(['+', '-']).unwrap_or(exp);
        let n = digits(exp);
        if n == 0 {
            return false;
        }
        rest = &exp[n..];
    }
    rest.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_what_they_are() {
        assert_eq!(Number::parse("42").unwrap().as_i64(), Some(42));
        assert_eq!(Number::parse("-1.5").unwrap().as_f64(), -1.5);
        assert_eq!(Number::from(3.0), Number::from(3i64));
        let big = Number::parse("123456789012345678901234567890").unwrap();
        assert_eq!(big.to_string(), "123456789012345678901234567890");
        assert_eq!(big.as_i64(), None);
        assert_eq!(Number::from(u64::MAX).to_string(), "18446744073709551615");
        assert_eq!(Number::parse("1e400").unwrap().to_string(), "1e400");
        assert_eq!(Number::parse("1.50").unwrap(), Number::from(1.5));
        assert_eq!(Number::parse("2.0e3").unwrap().as_i64(), Some(2000));
        let long = "0.1000000000000000055511151231257827";
        assert_eq!(Number::parse(long).unwrap().to_string(), long);
        for bad in ["", "-", "1.", ".5", "1e", "0x10", "1 ", "NaN", "inf"] {
            assert!(Number::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn wholly_known_looks_inside() {
        let v = Value::object([("a", Value::List(vec![Value::Unknown]))]);
        assert!(!v.is_wholly_known());
        assert!(!v.is_unknown());
        assert!(Value::object([("a", Value::Null)]).is_wholly_known());
    }

    #[test]
    fn inferred_types() {
        let v = Value::object([
            ("s", Value::from("x")),
            ("l", Value::List(vec![Value::Null, Value::from(1)])),
            ("e", Value::Set(vec![])),
        ]);
        assert_eq!(
            v.inferred_type().to_string(),
            "object({e=set(any), l=list(number), s=string})"
        );
    }
}
