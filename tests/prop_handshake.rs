//! Property tests for `HandshakeLine::parse` (issue "Hardening"): no text
//! makes it panic (arbitrary text, lines assembled from interesting fields,
//! mutations of valid lines and of go-plugin 1.0.1's own line), and every
//! line a plugin of this crate prints parses back to the same line.
//!
//! Cases per property: `PROPTEST_CASES` when set, else `prop_support::CASES`. Failing
//! seeds are kept in `tests/proptest-regressions/prop_handshake.txt` (only
//! written when a property fails; replayed first on later runs).

mod prop_support;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use proptest::prelude::*;
use proptest::sample::Index;
use rpcplugin::handshake::{AddressError, HandshakeLine};
use rpcplugin::{Endpoint, Protocol};

/// The line go-plugin 1.0.1 printed (AutoMTLS, a P-521 certificate).
const GO_LINE: &str = include_str!("data/go-plugin-1.0.1-automtls.line");

/// Certificates that parse: go-plugin 1.0.1's and a few of ours.
static CERTS: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
    let go = HandshakeLine::parse(GO_LINE).expect("go-plugin's line parses");
    let mut certs = vec![go.server_cert().expect("it has a certificate").to_vec()];
    for _ in 0..3 {
        // P-256 self-signed, as our AutoMTLS certificates are.
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        certs.push(cert.cert.der().to_vec());
    }
    certs
});

/// Where failing seeds are kept.
const SEEDS: &str = "tests/proptest-regressions/prop_handshake.txt";

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

/// Endpoints a plugin may listen on, including unix paths with characters a
/// handshake line cannot hold (`|`, line breaks), which `new` must refuse.
fn arb_endpoint() -> impl Strategy<Value = Endpoint> {
    let segment = prop_oneof![
        4 => "[a-zA-Z0-9_.\\-]{1,12}",
        2 => "[^/]{1,8}",
        1 => "[a-z]{0,3}[|\\r\\n][a-z]{0,3}",
    ];
    // Paths that normalize to `/` (e.g. `/.`) are refused by `unix`.
    let unix = (any::<bool>(), prop::collection::vec(segment, 1..5)).prop_filter_map(
        "the root directory is not a socket path",
        |(abs, segs)| {
            let path = format!("{}{}", if abs { "/" } else { "" }, segs.join("/"));
            Endpoint::unix(path).ok()
        },
    );
    let v4 = (any::<Ipv4Addr>(), any::<u16>()).prop_map(|a| Endpoint::tcp(SocketAddr::from(a)));
    let v6 = (any::<Ipv6Addr>(), any::<u16>()).prop_map(|a| Endpoint::tcp(SocketAddr::from(a)));
    let name = (
        prop::collection::vec("[a-zA-Z0-9_\\-]{1,20}", 1..4),
        any::<u16>(),
    )
        .prop_map(|(labels, port)| Endpoint::tcp_host(&labels.join("."), port).unwrap());
    prop_oneof![4 => unix, 2 => v4, 2 => v6, 2 => name]
}

/// What goes in the certificate field: nothing, a real certificate, or a
/// short byte string (whose base64 is 50 characters or fewer, which hosts
/// ignore).
#[derive(Debug, Clone)]
enum Cert {
    None,
    Real(usize),
    Short(Vec<u8>),
}

fn arb_cert() -> impl Strategy<Value = Cert> {
    prop_oneof![
        Just(Cert::None),
        (0..4usize).prop_map(Cert::Real),
        prop::collection::vec(any::<u8>(), 1..=37).prop_map(Cert::Short),
    ]
}

/// A line as `HandshakeLine::new` and its builders make it, or the reason
/// `new` refused the endpoint.
fn build(
    version: u32,
    endpoint: Endpoint,
    cert: &Cert,
    multiplex: Option<bool>,
) -> Result<HandshakeLine, AddressError> {
    let mut line = HandshakeLine::new(version, endpoint)?;
    match cert {
        Cert::None => {}
        Cert::Real(i) => line = line.with_server_cert(CERTS[*i].clone()),
        Cert::Short(bytes) => line = line.with_server_cert(bytes.clone()),
    }
    if let Some(m) = multiplex {
        line = line.with_multiplex(m);
    }
    Ok(line)
}

