//! Property tests for `Endpoint` parsing (issue "Hardening"): no input
//! makes `str::parse` or `Endpoint::from_network` panic, errors quote the
//! input, and every endpoint built from valid parts prints a canonical form
//! that parses back to the same endpoint.
//!
//! Cases per property: `PROPTEST_CASES` when set, else `prop_support::CASES`. Failing
//! seeds are kept in `tests/proptest-regressions/prop_endpoint.txt` (only
//! written when a property fails; replayed first on later runs).

mod prop_support;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use rpcplugin::Endpoint;
use rpcplugin::transport::{EndpointError, Host};

/// Where failing seeds are kept.
const SEEDS: &str = "tests/proptest-regressions/prop_endpoint.txt";

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

/// Any text: arbitrary unicode (NUL and line breaks included), text heavy in
/// the characters the parser splits on, scheme-prefixed text, and very long
/// text.
fn arb_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::collection::vec(any::<char>(), 0..48).prop_map(String::from_iter),
        3 => "[\\[\\]:|/.\\\\a-zA-Z0-9_\\- \\x00\\n\\r%@éß８٣]{0,40}",
        3 => (
            prop::sample::select(vec![
                "", "unix:", "unix:/", "unix://", "unix:///", "UNIX:", "tcp://", "tcp:", "tcp:///",
                "http://", "://", "[", "[::1]", "[::1]:", "//", "./", "../", ":", "::",
            ]),
            "[\\[\\]:/.a-f0-9 |]{0,24}",
            prop::sample::select(vec![
                "", ":", ":0", ":65535", ":65536", ":+1", ":-1", ":８０", "]", "]:80",
            ]),
        )
            .prop_map(|(a, b, c)| format!("{a}{b}{c}")),
        4 => arb_near_valid(),
        1 => "[a:\\[\\]/|.0-9]{1000,4000}",
        1 => prop::collection::vec(any::<char>(), 1000..3000).prop_map(String::from_iter),
    ]
}

/// Text close to a TCP endpoint: an optional scheme, a host (name, IPv4,
/// IPv6 with or without brackets, junk) and a port (valid, too large,
/// signed, other scripts' digits, missing).
fn arb_near_valid() -> impl Strategy<Value = String> {
    let host = prop_oneof![
        3 => arb_hostname(),
        2 => any::<Ipv4Addr>().prop_map(|ip| ip.to_string()),
        2 => any::<Ipv6Addr>().prop_map(|ip| format!("[{ip}]")),
        1 => any::<Ipv6Addr>().prop_map(|ip| ip.to_string()),
        1 => prop::sample::select(vec![
            "", "[", "]", "[]", "[::1", "::1]", "[1.2.3.4]", "a..b", ".a", "a.", "-", "unix",
            "UNIX", "tcp", "a b", "é.com", "localhost.",
        ])
        .prop_map(str::to_owned),
        1 => "[a-z0-9.\\-_]{60,70}(\\.[a-z]{1,3}){0,4}",
    ];
    let port = prop_oneof![
        4 => any::<u16>().prop_map(|p| format!(":{p}")),
        1 => "(:[0-9]{5,12}|:[+\\-][0-9]{1,3}|:|:[٠-٩０-９]{1,2}|:[0-9]{1,3}[a-z]|)",
    ];
    (
        prop::sample::select(vec!["", "", "tcp://", "TCP://", "tcp:/", "unix:"]),
        host,
        port,
    )
        .prop_map(|(scheme, host, port)| format!("{scheme}{host}{port}"))
}

/// One component of a unix socket path: plain names, `.` and `..`, and any
/// other characters but `/` (unicode, NUL, `|`, `:`, brackets, line breaks).
fn arb_segment() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z0-9_.\\-]{1,12}",
        1 => Just(".".to_owned()),
        1 => Just("..".to_owned()),
        2 => "[^/]{1,8}",
        1 => "(unix:|tcp://|\\[::1\\]:|host:)[a-z0-9:]{0,6}",
    ]
}

