//! How the crate prints an error with its causes.

use std::error::Error;
use std::fmt;

/// Prints an error and its causes, `a: b: c` (so that tonic's bare
/// "transport error" says what went wrong underneath).
///
/// rpcplugin's errors follow one rule: a message says what failed and
/// names its subject (the path, the endpoint, the variable and its value),
/// and never repeats its cause, which is
/// [`source()`](std::error::Error::source). `Chain` prints both, for a log
/// line or a message to a person; `anyhow`'s `{:#}` does the same. Other
/// crates' errors sometimes repeat their cause, so a cause whose text the
/// message before it already holds is not printed again.
///
/// ```
/// use rpcplugin::log::Chain;
/// use rpcplugin::transport::{Transport, UnixTransport};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let transport = UnixTransport::new("/proc/no/such/dir/plugin.sock");
/// if let Err(err) = transport.listen().await {
///     // "cannot examine /proc/no/such/dir: No such file or directory …"
///     eprintln!("{}", Chain(&err));
/// }
/// # }
/// ```
#[derive(Clone, Copy)]
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut last = self.0.to_string();
        f.write_str(&last)?;
        let mut cause = self.0.source();
        while let Some(next) = cause {
            let said = next.to_string();
            // Other crates' errors sometimes repeat their cause.
            if !last.contains(&said) {
                write!(f, ": {said}")?;
            }
            last = said;
            cause = next.source();
        }
        Ok(())
    }
}

impl fmt::Debug for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Says what failed, not why: the crate's rule.
    #[derive(Debug, thiserror::Error)]
    #[error("cannot connect to 127.0.0.1:1")]
    struct Refused(#[source] std::io::Error);

    /// Repeats its cause, as some other crates' errors do.
    #[derive(Debug, thiserror::Error)]
    #[error("outer: {0}")]
    struct Repeats(#[source] std::io::Error);

    #[test]
    fn a_chain_gives_each_cause_after_its_message() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        assert_eq!(
            Chain(&Refused(io)).to_string(),
            "cannot connect to 127.0.0.1:1: Connection refused"
        );
    }

    #[test]
    fn a_cause_already_in_the_message_is_said_once() {
        let err = Repeats(std::io::Error::other("inner"));
        assert_eq!(Chain(&err).to_string(), "outer: inner");
    }
}
