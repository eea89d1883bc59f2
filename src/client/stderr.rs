//! The plugin's stderr, as a host re-logs it: hclog JSON lines become
//! `tracing` events at their level with their fields; other lines by their
//! `[LEVEL]` tag, Go's `panic:` at error, the rest at debug.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use tokio::io::AsyncRead;
use tracing::Level;

use super::pipe::{LineReader, MAX_LOGGED_LINE, printable};

/// Lines of the plugin's stderr kept for error reports: enough to show a
/// panic message and its first frames.
const TAIL_LINES: usize = 20;

/// The longest stderr line kept whole for an error report, in bytes: a Go
/// panic's lines are under 200; the cap bounds the tail to 20 KiB.
const TAIL_LINE_BYTES: usize = 1024;

/// One stderr line, understood.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LogLine {
    pub(crate) level: Level,
    pub(crate) message: String,
    pub(crate) module: Option<String>,
    /// Other keys of an hclog JSON line, as `key=value` text.
    pub(crate) fields: Vec<(String, String)>,
}

/// Parses one line of a plugin's stderr.
pub(crate) fn parse_line(line: &str) -> LogLine {
    if let Some(entry) = parse_hclog(line) {
        return entry;
    }
    let trimmed = line.trim_start();
    let tagged = [
        ("[TRACE]", Level::TRACE),
        ("[DEBUG]", Level::DEBUG),
        ("[INFO]", Level::INFO),
        ("[WARN]", Level::WARN),
        ("[ERROR]", Level::ERROR),
    ];
    let level = tagged
        .iter()
        .find(|(tag, _)| trimmed.starts_with(tag))
        .map(|(_, level)| *level)
        .unwrap_or(
            if trimmed.starts_with("panic:") || trimmed.starts_with("thread '") {
                // Go's and Rust's panic messages.
                Level::ERROR
            } else {
                Level::DEBUG
            },
        );
    LogLine {
        level,
        message: line.to_owned(),
        module: None,
        fields: Vec::new(),
    }
}

/// What kind of log line a plugin wrote on stderr: `"hclog JSON"`,
/// `"[LEVEL]"` (a tagged plain line) or `"plain"`.
#[cfg(any(feature = "probe", test))]
pub(crate) fn line_kind(line: &str) -> &'static str {
    if parse_hclog(line).is_some() {
        return "hclog JSON";
    }
    let trimmed = line.trim_start();
    let tags = ["[TRACE]", "[DEBUG]", "[INFO]", "[WARN]", "[ERROR]"];
    if tags.iter().any(|tag| trimmed.starts_with(tag)) {
        "[LEVEL]"
    } else {
        "plain"
    }
}

/// An hclog JSON line: an object with `@level`, `@message` and an
/// `@timestamp` in go-plugin's layout. Anything else is not one.
fn parse_hclog(line: &str) -> Option<LogLine> {
    let Value::Object(mut map) = serde_json::from_str::<Value>(line.trim()).ok()? else {
        return None;
    };
    let level = match map.remove("@level")?.as_str()? {
        "trace" => Level::TRACE,
        "debug" => Level::DEBUG,
        "info" => Level::INFO,
        "warn" => Level::WARN,
        "error" => Level::ERROR,
        _ => return None,
    };
    let message = match map.remove("@message")? {
        Value::String(s) => s,
        other => other.to_string(),
    };
    if !valid_timestamp(map.remove("@timestamp")?.as_str()?) {
        return None;
    }
    let module = map
        .remove("@module")
        .and_then(|m| m.as_str().map(str::to_owned));
    Some(LogLine {
        level,
        message,
        module,
        fields: fields(map),
    })
}

fn fields(map: Map<String, Value>) -> Vec<(String, String)> {
    map.into_iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            (k, text)
        })
        .collect()
}

/// go-plugin's layout `2006-01-02T15:04:05.000000Z07:00`: exactly six
/// fractional digits, then `Z` or `±hh:mm`.
fn valid_timestamp(ts: &str) -> bool {
    let b = ts.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    let head = b.len() >= 27
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[19] == b'.'
        && digits(20..26);
    let zone = ts.get(26..).unwrap_or("");
    let zone_ok = zone == "Z"
        || (zone.len() == 6
            && (zone.starts_with('+') || zone.starts_with('-'))
            && zone.as_bytes()[3] == b':'
            && zone
                .bytes()
                .enumerate()
                .all(|(i, c)| i == 0 || i == 3 || c.is_ascii_digit()));
    head && zone_ok
}

