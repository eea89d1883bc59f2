//! hclog-compatible logs: a `tracing` layer that writes go-plugin's JSON
//! log lines, which a go-plugin host re-logs at the right level with their
//! fields.
//!
//! A line looks like
//! `{"@level":"info","@message":"listening","@module":"kv_plugin","@timestamp":"2026-11-22T02:29:14.127443Z","address":"/tmp/plugin1"}`:
//! `@level` is `trace|debug|info|warn|error`, `@timestamp` has exactly six
//! fractional digits, and the event's fields become keys.

pub use crate::chain::Chain;
use std::fmt;
use std::io::{self, Write};
use std::sync::Mutex;
use std::time::SystemTime;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

/// The filter when [`RPCPLUGIN_LOG`](crate::env::RPCPLUGIN_LOG) is unset: go-plugin hosts log plugins at
/// info and above by default too.
const DEFAULT_FILTER: &str = "info";

/// A failure to set up logging.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// The original stderr could not be duplicated.
    #[error("cannot open stderr for logging")]
    Stderr {
        /// The operating system's error.
        source: io::Error,
    },
    /// [`RPCPLUGIN_LOG`](crate::env::RPCPLUGIN_LOG) holds a filter that does not parse.
    #[error("RPCPLUGIN_LOG={value:?} is not a valid log filter")]
    Filter {
        /// The variable's value.
        value: String,
        /// The parser's error.
        source: tracing_subscriber::filter::ParseError,
    },
    /// A global subscriber was already installed.
    #[error("a global tracing subscriber is already installed")]
    AlreadyInstalled {
        /// tracing's error.
        source: tracing_subscriber::util::TryInitError,
    },
}

/// A `tracing` layer writing hclog JSON lines.
///
/// ```
/// use rpcplugin::log::HclogLayer;
/// use tracing_subscriber::prelude::*;
///
/// let layer = HclogLayer::new(std::io::sink()).module("my_plugin");
/// let _guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
/// tracing::info!(key = "value", "hello");
/// ```
pub struct HclogLayer {
    out: Mutex<Box<dyn Write + Send>>,
    module: Option<String>,
}

impl fmt::Debug for HclogLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HclogLayer")
            .field("module", &self.module)
            .finish_non_exhaustive()
    }
}

impl HclogLayer {
    /// Writes to `out`, one line per event.
    pub fn new(out: impl Write + Send + 'static) -> Self {
        HclogLayer {
            out: Mutex::new(Box::new(out)),
            module: None,
        }
    }

    /// Writes to this process's stderr as it is now. The descriptor is
    /// duplicated, so logs keep reaching the host's stderr reader after
    /// [`ServeConfig::serve`](crate::server::ServeConfig::serve) captures fd 2 for
    /// `GRPCStdio`, as go-plugin's plugins do.
    ///
    /// # Errors
    ///
    /// [`LogError::Stderr`] if fd 2 cannot be duplicated.
    pub fn stderr() -> Result<Self, LogError> {
        let file = crate::sys::duplicate(crate::sys::StdStream::Stderr)
            .map_err(|source| LogError::Stderr { source })?;
        Ok(Self::new(file))
    }

    /// Sets `@module` (hclog's logger name); by default each event's target.
    #[must_use]
    pub fn module(mut self, module: impl Into<String>) -> Self {
        self.module = Some(module.into());
        self
    }
}

/// Installs a global subscriber that writes hclog JSON lines to stderr,
/// filtered by [`RPCPLUGIN_LOG`](crate::env::RPCPLUGIN_LOG) (default `info`). Call it first thing in a
/// plugin's `main`.
///
/// # Errors
///
/// [`LogError`] when stderr cannot be duplicated, the filter does not parse,
/// or a subscriber is already installed.
pub fn init_logging(module: &str) -> Result<(), LogError> {
    let filter = match std::env::var(crate::env::RPCPLUGIN_LOG) {
        Ok(value) if !value.is_empty() => value
            .parse::<Targets>()
            .map_err(|source| LogError::Filter { value, source })?,
        _ => DEFAULT_FILTER.parse().expect("the default filter parses"),
    };
    let layer = HclogLayer::stderr()?.module(module);
    tracing_subscriber::registry()
        .with(filter)
        .with(layer)
        .try_init()
        .map_err(|source| LogError::AlreadyInstalled { source })
}