/// The text of a valid line (built as a plugin builds it), or go-plugin's.
fn arb_valid_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (any::<u32>(), arb_endpoint(), arb_cert(), any::<Option<bool>>()).prop_filter_map(
            "address unprintable in a line",
            |(v, ep, cert, mux)| build(v, ep, &cert, mux).ok().map(|l| l.to_string()),
        ),
        1 => Just(GO_LINE.to_owned()),
    ]
}

/// One field of a handshake line, chosen to reach every branch of the
/// parser: integers in Go's and other syntaxes, networks, addresses,
/// protocols, base64 (padded or not, of certificates and of junk), booleans
/// and arbitrary text.
fn arb_field() -> impl Strategy<Value = String> {
    let words = prop::sample::select(vec![
        "",
        "1",
        "+1",
        "-1",
        "0",
        "01",
        "1 ",
        " 1",
        "2",
        "4294967295",
        "4294967296",
        "-4294967296",
        "9223372036854775807",
        "9223372036854775808",
        "99999999999999999999",
        "١",
        "１",
        "unix",
        "tcp",
        "udp",
        "UNIX",
        "/tmp/p.sock",
        "127.0.0.1:1234",
        "[::1]:80",
        "::1:80",
        "host:99999",
        "localhost",
        "grpc",
        "netrpc",
        "GRPC",
        "true",
        "false",
        "t",
        "F",
        "TRUE",
        "True",
        "yes",
        "=",
        "==",
        "A===",
    ])
    .prop_map(str::to_owned);
    let cert_text = (0..4usize, any::<Index>(), any::<bool>()).prop_map(|(i, cut, padded)| {
        let der = &CERTS[i];
        let der = &der[..cut.index(der.len() + 1)];
        if padded {
            STANDARD.encode(der)
        } else {
            STANDARD_NO_PAD.encode(der)
        }
    });
    let junk_base64 =
        (prop::collection::vec(any::<u8>(), 0..200), any::<bool>()).prop_map(|(bytes, padded)| {
            if padded {
                STANDARD.encode(bytes)
            } else {
                STANDARD_NO_PAD.encode(bytes)
            }
        });
    prop_oneof![
        6 => words,
        2 => cert_text,
        2 => junk_base64,
        1 => "[A-Za-z0-9+/=_\\-]{40,80}",
        2 => prop::collection::vec(any::<char>(), 0..12).prop_map(String::from_iter),
    ]
}

/// A line assembled from 0 to 9 fields, with surrounding white space.
fn arb_assembled() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["", " ", "\t", "\r\n", "\u{feff}", "\u{a0}"]),
        prop::collection::vec(arb_field(), 0..9),
        prop::sample::select(vec!["", "\n", "\r\n", " \r\n", "|", "\0"]),
    )
        .prop_map(|(before, fields, after)| format!("{before}{}{after}", fields.join("|")))
}

/// An edit of a line, by characters or by `|`-separated fields.
#[derive(Debug, Clone)]
enum Edit {
    Delete(Index),
    Insert(Index, char),
    Replace(Index, char),
    Truncate(Index),
    DuplicateField(Index),
    DropField(Index),
    SwapFields(Index, Index),
    ReplaceField(Index, String),
}

fn arb_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => prop::sample::select(vec![
            '|', '\n', '\r', ' ', '=', '+', '-', '0', '1', '9', ':', '[', ']', '/', '.', 'A', 'z',
            '\0', 'é', '\u{85}', '\u{2028}',
        ]),
        1 => any::<char>(),
    ]
}

fn arb_edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        any::<Index>().prop_map(Edit::Delete),
        (any::<Index>(), arb_char()).prop_map(|(i, c)| Edit::Insert(i, c)),
        (any::<Index>(), arb_char()).prop_map(|(i, c)| Edit::Replace(i, c)),
        any::<Index>().prop_map(Edit::Truncate),
        any::<Index>().prop_map(Edit::DuplicateField),
        any::<Index>().prop_map(Edit::DropField),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Edit::SwapFields(a, b)),
        (any::<Index>(), arb_field()).prop_map(|(i, f)| Edit::ReplaceField(i, f)),
    ]
}

