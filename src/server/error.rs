//! The error family of the plugin side. As everywhere in the crate, a
//! message says what failed and never repeats its cause, which is the
//! [`source()`](std::error::Error::source).

use std::io;

use crate::handshake::{AddressError, CookieError};
use crate::tls::TlsError;
use crate::transport::{CloseError, EnvError, ListenError};

/// Why [`ServeConfig::serve`](super::ServeConfig::serve) stopped with an
/// error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The magic cookie did not match (only with
    /// [`exit_on_cookie_mismatch(false)`](super::ServeConfig::exit_on_cookie_mismatch)).
    #[error(transparent)]
    Cookie(#[from] CookieError),
    /// The listener's address cannot be printed in the handshake line.
    #[error(transparent)]
    Address(#[from] AddressError),
    /// go-plugin's environment holds a value the listener cannot use.
    #[error(transparent)]
    Env(#[from] EnvError),
    /// The listener could not be set up.
    #[error(transparent)]
    Listen(#[from] ListenError),
    /// The listener could not be cleaned up (our socket stayed).
    #[error(transparent)]
    Close(#[from] CloseError),
    /// AutoMTLS could not be set up (for example `PLUGIN_CLIENT_CERT` is not
    /// a PEM certificate).
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// No services were configured.
    #[error("no services to serve: add at least one with ServeConfig::service or ::version")]
    NoServices,
    /// A Terraform provider service was added under another protocol
    /// version than its own (`tfplugin5.Provider` under 6, or
    /// `tfplugin6.Provider` under 5): Terraform would call the methods of
    /// the version it negotiated, and get "Unsupported plugin method".
    #[error(
        "{service} is Terraform protocol {expected}, but ServeConfig::service added it to the \
         handshake's protocol version {version}: Terraform would call tfplugin{version} methods \
         on it; serve it with ServeConfig::terraform_v{expected}, or a handshake for version {expected}"
    )]
    ProviderVersion {
        /// The service's gRPC name.
        service: &'static str,
        /// The version it was added under.
        version: u32,
        /// Its own protocol version.
        expected: u32,
    },
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers")]
    Signals {
        /// The operating system's error.
        source: io::Error,
    },
    /// Writing the handshake line to stdout failed.
    #[error("cannot write the handshake line to stdout")]
    Stdout {
        /// The operating system's error.
        source: io::Error,
    },
    /// Redirecting fds 1 and 2 to the `GRPCStdio` pipes failed.
    #[error("cannot capture stdout and stderr")]
    Stdio {
        /// The operating system's error.
        source: io::Error,
    },
    /// The gRPC server failed.
    #[error("the gRPC server failed")]
    Server {
        /// tonic's error.
        source: tonic::transport::Error,
    },
}