/// hclog's name for a level.
pub(crate) fn level_name(level: Level) -> &'static str {
    match level {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warn",
        Level::ERROR => "error",
    }
}

/// go-plugin's `@timestamp`: RFC 3339, UTC, exactly six fractional digits.
pub(crate) fn timestamp(at: SystemTime) -> String {
    humantime::format_rfc3339_micros(at).to_string()
}

#[derive(Default)]
struct Fields {
    message: Option<String>,
    map: Map<String, Value>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::from(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::from(format!("{value:?}")));
    }
}

impl Fields {
    fn put(&mut self, field: &Field, value: Value) {
        if field.name() == "message" {
            self.message = Some(match value {
                Value::String(s) => s,
                other => other.to_string(),
            });
        } else {
            self.map.insert(field.name().to_owned(), value);
        }
    }
}

/// One hclog JSON line (with its newline) for an event.
pub(crate) fn format_line(
    level: Level,
    module: &str,
    event: &Event<'_>,
    at: SystemTime,
) -> Vec<u8> {
    let mut fields = Fields::default();
    event.record(&mut fields);
    let mut map = fields.map;
    map.insert("@level".into(), Value::from(level_name(level)));
    map.insert(
        "@message".into(),
        Value::from(fields.message.unwrap_or_default()),
    );
    map.insert("@module".into(), Value::from(module));
    map.insert("@timestamp".into(), Value::from(timestamp(at)));
    let mut line = serde_json::to_vec(&Value::Object(map)).expect("JSON values serialize");
    line.push(b'\n');
    line
}

impl<S: Subscriber> Layer<S> for HclogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let module = self.module.as_deref().unwrap_or(meta.target());
        let line = format_line(*meta.level(), module, event, SystemTime::now());
        // One write per line, so that lines from several threads never
        // interleave (a pipe write of up to 4 KiB is atomic).
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = out.write_all(&line).and_then(|()| out.flush());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::{Duration, UNIX_EPOCH};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn capture(f: impl FnOnce()) -> Vec<Value> {
        let buffer = Buffer::default();
        let layer = HclogLayer::new(buffer.clone()).module("test_plugin");
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, f);
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn levels_message_module_and_fields() {
        let lines = capture(|| {
            tracing::trace!("t");
            tracing::debug!(n = 7u64, "d");
            tracing::info!(address = "/tmp/p", network = "unix", "plugin address");
            tracing::warn!(ok = false, ratio = 0.5, "w");
            tracing::error!(err = ?std::io::ErrorKind::NotFound, "e");
        });
        let levels: Vec<&str> = lines
            .iter()
            .map(|l| l["@level"].as_str().unwrap())
            .collect();
        assert_eq!(levels, ["trace", "debug", "info", "warn", "error"]);
        assert_eq!(lines[2]["@message"], "plugin address");
        assert_eq!(lines[2]["@module"], "test_plugin");
        assert_eq!(lines[2]["address"], "/tmp/p");
        assert_eq!(lines[1]["n"], 7);
        assert_eq!(lines[3]["ok"], false);
        assert_eq!(lines[4]["err"], "NotFound");
    }

    #[test]
    fn timestamp_has_exactly_six_fractional_digits() {
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        let t = UNIX_EPOCH + Duration::new(1_795_314_554, 127_443_999);
        assert_eq!(timestamp(t), "2026-11-22T02:29:14.127443Z");
        let lines = capture(|| tracing::info!("x"));
        let ts = lines[0]["@timestamp"].as_str().unwrap();
        let frac = ts.split('.').nth(1).unwrap();
        assert_eq!(frac.len(), 7, "{ts}"); // six digits and `Z`
        assert!(frac.ends_with('Z'));
    }

    #[test]
    fn one_line_per_event_even_with_newlines_in_the_message() {
        let lines = capture(|| tracing::info!("two\nlines"));
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["@message"], "two\nlines");
    }
}
