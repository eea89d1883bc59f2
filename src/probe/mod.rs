//! A conformance probe for any go-plugin plugin: launch it as a go-plugin
//! host would, and report, check by check, what a host would trip over.

mod cert;
mod report;
#[cfg(feature = "terraform")]
mod terraform;

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncRead;
use tokio::process::Child;

pub use report::{Outcome, ProbeCheck, ProbeReport};

use crate::client::group::GroupGuard;
use crate::client::owner::{Owner, PluginSocket};
use crate::client::pipe::{LineReader, MAX_HANDSHAKE_LINE, MAX_LOGGED_LINE, printable};
use crate::client::process::{plugin_command, wait_exit};
use crate::client::stderr::line_kind;
use crate::handshake::{HandshakeConfig, HandshakeLine, Protocol};
use crate::proto::plugin::grpc_broker_client::GrpcBrokerClient;
use crate::proto::plugin::grpc_controller_client::GrpcControllerClient;
use crate::proto::plugin::grpc_stdio_client::GrpcStdioClient;
use crate::tls::{self, Identity};

/// How long a plugin may take to print its handshake line. go-plugin
/// allows a minute; a probe is run by a person waiting for it.
const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(20);

/// Terraform's cookie key: with it (and the `terraform` feature), the probe
/// also calls the negotiated protocol's provider schema RPC.
#[cfg(feature = "terraform")]
const TERRAFORM_COOKIE: &str = "TF_PLUGIN_MAGIC_COOKIE";

/// go-plugin hosts SIGKILL a plugin this long after `Shutdown`.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// How long a plugin launched without the cookie may take to exit.
const NO_COOKIE_LIMIT: Duration = Duration::from_secs(5);

/// After a first stdout line that is not a handshake line (where a
/// go-plugin host fails at once), how long to wait for a real one, to tell
/// chatter before a line from a plugin that prints no line at all.
const CHATTER_GRACE: Duration = Duration::from_millis(500);

/// How long connecting, the TLS handshake, HTTP/2 and the first health
/// check may take together once the line is read.
const CONNECT_LIMIT: Duration = Duration::from_secs(5);

/// Stderr lines kept whole for the report: the first ones (a plugin's
/// start-up) and the last ones (its last words); the rest are counted.
const STDERR_KEPT: usize = 20;

/// A conformance probe for go-plugin plugins written in any language.
///
/// ```no_run
/// use rpcplugin::HandshakeConfig;
/// use rpcplugin::probe::Probe;
///
/// # #[tokio::main] async fn main() {
/// let report = Probe::new(HandshakeConfig::basic_example())
///     .run(std::process::Command::new("./my-plugin"))
///     .await;
/// println!("{report}");
/// assert!(report.passed());
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Probe {
    handshake: HandshakeConfig,
    versions: Vec<u32>,
    mtls: bool,
    start_timeout: Duration,
}

impl Probe {
    /// Probes with this cookie, offering the handshake's app version, with
    /// AutoMTLS.
    pub fn new(handshake: HandshakeConfig) -> Self {
        Probe {
            versions: vec![handshake.protocol_version],
            handshake,
            mtls: true,
            start_timeout: DEFAULT_START_TIMEOUT,
        }
    }

    /// The app protocol versions offered (`PLUGIN_PROTOCOL_VERSIONS`).
    #[must_use]
    pub fn versions(mut self, versions: impl IntoIterator<Item = u32>) -> Self {
        self.versions = versions.into_iter().collect();
        self
    }

    /// Whether to offer AutoMTLS (`PLUGIN_CLIENT_CERT`).
    #[must_use]
    pub fn mtls(mut self, on: bool) -> Self {
        self.mtls = on;
        self
    }

