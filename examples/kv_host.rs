//! A go-plugin host for go-plugin's KV example, in Rust: launches any KV
//! plugin (Go, Python, Rust) with `BASIC_PLUGIN=hello` and app version 1,
//! checks it, measures it, and kills it.
//!
//! ```text
//! kv_host [--mtls on|off] [--calls N] [--launches L] [--transport unix|tcp] [--json] -- PLUGIN [ARGS...]
//! ```
//!
//! Per launch: health, `Put("hello","world")` then `Get`, `NOT_FOUND` for a
//! missing key, a 1 MiB value, N timed Put and Get calls, then Kill (the
//! plugin must exit, and leave no socket). `--transport` is the network the
//! plugin is expected to listen on (go-plugin hosts do not choose it; pass
//! the plugin its own flag). Prints launch → first reply per launch and its
//! p50, per-call p50/p99, and ends with `RESULT: PASS` (exit 0) or
//! `RESULT: FAIL` (exit 1).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use demo_proto::kv::kv_client::KvClient;
use demo_proto::kv::{GetRequest, PutRequest};
use rpcplugin::{ClientConfig, HandshakeConfig, MAX_MESSAGE_SIZE};

#[path = "common/multiplex_arg.rs"]
mod multiplex_arg;
use multiplex_arg::MultiplexArg;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OnOff {
    On,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Transport {
    Unix,
    Tcp,
}

#[derive(Debug, Parser)]
#[command(about = "A Rust go-plugin host for go-plugin's KV example plugin")]
struct Args {
    /// go-plugin's AutoMTLS.
    #[arg(long, value_enum, default_value = "on")]
    mtls: OnOff,
    /// go-plugin's multiplexed gRPC (one connection, yamux streams).
    #[arg(long, value_enum, default_value = "off")]
    multiplex: MultiplexArg,
    /// Timed Put and Get calls per launch.
    #[arg(long, default_value_t = 100)]
    calls: usize,
    /// How many times to launch the plugin.
    #[arg(long, default_value_t = 1)]
    launches: usize,
    /// The network the plugin must listen on (any when absent).
    #[arg(long, value_enum)]
    transport: Option<Transport>,
    /// Also print the measurements as one `JSON: {...}` line.
    #[arg(long)]
    json: bool,
    /// The plugin and its arguments.
    #[arg(last = true, required = true)]
    plugin: Vec<String>,
}

#[derive(Default)]
struct Report {
    failures: Vec<String>,
    first_reply: Vec<Duration>,
    put: Vec<Duration>,
    get: Vec<Duration>,
    kill: Vec<Duration>,
}

impl Report {
    fn check(&mut self, ok: bool, what: impl Into<String>) {
        let what = what.into();
        if ok {
            println!("CHECK ok: {what}");
        } else {
            println!("CHECK FAIL: {what}");
            self.failures.push(what);
        }
    }
}

fn quantile(xs: &[Duration], q: f64) -> Duration {
    let mut s = xs.to_vec();
    s.sort();
    s.get(((s.len().max(1) - 1) as f64 * q) as usize)
        .copied()
        .unwrap_or_default()
}

async fn launch(args: &Args, first: bool, report: &mut Report) {
    let mut config = ClientConfig::new(HandshakeConfig::basic_example());
    if args.mtls == OnOff::Off {
        config = config.danger_disable_auto_mtls();
    }
    config = config.multiplex(args.multiplex.into());
    let mut command = std::process::Command::new(&args.plugin[0]);
    command.args(&args.plugin[1..]);
    let started = Instant::now();
    let client = match config.start(command).await {
        Ok(client) => client,
        Err(err) => return report.check(false, format!("start: {}", rpcplugin::log::Chain(&err))),
    };
    let mut kv = KvClient::new(client.channel())
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE);
    let put = kv
        .put(PutRequest {
            key: "hello".into(),
            value: "world".into(),
        })
        .await;
    let first_reply = started.elapsed();
    report.first_reply.push(first_reply);
    let outcome = match &put {
        Ok(_) => "ok".to_owned(),
        Err(status) => status.to_string(),
    };
    let n = report.first_reply.len();
    report.check(
        put.is_ok(),
        format!("launch {n}: first reply (Put) after {first_reply:.2?}: {outcome}"),
    );
    let endpoint = client.handshake().endpoint().clone();
    if first {
        report.check(
            true,
            format!(
                "handshake: {} {}, version {}, mtls={}, multiplexed={}",
                endpoint.network(),
                endpoint.address(),
                client.version(),
                client.handshake().server_cert().is_some(),
                client.multiplexed()
            ),
        );
        if let Some(expected) = args.transport {
            let want = if expected == Transport::Unix {
                "unix"
            } else {
                "tcp"
            };
            report.check(
                endpoint.network() == want,
                format!("plugin listens on {want}"),
            );
        }
        report.check(
            client.ping().await.is_ok(),
            "health ping (\"plugin\" SERVING)",
        );
        let got = kv
            .get(GetRequest {
                key: "hello".into(),
            })
            .await
            .map(|r| r.into_inner().value);
        report.check(
            got.as_deref().ok() == Some(&b"world"[..]),
            "Put then Get(hello) = world",
        );
        let missing = kv
            .get(GetRequest {
                key: "missing".into(),
            })
            .await;
        report.check(
            matches!(&missing, Err(s) if s.code() == tonic::Code::NotFound),
            "Get(missing) is NOT_FOUND",
        );
        let big = bytes::Bytes::from(vec![0xab; 1 << 20]);
        let round = async {
            kv.put(PutRequest {
                key: "big".into(),
                value: big.clone(),
            })
            .await?;
            kv.get(GetRequest { key: "big".into() }).await
        };
        let back = round.await.map(|r| r.into_inner().value);
        report.check(back.as_ref().ok() == Some(&big), "1 MiB value round trip");
    }
    for _ in 0..args.calls {
        let t = Instant::now();
        let put = kv
            .put(PutRequest {
                key: "k".into(),
                value: "v".into(),
            })
            .await;
        report.put.push(t.elapsed());
        let t = Instant::now();
        let get = kv.get(GetRequest { key: "k".into() }).await;
        report.get.push(t.elapsed());
        if put.is_err() || get.is_err() {
            return report.check(false, format!("timed calls: {put:?} {get:?}"));
        }
    }
    let t = Instant::now();
    let status = client.kill().await;
    let killed = t.elapsed();
    report.kill.push(killed);
    if first {
        report.check(
            status.is_some() && client.exited(),
            format!("Kill: plugin exited ({status:?}) in {killed:.2?}"),
        );
        if let Some(path) = endpoint.unix_path() {
            report.check(!path.exists(), format!("socket {} removed", path.display()));
        }
    }
}

