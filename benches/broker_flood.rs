//! Benchmark: what a flood of broker announcements costs a plugin.
//!
//! ```text
//! cargo bench --bench broker_flood
//! ```
//!
//! Launches the release `counter_plugin`, opens its `GRPCBroker` stream as
//! a host would, and sends 100 000 announcements of distinct ids that
//! nobody dials (addresses of 49 bytes, as in `tests/broker_hostile.rs`).
//! Prints the plugin's CPU time and resident memory for the flood, from
//! `/proc/PID/stat` and `/proc/PID/status`, over 3 runs (a fresh plugin
//! each) with their median. The plugin keeps at most 1024 pending, each
//! for 5 s, with O(1) work per announcement; before that bound, 49 000
//! announcements cost a plugin 6 s of CPU.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use rpcplugin::proto::plugin::ConnInfo;
use rpcplugin::proto::plugin::grpc_broker_client::GrpcBrokerClient;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;

const FLOOD: u32 = 100_000;
const RUNS: usize = 3;

/// CPU seconds the process `pid` has used, and its resident KiB.
fn cpu_and_rss(pid: u32) -> (f64, u64) {
    (
        common::cpu_seconds(pid).unwrap_or(0.0),
        common::status_kib(pid, "VmRSS:").unwrap_or(0),
    )
}

async fn run() -> (f64, u64, u64) {
    let plugin = common::launch(&common::example("counter_plugin"), &[], &[]);
    let pid = plugin.child.id();
    let (tx, rx) = mpsc::unbounded_channel();
    let mut broker = GrpcBrokerClient::new(plugin.channel().await);
    let stream = tokio::spawn(async move {
        if let Ok(response) = broker.start_stream(UnboundedReceiverStream::new(rx)).await {
            let mut stream = response.into_inner();
            while let Ok(Some(_)) = stream.message().await {}
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (cpu_before, rss_before) = cpu_and_rss(pid);
    for id in 1..=FLOOD {
        let info = ConnInfo {
            service_id: id,
            network: "unix".into(),
            address: format!("/nowhere/{id:0>40}"),
            knock: None,
        };
        tx.send(info).unwrap();
    }
    // Time for the plugin to take them all in (its CPU time counts the
    // work however long this waits).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (cpu_after, rss_after) = cpu_and_rss(pid);
    drop(tx);
    stream.abort();
    (cpu_after - cpu_before, rss_before, rss_after)
}

#[tokio::main]
async fn main() {
    let mut cpus = Vec::new();
    for i in 1..=RUNS {
        let (cpu, before, after) = run().await;
        println!(
            "run {i}: {FLOOD} announcements cost the plugin {cpu:.3} s of CPU; RSS {before} KiB -> {after} KiB"
        );
        cpus.push(cpu);
    }
    cpus.sort_by(f64::total_cmp);
    println!(
        "median CPU for {FLOOD} announcements: {:.3} s",
        cpus[RUNS / 2]
    );
}