    /// How long to wait for the handshake line (20 s by default).
    #[must_use]
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// Launches the plugin as a go-plugin host does, checks the handshake
    /// line field by field, connects, calls health, `GRPCStdio`,
    /// `GRPCBroker` (with Terraform's cookie and the `terraform` feature,
    /// the negotiated protocol's provider schema RPC too) and
    /// `GRPCController.Shutdown`, watches it exit and
    /// remove its socket, classifies its stderr, and launches it once more
    /// without the cookie. The plugin's process group is killed at the end,
    /// whatever happened, and when the returned future is dropped (a probe
    /// stopped by Ctrl-C leaves no plugin behind).
    ///
    /// # Cancel safety
    ///
    /// Dropped before it returns, the plugin's process group is killed at once
    /// (see above); the report is lost.
    pub async fn run(&self, command: std::process::Command) -> ProbeReport {
        let mut report = ProbeReport {
            command: describe(&command),
            checks: Vec::new(),
        };
        let program = command.get_program().to_owned();
        let args: Vec<_> = command.get_args().map(|a| a.to_owned()).collect();
        self.main_launch(command, &mut report).await;
        let mut again = std::process::Command::new(program);
        again.args(args);
        self.without_cookie(again, &mut report).await;
        report
    }

    async fn main_launch(&self, command: std::process::Command, report: &mut ProbeReport) {
        let identity = match self.mtls.then(Identity::generate).transpose() {
            Ok(identity) => identity,
            Err(err) => {
                return report.info(
                    "AutoMTLS",
                    format!("cannot generate ours: {}", crate::chain::Chain(&err)),
                );
            }
        };
        let (min, max) = crate::client::DEFAULT_PORTS;
        let ports = crate::transport::PortRange::new(min, max).expect("min <= max");
        let mut cmd = plugin_command(
            command,
            &self.handshake,
            &self.versions,
            ports,
            identity.as_ref().map(Identity::cert_pem),
        );
        // Asks whether the plugin supports multiplexing without turning it
        // on: go-plugin ≥ 1.6 plugins (and ours) answer any non-empty value
        // with a seventh field `true`, and multiplex only for a true one.
        cmd.env(crate::env::PLUGIN_MULTIPLEX_GRPC, "false");
        let started = Instant::now();
        let mut child = match cmd.spawn() {
            Ok(child) => child,
            Err(err) => {
                report.require("launch", false, format!("cannot start: {err}"));
                return;
            }
        };
        let guard = match GroupGuard::of(&mut child).await {
            Ok(guard) => guard,
            Err(err) => {
                report.require("launch", false, format!("cannot hold its processes: {err}"));
                return;
            }
        };
        let stderr = collect(child.stderr.take().expect("stderr is piped"));
        let line = self.read_line(&mut child, started, &stderr, report).await;
        let mut socket = None;
        if let Some(line) = &line {
            self.check_line(line, identity.as_ref(), report);
            socket = self
                .exercise(line, &mut child, identity.as_ref(), started, report)
                .await;
        }
        guard.kill_and_reap(&mut child).await;
        // A plugin we had to kill leaves its socket: remove it, as a host
        // does (only if nothing listens there).
        if let Some(socket) = socket {
            socket.remove();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        summarize_stderr(&stderr.lock().expect("stderr lock"), report);
    }

    /// Reads stdout up to the handshake line: reports anything printed
    /// before it, and the line itself. A first line that is not a
    /// handshake line fails within [`CHATTER_GRACE`], as a go-plugin host
    /// fails at once.
    async fn read_line(
        &self,
        child: &mut Child,
        started: Instant,
        stderr: &Mutex<StderrSummary>,
        report: &mut ProbeReport,
    ) -> Option<HandshakeLine> {
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = LineReader::new(stdout, MAX_HANDSHAKE_LINE);
        let mut before: Vec<String> = Vec::new();
        let mut deadline = tokio::time::Instant::now() + self.start_timeout;
        let (line, why) = loop {
            let next = tokio::select! {
                biased;
                next = lines.next_line_or_cap() => next,
                () = tokio::time::sleep_until(deadline) => break (None, match before.is_empty() {
                    true => format!("no handshake line within {:?}", self.start_timeout),
                    false => "no handshake line; go-plugin hosts take the first stdout line for it".to_owned(),
                }),
            };
            let Some(next) = next else {
                let pid = child.id().unwrap_or(0);
                let status =
                    match tokio::time::timeout(Duration::from_secs(2), wait_exit(pid)).await {
                        Ok(()) => crate::sys::exit_status_unreaped(pid)
                            .map_or_else(|| "exited".to_owned(), |s| s.to_string()),
                        Err(_) => "still running".to_owned(),
                    };
                break (
                    None,
                    format!("stdout closed before a handshake line; {status}"),
                );
            };
            let text = printable(&next.lossy()).into_owned();
            if next.cut() {
                break (
                    None,
                    format!(
                        "{}: no newline within {MAX_HANDSHAKE_LINE} bytes",
                        abbreviate(&text)
                    ),
                );
            }
            let utf8 = std::str::from_utf8(&next.bytes);
            match utf8.map_err(|e| e.valid_up_to()).map(HandshakeLine::parse) {
                Ok(Ok(line)) => break (Some((line, text)), String::new()),
                Err(at) if before.is_empty() => {
                    break (
                        None,
                        format!("{text:?}: not UTF-8 (invalid byte at offset {at})"),
                    );
                }
                Ok(Err(err)) if before.is_empty() && looks_like_a_line(&text) => {
                    break (None, format!("{text:?}: {}", crate::chain::Chain(&err)));
                }
                _ => {
                    if before.is_empty() {
                        deadline = deadline.min(tokio::time::Instant::now() + CHATTER_GRACE);
                    }
                    if before.len() < STDERR_KEPT {
                        before.push(text);
                    }
                }
            }
        };
        tokio::spawn(lines.drain());
        let quoted: Vec<String> = before.iter().take(3).map(|l| format!("{l:?}")).collect();
        let nothing_before = before.is_empty();
        report.require(
            "stdout before the handshake line",
            nothing_before,
            if nothing_before {
                "nothing".to_owned()
            } else {
                format!(
                    "{} line(s): {}; go-plugin hosts fail with \"Unrecognized remote plugin message: {}\"",
                    before.len(),
                    quoted.join(", "),
                    before[0]
                )
            },
        );
        let Some((line, text)) = line else {
            // Let the stderr reader catch the plugin's last words.
            tokio::time::sleep(Duration::from_millis(100)).await;
            let said = stderr.lock().expect("stderr lock").last(3);
            let why = match said.is_empty() {
                true => why,
                false => format!("{why}; stderr ends: {:?}", said.join(" / ")),
            };
            report.require("handshake line", false, why);
            report.skip(
                &["health \"plugin\"", "GRPCController.Shutdown"],
                "no handshake line",
            );
            return None;
        };
        report.require(
            "handshake line",
            true,
            format!("{} (after {:.1?})", abbreviate(&text), started.elapsed()),
        );
        Some(line)
    }

    fn check_line(
        &self,
        line: &HandshakeLine,
        identity: Option<&Identity>,
        report: &mut ProbeReport,
    ) {
        let negotiated = line.check(&self.versions, &[Protocol::Grpc]);
        report.require(
            "app version and protocol",
            negotiated.is_ok(),
            match &negotiated {
                Ok(()) => format!(
                    "version {} of {:?} offered, protocol grpc",
                    line.app_version(),
                    self.versions
                ),
                Err(err) => crate::chain::Chain(err).to_string(),
            },
        );
        report.info(
            "multiplexing",
            match line.multiplex() {
                Some(true) => "supported (seventh field true, asked with PLUGIN_MULTIPLEX_GRPC=false: go-plugin ≥ 1.6 hosts with GRPCBrokerMultiplex can use one connection)",
                Some(false) => "announced false: hosts with GRPCBrokerMultiplex refuse it",
                None => "not announced (no seventh field): hosts with GRPCBrokerMultiplex refuse it, others use one socket per brokered connection",
            },
        );
        let endpoint = line.endpoint();
        match endpoint.unix_path() {
            #[cfg(unix)]
            Some(path) => {
                use std::os::unix::fs::{FileTypeExt, PermissionsExt};
                let meta = std::fs::symlink_metadata(path);
                let socket = meta.as_ref().is_ok_and(|m| m.file_type().is_socket());
                let mode = meta.map(|m| format!("{:o}", m.permissions().mode() & 0o777));
                let mode = mode.unwrap_or_else(|e| e.to_string());
                let detail = format!("unix {} (socket: {socket}, mode {mode})", path.display());
                report.require("address", socket, detail);
            }
            #[cfg(not(unix))]
            Some(path) => {
                let detail = format!(
                    "unix {}: go-plugin has no unix sockets on Windows; TCP is the transport there",
                    path.display()
                );
                report.require("address", false, detail);
            }
            None => {
                report.require("address", true, format!("tcp {}", endpoint.address()));
            }
        }
        match (identity, line.server_cert()) {
            (Some(_), Some(der)) => {
                let now = time::OffsetDateTime::now_utc().unix_timestamp();
                let summary = cert::summarize(der, now);
                let ok = summary.problems.is_empty();
                let detail = match ok {
                    true => summary.text,
                    false => format!("{}: {}", summary.text, summary.problems.join("; ")),
                };
                report.require("AutoMTLS certificate", ok, detail);
                if !summary.warnings.is_empty() {
                    report.advise("certificate shape", false, summary.warnings.join("; "));
                }
            }
            (Some(_), None) => {
                report.require(
                    "AutoMTLS certificate",
                    false,
                    "PLUGIN_CLIENT_CERT was set but the line has no certificate: go-plugin hosts refuse to connect",
                );
            }
            (None, Some(_)) => report.advise(
                "AutoMTLS certificate",
                false,
                "a certificate without PLUGIN_CLIENT_CERT: the plugin serves TLS no host asked for",
            ),
            (None, None) => report.info("AutoMTLS", "off (not offered)"),
        }
    }

    /// Connects, checks health, stdio, broker and Shutdown. Gives the
    /// plugin's unix socket when the kernel says the plugin made it (only
    /// such a socket is removed after the plugin).
    async fn exercise(
        &self,
        line: &HandshakeLine,
        child: &mut Child,
        identity: Option<&Identity>,
        started: Instant,
        report: &mut ProbeReport,
    ) -> Option<PluginSocket> {
        let tls = match (identity, line.server_cert()) {
            (Some(identity), Some(der)) => {
                match tls::client_config(identity, der.to_vec().into()) {
                    Ok(config) => Some(config),
                    Err(err) => {
                        report.require("connect", false, crate::chain::Chain(&err).to_string());
                        return None;
                    }
                }
            }
            _ => None,
        };
        let deadline = tokio::time::Instant::now() + CONNECT_LIMIT;
        let connected = crate::client::open_plugin_channel(
            line.endpoint(),
            tls,
            deadline,
            crate::client::Liveness::new(None),
        )
        .await;
        let (channel, listener) = match connected {
            Ok(connected) => connected,
            Err(err) => {
                report.require("connect", false, crate::chain::Chain(&err).to_string());
                report.skip(
                    &["health \"plugin\"", "GRPCController.Shutdown"],
                    "no connection",
                );
                return None;
            }
        };
        let pgid = child.id().unwrap_or(0);
        let socket = line
            .endpoint()
            .unix_path()
            .and_then(|path| PluginSocket::prove(path, listener, Owner::Group(pgid)));
        let health = crate::client::ping_by(channel.clone(), line.endpoint(), deadline).await;
        report.require(
            "health \"plugin\"",
            health.is_ok(),
            match &health {
                Ok(()) => format!(
                    "SERVING; first reply {:.1?} after launch",
                    started.elapsed()
                ),
                Err(err) => crate::chain::Chain(err).to_string(),
            },
        );
        if let Err(crate::client::ClientError::Stalled { .. }) = health {
            // A peer that does not answer: a host gives up here too.
            report.skip(&["GRPCController.Shutdown"], "the plugin does not answer");
            return socket;
        }
        let mut stdio_client = GrpcStdioClient::new(channel.clone());
        let stdio = opened(stdio_client.stream_stdio(())).await;
        report.advise(
            "GRPCStdio",
            stdio.is_ok(),
            match &stdio {
                Ok(how) => (*how).to_owned(),
                Err(status) => format!(
                    "{status} (go-plugin hosts before 1.2 do not use it; later ones log a warning)"
                ),
            },
        );
        let (_keep, outgoing) = tokio::sync::mpsc::unbounded_channel();
        let mut broker_client = GrpcBrokerClient::new(channel.clone());
        let broker = opened(broker_client.start_stream(
            tokio_stream::wrappers::UnboundedReceiverStream::new(outgoing),
        ))
        .await;
        report.advise(
            "GRPCBroker stream",
            broker.is_ok(),
            match &broker {
                Ok(how) => (*how).to_owned(),
                Err(status) => format!("{status} (only plugins that pass services need it)"),
            },
        );
        #[cfg(feature = "terraform")]
        if self.handshake.magic_cookie_key == TERRAFORM_COOKIE {
            terraform::check(line.app_version(), channel.clone(), report).await;
        }
        self.shutdown(line, channel, child, report).await;
        socket
    }

    async fn shutdown(
        &self,
        line: &HandshakeLine,
        channel: tonic::transport::Channel,
        child: &mut Child,
        report: &mut ProbeReport,
    ) {
        let asked = Instant::now();
        let mut controller = GrpcControllerClient::new(channel);
        let call = controller.shutdown(crate::proto::plugin::Empty {});
        let answer = tokio::time::timeout(SHUTDOWN_GRACE, call).await;
        let left = SHUTDOWN_GRACE.saturating_sub(asked.elapsed());
        // Not reaped here: the plugin's pid must keep naming its group
        // until the group is killed.
        let pid = child.id().unwrap_or(0);
        let exited = tokio::time::timeout(left, wait_exit(pid))
            .await
            .ok()
            .and_then(|()| crate::sys::exit_status_unreaped(pid));
        let exited_ok = exited.is_some();
        let (ok, detail) = match answer {
            Ok(Ok(_)) => (true, "answered".to_owned()),
            Ok(Err(status)) if status.code() == tonic::Code::Unimplemented => (
                false,
                format!("{status}: go-plugin hosts wait 2 s, then SIGKILL the plugin"),
            ),
            // go-plugin's own plugins stop their server before the answer
            // goes out; hosts ignore the error when the plugin exits.
            Ok(Err(status)) if exited_ok => (
                true,
                format!(
                    "served; the connection closed as the plugin exited ({})",
                    status.message()
                ),
            ),
            Ok(Err(status)) => (false, status.to_string()),
            Err(_) => (false, format!("no answer within {SHUTDOWN_GRACE:?}")),
        };
        report.require("GRPCController.Shutdown", ok, detail);
        report.require(
            "exit after Shutdown",
            exited_ok,
            match exited {
                Some(status) => format!("{status} after {:.1?}", asked.elapsed()),
                _ => format!(
                    "still running {SHUTDOWN_GRACE:?} after Shutdown: a go-plugin host SIGKILLs it"
                ),
            },
        );
        if let (true, Some(path)) = (exited_ok, line.endpoint().unix_path()) {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let gone = !path.exists();
            report.require(
                "socket removed",
                gone,
                match gone {
                    true => format!("{} is gone", path.display()),
                    false => format!("{} left behind", path.display()),
                },
            );
        }
    }

    /// Launches the plugin without the cookie: it must not serve, print
    /// nothing on stdout, and exit non-zero.
    async fn without_cookie(&self, command: std::process::Command, report: &mut ProbeReport) {
        let mut cmd = tokio::process::Command::from(command);
        cmd.env_remove(&self.handshake.magic_cookie_key)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        crate::client::process::own_group(&mut cmd);
        let name = "launched without the cookie";
        let mut child = match cmd.spawn() {
            Ok(child) => child,
            Err(err) => {
                report.require(name, false, format!("cannot start: {err}"));
                return;
            }
        };
        let guard = match GroupGuard::of(&mut child).await {
            Ok(guard) => guard,
            Err(err) => {
                report.require(name, false, format!("cannot hold its processes: {err}"));
                return;
            }
        };
        let pid = guard.pid();
        let mut stdout = LineReader::new(child.stdout.take().expect("piped"), 200);
        let stderr = collect(child.stderr.take().expect("piped"));
        let first_stdout = tokio::spawn(async move {
            let first = stdout.next_line().await;
            stdout.drain().await;
            first
        });
        let _ = tokio::time::timeout(NO_COOKIE_LIMIT, wait_exit(pid)).await;
        let status = crate::sys::exit_status_unreaped(pid);
        guard.kill_and_reap(&mut child).await;
        // Its pipes closed as its group died, unless it handed them to a
        // process outside the group: bounded either way.
        let first_stdout = tokio::time::timeout(Duration::from_secs(1), first_stdout).await;
        let first_stdout = first_stdout.ok().and_then(Result::ok).flatten();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let said = stderr
            .lock()
            .expect("stderr lock")
            .first
            .iter()
            .find(|l| !l.trim().is_empty())
            .cloned()
            .unwrap_or_else(|| "(nothing on stderr)".to_owned());
        let (ok, detail) = match status {
            None => (
                false,
                format!(
                    "still running after {NO_COOKIE_LIMIT:?}: a plugin started by hand must say it is a plugin and exit"
                ),
            ),
            Some(status) => {
                let stdout = match &first_stdout {
                    None => "empty".to_owned(),
                    Some(line) => format!("{:?}", printable(&line.lossy())),
                };
                (
                    !status.success() && first_stdout.is_none(),
                    format!("{status}; stdout {stdout}; stderr: {said:?}"),
                )
            }
        };
        report.require(name, ok, detail);
    }
}

/// How long a stream may go without response headers before we take it as
/// open: grpc-go sends a streaming call's headers only with its first
/// message, so a served stream with nothing to say yet is silent.
const STREAM_OPEN_WAIT: Duration = Duration::from_millis(500);

/// Opens a streaming call: `Ok` when the server answered with headers or
/// stayed silent (served, nothing to send yet), the status when refused.
async fn opened<T>(
    call: impl std::future::Future<Output = Result<T, tonic::Status>>,
) -> Result<&'static str, tonic::Status> {
    match tokio::time::timeout(STREAM_OPEN_WAIT, call).await {
        Ok(Ok(_)) => Ok("stream opened"),
        Ok(Err(status)) => Err(status),
        Err(_) => Ok("stream accepted (no headers yet, as grpc-go servers do)"),
    }
}

