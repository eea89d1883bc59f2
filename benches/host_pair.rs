//! Benchmark: a Rust host with a Rust plugin (rpcplugin's `kv_host` and
//! `kv_plugin`) beside a Go host with a Go plugin (go-plugin 1.0.1), the
//! same KV service, same machine, one run, plain and AutoMTLS.
//!
//! ```text
//! cargo bench --bench host_pair          # needs .ci/install-peers
//! ```

mod measure;

use std::process::Command;

use measure::{Samples, common, quantile};

/// Rounds per configuration, interleaved so that noise falls on all alike.
const ROUNDS: usize = 4;
/// Launches per round: 20 in all.
const LAUNCHES: usize = 5;
/// Timed Put+Get pairs per launch: 5000 in all.
const CALLS: usize = 250;

fn main() {
    let peers = common::go_peers(common::GoPlugin::V1_0_1);
    let rust_host = common::example("kv_host");
    let rust_plugin = common::example("kv_plugin");
    let configs = [
        ("Go host + Go plugin", false),
        ("Rust host + Rust plugin", false),
        ("Go host + Go plugin", true),
        ("Rust host + Rust plugin", true),
    ];
    let mut samples: Vec<Samples> = configs.iter().map(|_| Samples::default()).collect();
    let (launches, calls) = (LAUNCHES.to_string(), CALLS.to_string());
    for round in 0..ROUNDS {
        for (i, (name, mtls)) in configs.iter().enumerate() {
            let mut cmd = if name.starts_with("Go") {
                let mut cmd = Command::new(&peers.kvhost);
                if *mtls {
                    cmd.arg("-mtls");
                }
                cmd.args(["-json", "-launches", &launches, "-calls", &calls, "--"])
                    .arg(&peers.kvplugin);
                cmd
            } else {
                let mut cmd = Command::new(&rust_host);
                cmd.args(["--json", "--mtls", if *mtls { "on" } else { "off" }])
                    .args(["--launches", &launches, "--calls", &calls, "--"])
                    .arg(&rust_plugin);
                cmd
            };
            samples[i].run(&mut cmd);
            eprintln!("round {}/{ROUNDS}: {name}, mtls={mtls} done", round + 1);
        }
    }
    println!(
        "\n{:<24} {:>5} {:>14} {:>10} {:>10} {:>10} {:>9}",
        "pair", "mTLS", "launch p50 ms", "Put p50µs", "Get p50µs", "Put p99µs", "Kill ms"
    );
    for ((name, mtls), s) in configs.iter().zip(&samples) {
        println!(
            "{:<24} {:>5} {:>14.2} {:>10.1} {:>10.1} {:>10.1} {:>9.2}",
            name,
            if *mtls { "on" } else { "off" },
            quantile(&s.first_reply_ms, 0.5),
            quantile(&s.put_us, 0.5),
            quantile(&s.get_us, 0.5),
            quantile(&s.put_us, 0.99),
            quantile(&s.kill_ms, 0.5),
        );
    }
    println!(
        "\n{} launches and {} Put+Get pairs per row, medians over all of them.",
        ROUNDS * LAUNCHES,
        ROUNDS * LAUNCHES * CALLS
    );
}