/// Waits for Ctrl-C (Windows).
#[cfg(not(unix))]
async fn stop_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

/// Waits for SIGINT, SIGTERM or SIGHUP.
#[cfg(unix)]
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut hup = signal(SignalKind::hangup()).expect("SIGHUP handler");
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
        _ = hup.recv() => {}
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let mut report = Report::default();
    let launches = async {
        for i in 0..args.launches {
            launch(&args, i == 0, &mut report).await;
        }
    };
    // Plugins run in process groups of their own, out of reach of the
    // terminal's Ctrl-C: on a signal, dropping the launches kills the
    // plugin being started or used, and cleanup_clients any other.
    let stopped = tokio::select! {
        () = launches => false,
        () = stop_signal() => true,
    };
    rpcplugin::client::cleanup_clients().await;
    if stopped {
        eprintln!("kv_host: stopped by a signal; every plugin was killed");
        return ExitCode::from(130);
    }
    println!(
        "launch->first reply p50 {:.2?} over {} launches; Put p50 {:.1?} p99 {:.1?}; Get p50 {:.1?} p99 {:.1?}; Kill p50 {:.2?}",
        quantile(&report.first_reply, 0.5),
        report.first_reply.len(),
        quantile(&report.put, 0.5),
        quantile(&report.put, 0.99),
        quantile(&report.get, 0.5),
        quantile(&report.get, 0.99),
        quantile(&report.kill, 0.5),
    );
    if args.json {
        let ms = |xs: &[Duration]| xs.iter().map(|d| d.as_secs_f64() * 1e3).collect::<Vec<_>>();
        let us = |xs: &[Duration]| xs.iter().map(|d| d.as_secs_f64() * 1e6).collect::<Vec<_>>();
        println!(
            "JSON: {{\"first_reply_ms\":{:?},\"put_us\":{:?},\"get_us\":{:?},\"kill_ms\":{:?}}}",
            ms(&report.first_reply),
            us(&report.put),
            us(&report.get),
            ms(&report.kill)
        );
    }
    if report.failures.is_empty() {
        println!("RESULT: PASS");
        ExitCode::SUCCESS
    } else {
        println!("RESULT: FAIL");
        ExitCode::FAILURE
    }
}
