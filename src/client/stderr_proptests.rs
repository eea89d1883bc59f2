//! Property tests of the stderr line parser (issue "Hardening"): no line
//! makes it panic; hclog JSON lines give back their level, message, module
//! and fields; other lines are kept as written.
//!
//! Cases per property: `PROPTEST_CASES` when set, else `CASES`. Failing
//! seeds are kept in `tests/proptest-regressions/client_stderr.txt` (written
//! only when a property fails).
use super::*;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::FileFailurePersistence;

const CASES: u32 = 1000;

fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = CASES;
    }
    config.failure_persistence = Some(Box::new(FileFailurePersistence::Direct(
        "tests/proptest-regressions/client_stderr.txt",
    )));
    config
}

const LEVELS: [(&str, Level); 5] = [
    ("trace", Level::TRACE),
    ("debug", Level::DEBUG),
    ("info", Level::INFO),
    ("warn", Level::WARN),
    ("error", Level::ERROR),
];

/// go-plugin's layout, checked character by character: an independent
/// statement of what `valid_timestamp` accepts.
fn is_go_plugin_timestamp(ts: &str) -> bool {
    const HEAD: &[u8; 26] = b"dddd-dd-ddTdd:dd:dd.dddddd";
    let b = ts.as_bytes();
    let matches = |pattern: &[u8], text: &[u8]| {
        pattern.len() == text.len()
            && pattern.iter().zip(text).all(|(p, c)| match p {
                b'd' => c.is_ascii_digit(),
                b's' => *c == b'+' || *c == b'-',
                _ => p == c,
            })
    };
    b.len() >= 26
        && matches(HEAD, &b[..26])
        && (matches(b"Z", &b[26..]) || matches(b"sdd:dd", &b[26..]))
}

/// Valid timestamps: any digits (not only real dates), `Z` or an offset.
fn arb_valid_timestamp() -> impl Strategy<Value = String> {
    (
        "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}",
        prop_oneof![Just("Z".to_owned()), "[+-][0-9]{2}:[0-9]{2}"],
    )
        .prop_map(|(head, zone)| head + &zone)
}

/// Near-valid timestamps in ASCII: a valid one with characters
/// deleted, inserted, replaced, or cut short.
fn arb_ascii_timestamp() -> impl Strategy<Value = String> {
    let edit = (0..4u8, any::<Index>(), "[0-9:.TZ+\\- a]");
    (arb_valid_timestamp(), prop::collection::vec(edit, 0..3)).prop_map(|(ts, edits)| {
        let mut s = ts;
        for (kind, at, c) in edits {
            let len = s.len();
            match kind {
                0 if len > 0 => {
                    s.remove(at.index(len));
                }
                1 => s.insert_str(at.index(len + 1), &c),
                2 if len > 0 => s.replace_range(at.index(len)..at.index(len) + 1, &c),
                3 => s.truncate(at.index(len + 1)),
                _ => {}
            }
        }
        s
    })
}

/// Timestamps with non-ASCII characters anywhere (on either side of
/// byte 26 included), and arbitrary text of about the right length.
fn arb_unicode_timestamp() -> impl Strategy<Value = String> {
    prop_oneof![
        (
            arb_valid_timestamp(),
            any::<Index>(),
            any::<char>(),
            any::<bool>()
        )
            .prop_map(|(ts, at, c, replace)| {
                let mut chars: Vec<char> = ts.chars().collect();
                let i = at.index(chars.len());
                if replace {
                    chars[i] = c;
                } else {
                    chars.insert(i, c);
                }
                chars.into_iter().collect()
            }),
        (arb_valid_timestamp(), 20..28usize, "[^\\x00-\\x7f]{1,3}")
            .prop_map(|(ts, cut, tail)| format!("{}{tail}", &ts[..cut])),
        prop::collection::vec(any::<char>(), 20..34).prop_map(String::from_iter),
    ]
}

/// A JSON value for an hclog field.
fn arb_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<String>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        Just(Value::Null),
        prop::collection::vec(any::<u8>(), 0..3).prop_map(Value::from),
    ]
}

/// An hclog JSON line from its parts.
fn hclog_line(
    level: &str,
    message: &Value,
    timestamp: &str,
    module: Option<&str>,
    extra: &[(String, Value)],
) -> String {
    let mut map = Map::new();
    map.insert("@level".into(), level.into());
    map.insert("@message".into(), message.clone());
    map.insert("@timestamp".into(), timestamp.into());
    if let Some(module) = module {
        map.insert("@module".into(), module.into());
    }
    for (k, v) in extra {
        map.insert(k.clone(), v.clone());
    }
    Value::Object(map).to_string()
}

