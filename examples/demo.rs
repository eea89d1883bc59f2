//! The demo: a Rust host launches three example plugins the way a go-plugin
//! host does (unix sockets, AutoMTLS) and shows what happens, with timings:
//!
//! - `kv_plugin`: go-plugin's KV example; Put and Get calls.
//! - `echo_plugin`: echo sample streams; samples streamed into the plugin
//!   over the connection go-plugin set up.
//! - `counter_plugin`: the GRPCBroker; each Put calls back into a service
//!   this host serves.
//!
//! Then it shuts each one down and checks that nothing is left behind.
//!
//! ```text
//! cargo build --release --examples --features echo && target/release/examples/demo
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use demo_proto::counter::add_helper_server::{AddHelper, AddHelperServer};
use demo_proto::counter::counter_client::CounterClient;
use demo_proto::kv::kv_client::KvClient;
use demo_proto::kv::{GetRequest, PutRequest};
use rpcplugin::echo::{self, GrpcClient};
use rpcplugin::{Client, ClientConfig, HandshakeConfig};
use tonic::{Request, Response, Status};

type Error = Box<dyn std::error::Error>;

/// Samples streamed into the echo plugin.
const SAMPLES: u32 = 20_000;
/// Calls made to the KV plugin.
const CALLS: u32 = 200;

/// An example binary built next to this one.
fn sibling(name: &str) -> Result<PathBuf, Error> {
    let path =
        std::env::current_exe()?.with_file_name(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if !path.exists() {
        return Err(format!(
            "{} not found: run `cargo build --examples` first",
            path.display()
        )
        .into());
    }
    Ok(path)
}

/// Launches an example plugin and says how it went.
async fn launch(name: &str, args: &[&str]) -> Result<Client, Error> {
    let mut command = std::process::Command::new(sibling(name)?);
    command.args(args);
    let started = Instant::now();
    let client = ClientConfig::new(HandshakeConfig::basic_example())
        .start(command)
        .await?;
    let endpoint = client.handshake().endpoint();
    println!(
        "{name}: launched in {:.1?} (pid {}), listening on {} {}, AutoMTLS {}",
        started.elapsed(),
        client.pid(),
        endpoint.network(),
        endpoint.address(),
        if client.handshake().server_cert().is_some() {
            "on"
        } else {
            "off"
        },
    );
    Ok(client)
}

/// Shuts a plugin down as go-plugin does, and checks it left nothing.
async fn shut_down(name: &str, client: Client) -> Result<(), Error> {
    let socket = client.handshake().endpoint().unix_path().map(PathBuf::from);
    let started = Instant::now();
    let status = client.kill().await;
    let gone = socket.as_ref().is_none_or(|p| !p.exists());
    println!(
        "{name}: shut down in {:.1?} ({}), socket {}",
        started.elapsed(),
        status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "no status".into()),
        if gone { "removed" } else { "LEFT BEHIND" },
    );
    if !gone || !status.is_some_and(|s| s.success()) {
        return Err(format!("{name} did not stop cleanly").into());
    }
    Ok(())
}

/// The median, in microseconds.
fn median_us(mut xs: Vec<Duration>) -> f64 {
    xs.sort();
    xs[xs.len() / 2].as_secs_f64() * 1e6
}

async fn kv() -> Result<(), Error> {
    let client = launch("kv_plugin", &[]).await?;
    let mut kv = KvClient::new(client.channel());
    let (mut puts, mut gets) = (Vec::new(), Vec::new());
    for i in 0..CALLS {
        let started = Instant::now();
        let request = PutRequest {
            key: format!("key{i}"),
            value: format!("value {i}").into(),
        };
        kv.put(request).await?;
        puts.push(started.elapsed());
        let started = Instant::now();
        let got = kv
            .get(GetRequest {
                key: format!("key{i}"),
            })
            .await?;
        gets.push(started.elapsed());
        if got.into_inner().value != format!("value {i}").as_bytes() {
            return Err(format!("Get(key{i}) returned the wrong value").into());
        }
    }
    println!(
        "kv_plugin: {CALLS} Put and {CALLS} Get calls, each value read back; median Put {:.0} µs, Get {:.0} µs",
        median_us(puts),
        median_us(gets)
    );
    let missing = kv
        .get(GetRequest {
            key: "nothing".into(),
        })
        .await
        .unwrap_err();
    println!(
        "kv_plugin: Get(\"nothing\") -> {:?}: {}",
        missing.code(),
        missing.message()
    );
    shut_down("kv_plugin", client).await
}