/// Emits a parsed line as a `tracing` event under target `rpcplugin::plugin`.
pub(crate) fn emit(plugin: &str, line: &LogLine) {
    let module = line.module.as_deref().unwrap_or("");
    let fields = line
        .fields
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ");
    macro_rules! event {
        ($level:expr) => {
            tracing::event!(target: "rpcplugin::plugin", $level, plugin, module = %printable(module), fields = %printable(&fields), "{}", printable(&line.message))
        };
    }
    match line.level {
        Level::TRACE => event!(Level::TRACE),
        Level::DEBUG => event!(Level::DEBUG),
        Level::INFO => event!(Level::INFO),
        Level::WARN => event!(Level::WARN),
        Level::ERROR => event!(Level::ERROR),
    }
}

/// The last lines of the plugin's stderr, for error reports.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tail(Arc<Mutex<VecDeque<String>>>);

impl Tail {
    /// Keeps `line`, cut to [`TAIL_LINE_BYTES`], its control characters
    /// escaped.
    fn push(&self, line: &str) {
        let mut end = line.len().min(TAIL_LINE_BYTES);
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        let mut kept = printable(&line[..end]).into_owned();
        if end < line.len() {
            kept.push_str(&format!("… ({} more bytes)", line.len() - end));
        }
        let mut lines = self.0.lock().expect("tail lock");
        if lines.len() == TAIL_LINES {
            lines.pop_front();
        }
        lines.push_back(kept);
    }

    /// The kept lines, oldest first.
    pub(crate) fn lines(&self) -> Vec<String> {
        self.0.lock().expect("tail lock").iter().cloned().collect()
    }
}

/// Reads the plugin's stderr to its end, whatever bytes it holds,
/// re-logging every line and keeping the last ones in `tail`.
pub(crate) async fn relog(plugin: String, stderr: impl AsyncRead + Unpin, tail: Tail) {
    let mut lines = LineReader::new(stderr, MAX_LOGGED_LINE);
    while let Some(line) = lines.next_line().await {
        let line = line.lossy();
        tail.push(&line);
        emit(&plugin, &parse_line(&line));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hclog_json_lines() {
        let line = r#"{"@level":"debug","@message":"plugin address","@module":"goplugin","@timestamp":"2026-11-22T02:29:14.127443Z","address":"/tmp/plugin1","network":"unix"}"#;
        let parsed = parse_line(line);
        assert_eq!(parsed.level, Level::DEBUG);
        assert_eq!(parsed.message, "plugin address");
        assert_eq!(parsed.module.as_deref(), Some("goplugin"));
        assert_eq!(
            parsed.fields,
            vec![
                ("address".into(), "/tmp/plugin1".into()),
                ("network".into(), "unix".into())
            ]
        );
        let warn =
            r#"{"@level":"warn","@message":"w","@timestamp":"2026-11-22T02:29:14.127443+01:00"}"#;
        assert_eq!(parse_line(warn).level, Level::WARN);
    }

    #[test]
    fn lines_that_are_not_hclog_fall_back_to_tags() {
        for (line, level) in [
            ("[INFO] started", Level::INFO),
            ("  [ERROR] oops", Level::ERROR),
            ("[WARN] careful", Level::WARN),
            ("panic: runtime error: index out of range", Level::ERROR),
            ("thread 'main' panicked at src/main.rs:1:1", Level::ERROR),
            ("plain text", Level::DEBUG),
            // JSON, but `warning` is not an hclog level.
            (
                r#"{"@level":"warning","@message":"x","@timestamp":"2026-11-22T02:29:14.127443Z"}"#,
                Level::DEBUG,
            ),
            // A timestamp with three fractional digits is not go-plugin's layout.
            (
                r#"{"@level":"error","@message":"x","@timestamp":"2026-11-22T02:29:14.127Z"}"#,
                Level::DEBUG,
            ),
            (r#"["@level"]"#, Level::DEBUG),
        ] {
            let parsed = parse_line(line);
            assert_eq!(parsed.level, level, "{line}");
            assert_eq!(parsed.message, line);
        }
    }

    #[test]
    fn our_own_log_lines_parse_back() {
        let ts = crate::log::timestamp(std::time::SystemTime::now());
        assert!(valid_timestamp(&ts), "{ts}");
        for bad in [
            "",
            "2026-11-22T02:29:14Z",
            "2026-11-22T02:29:14.1234567Z",
            "2026-11-22T02:29:14.123456+0100",
        ] {
            assert!(!valid_timestamp(bad), "{bad}");
        }
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let tail = Tail::default();
        for i in 0..50 {
            tail.push(&format!("line {i}"));
        }
        let lines = tail.lines();
        assert_eq!(lines.len(), TAIL_LINES);
        assert_eq!(lines.last().unwrap(), "line 49");
        tail.push(&format!("\u{1b}[2J{}", "é".repeat(TAIL_LINE_BYTES)));
        let last = tail.lines().pop().unwrap();
        assert!(last.starts_with("\\u{1b}[2Jé"), "{last}");
        assert!(last.ends_with("… (1028 more bytes)"), "{last}");
    }
}

#[cfg(test)]
#[path = "stderr_proptests.rs"]
mod proptests;
