//! The error family of the host side.

use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use super::pipe::printable;
use crate::grpc::ConnectStep;
use crate::handshake::HandshakeError;
use crate::reattach::ReattachError;
use crate::tls::TlsError;
use crate::transport::{ConnectError, Endpoint};

/// Why a plugin could not be started, reached or used.
///
/// Start failures carry what a person needs to see why: the handshake line
/// the plugin printed, its exit status if it exited, and the last lines of
/// its stderr. The plugin process is never left running after one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The plugin binary's SHA-256 differs from the configured checksum; it
    /// was not run.
    #[error("plugin {path} has SHA-256 {actual}, expected {expected}: refusing to run it")]
    ChecksumMismatch {
        /// The binary.
        path: PathBuf,
        /// The configured checksum, hex.
        expected: String,
        /// The binary's checksum, hex.
        actual: String,
    },
    /// The binary could not be found or read for its checksum.
    #[error("cannot read plugin binary {path} for its checksum")]
    ChecksumRead {
        /// The binary.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The process could not be started.
    #[error("cannot start plugin {program}")]
    Spawn {
        /// The program.
        program: String,
        /// The operating system's error.
        source: io::Error,
    },
    /// No handshake line within the start timeout.
    #[error(
        "plugin printed no handshake line within {timeout:?}{}",
        stderr_tail(stderr)
    )]
    StartTimeout {
        /// The start timeout.
        timeout: Duration,
        /// The last lines of its stderr.
        stderr: Vec<String>,
    },
    /// The process exited before printing its handshake line.
    #[error(
        "plugin exited before we could connect ({status}){}",
        stderr_tail(stderr)
    )]
    ExitedBeforeHandshake {
        /// How it exited.
        status: ExitStatus,
        /// The last lines of its stderr.
        stderr: Vec<String>,
    },
    /// The plugin closed its stdout without printing a handshake line, and
    /// is still running: it can never print one now.
    #[error(
        "plugin closed its stdout without a handshake line and is still running{}",
        stderr_tail(stderr)
    )]
    StdoutClosed {
        /// The last lines of its stderr.
        stderr: Vec<String>,
    },
    /// A step of connecting to the plugin did not finish in time: a peer
    /// that listens but never accepts, or accepts and never speaks.
    #[error("plugin at {}: the {step} did not finish within {waited:?}", printable(&endpoint.to_string()))]
    Stalled {
        /// The step that stalled.
        step: ConnectStep,
        /// The plugin's endpoint.
        endpoint: Endpoint,
        /// How long it was given.
        waited: Duration,
    },
    /// The handshake line is not one this host accepts.
    #[error(
        "the plugin's handshake line {line:?} is not one this host accepts{}",
        stderr_tail(stderr)
    )]
    Handshake {
        /// The line as printed.
        line: String,
        /// What is wrong with it.
        source: Box<HandshakeError>,
        /// The last lines of its stderr.
        stderr: Vec<String>,
    },
    /// AutoMTLS was asked for, but the plugin sent no certificate.
    #[error("AutoMTLS is on but the plugin sent no certificate in its handshake line {line:?}")]
    NoServerCertificate {
        /// The line as printed.
        line: String,
    },
    /// AutoMTLS material could not be made or used.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The plugin's endpoint could not be reached.
    #[error(transparent)]
    Unreachable(#[from] ConnectError),
    /// The gRPC connection could not be set up.
    #[error(
        "cannot open a gRPC connection to the plugin at {}",
        printable(&endpoint.to_string())
    )]
    Connect {
        /// The endpoint.
        endpoint: Endpoint,
        /// tonic's error.
        source: tonic::transport::Error,
    },
    /// The multiplexed (yamux) session over the plugin's socket failed: the
    /// plugin announced multiplexing and then did not speak yamux, or
    /// broke the session.
    #[error(
        "the multiplexed session with the plugin at {} failed",
        printable(&endpoint.to_string())
    )]
    Multiplex {
        /// The endpoint.
        endpoint: Endpoint,
        /// yamux's error.
        source: std::io::Error,
    },
    /// The health check on `"plugin"` failed or did not say SERVING.
    #[error("plugin health check failed: {status}")]
    Unhealthy {
        /// The gRPC status, or the serving status reported.
        status: tonic::Status,
    },
    /// A reattach configuration could not be used.
    #[error(transparent)]
    Reattach(#[from] ReattachError),
}

fn stderr_tail(lines: &[String]) -> String {
    if lines.is_empty() {
        String::new()
    } else {
        format!("; its stderr ended with:\n  {}", lines.join("\n  "))
    }
}
