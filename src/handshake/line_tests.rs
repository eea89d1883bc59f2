//! The handshake-line vectors of the wire contract
//! (shared/spec/go-plugin-protocol.md, section 5).

use super::*;

/// A real line from a go-plugin 1.0.1 plugin with AutoMTLS: a 794-character
/// P-521 certificate.
const GO_LINE: &str = include_str!("../../tests/data/go-plugin-1.0.1-automtls.line");

fn parse(line: &str) -> Result<HandshakeLine, HandshakeError> {
    HandshakeLine::parse(line)
}

#[test]
fn four_five_six_seven_fields() {
    let four = parse("1|1|unix|/tmp/p").unwrap();
    assert_eq!(
        four.protocol(),
        Protocol::NetRpc,
        "no protocol field means netrpc"
    );
    assert_eq!(four.server_cert(), None);

    let five = parse("1|1|tcp|127.0.0.1:1234|grpc").unwrap();
    assert_eq!(five.protocol(), Protocol::Grpc);
    assert_eq!(five.endpoint().address(), "127.0.0.1:1234");

    let six = parse("1|6|unix|/tmp/plugin1715524448|grpc|").unwrap();
    assert_eq!((six.app_version(), six.multiplex()), (6, None));

    let seven = parse("1|6|unix|/tmp/p|grpc||true").unwrap();
    assert_eq!(seven.multiplex(), Some(true));
    assert_eq!(
        parse("1|6|unix|/tmp/p|grpc||F").unwrap().multiplex(),
        Some(false)
    );
    assert!(matches!(
        parse("1|6|unix|/tmp/p|grpc||yes"),
        Err(HandshakeError::MultiplexSyntax { value }) if value == "yes"
    ));
    // Extra fields after the seventh are ignored, as go-plugin ≥ 1.6 does.
    assert!(parse("1|6|unix|/tmp/p|grpc||true|extra").is_ok());
}

#[test]
fn too_few_fields_is_unrecognized_and_quotes_the_line() {
    for line in ["", "hello world", "1|1|unix", "panic: runtime error"] {
        let err = parse(line).unwrap_err();
        assert!(
            matches!(err, HandshakeError::Unrecognized { .. }),
            "{line:?}: {err:?}"
        );
        assert!(
            err.to_string()
                .starts_with("Unrecognized remote plugin message: ")
        );
        assert!(err.to_string().contains(line.trim()), "{err}");
    }
}

#[test]
fn versions_non_digits_negative_and_core_two() {
    assert!(matches!(
        parse("x|1|unix|/tmp/p|grpc|"),
        Err(HandshakeError::CoreVersionSyntax { value }) if value == "x"
    ));
    let err = parse("2|1|unix|/tmp/p|grpc|").unwrap_err();
    assert!(matches!(&err, HandshakeError::IncompatibleCoreVersion { value } if value == "2"));
    assert_eq!(
        err.to_string(),
        "Incompatible core API version with plugin. Plugin version: 2, Core version: 1"
    );
    assert!(matches!(
        parse("-1|1|unix|/tmp/p|grpc|"),
        Err(HandshakeError::IncompatibleCoreVersion { .. })
    ));
    // Go's Atoi takes a sign: "+1" is core version 1.
    assert!(parse("+1|1|unix|/tmp/p|grpc|").is_ok());
    for app in ["-5", "five", "", " 5", "4294967296"] {
        let line = format!("1|{app}|unix|/tmp/p|grpc|");
        assert!(
            matches!(parse(&line), Err(HandshakeError::AppVersionSyntax { .. })),
            "{line}"
        );
    }
}

#[test]
fn networks_and_addresses() {
    let err = parse("1|1|udp|127.0.0.1:1|grpc|").unwrap_err();
    assert!(matches!(&err, HandshakeError::UnknownNetwork { network } if network == "udp"));
    assert!(err.to_string().contains("udp"));
    for line in [
        "1|1|unix||grpc|",
        "1|1|tcp||grpc|",
        "1|1|tcp|127.0.0.1|grpc|",
        "1|1|tcp|h:99999|grpc|",
    ] {
        assert!(
            matches!(parse(line), Err(HandshakeError::BadAddress { .. })),
            "{line}"
        );
    }
    let v6 = parse("1|1|tcp|[::1]:5000|grpc|").unwrap();
    assert_eq!(v6.endpoint().address(), "[::1]:5000");
}

#[test]
fn protocols() {
    let err = parse("1|1|unix|/tmp/p|thrift|").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("Unsupported plugin protocol \"thrift\""),
        "{err}"
    );
    let netrpc = parse("1|1|unix|/tmp/p|netrpc|").unwrap();
    let err = netrpc.check(&[1], &[Protocol::Grpc]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Unsupported plugin protocol \"netrpc\". Supported: [grpc]"
    );
}

#[test]
fn check_app_version_against_offer() {
    let line = parse("1|4|unix|/tmp/p|grpc|").unwrap();
    let err = line.check(&[5, 6], &[Protocol::Grpc]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Incompatible API version with plugin. Plugin version: 4, Client versions: [5, 6]"
    );
    assert!(
        parse("1|6|unix|/tmp/p|grpc|")
            .unwrap()
            .check(&[5, 6], &[Protocol::Grpc])
            .is_ok()
    );
}

