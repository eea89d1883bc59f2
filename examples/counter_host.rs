//! A go-plugin host for the "bidirectional" (broker) counter example, in
//! Rust: launches any counter plugin (Go or Rust) with `BASIC_PLUGIN=hello`,
//! and for every `Put` serves an `AddHelper` on a new broker id that the
//! plugin dials back.
//!
//! ```text
//! counter_host [--mtls on|off] [--calls N] -- PLUGIN [ARGS...]
//! ```
//!
//! Checks: N Puts of 1 on "hits" through the broker (the host's AddHelper
//! counts the calls), Get(hits) = N, Puts of 2 and 3 on "x" give 5, a key
//! never put is 0, each brokered socket is gone once its server stopped,
//! the plugin's own AddHelper (`ServeAdder`) dialled through the broker
//! sums 2 and 3, and Kill ends the plugin by itself leaving no socket. Prints `CHECK`
//! lines, the brokered Puts' median and 99th percentile (`TIMING: brokered
//! Put p50 X us p99 Y us`), and ends with `RESULT: PASS` (exit 0) or
//! `RESULT: FAIL` (exit 1).

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use clap::{Parser, ValueEnum};
use demo_proto::counter::add_helper_client::AddHelperClient;
use demo_proto::counter::add_helper_server::{AddHelper, AddHelperServer};
use demo_proto::counter::counter_client::CounterClient;
use demo_proto::counter::{Empty, GetRequest, PutRequest, SumRequest, SumResponse};
use rpcplugin::{Client, ClientConfig, HandshakeConfig};
use tonic::service::Routes;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

#[path = "common/multiplex_arg.rs"]
mod multiplex_arg;
use multiplex_arg::MultiplexArg;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OnOff {
    On,
    Off,
}

#[derive(Debug, Parser)]
#[command(about = "A Rust go-plugin host for the broker (bidirectional) counter example")]
struct Args {
    /// go-plugin's AutoMTLS.
    #[arg(long, value_enum, default_value = "on")]
    mtls: OnOff,
    /// go-plugin's multiplexed gRPC (one connection, yamux streams).
    #[arg(long, value_enum, default_value = "off")]
    multiplex: MultiplexArg,
    /// How many Puts of 1 on "hits".
    #[arg(long, default_value_t = 5)]
    calls: i64,
    /// The plugin and its arguments.
    #[arg(last = true, required = true)]
    plugin: Vec<String>,
}

/// The host's AddHelper: sums, counting the calls.
#[derive(Clone, Default)]
struct Adder {
    calls: Arc<AtomicU64>,
}

#[tonic::async_trait]
impl AddHelper for Adder {
    async fn sum(&self, request: Request<SumRequest>) -> Result<Response<SumResponse>, Status> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let SumRequest { a, b } = request.into_inner();
        Ok(Response::new(SumResponse { r: a + b }))
    }
}

#[derive(Default)]
struct Checks {
    failed: bool,
}

impl Checks {
    fn check(&mut self, ok: bool, what: impl AsRef<str>) {
        if ok {
            println!("CHECK ok: {}", what.as_ref());
        } else {
            println!("CHECK FAIL: {}", what.as_ref());
            self.failed = true;
        }
    }
}

/// Put through the broker: serve AddHelper on a fresh id, call, stop it.
/// Gives the brokered socket path, if it was a unix socket.
async fn put(
    client: &Client,
    counter: &mut CounterClient<Channel>,
    adder: &Adder,
    key: &str,
    value: i64,
) -> Result<Option<std::path::PathBuf>, String> {
    let broker = client.broker();
    let id = broker.next_id();
    let server = broker
        .accept_and_serve(id, Routes::new(AddHelperServer::new(adder.clone())))
        .await
        .map_err(|err| err.to_string())?;
    // Multiplexed, the brokered server is reached through the plugin's own
    // socket, not one of its own.
    let socket = match client.multiplexed() {
        true => None,
        false => server.endpoint().unix_path().map(|p| p.to_path_buf()),
    };
    let request = PutRequest {
        add_server: id,
        key: key.into(),
        value,
    };
    let result = counter.put(request).await;
    server.stop().await;
    result.map_err(|status| status.to_string())?;
    Ok(socket)
}

async fn get(counter: &mut CounterClient<Channel>, key: &str) -> Result<i64, Status> {
    let request = GetRequest { key: key.into() };
    Ok(counter.get(request).await?.into_inner().value)
}