/// What must hold for any line: no panic; `line_kind` agrees with
/// `parse_line`; a line that is not hclog JSON is kept as written.
fn check_any(line: &str) -> Result<(), TestCaseError> {
    let parsed = parse_line(line);
    let hclog = parse_hclog(line);
    prop_assert_eq!(hclog.is_some(), line_kind(line) == "hclog JSON");
    match hclog {
        Some(entry) => prop_assert_eq!(parsed, entry),
        None => {
            prop_assert_eq!(&parsed.message, line);
            prop_assert_eq!(parsed.module, None);
            prop_assert!(parsed.fields.is_empty());
            let tagged = ["[TRACE]", "[DEBUG]", "[INFO]", "[WARN]", "[ERROR]"]
                .iter()
                .any(|t| line.trim_start().starts_with(t));
            prop_assert_eq!(line_kind(line), if tagged { "[LEVEL]" } else { "plain" });
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    /// Arbitrary lines, JSON-shaped lines and tagged lines.
    #[test]
    fn parse_line_never_panics(
        line in prop_oneof![
            prop::collection::vec(any::<char>(), 0..80).prop_map(String::from_iter),
            "[ \\t]{0,2}(\\[(TRACE|DEBUG|INFO|WARN|ERROR|info)\\]|panic:|thread ')?.{0,20}",
            "[{}\\[\\]\":,@a-z0-9 .\\\\-]{0,80}",
            (
                prop::sample::select(vec![
                    "trace", "debug", "info", "warn", "error", "INFO", "warning", "",
                ]),
                arb_value(),
                prop_oneof![arb_valid_timestamp(), arb_ascii_timestamp()],
                prop::option::of(".{0,8}"),
                prop::collection::vec(("[@a-z]{1,8}", arb_value()), 0..4),
            )
                .prop_map(|(level, message, ts, module, extra)| {
                    hclog_line(level, &message, &ts, module.as_deref(), &extra)
                }),
            prop::collection::vec(any::<char>(), 2000..6000).prop_map(String::from_iter),
        ],
    ) {
        check_any(&line)?;
    }

    /// ASCII timestamps: accepted exactly when they follow go-plugin's
    /// layout.
    #[test]
    fn ascii_timestamps_are_checked(
        ts in prop_oneof![arb_valid_timestamp(), arb_ascii_timestamp(), "[ -~]{0,40}"],
    ) {
        prop_assert_eq!(valid_timestamp(&ts), is_go_plugin_timestamp(&ts), "{:?}", ts);
    }

    /// Timestamps with non-ASCII characters: refused, never a panic.
    #[test]
    fn unicode_timestamps_never_panic(ts in arb_unicode_timestamp()) {
        prop_assert_eq!(valid_timestamp(&ts), is_go_plugin_timestamp(&ts), "{:?}", ts);
        let line = hclog_line("info", &Value::from("m"), &ts, None, &[]);
        check_any(&line)?;
    }

    /// An hclog JSON line gives back its level, message (a non-string
    /// message as JSON text), module and other fields (strings as is,
    /// other values as JSON text), with white space around the line.
    #[test]
    fn hclog_lines_round_trip(
        level in 0..5usize,
        message in prop_oneof![3 => any::<String>().prop_map(Value::from), 1 => arb_value()],
        ts in arb_valid_timestamp(),
        module in prop::option::of(any::<String>()),
        extra in prop::collection::btree_map("[a-z_][a-z0-9_.@]{0,10}", arb_value(), 0..5),
        pad in prop::sample::select(vec!["", " ", "\t", "\r"]),
    ) {
        let (name, lvl) = LEVELS[level];
        let extra: Vec<(String, Value)> = extra.into_iter().collect();
        let line = hclog_line(name, &message, &ts, module.as_deref(), &extra);
        let parsed = parse_line(&format!("{pad}{line}{pad}"));
        prop_assert_eq!(parsed.level, lvl);
        let text = match &message {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        prop_assert_eq!(parsed.message, text);
        prop_assert_eq!(parsed.module, module);
        let mut fields = parsed.fields;
        fields.sort();
        let mut expected: Vec<(String, String)> = extra
            .iter()
            .map(|(k, v)| {
                let text = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), text)
            })
            .collect();
        expected.sort();
        prop_assert_eq!(fields, expected);
        prop_assert_eq!(line_kind(&line), "hclog JSON");
    }

    /// Every timestamp our own log layer writes (1970 to 9999) is one
    /// that a host of this crate accepts.
    #[test]
    fn our_timestamps_are_accepted(
        secs in 0u64..253_402_300_800,
        nanos in 0u32..1_000_000_000,
    ) {
        let at = std::time::UNIX_EPOCH + std::time::Duration::new(secs, nanos);
        let ts = crate::log::timestamp(at);
        prop_assert!(valid_timestamp(&ts), "{}", ts);
        prop_assert!(is_go_plugin_timestamp(&ts), "{}", ts);
    }
}

/// The panic the properties found, as a plain test.
#[test]
fn multibyte_character_at_byte_26_is_refused() {
    // 25 ASCII bytes, then `é` (bytes 25..27).
    let ts = "2026-11-22T02:29:14.12345é";
    assert!(!valid_timestamp(ts));
    let line = format!(r#"{{"@level":"info","@message":"x","@timestamp":"{ts}"}}"#);
    assert_eq!(parse_line(&line).level, Level::DEBUG);
    assert_eq!(parse_line(&line).message, line);
    assert_eq!(line_kind(&line), "plain");
}