/// A first line that is meant as a handshake line (it has `|`), as opposed
/// to chatter printed before one.
fn looks_like_a_line(text: &str) -> bool {
    text.matches('|').count() >= 3
}

/// The line with a long certificate field shortened.
fn abbreviate(text: &str) -> String {
    text.split('|')
        .map(|field| match field.len() > 40 {
            true => format!(
                "{}…({} chars)",
                field.chars().take(16).collect::<String>(),
                field.len()
            ),
            false => field.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("|")
}

fn describe(command: &std::process::Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// What a probe keeps of a plugin's stderr: counts by kind, the first
/// and the last lines (cut and escaped), never the whole of it.
#[derive(Debug, Default)]
struct StderrSummary {
    lines: usize,
    kinds: Vec<(&'static str, usize)>,
    first: Vec<String>,
    last: std::collections::VecDeque<String>,
}

impl StderrSummary {
    fn push(&mut self, line: &str) {
        self.lines += 1;
        if !line.trim().is_empty() {
            let kind = line_kind(line);
            match self.kinds.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, n)) => *n += 1,
                None => self.kinds.push((kind, 1)),
            }
        }
        let kept: String = printable(line).chars().take(200).collect();
        if self.first.len() < STDERR_KEPT {
            self.first.push(kept.clone());
        }
        if self.last.len() == STDERR_KEPT {
            self.last.pop_front();
        }
        self.last.push_back(kept);
    }

    /// The last `n` lines.
    fn last(&self, n: usize) -> Vec<String> {
        let skip = self.last.len().saturating_sub(n);
        self.last.iter().skip(skip).cloned().collect()
    }
}

/// Reads stderr to its end in the background, whatever bytes it holds.
fn collect(stderr: impl AsyncRead + Unpin + Send + 'static) -> Arc<Mutex<StderrSummary>> {
    let summary = Arc::new(Mutex::new(StderrSummary::default()));
    let sink = summary.clone();
    tokio::spawn(async move {
        let mut reader = LineReader::new(stderr, MAX_LOGGED_LINE);
        while let Some(line) = reader.next_line().await {
            sink.lock().expect("stderr lock").push(&line.lossy());
        }
    });
    summary
}

fn summarize_stderr(summary: &StderrSummary, report: &mut ProbeReport) {
    let counts: Vec<String> = summary
        .kinds
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    let detail = match summary.first.first() {
        None => "nothing".to_owned(),
        Some(first) => {
            let first: String = first.chars().take(100).collect();
            format!(
                "{} line(s): {}; first: {first:?}",
                summary.lines,
                counts.join(", ")
            )
        }
    };
    report.info("stderr", detail);
}