fn apply(line: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = line.chars().collect();
    for edit in edits {
        let mut fields: Vec<String> = chars
            .iter()
            .collect::<String>()
            .split('|')
            .map(str::to_owned)
            .collect();
        match edit {
            Edit::Delete(i) if !chars.is_empty() => {
                chars.remove(i.index(chars.len()));
            }
            Edit::Insert(i, c) => chars.insert(i.index(chars.len() + 1), *c),
            Edit::Replace(i, c) if !chars.is_empty() => {
                let at = i.index(chars.len());
                chars[at] = *c;
            }
            Edit::Truncate(i) => chars.truncate(i.index(chars.len() + 1)),
            Edit::DuplicateField(i) => {
                let at = i.index(fields.len());
                fields.insert(at, fields[at].clone());
                chars = fields.join("|").chars().collect();
            }
            Edit::DropField(i) => {
                fields.remove(i.index(fields.len()));
                chars = fields.join("|").chars().collect();
            }
            Edit::SwapFields(a, b) => {
                let (a, b) = (a.index(fields.len()), b.index(fields.len()));
                fields.swap(a, b);
                chars = fields.join("|").chars().collect();
            }
            Edit::ReplaceField(i, field) => {
                let at = i.index(fields.len());
                fields[at] = field.clone();
                chars = fields.join("|").chars().collect();
            }
            _ => {}
        }
    }
    chars.into_iter().collect()
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// What must hold for any text: no panic; a parsed line prints a line that
/// parses back to it and can be checked; an error prints something.
fn check_any(text: &str) -> Result<(), TestCaseError> {
    match HandshakeLine::parse(text) {
        Ok(line) => {
            prop_assert!(matches!(line.endpoint().network(), "unix" | "tcp"));
            let shown = line.to_string();
            let back = HandshakeLine::parse(&shown);
            prop_assert_eq!(
                back.as_ref().ok(),
                Some(&line),
                "{:?} printed {:?}",
                text,
                shown
            );
            prop_assert_eq!(back.unwrap().to_string(), shown);
            let checked = line.check(&[line.app_version()], &[Protocol::Grpc, Protocol::NetRpc]);
            // The multiplexing field is never refused: our host never asks.
            prop_assert!(checked.is_ok(), "{:?}", checked);
            // `FromStr` is `parse`.
            prop_assert_eq!(text.parse::<HandshakeLine>().ok(), Some(line));
        }
        Err(err) => prop_assert!(!err.to_string().is_empty()),
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(prop_support::config(SEEDS, prop_support::CASES))]

    /// Arbitrary text (unicode, NUL, line breaks, `|`-heavy, very long).
    #[test]
    fn parse_never_panics_on_text(
        text in prop_oneof![
            3 => prop::collection::vec(any::<char>(), 0..64).prop_map(String::from_iter),
            3 => "[0-9+\\-|a-z:/\\[\\]. \\r\\n=]{0,64}",
            1 => concat!(
                "1\\|[0-9]{1,3}\\|(unix|tcp)\\|[^|]{0,20}\\|(grpc|netrpc)?",
                "\\|[A-Za-z0-9+/=]{0,120}(\\|[a-zA-Z01]{0,5})?",
            ),
            1 => prop::collection::vec(any::<char>(), 2000..6000).prop_map(String::from_iter),
        ],
    ) {
        check_any(&text)?;
    }

    /// Lines assembled from interesting fields.
    #[test]
    fn parse_never_panics_on_assembled_lines(text in arb_assembled()) {
        check_any(&text)?;
    }

    /// Valid lines (ours and go-plugin's), edited by characters and fields.
    #[test]
    fn parse_never_panics_on_mutated_lines(
        line in arb_valid_text(),
        edits in prop::collection::vec(arb_edit(), 1..6),
    ) {
        check_any(&apply(&line, &edits))?;
    }

    /// A certificate with some DER bytes changed: parsed or refused,
    /// never a panic; a parsed certificate is the bytes that were sent.
    #[test]
    fn parse_never_panics_on_mutated_certificates(
        cert in 0..4usize,
        changes in prop::collection::vec((any::<Index>(), any::<u8>()), 1..8),
        cut in prop::option::of(any::<Index>()),
    ) {
        let mut der = CERTS[cert].clone();
        for (at, byte) in &changes {
            let at = at.index(der.len());
            der[at] = *byte;
        }
        if let Some(cut) = cut {
            der.truncate(cut.index(der.len()) + 1);
        }
        let text = format!("1|1|unix|/tmp/p|grpc|{}", STANDARD_NO_PAD.encode(&der));
        if let Ok(line) = HandshakeLine::parse(&text) {
            prop_assert_eq!(line.server_cert(), (text.len() - 21 >= 51).then_some(&der[..]));
        }
        check_any(&text)?;
    }

    /// Every line a plugin prints parses back to the same line (surrounding
    /// white space and CR/LF ignored); `new` refuses exactly the addresses
    /// a line cannot hold; short certificate fields are ignored.
    #[test]
    fn valid_lines_round_trip(
        version in any::<u32>(),
        endpoint in arb_endpoint(),
        cert in arb_cert(),
        multiplex in any::<Option<bool>>(),
        before in prop::sample::select(vec!["", " ", "\t", "\r\n"]),
        after in prop::sample::select(vec!["", "\n", "\r\n", " \t\r\n"]),
    ) {
        let unprintable = endpoint.address().contains(['|', '\n', '\r']);
        let line = match build(version, endpoint.clone(), &cert, multiplex) {
            Ok(line) => line,
            Err(err) => {
                prop_assert!(unprintable, "{:?} refused: {}", endpoint, err);
                prop_assert_eq!(err.address, endpoint.address());
                return Ok(());
            }
        };
        prop_assert!(!unprintable, "{:?} accepted", endpoint);
        prop_assert_eq!(line.app_version(), version);
        prop_assert_eq!(line.endpoint(), &endpoint);
        prop_assert_eq!(line.protocol(), Protocol::Grpc);
        prop_assert_eq!(line.multiplex(), multiplex);

        let text = line.to_string();
        let fields: Vec<&str> = text.split('|').collect();
        prop_assert_eq!(fields.len(), if multiplex.is_some() { 7 } else { 6 });
        prop_assert_eq!(fields[2], endpoint.network());
        prop_assert_eq!(fields[3], endpoint.address());
        prop_assert!(!fields[5].ends_with('='), "the certificate is unpadded");

        let parsed = HandshakeLine::parse(&format!("{before}{text}{after}")).unwrap();
        match &cert {
            // go-plugin ignores a certificate field of 50 characters or fewer.
            Cert::Short(_) => {
                prop_assert_eq!(parsed.server_cert(), None);
                let without = HandshakeLine::new(version, endpoint).unwrap();
                prop_assert_eq!(parsed, without.with_multiplex_opt(multiplex));
            }
            _ => {
                prop_assert_eq!(parsed.app_version(), line.app_version());
                prop_assert_eq!(parsed.endpoint(), line.endpoint());
                prop_assert_eq!(parsed.protocol(), line.protocol());
                prop_assert_eq!(parsed.server_cert(), line.server_cert());
                prop_assert_eq!(parsed.multiplex(), line.multiplex());
                prop_assert_eq!(&parsed, &line);
                prop_assert_eq!(parsed.to_string(), text);
            }
        }
    }
}

/// `with_multiplex` for an optional value.
trait WithMultiplexOpt {
    fn with_multiplex_opt(self, multiplex: Option<bool>) -> Self;
}

impl WithMultiplexOpt for HandshakeLine {
    fn with_multiplex_opt(self, multiplex: Option<bool>) -> Self {
        match multiplex {
            Some(m) => self.with_multiplex(m),
            None => self,
        }
    }
}

/// go-plugin 1.0.1's line is the seed: it parses, prints back byte for
/// byte, and passes a host's checks.
#[test]
fn go_plugin_line_round_trips() {
    let line = HandshakeLine::parse(GO_LINE).unwrap();
    assert_eq!(line.to_string(), GO_LINE.trim_end());
    assert_eq!(line.app_version(), 1);
    assert_eq!(line.endpoint().network(), "unix");
    assert_eq!(line.protocol(), Protocol::Grpc);
    assert_eq!(line.multiplex(), None);
    line.check(&[1], &[Protocol::Grpc]).unwrap();
    // Every prefix and every single-character deletion parses or fails
    // cleanly.
    let chars: Vec<char> = GO_LINE.chars().collect();
    for n in 0..=chars.len() {
        let prefix: String = chars[..n].iter().collect();
        let _ = HandshakeLine::parse(&prefix);
        let mut deleted = chars.clone();
        if n < chars.len() {
            deleted.remove(n);
            let _ = HandshakeLine::parse(&deleted.into_iter().collect::<String>());
        }
    }
}