#[test]
fn white_space_and_crlf_are_trimmed() {
    let line = parse("  1|1|unix|/tmp/p|grpc|\r\n").unwrap();
    assert_eq!(line.endpoint().address(), "/tmp/p");
    assert!(parse("1|1|unix|/tmp/p|grpc|\n\n").is_ok());
}

#[test]
fn real_go_plugin_certificate() {
    let line = parse(GO_LINE).unwrap();
    let der = line.server_cert().expect("a certificate");
    let field = GO_LINE.trim().rsplit('|').next().unwrap();
    assert_eq!(field.len(), 794);
    assert_eq!(der.len(), 595);
    let (cert, rest) = crate::tls::decode_cert(der).unwrap();
    assert_eq!(rest, 0);
    // RFC 4514 order: the last RDN first.
    assert_eq!(
        cert.tbs_certificate().subject().to_string(),
        "CN=localhost,O=HashiCorp"
    );
    // Formatting gives back the very same line.
    assert_eq!(line.to_string(), GO_LINE.trim());
}

#[test]
fn certificate_field_errors() {
    let field = GO_LINE.trim().rsplit('|').next().unwrap();
    let base = "1|1|unix|/tmp/p|grpc|";
    // 50 characters or fewer: ignored, as go-plugin does.
    assert_eq!(
        parse(&format!("{base}{}", &field[..50]))
            .unwrap()
            .server_cert(),
        None
    );
    // Padding: go-plugin's RawStdEncoding refuses it.
    let padded = format!("{base}{field}==");
    assert!(matches!(
        parse(&padded),
        Err(HandshakeError::CertificatePadded)
    ));
    let not_base64 = format!("{base}{}", "!".repeat(60));
    assert!(matches!(
        parse(&not_base64),
        Err(HandshakeError::CertificateBase64 { .. })
    ));
    let url_safe = format!("{base}{}", field.replace('+', "-").replace('/', "_"));
    if url_safe != format!("{base}{field}") {
        assert!(matches!(
            parse(&url_safe),
            Err(HandshakeError::CertificateBase64 { .. })
        ));
    }
    let not_der = format!("{base}{}", STANDARD_NO_PAD.encode([7u8; 60]));
    let err = parse(&not_der).unwrap_err();
    assert!(
        matches!(err, HandshakeError::CertificateDer { .. }),
        "{err:?}"
    );
    assert!(err.to_string().starts_with("error parsing server cert"));
    let truncated = format!("{base}{}", &field[..600]);
    assert!(parse(&truncated).is_err());
}

#[test]
fn format_six_fields_unless_multiplexing_was_asked() {
    let ep: Endpoint = "/tmp/plugin1".parse().unwrap();
    let line = HandshakeLine::new(1, ep.clone()).unwrap();
    assert_eq!(line.to_string(), "1|1|unix|/tmp/plugin1|grpc|");
    assert_eq!(
        line.clone().with_multiplex(false).to_string(),
        "1|1|unix|/tmp/plugin1|grpc||false"
    );
    let tcp: Endpoint = "127.0.0.1:10000".parse().unwrap();
    let der = vec![0x30, 0x82, 0x01, 0xff];
    let line = HandshakeLine::new(6, tcp).unwrap().with_server_cert(der);
    assert_eq!(line.to_string(), "1|6|tcp|127.0.0.1:10000|grpc|MIIB/w");
    assert!(matches!(
        HandshakeLine::new(1, Endpoint::unix("/tmp/a|b").unwrap()),
        Err(AddressError { .. })
    ));
}

#[test]
fn format_then_parse_round_trips() {
    let der = STANDARD_NO_PAD
        .decode(GO_LINE.trim().rsplit('|').next().unwrap())
        .unwrap();
    for ep in ["/tmp/x.sock", "127.0.0.1:1", "[::1]:2"] {
        let line = HandshakeLine::new(5, ep.parse().unwrap())
            .unwrap()
            .with_server_cert(der.clone())
            .with_multiplex(true);
        assert_eq!(parse(&line.to_string()).unwrap(), line);
    }
}

#[test]
fn a_host_that_did_not_ask_ignores_the_multiplexing_field() {
    let base = "1|1|unix|/tmp/plugin1|grpc|";
    for seventh in ["|true", "|false", "|yes", "|true|more", ""] {
        let raw = format!("{base}{seventh}");
        let line = HandshakeLine::parse_unasked(&raw).unwrap();
        assert_eq!(line.multiplex(), None, "{raw}");
        assert_eq!(line.to_string(), base, "{raw}");
        line.check(&[1], &[Protocol::Grpc]).unwrap();
    }
    // The strict parse still reads it, and `check` does not refuse it.
    let line = HandshakeLine::parse(&format!("{base}|true")).unwrap();
    assert_eq!(line.multiplex(), Some(true));
    line.check(&[1], &[Protocol::Grpc]).unwrap();
    // The other fields are still checked.
    assert!(HandshakeLine::parse_unasked("1|1|udp|x|grpc||true").is_err());
}