async fn samples() -> Result<(), Error> {
    let spec_text = "float32[4],float32[1],uint8[84,84,3]";
    let client = launch("echo_plugin", &["--spec", spec_text]).await?;
    let spec: echo::Spec = spec_text.parse()?;
    let stream = GrpcClient::connect(client.channel(), &spec, 32).await?;
    let sample = bytes::Bytes::from(vec![7u8; spec.payload_size() as usize]);
    let started = Instant::now();
    for _ in 0..SAMPLES {
        stream.send(sample.clone()).await?;
    }
    stream.wait().await?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "echo_plugin: {SAMPLES} samples of {spec} ({} bytes each) streamed and acknowledged: {:.0} samples/s, {:.2} GB/s",
        spec.payload_size(),
        f64::from(SAMPLES) / seconds,
        f64::from(SAMPLES) * spec.payload_size() as f64 / seconds / 1e9
    );
    stream.close().await;
    shut_down("echo_plugin", client).await
}

/// The host's AddHelper, which the counter plugin calls back through the
/// broker.
#[derive(Clone, Default)]
struct Adder(Arc<AtomicU64>);

#[tonic::async_trait]
impl AddHelper for Adder {
    async fn sum(
        &self,
        request: Request<demo_proto::counter::SumRequest>,
    ) -> Result<Response<demo_proto::counter::SumResponse>, Status> {
        self.0.fetch_add(1, Ordering::Relaxed);
        let r = request.into_inner();
        Ok(Response::new(demo_proto::counter::SumResponse {
            r: r.a + r.b,
        }))
    }
}

async fn broker() -> Result<(), Error> {
    let client = launch("counter_plugin", &[]).await?;
    let (broker, adder) = (client.broker(), Adder::default());
    let mut counter = CounterClient::new(client.channel());
    let started = Instant::now();
    for value in 1..=10 {
        let id = broker.next_id();
        let routes = tonic::service::Routes::new(AddHelperServer::new(adder.clone()));
        let server = broker.accept_and_serve(id, routes).await?;
        let request = demo_proto::counter::PutRequest {
            add_server: id,
            key: "total".into(),
            value,
        };
        counter.put(request).await?;
        server.stop().await;
    }
    let total = counter
        .get(demo_proto::counter::GetRequest {
            key: "total".into(),
        })
        .await?
        .into_inner()
        .value;
    println!(
        "counter_plugin: 10 Puts in {:.1?}, each calling back into this host's AddHelper through the broker ({} callbacks); total = {total}",
        started.elapsed(),
        adder.0.load(Ordering::Relaxed)
    );
    if total != 55 {
        return Err(format!("total is {total}, not 55").into());
    }
    shut_down("counter_plugin", client).await
}

#[tokio::main]
async fn main() -> ExitCode {
    let started = Instant::now();
    for what in ["KV", "echo samples", "broker"] {
        let result = match what {
            "KV" => kv().await,
            "echo samples" => samples().await,
            _ => broker().await,
        };
        if let Err(err) = result {
            eprintln!("demo: {what} failed: {}", rpcplugin::log::Chain(&*err));
            return ExitCode::FAILURE;
        }
        println!();
    }
    println!(
        "demo: done in {:.1?}; every plugin exited by itself and left no socket",
        started.elapsed()
    );
    ExitCode::SUCCESS
}
