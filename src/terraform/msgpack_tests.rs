//! The msgpack encoding against bytes cty writes, and against broken and
//! hostile input.

use super::*;

fn file_type() -> Type {
    Type::object([("id", Type::String), ("path", Type::String)])
}

#[test]
fn decodes_what_terraform_sends_with_an_unknown() {
    // {"id": unknown, "path": "a"}, as Terraform plans a new resource.
    let bytes = b"\x82\xa2id\xd4\x00\x00\xa4path\xa1a";
    let value = decode(bytes, &file_type()).unwrap();
    assert_eq!(
        value,
        Value::object([("id", Value::Unknown), ("path", Value::from("a"))])
    );
    assert_eq!(encode(&value, &file_type()).unwrap(), bytes);
}

#[test]
fn refined_unknowns_are_unknown() {
    // Terraform 1.6+: extension 12 with the refinements as its payload.
    let bytes = b"\xc7\x03\x0c\x81\x01\xc3";
    assert_eq!(decode(bytes, &Type::String).unwrap(), Value::Unknown);
}

#[test]
fn null_and_missing_attributes_are_null() {
    let value = decode(b"\x81\xa4path\xc0", &file_type()).unwrap();
    assert_eq!(
        value,
        Value::object([("id", Value::Null), ("path", Value::Null)])
    );
    assert_eq!(decode(b"\xc0", &file_type()).unwrap(), Value::Null);
}

#[test]
fn dynamic_values_carry_their_type() {
    let bytes = b"\x92\xc4\x08\"string\"\xa1x";
    assert_eq!(decode(bytes, &Type::Dynamic).unwrap(), Value::from("x"));
    assert_eq!(encode(&Value::from("x"), &Type::Dynamic).unwrap(), bytes);
    // cty may write the type JSON as a string too.
    let as_str = b"\x92\xa8\"number\"\x05";
    assert_eq!(decode(as_str, &Type::Dynamic).unwrap(), Value::from(5));
}

#[test]
fn rich_values_round_trip() {
    let ty = Type::object([
        ("n", Type::Number),
        ("b", Type::Bool),
        ("l", Type::list(Type::String)),
        ("s", Type::set(Type::Number)),
        ("m", Type::map(Type::Bool)),
        ("t", Type::Tuple(vec![Type::String, Type::Dynamic])),
        ("d", Type::Dynamic),
    ]);
    let value = Value::object([
        (
            "n",
            Value::Number(Number::parse("123456789012345678901234567890").unwrap()),
        ),
        ("b", Value::Bool(true)),
        (
            "l",
            Value::List(vec!["a".into(), Value::Unknown, Value::Null]),
        ),
        ("s", Value::Set(vec![Value::from(-7), Value::from(2.5)])),
        (
            "m",
            Value::Map([("k".to_owned(), Value::Bool(false))].into()),
        ),
        (
            "t",
            Value::Tuple(vec!["x".into(), Value::List(vec![Value::from(1)])]),
        ),
        ("d", Value::object([("deep", Value::from(u64::MAX as f64))])),
    ]);
    let bytes = encode(&value, &ty).unwrap();
    assert_eq!(decode(&bytes, &ty).unwrap(), value);
}

#[test]
fn every_number_form_decodes() {
    for (bytes, text) in [
        (&b"\x7f"[..], "127"),
        (b"\xe0", "-32"),
        (
            b"\xcf\xff\xff\xff\xff\xff\xff\xff\xff",
            "18446744073709551615",
        ),
        (
            b"\xd3\x80\x00\x00\x00\x00\x00\x00\x00",
            "-9223372036854775808",
        ),
        (b"\xca\x3f\xc0\x00\x00", "1.5"),
        (b"\xcb\x40\x09\x21\xfb\x54\x44\x2d\x18", "3.141592653589793"),
        (b"\xa51e400", "1e400"),
    ] {
        let value = decode(bytes, &Type::Number).unwrap();
        assert_eq!(value.as_number().unwrap().to_string(), text);
    }
}

#[test]
fn mismatches_name_the_path_and_both_sides() {
    let ty = Type::object([("rule", Type::list(Type::object([("port", Type::Number)])))]);
    // {"rule": [{"port": "80"x}]}: a string where a number goes is a
    // number only if it reads as one.
    let err = decode(b"\x81\xa4rule\x91\x81\xa4port\xc3", &ty).unwrap_err();
    assert_eq!(
        err.to_string(),
        ".rule[0].port: expected number, found a bool"
    );
    let err = decode(b"\x81\xa4rule\x91\x81\xa4port\xa2xx", &ty).unwrap_err();
    assert!(
        err.to_string()
            .contains(r#".rule[0].port: malformed msgpack: "xx" is not a number"#),
        "{err}"
    );
    let err = encode(&Value::object([("rule", Value::from("x"))]), &ty).unwrap_err();
    assert_eq!(
        err.to_string(),
        ".rule: expected list(object({port=number})), found a string"
    );
    let err = encode(&Value::object([("other", Value::Null)]), &ty).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"(root): unexpected attribute "other" (not in the object type)"#
    );
}

#[test]
fn hostile_bytes_are_refused_without_allocating() {
    let list = Type::list(Type::String);
    for (bytes, says) in [
        // An array of 4 billion elements in 5 bytes.
        (
            &b"\xdd\xff\xff\xff\xff"[..],
            "4294967295 items announced, 0 bytes left",
        ),
        (
            b"\xdf\xff\xff\xff\xff",
            "expected list(string), found a map",
        ),
        (b"\x91\xdb\xff\xff\xff\xff", "4294967295 items announced"),
        (b"\x92\xa1a", "truncated"),
        (b"\x91\xa2\xff\xfe", "text not UTF-8"),
        (b"\x91\xd4\x05\x00", "extension type 5"),
        (b"", "truncated"),
        (b"\xc1", "found the reserved byte 0xc1"),
    ] {
        let err = decode(bytes, &list).unwrap_err().to_string();
        assert!(err.contains(says), "{bytes:x?}: {err}");
    }
    let err = decode(b"\x90\x90", &list).unwrap_err();
    assert!(matches!(err, ValueError::Trailing { count: 1 }), "{err}");
    let err = decode(b"\x82\xa2id\xc0\xa2id\xc0", &file_type()).unwrap_err();
    assert!(err.to_string().contains(r#"key "id" twice"#), "{err}");
    let err = decode(b"\x81\x01\xc0", &Type::map(Type::String)).unwrap_err();
    assert!(err.to_string().contains("a number as a key"), "{err}");
    let err = decode(b"\x92\xa6\"nope\"\xc0", &Type::Dynamic).unwrap_err();
    assert!(err.to_string().contains("unknown primitive type"), "{err}");
}

#[test]
fn deep_nesting_is_bounded() {
    // 200 nested dynamic lists: each level names a deeper type.
    let mut ty = Type::String;
    for _ in 0..200 {
        ty = Type::list(ty);
    }
    let mut bytes = vec![0x91; 200];
    bytes.extend_from_slice(b"\xa1x");
    let err = decode(&bytes, &ty).unwrap_err();
    assert!(
        matches!(err, ValueError::TooDeep { limit: 64, .. }),
        "{err}"
    );
    let mut value = Value::from("x");
    for _ in 0..200 {
        value = Value::List(vec![value]);
    }
    assert!(matches!(
        encode(&value, &ty),
        Err(ValueError::TooDeep { .. })
    ));
}
