//! Property tests of the value encodings: no bytes make a decoder panic or
//! allocate beyond its input, and every value of a type survives both
//! encodings (JSON when it holds no unknown value).
//!
//! Cases per property: `PROPTEST_CASES` when set, else `CASES`. Failing
//! seeds are kept in `tests/proptest-regressions/terraform_values.txt`
//! (written only when a property fails).

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

use super::{Type, Value, json, msgpack};

const CASES: u32 = 500;

fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = CASES;
    }
    config.failure_persistence = Some(Box::new(FileFailurePersistence::Direct(
        "tests/proptest-regressions/terraform_values.txt",
    )));
    config
}

fn any_type() -> impl Strategy<Value = Type> {
    let leaf = prop_oneof![
        Just(Type::Bool),
        Just(Type::Number),
        Just(Type::String),
        Just(Type::Dynamic),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(Type::list),
            inner.clone().prop_map(Type::set),
            inner.clone().prop_map(Type::map),
            prop::collection::vec(inner.clone(), 0..4).prop_map(Type::Tuple),
            prop::collection::btree_map("[a-z]{1,4}", inner, 0..4).prop_map(Type::object),
        ]
    })
}

/// A value of `ty`: null, unknown or known at every level.
fn value_of(ty: Type) -> BoxedStrategy<Value> {
    let known: BoxedStrategy<Value> = match ty {
        Type::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
        Type::Number => prop_oneof![
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
        ]
        .boxed(),
        Type::String => ".{0,8}".prop_map(Value::String).boxed(),
        // A dynamic value goes with a concrete type of its own.
        Type::Dynamic => prop_oneof![
            any::<bool>().prop_map(Value::Bool),
            "[a-z]{0,4}".prop_map(Value::String),
        ]
        .boxed(),
        Type::List(t) => prop::collection::vec(value_of(*t), 0..3)
            .prop_map(Value::List)
            .boxed(),
        Type::Set(t) => prop::collection::vec(value_of(*t), 0..3)
            .prop_map(Value::Set)
            .boxed(),
        Type::Map(t) => prop::collection::btree_map("[a-z]{0,3}", value_of(*t), 0..3)
            .prop_map(Value::Map)
            .boxed(),
        Type::Tuple(ts) => ts
            .into_iter()
            .map(value_of)
            .collect::<Vec<_>>()
            .prop_map(Value::Tuple)
            .boxed(),
        Type::Object { attributes, .. } => attributes
            .into_iter()
            .map(|(k, t)| value_of(t).prop_map(move |v| (k.clone(), v)))
            .collect::<Vec<_>>()
            .prop_map(|pairs| Value::Object(pairs.into_iter().collect()))
            .boxed(),
    };
    prop_oneof![1 => Just(Value::Null), 1 => Just(Value::Unknown), 6 => known].boxed()
}

fn typed_value() -> impl Strategy<Value = (Type, Value)> {
    any_type().prop_flat_map(|ty| value_of(ty.clone()).prop_map(move |v| (ty.clone(), v)))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn msgpack_round_trips((ty, value) in typed_value()) {
        let bytes = msgpack::encode(&value, &ty).unwrap();
        prop_assert_eq!(msgpack::decode(&bytes, &ty).unwrap(), value);
    }

    #[test]
    fn json_round_trips_known_values((ty, value) in typed_value()) {
        match json::encode(&value, &ty) {
            Ok(text) => prop_assert_eq!(json::decode(&text, &ty).unwrap(), value),
            Err(err) => prop_assert!(!value.is_wholly_known(), "{}", err),
        }
    }

    #[test]
    fn no_bytes_make_a_decoder_panic(ty in any_type(), bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = msgpack::decode(&bytes, &ty);
        let _ = json::decode(&bytes, &ty);
    }

    #[test]
    fn mangled_encodings_never_panic((ty, value) in typed_value(), cut in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = msgpack::encode(&value, &ty).unwrap();
        if !bytes.is_empty() {
            let at = cut.index(bytes.len());
            bytes[at] = byte;
            let _ = msgpack::decode(&bytes, &ty);
            bytes.truncate(at);
            let _ = msgpack::decode(&bytes, &ty);
        }
    }
}