/// A non-empty unix socket path, absolute or relative, with repeated,
/// leading and trailing slashes.
fn arb_unix_path() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        prop::collection::vec((arb_segment(), 1usize..=3), 1..6),
        any::<bool>(),
    )
        .prop_map(|(absolute, segments, trailing)| {
            let mut path = String::new();
            if absolute {
                path.push('/');
            }
            for (i, (segment, slashes)) in segments.iter().enumerate() {
                if i > 0 {
                    path.push_str(&"/".repeat(*slashes));
                }
                path.push_str(segment);
            }
            if trailing {
                path.push('/');
            }
            path
        })
}

/// A DNS name of 1 to 4 labels (any case, digits, `-`, `_`).
fn arb_hostname() -> impl Strategy<Value = String> {
    prop::collection::vec("[a-zA-Z0-9_\\-]{1,20}", 1..5).prop_map(|labels| labels.join("."))
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Checks the canonical-form contract of one endpoint.
fn check_canonical(ep: &Endpoint) -> Result<(), TestCaseError> {
    prop_assert!(matches!(ep.network(), "unix" | "tcp"));
    // go-plugin's two handshake fields always give the endpoint back.
    let from_fields = Endpoint::from_network(ep.network(), &ep.address());
    prop_assert_eq!(from_fields.as_ref(), Ok(ep), "address {:?}", ep.address());
    let shown = ep.to_string();
    let back: Result<Endpoint, _> = shown.parse();
    prop_assert_eq!(back.as_ref(), Ok(ep), "Display gave {:?}", shown);
    // Printing is canonical: printing the parsed endpoint changes nothing.
    prop_assert_eq!(back.unwrap().to_string(), shown);
    Ok(())
}

/// Checks that an error prints something and quotes `quoted`.
fn check_error(err: &EndpointError, quoted: &str) -> Result<(), TestCaseError> {
    let text = err.to_string();
    prop_assert!(!text.is_empty());
    prop_assert!(
        text.contains(&format!("{quoted:?}")),
        "error {:?} does not quote {:?}",
        text,
        quoted
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(prop_support::config(SEEDS, prop_support::CASES))]

    /// Any text: an endpoint that prints canonically, or an error quoting
    /// the text; never a panic.
    #[test]
    fn parse_never_panics(input in arb_text()) {
        match input.parse::<Endpoint>() {
            Ok(ep) => check_canonical(&ep)?,
            Err(err) => check_error(&err, &input)?,
        }
    }

    /// go-plugin's two fields, any text in each: never a panic; the network
    /// is kept; errors quote the address (or, for an unknown network, the
    /// network).
    #[test]
    fn from_network_never_panics(
        network in prop_oneof![
            4 => prop::sample::select(vec!["unix", "tcp"]).prop_map(str::to_owned),
            1 => prop::sample::select(vec!["", "udp", "TCP", "unix:", "tcp4", "unixgram"])
                .prop_map(str::to_owned),
            1 => arb_text(),
        ],
        address in arb_text(),
    ) {
        match Endpoint::from_network(&network, &address) {
            Ok(ep) => {
                prop_assert_eq!(ep.network(), network.as_str());
                if network == "unix" {
                    let direct = Endpoint::unix(&address).unwrap();
                    prop_assert_eq!(&ep, &direct);
                }
                check_canonical(&ep)?;
            }
            Err(err) if network == "unix" || network == "tcp" => check_error(&err, &address)?,
            Err(err) => {
                let unknown = matches!(
                    &err,
                    EndpointError::UnknownScheme { scheme, .. } if *scheme == network
                );
                prop_assert!(unknown, "{:?}", err);
                check_error(&err, &format!("{network}|{address}"))?;
            }
        }
    }

    /// Unix paths round-trip, normalized: no `.` component, no repeated or
    /// trailing slash; `..` kept.
    #[test]
    fn unix_paths_round_trip(path in arb_unix_path()) {
        // The root directory is refused (see the regression test below).
        let ep = match Endpoint::unix(&path) {
            Err(EndpointError::RootPath { .. }) => return Ok(()),
            other => other.unwrap(),
        };
        let normal = ep.unix_path().unwrap().to_path_buf();
        prop_assert_eq!(ep.network(), "unix");
        prop_assert_eq!(ep.address(), normal.to_string_lossy());
        // A unix path on every platform: absolute when it starts at '/'.
        prop_assert_eq!(normal.to_string_lossy().starts_with('/'), path.starts_with('/'));
        let text = normal.to_str().unwrap();
        prop_assert!(!text.ends_with('/'), "{:?}", text);
        prop_assert!(!text.contains("//"), "{:?}", text);
        prop_assert!(text == "." || !text.split('/').any(|c| c == "."), "{:?}", text);
        // '/' separates on every platform (a `\\` is a character).
        let dotdots = |p: &Path| p.to_string_lossy().split('/').filter(|c| *c == "..").count();
        prop_assert_eq!(dotdots(&normal), dotdots(&PathBuf::from(&path)));
        // Normalizing is idempotent.
        prop_assert_eq!(Endpoint::unix(&normal).unwrap(), ep.clone());
        // A path written with a leading `/` or through `unix:` parses to it.
        if path.starts_with('/') {
            prop_assert_eq!(path.parse::<Endpoint>(), Ok(ep.clone()));
        }
        prop_assert_eq!(format!("unix:{path}").parse::<Endpoint>(), Ok(ep.clone()));
        check_canonical(&ep)?;
    }

    /// IPv4 host:port round-trips, in every written form.
    #[test]
    fn ipv4_round_trips(ip in any::<Ipv4Addr>(), port in any::<u16>()) {
        let ep = Endpoint::tcp(SocketAddr::from((ip, port)));
        prop_assert_eq!(ep.to_string(), format!("{ip}:{port}"));
        prop_assert_eq!(ep.address(), format!("{ip}:{port}"));
        prop_assert_eq!(format!("tcp://{ip}:{port}").parse::<Endpoint>(), Ok(ep.clone()));
        prop_assert_eq!(format!("{ip}:{port:05}").parse::<Endpoint>(), Ok(ep.clone()));
        prop_assert_eq!(Endpoint::tcp_host(&ip.to_string(), port), Ok(ep.clone()));
        check_canonical(&ep)?;
    }

    /// IPv6 `[addr]:port` round-trips; unbracketed IPv6 with a port is refused.
    #[test]
    fn ipv6_round_trips(ip in any::<Ipv6Addr>(), port in any::<u16>()) {
        let ep = Endpoint::tcp(SocketAddr::from((ip, port)));
        prop_assert_eq!(ep.to_string(), format!("[{ip}]:{port}"));
        prop_assert_eq!(format!("tcp://[{ip}]:{port}").parse::<Endpoint>(), Ok(ep.clone()));
        prop_assert_eq!(Endpoint::tcp_host(&ip.to_string(), port), Ok(ep.clone()));
        prop_assert_eq!(Endpoint::tcp_host(&format!("[{ip}]"), port), Ok(ep.clone()));
        let unbracketed = format!("{ip}:{port}");
        let err = unbracketed.parse::<Endpoint>().unwrap_err();
        check_error(&err, &unbracketed)?;
        check_canonical(&ep)?;
    }

    /// DNS names round-trip, lowercased.
    #[test]
    fn hostnames_round_trip(name in arb_hostname(), port in any::<u16>()) {
        let ep = Endpoint::tcp_host(&name, port).unwrap();
        match ep.tcp_parts().unwrap() {
            (Host::Name(host), p) => {
                prop_assert_eq!(host, &name.to_ascii_lowercase());
                prop_assert_eq!(p, port);
            }
            // Digit-only labels can spell an IPv4 address.
            (Host::Ip(ip), _) => prop_assert_eq!(ip.to_string(), name.as_str()),
            (other, _) => prop_assert!(false, "unexpected host {:?}", other),
        }
        prop_assert_eq!(format!("{name}:{port}").parse::<Endpoint>(), Ok(ep.clone()));
        prop_assert_eq!(format!("tcp://{name}:{port}").parse::<Endpoint>(), Ok(ep.clone()));
        check_canonical(&ep)?;
    }

    /// Ports: digits only, at most 65535; anything else is an error that
    /// quotes the input.
    #[test]
    fn ports_are_checked(
        name in arb_hostname(),
        port in prop_oneof![
            "[0-9]{1,5}",
            "[0-9]{6,30}",
            "[+\\- ]?[0-9]{0,5}[a-z ]?",
            "[٠-٩０-９]{1,3}",
        ],
    ) {
        // `unix:...` is the unix scheme, not a host named unix.
        prop_assume!(!name.eq_ignore_ascii_case("unix"));
        let input = format!("{name}:{port}");
        let valid = !port.is_empty()
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u16>().is_ok();
        match input.parse::<Endpoint>() {
            Ok(ep) => {
                prop_assert!(valid, "{:?} accepted", input);
                prop_assert_eq!(ep.tcp_parts().unwrap().1, port.parse::<u16>().unwrap());
            }
            Err(err) => {
                prop_assert!(!valid, "{:?} refused: {}", input, err);
                let port_error = matches!(
                    err,
                    EndpointError::PortNotDigits { .. } | EndpointError::PortOutOfRange { .. }
                );
                prop_assert!(port_error, "{:?}", err);
                check_error(&err, &input)?;
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Bugs the properties above found, fixed; kept as regression tests.
// ---------------------------------------------------------------------------

/// `"/"` (also `"//"`, `"/."`, `"unix:/."`) parsed to the unix endpoint
/// `/`, which printed as `unix:/`, which did not parse. `/` is a
/// directory, never a socket: it is refused everywhere, naming the input.
#[test]
fn root_path_is_refused() {
    for input in ["/", "//", "/.", "unix:/.", "unix:///."] {
        let err = input.parse::<Endpoint>().unwrap_err();
        assert!(
            matches!(err, EndpointError::RootPath { .. }),
            "{input:?}: {err:?}"
        );
        assert!(err.to_string().contains(&format!("{input:?}")), "{err}");
    }
    if let Ok(ep) = Endpoint::unix("/") {
        assert_eq!(ep.to_string().parse::<Endpoint>(), Ok(ep));
    }
}

/// An absolute or `./` path that contains `://` anywhere (`/tmp/a://b`,
/// `./x://y`) is refused as an unknown scheme (`"/tmp/a"`), because
/// `FromStr` looks for `://` before it looks at the leading `/` or `.`.
/// The table in `Endpoint`'s docs says such text is a unix socket path;
/// `unix:/tmp/a://b` and `Endpoint::unix("/tmp/a://b")` do work.
#[test]
fn absolute_path_with_scheme_separator_is_a_path() {
    for input in ["/tcp://", "/tmp/a://b", "./x://y"] {
        let ep = input.parse::<Endpoint>();
        assert_eq!(ep, Endpoint::unix(input), "{input:?}");
    }
}

/// A TCP endpoint whose host is named `unix` (`tcp://unix:80`,
/// `UNIX:80`, `Endpoint::tcp_host("unix", 80)`) prints as `unix:80`, which
/// parses as the unix socket at the relative path `80`.
#[test]
fn tcp_host_named_unix_round_trips() {
    for input in ["tcp://unix:80", "tcp://UNIX:8000"] {
        let ep: Endpoint = input.parse().unwrap();
        assert_eq!(ep.network(), "tcp");
        let shown = ep.to_string();
        assert_eq!(shown.parse::<Endpoint>(), Ok(ep), "{input:?} -> {shown:?}");
    }
    let ep = Endpoint::tcp_host("unix", 80).unwrap();
    assert_eq!(ep.to_string().parse::<Endpoint>(), Ok(ep));
}
