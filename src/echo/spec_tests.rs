use super::*;
use crate::echo::WireSpec;

/// The spec's test vector: `{"obs": float32[4], "reward": float32[1], "t": float64[]}`.
const VECTOR: [u8; 41] = [
    0x45, 0x43, 0x48, 0x4f, 0x01, 0x03, 0x00, 0x00, 0x00, //
    0x04, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, //
    0x04, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, //
    0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
];

#[test]
fn parse_print_and_sizes() {
    let text = "float32[4],float32[1],uint8[84,84,3],int64[]";
    let spec: Spec = text.parse().unwrap();
    assert_eq!(spec.to_string(), text);
    assert_eq!(spec.leaves().len(), 4);
    assert_eq!(spec.leaves()[3].shape, Vec::<u32>::new());
    assert_eq!(spec.leaves()[3].elements(), 1, "a scalar has one element");
    assert_eq!(spec.payload_size(), 16 + 4 + 84 * 84 * 3 + 8);
    // White space and numpy type strings are accepted; printing is canonical.
    let spec: Spec = " <f4[ 4 ] , |u1[2,3] ".parse().unwrap();
    assert_eq!(spec.to_string(), "float32[4],uint8[2,3]");
    assert_eq!(DType::Float32.numpy_str(), "<f4");
    assert_eq!(DType::from_name("f8"), Some(DType::Float64));
}

#[test]
fn syntax_errors_name_the_leaf() {
    for (text, index, needle) in [
        ("float32[4],flaot32[1]", 1, "unknown dtype \"flaot32\""),
        ("float32[4", 0, "missing `]`"),
        ("float32", 0, "expected `dtype[dims]`"),
        ("float32[4,x]", 0, "dim \"x\" is not a number"),
        ("float32[-1]", 0, "dim \"-1\" is not a number"),
        ("float32[99999999999]", 0, "too large"),
        ("float32[4],", 1, "nothing after the last `,`"),
        ("float32[4] int8[1]", 0, "expected `,`"),
    ] {
        let err = text.parse::<Spec>().unwrap_err();
        assert!(
            matches!(&err, SpecError::Syntax { index: i, .. } if *i == index),
            "{text}: {err:?}"
        );
        assert!(err.to_string().contains(needle), "{text}: {err}");
    }
    assert_eq!("".parse::<Spec>().unwrap_err(), SpecError::Empty);
}

#[test]
fn wire_header_matches_the_test_vector() {
    let spec: Spec = "float32[4],float32[1],float64[]".parse().unwrap();
    assert_eq!(spec.to_wire(), VECTOR);
    let (wire, used) = WireSpec::decode(&VECTOR).unwrap().unwrap();
    assert_eq!(used, 41);
    spec.check_wire(&wire).unwrap();
    // Every prefix asks for more bytes rather than failing.
    for n in 0..VECTOR.len() {
        assert_eq!(
            WireSpec::decode(&VECTOR[..n]).unwrap(),
            None,
            "prefix of {n}"
        );
    }
}

#[test]
fn wire_errors_and_mismatches() {
    let err = WireSpec::decode(b"HTTP/1.1 200").unwrap_err();
    assert!(err.to_string().contains("not an echo server"), "{err}");
    let mut v2 = VECTOR;
    v2[4] = 2;
    assert!(
        WireSpec::decode(&v2)
            .unwrap_err()
            .to_string()
            .contains("version 2")
    );
    let mut huge = VECTOR;
    huge[5..9].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(
        WireSpec::decode(&huge).is_err(),
        "absurd counts are refused"
    );

    let (wire, _) = WireSpec::decode(&VECTOR).unwrap().unwrap();
    let other: Spec = "float32[4],float32[2],float64[]".parse().unwrap();
    let err = other.check_wire(&wire).unwrap_err();
    assert!(
        matches!(err, SpecError::Mismatch { index: 1, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("float32[2]"), "{err}");
    let fewer: Spec = "float32[4],float32[1]".parse().unwrap();
    assert!(matches!(
        fewer.check_wire(&wire),
        Err(SpecError::Mismatch { index: 2, .. })
    ));
    let wider: Spec = "float64[4],float32[1],float64[]".parse().unwrap();
    assert!(matches!(
        wider.check_wire(&wire),
        Err(SpecError::Mismatch { index: 0, .. })
    ));
}
