//! The handshake configuration a host and its plugins share.

use super::CookieError;

/// What go-plugin prints on stderr, before exiting with status 1, when a
/// plugin is started without its magic cookie.
pub const COOKIE_MISMATCH_TEXT: &str = "This binary is a plugin. These are not meant to be executed directly.\n\
Please execute the program that consumes these plugins, which will\n\
load any plugins automatically\n";

/// The app protocol versions Terraform offers its providers (5 and 6).
pub const TERRAFORM_PROTOCOL_VERSIONS: [u32; 2] = [5, 6];

/// The handshake a host and its plugins agree on: an app protocol version
/// and a magic cookie, go-plugin's `HandshakeConfig`.
///
/// The cookie is not a security measure: it only tells a plugin binary that
/// a host, not a person, started it.
///
/// ```
/// use rpcplugin::HandshakeConfig;
///
/// let basic = HandshakeConfig::basic_example();
/// assert_eq!(basic.magic_cookie_key, "BASIC_PLUGIN");
/// assert_eq!(HandshakeConfig::terraform(6).protocol_version, 6);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HandshakeConfig {
    /// The app protocol version used when no versioned service sets are
    /// given (go-plugin's `ProtocolVersion`).
    pub protocol_version: u32,
    /// The environment variable that carries the cookie.
    pub magic_cookie_key: String,
    /// The cookie's value.
    pub magic_cookie_value: String,
}

impl HandshakeConfig {
    /// A handshake with the given version and cookie.
    pub fn new(
        protocol_version: u32,
        magic_cookie_key: impl Into<String>,
        magic_cookie_value: impl Into<String>,
    ) -> Self {
        HandshakeConfig {
            protocol_version,
            magic_cookie_key: magic_cookie_key.into(),
            magic_cookie_value: magic_cookie_value.into(),
        }
    }

    /// Terraform's provider handshake: cookie `TF_PLUGIN_MAGIC_COOKIE`, and
    /// `protocol_version` 5 or 6 (see [`TERRAFORM_PROTOCOL_VERSIONS`]).
    pub fn terraform(protocol_version: u32) -> Self {
        Self::new(
            protocol_version,
            "TF_PLUGIN_MAGIC_COOKIE",
            "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2",
        )
    }

    /// go-plugin's basic example: version 1, cookie `BASIC_PLUGIN=hello`.
    pub fn basic_example() -> Self {
        Self::new(1, "BASIC_PLUGIN", "hello")
    }

    /// Checks the cookie in this process's environment.
    ///
    /// # Errors
    ///
    /// [`CookieError`] when the variable is unset or holds
    /// another value.
    pub fn check_cookie(&self) -> Result<(), CookieError> {
        self.check_cookie_value(std::env::var(&self.magic_cookie_key).ok().as_deref())
    }

    /// Checks a cookie value as found in some environment (`None`: unset).
    ///
    /// # Errors
    ///
    /// As [`check_cookie`](Self::check_cookie).
    pub fn check_cookie_value(&self, value: Option<&str>) -> Result<(), CookieError> {
        if value == Some(self.magic_cookie_value.as_str()) {
            Ok(())
        } else {
            Err(CookieError {
                key: self.magic_cookie_key.clone(),
                found: value.is_some(),
            })
        }
    }

    /// Checks the cookie like a go-plugin plugin: on mismatch, prints
    /// go-plugin's text ([`COOKIE_MISMATCH_TEXT`]) on stderr and exits the
    /// process with status 1. Nothing is written to stdout.
    pub fn enforce_cookie(&self) {
        if self.check_cookie().is_err() {
            eprint!("{COOKIE_MISMATCH_TEXT}");
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_must_match_exactly() {
        let config = HandshakeConfig::basic_example();
        assert!(config.check_cookie_value(Some("hello")).is_ok());
        for bad in [None, Some(""), Some("hello "), Some("Hello")] {
            let err = config.check_cookie_value(bad).unwrap_err();
            assert!(err.to_string().contains("BASIC_PLUGIN"), "{err}");
        }
    }

    #[test]
    fn go_plugin_text_is_three_lines_without_final_period() {
        let lines: Vec<&str> = COOKIE_MISMATCH_TEXT.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("This binary is a plugin."));
        assert_eq!(lines[2], "load any plugins automatically");
    }
}