/// The broker the other way round: the plugin serves its own AddHelper on a
/// broker id it answers with; we dial it and ask for 2 + 3.
async fn plugin_sum(client: &Client, counter: &mut CounterClient<Channel>) -> Result<i64, String> {
    let id = counter
        .serve_adder(Empty {})
        .await
        .map_err(|status| format!("ServeAdder: {status}"))?
        .into_inner()
        .id;
    let channel = client
        .broker()
        .dial(id)
        .await
        .map_err(|err| format!("dial broker id {id}: {}", rpcplugin::log::Chain(&err)))?;
    let sum = AddHelperClient::new(channel)
        .sum(SumRequest { a: 2, b: 3 })
        .await
        .map_err(|status| format!("Sum on broker id {id}: {status}"))?;
    Ok(sum.into_inner().r)
}

async fn exercise(client: &Client, calls: i64, checks: &mut Checks) {
    let mut counter = CounterClient::new(client.channel());
    let adder = Adder::default();
    let mut sockets = Vec::new();
    let mut took = Vec::new();
    for i in 1..=calls {
        let started = Instant::now();
        match put(client, &mut counter, &adder, "hits", 1).await {
            Ok(socket) => sockets.extend(socket),
            Err(err) => return checks.check(false, format!("Put(hits, 1) #{i}: {err}")),
        }
        took.push(started.elapsed().as_secs_f64() * 1e6);
    }
    if !took.is_empty() {
        took.sort_by(f64::total_cmp);
        println!(
            "TIMING: brokered Put p50 {:.1} us p99 {:.1} us",
            took[took.len() / 2],
            took[(took.len() - 1) * 99 / 100]
        );
    }
    let n = adder.calls.load(Ordering::Relaxed);
    checks.check(
        n == calls as u64,
        format!("Put x{calls} through the broker (AddHelper.Sum called {n} times)"),
    );
    let hits = get(&mut counter, "hits").await;
    checks.check(
        hits.as_ref().ok() == Some(&calls),
        format!("Get(hits) = {hits:?}"),
    );
    for value in [2, 3] {
        match put(client, &mut counter, &adder, "x", value).await {
            Ok(socket) => sockets.extend(socket),
            Err(err) => return checks.check(false, format!("Put(x, {value}): {err}")),
        }
    }
    let x = get(&mut counter, "x").await;
    checks.check(x.as_ref().ok() == Some(&5), format!("Get(x) = {x:?}"));
    let never = get(&mut counter, "never").await;
    checks.check(
        never.as_ref().ok() == Some(&0),
        format!("Get(never) = {never:?}"),
    );
    let sum = plugin_sum(client, &mut counter).await;
    checks.check(
        sum == Ok(5),
        format!("the plugin's AddHelper through the broker: Sum(2, 3) = {sum:?}"),
    );
    let left: Vec<_> = sockets.iter().filter(|p| p.exists()).collect();
    checks.check(
        left.is_empty(),
        format!(
            "{} brokered sockets removed after each Put ({left:?} left)",
            sockets.len()
        ),
    );
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let mut checks = Checks::default();
    let mut config = ClientConfig::new(HandshakeConfig::basic_example());
    if args.mtls == OnOff::Off {
        config = config.danger_disable_auto_mtls();
    }
    config = config.multiplex(args.multiplex.into());
    let mut command = std::process::Command::new(&args.plugin[0]);
    command.args(&args.plugin[1..]);
    match config.start(command).await {
        Err(err) => checks.check(false, format!("start: {}", rpcplugin::log::Chain(&err))),
        Ok(client) => {
            let endpoint = client.handshake().endpoint().clone();
            checks.check(
                true,
                format!(
                    "handshake: {} {}, mtls={}, multiplexed={}",
                    endpoint.network(),
                    endpoint.address(),
                    client.handshake().server_cert().is_some(),
                    client.multiplexed()
                ),
            );
            exercise(&client, args.calls, &mut checks).await;
            let started = Instant::now();
            let status = client.kill().await;
            let killed = started.elapsed();
            checks.check(
                status.is_some_and(|s| s.success()) && killed.as_millis() < 1900,
                format!("Kill: plugin exited by itself ({status:?}) in {killed:.1?}"),
            );
            if let Some(path) = endpoint.unix_path() {
                checks.check(!path.exists(), format!("socket {} removed", path.display()));
            }
        }
    }
    if checks.failed {
        println!("RESULT: FAIL");
        ExitCode::FAILURE
    } else {
        println!("RESULT: PASS");
        ExitCode::SUCCESS
    }
}
