//! The `rpcplugin` command line.
//!
//! ```text
//! rpcplugin echo serve --transport tcp|grpc --listen ENDPOINT --spec SPEC [--count N]
//! rpcplugin echo send  --transport tcp|grpc --connect ENDPOINT --spec SPEC --count N [--inflight K]
//!                      [--progress-timeout SECS]
//! rpcplugin probe [--cookie KEY=VALUE | --terraform] [--versions 5,6] [--mtls on|off] [--json] [--launches N] -- PLUGIN [ARGS...]
//! ```
//!
//! `ENDPOINT` is anything [`rpcplugin::Endpoint`] parses: `127.0.0.1:7000`,
//! `[::1]:7000`, `/tmp/echo.sock`, `unix:/tmp/echo.sock`.

mod echo;
mod probe;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use rpcplugin::Endpoint;

#[derive(Debug, Parser)]
#[command(name = "rpcplugin", version, about = "go-plugin for Rust: tools")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// echo sample streams.
    #[command(subcommand)]
    Echo(EchoCommand),
    /// Launch any go-plugin plugin as a host would and report, check by
    /// check, whether go-plugin hosts can use it. Exits 0 only when every
    /// required check passes.
    Probe(probe::ProbeArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Protocol {
    /// echo's own TCP protocol v1.
    Tcp,
    /// The gRPC transport (echo.v1.SampleStream).
    Grpc,
}

#[derive(Debug, Subcommand)]
enum EchoCommand {
    /// Receive samples and print a summary.
    Serve {
        #[arg(long, value_enum)]
        transport: Protocol,
        /// Where to listen: host:port or a unix socket path.
        #[arg(long)]
        listen: Endpoint,
        /// The stream's spec, e.g. "float32[4],float32[1],float64[]".
        #[arg(long)]
        spec: rpcplugin::echo::Spec,
        /// Exit (0) after this many samples.
        #[arg(long)]
        count: Option<u64>,
    },
    /// Send samples, wait for every acknowledgement, print the rate.
    Send {
        #[arg(long, value_enum)]
        transport: Protocol,
        /// Where the server listens.
        #[arg(long)]
        connect: Endpoint,
        /// The stream's spec.
        #[arg(long)]
        spec: rpcplugin::echo::Spec,
        /// How many samples.
        #[arg(long)]
        count: u64,
        /// Samples in flight (unacknowledged) at most [default: enough
        /// for 256 KiB, from 32 to 4096 samples].
        #[arg(long)]
        inflight: Option<usize>,
        /// Fail when no acknowledgement comes for this many seconds while
        /// samples are outstanding.
        #[arg(long, default_value_t = rpcplugin::echo::DEFAULT_PROGRESS_TIMEOUT.as_secs_f64())]
        progress_timeout: f64,
    },
}

/// Waits for SIGINT, SIGTERM or SIGHUP, and names it.
#[cfg(unix)]
pub(crate) async fn stop_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut hup = signal(SignalKind::hangup()).expect("SIGHUP handler");
    tokio::select! {
        _ = int.recv() => "interrupted",
        _ = term.recv() => "terminated",
        _ = hup.recv() => "hung up",
    }
}

/// Waits for Ctrl-C, Ctrl-Break or the console's closing, and names it.
#[cfg(windows)]
pub(crate) async fn stop_signal() -> &'static str {
    use tokio::signal::windows::{ctrl_break, ctrl_c, ctrl_close};
    let mut int = ctrl_c().expect("Ctrl-C handler");
    let mut brk = ctrl_break().expect("Ctrl-Break handler");
    let mut close = ctrl_close().expect("console close handler");
    tokio::select! {
        _ = int.recv() => "interrupted",
        _ = brk.recv() => "interrupted (Ctrl-Break)",
        _ = close.recv() => "closed with its console",
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Echo(_) = cli.command {
        // A process of its own, streaming large samples: see the docs.
        rpcplugin::echo::keep_freed_memory();
    }
    let result = match cli.command {
        Command::Echo(EchoCommand::Serve {
            transport,
            listen,
            spec,
            count,
        }) => echo::serve(transport, listen, spec, count).await,
        Command::Echo(EchoCommand::Send {
            transport,
            connect,
            spec,
            count,
            inflight,
            progress_timeout,
        }) => match std::time::Duration::try_from_secs_f64(progress_timeout) {
            _ if inflight == Some(0) => Err("--inflight must be at least 1".to_owned()),
            Ok(progress) if !progress.is_zero() => {
                let inflight = inflight.unwrap_or_else(|| rpcplugin::echo::default_window(&spec));
                echo::send(transport, connect, spec, count, inflight, progress).await
            }
            _ => Err(format!(
                "--progress-timeout must be a positive number of seconds, not {progress_timeout}"
            )),
        },
        Command::Probe(args) => return probe::run(args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("rpcplugin: {err}");
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes, `a: b: c`: rpcplugin's messages say what
/// failed and leave the cause to `source()`.
fn report(err: &(dyn std::error::Error + 'static)) -> String {
    rpcplugin::log::Chain(err).to_string()
}
