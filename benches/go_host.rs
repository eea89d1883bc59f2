//! Benchmark: our `kv_plugin` beside a go-plugin 1.0.1 plugin serving the
//! same KV service, both launched by the same go-plugin 1.0.1 host (Go), in
//! one run on one machine, plain and AutoMTLS.
//!
//! ```text
//! cargo bench --bench go_host            # needs .ci/install-peers
//! ```
//!
//! Per configuration: launch→first reply (p50 over all launches), Put and
//! Get latency (p50, p99 over all timed calls), Kill duration (p50), and the
//! plugin's peak RSS. Configurations are interleaved round by round so that
//! machine noise falls on all of them alike.

mod measure;

use std::process::Command;

use measure::{Samples, common, quantile};

/// Rounds per configuration; each round is one host run.
const ROUNDS: usize = 4;
/// Launches per round: 20 launches in all at 5 per round.
const LAUNCHES: usize = 5;
/// Timed Put+Get pairs per launch: 4 × 5 × 250 = 5000 pairs in all.
const CALLS: usize = 250;

fn main() {
    let peers = common::go_peers(common::GoPlugin::V1_0_1);
    let rust_plugin = common::example("kv_plugin");
    let configs = [
        ("go-plugin 1.0.1 (Go)", peers.kvplugin.clone(), false),
        ("rpcplugin (Rust)", rust_plugin.clone(), false),
        ("go-plugin 1.0.1 (Go)", peers.kvplugin.clone(), true),
        ("rpcplugin (Rust)", rust_plugin, true),
    ];
    let mut samples: Vec<Samples> = configs.iter().map(|_| Samples::default()).collect();
    for round in 0..ROUNDS {
        for (i, (name, plugin, mtls)) in configs.iter().enumerate() {
            let mut cmd = Command::new(&peers.kvhost);
            if *mtls {
                cmd.arg("-mtls");
            }
            cmd.args([
                "-json",
                "-launches",
                &LAUNCHES.to_string(),
                "-calls",
                &CALLS.to_string(),
                "--",
            ])
            .arg(plugin);
            samples[i].run(&mut cmd);
            eprintln!("round {}/{ROUNDS}: {name}, mtls={mtls} done", round + 1);
        }
    }
    println!(
        "\n{:<22} {:>5} {:>14} {:>10} {:>10} {:>10} {:>10} {:>9} {:>9}",
        "plugin (Go host)",
        "mTLS",
        "launch p50 ms",
        "Put p50µs",
        "Put p99µs",
        "Get p50µs",
        "Get p99µs",
        "Kill ms",
        "RSS MiB"
    );
    for ((name, _, mtls), s) in configs.iter().zip(&samples) {
        println!(
            "{:<22} {:>5} {:>14.2} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>9.1} {:>9.1}",
            name,
            if *mtls { "on" } else { "off" },
            quantile(&s.first_reply_ms, 0.5),
            quantile(&s.put_us, 0.5),
            quantile(&s.put_us, 0.99),
            quantile(&s.get_us, 0.5),
            quantile(&s.get_us, 0.99),
            quantile(&s.kill_ms, 0.5),
            s.peak_rss_kib as f64 / 1024.0,
        );
    }
    println!(
        "\n{} launches and {} Put+Get pairs per row, medians over all of them.",
        ROUNDS * LAUNCHES,
        ROUNDS * LAUNCHES * CALLS
    );
}
