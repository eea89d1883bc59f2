//! Benchmark: a plugin stays responsive while its handlers print. Health
//! checks on new connections to `stdio_plugin`, one after another, first
//! with nothing printing, then while 8 calls print 10 MB each (4 with one
//! `println!` to stdout, 4 with 50 000 lines of 200 bytes through
//! `eprintln!` to stderr), a host draining the GRPCStdio stream and the
//! plugin's real stderr as go-plugin's does. Prints p50 and p99 of each.
//!
//! ```text
//! cargo bench --bench stdio_flood
//! ```

// Only `common` and `quantile` of the shared measuring code are used here.
#[allow(dead_code)]
mod measure;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use demo_proto::kv::PutRequest;
use demo_proto::kv::kv_client::KvClient;
use measure::{common, quantile};
use rpcplugin::proto::plugin::grpc_stdio_client::GrpcStdioClient;

/// Health checks in the quiet phase.
const QUIET_CHECKS: usize = 200;
/// Bytes each printing call writes.
const PRINTED: usize = 10_000_000;
/// Every wait is bounded: a wedged plugin ends the benchmark.
const WAIT: Duration = Duration::from_secs(60);

/// One health check on a new connection; its latency.
async fn health_on_a_new_connection(plugin: &common::Launched) -> Duration {
    let started = Instant::now();
    let checked = plugin.health_on_a_new_connection(WAIT).await;
    assert!(matches!(checked, Some(Ok(()))), "health: {checked:?}");
    started.elapsed()
}

fn report(what: &str, latencies: &[Duration]) {
    let ms: Vec<f64> = latencies.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    println!(
        "{what:<34} {:>6} checks  p50 {:>7.3} ms  p99 {:>7.3} ms  max {:>7.3} ms",
        ms.len(),
        quantile(&ms, 0.5),
        quantile(&ms, 0.99),
        quantile(&ms, 1.0)
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut plugin = common::launch(&common::example("stdio_plugin"), &[], &[]);
    // The plugin's real stderr, drained as a go-plugin host drains it.
    let mut stderr = plugin.child.stderr.take().expect("stderr is piped");
    std::thread::spawn(move || {
        use std::io::Read;
        let mut buf = [0u8; 65536];
        while matches!(stderr.read(&mut buf), Ok(n) if n > 0) {}
    });
    let channel = plugin.channel().await;
    let mut stdio = GrpcStdioClient::new(channel.clone())
        .stream_stdio(())
        .await
        .unwrap()
        .into_inner();
    tokio::spawn(async move { while let Ok(Some(_)) = stdio.message().await {} });

    let mut quiet = Vec::new();
    for _ in 0..QUIET_CHECKS {
        quiet.push(health_on_a_new_connection(&plugin).await);
    }

    let lines = (PRINTED / 200).to_string();
    let bytes = PRINTED.to_string();
    let printing = Arc::new(AtomicBool::new(true));
    let calls: Vec<_> = (0..8)
        .map(|i| {
            let (key, value) = if i % 2 == 0 {
                ("print-bytes", bytes.clone())
            } else {
                ("eprint-lines", lines.clone())
            };
            let mut kv = KvClient::new(channel.clone());
            tokio::spawn(async move {
                kv.put(PutRequest {
                    key: key.into(),
                    value: value.into(),
                })
                .await
            })
        })
        .collect();
    let done = printing.clone();
    let waiter = tokio::spawn(async move {
        for call in calls {
            let put = tokio::time::timeout(WAIT, call).await;
            assert!(matches!(put, Ok(Ok(Ok(_)))), "printing call: {put:?}");
        }
        done.store(false, Ordering::Relaxed);
    });
    let started = Instant::now();
    let mut loud = Vec::new();
    while printing.load(Ordering::Relaxed) {
        loud.push(health_on_a_new_connection(&plugin).await);
    }
    waiter.await.unwrap();
    let took = started.elapsed();

    println!();
    report("nothing printing", &quiet);
    report("8 handlers printing 10 MB each", &loud);
    println!(
        "\nthe 8 calls printed {} MB in {took:.2?}; health checks on a new connection each, one at a time",
        8 * PRINTED / 1_000_000
    );
}
