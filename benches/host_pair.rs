//! Benchmark: a Rust host with a Rust plugin (rpcplugin's `kv_host` and
//! `kv_plugin`) beside a Go host with a Go plugin (go-plugin 1.0.1, and
//! 1.8.0 plain and multiplexed), the same KV service, same machine, one
//! run, plain and AutoMTLS; then the brokered round trip (the counter
//! example's Put: the host serves AddHelper on a new broker id, the plugin
//! dials it and calls it) of a go-plugin 1.8.0 pair beside ours, plain and
//! multiplexed, AutoMTLS on.
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

/// One row: whose pair, which go-plugin for a Go pair, AutoMTLS, and
/// multiplexed gRPC.
struct Config {
    name: &'static str,
    go: Option<common::GoPlugin>,
    mtls: bool,
    mux: bool,
}

const fn row(name: &'static str, go: Option<common::GoPlugin>, mtls: bool, mux: bool) -> Config {
    Config {
        name,
        go,
        mtls,
        mux,
    }
}

fn main() {
    use common::GoPlugin::{V1_0_1, V1_8_0};
    let rust_host = common::example("kv_host");
    let rust_plugin = common::example("kv_plugin");
    let configs = [
        row("Go 1.0.1 pair", Some(V1_0_1), false, false),
        row("Go 1.8.0 pair", Some(V1_8_0), false, false),
        row("Rust pair", None, false, false),
        row("Go 1.0.1 pair", Some(V1_0_1), true, false),
        row("Rust pair", None, true, false),
        row("Go 1.8.0 pair", Some(V1_8_0), true, false),
        row("Go 1.8.0 pair, mux", Some(V1_8_0), true, true),
        row("Rust pair, mux", None, true, true),
    ];
    let mut samples: Vec<Samples> = configs.iter().map(|_| Samples::default()).collect();
    let (launches, calls) = (LAUNCHES.to_string(), CALLS.to_string());
    for round in 0..ROUNDS {
        for (i, config) in configs.iter().enumerate() {
            let mut cmd = match config.go {
                Some(version) => {
                    let peers = common::go_peers(version);
                    let mut cmd = Command::new(&peers.kvhost);
                    if config.mtls {
                        cmd.arg("-mtls");
                    }
                    if config.mux {
                        // go-plugin 1.8.0's plugins leave their socket when
                        // multiplexed: removed, not counted as a failure.
                        cmd.args(["-multiplex", "-leftover-socket-ok"]);
                    }
                    cmd.args(["-json", "-launches", &launches, "-calls", &calls, "--"])
                        .arg(&peers.kvplugin);
                    cmd
                }
                None => {
                    let mut cmd = Command::new(&rust_host);
                    cmd.args(["--json", "--mtls", if config.mtls { "on" } else { "off" }])
                        .args(["--multiplex", if config.mux { "required" } else { "off" }])
                        .args(["--launches", &launches, "--calls", &calls, "--"])
                        .arg(&rust_plugin);
                    cmd
                }
            };
            samples[i].run(&mut cmd);
            eprintln!(
                "round {}/{ROUNDS}: {}, mtls={} done",
                round + 1,
                config.name,
                config.mtls
            );
        }
    }
    println!(
        "\n{:<24} {:>5} {:>14} {:>10} {:>10} {:>10} {:>9}",
        "pair", "mTLS", "launch p50 ms", "Put p50µs", "Get p50µs", "Put p99µs", "Kill ms"
    );
    for (config, s) in configs.iter().zip(&samples) {
        println!(
            "{:<24} {:>5} {:>14.2} {:>10.1} {:>10.1} {:>10.1} {:>9.2}",
            config.name,
            if config.mtls { "on" } else { "off" },
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
    brokered();
}

/// Brokered Puts per counter host run.
const BROKERED_CALLS: usize = 200;

/// The brokered round trip: each row's median of its runs' medians.
fn brokered() {
    use common::GoPlugin::V1_8_0;
    let peers = common::go_peers(V1_8_0);
    let (rust_host, rust_plugin) = (
        common::example("counter_host"),
        common::example("counter_plugin"),
    );
    let rows = [
        ("Go 1.8.0 pair", true, false),
        ("Rust pair", false, false),
        ("Go 1.8.0 pair, mux", true, true),
        ("Rust pair, mux", false, true),
    ];
    let mut p50s: Vec<Vec<f64>> = rows.iter().map(|_| Vec::new()).collect();
    let calls = BROKERED_CALLS.to_string();
    for round in 0..ROUNDS {
        for (i, (name, go, mux)) in rows.iter().enumerate() {
            let mut cmd = if *go {
                let mut cmd = Command::new(&peers.counterhost);
                cmd.arg("-mtls");
                if *mux {
                    cmd.arg("-multiplex");
                }
                cmd.args(["-calls", &calls, "--"]).arg(&peers.counterplugin);
                cmd
            } else {
                let mut cmd = Command::new(&rust_host);
                cmd.args(["--mtls", "on", "--calls", &calls])
                    .args(["--multiplex", if *mux { "required" } else { "off" }])
                    .arg("--")
                    .arg(&rust_plugin);
                cmd
            };
            let out = cmd.output().expect("the counter host runs");
            let stdout = String::from_utf8_lossy(&out.stdout);
            // go-plugin 1.8.0's plugins leave their socket when
            // multiplexed, which its counter host reports: removed here,
            // not counted as a failure.
            let fails: Vec<&str> = stdout
                .lines()
                .filter(|l| l.starts_with("CHECK FAIL"))
                .collect();
            let leftover: Vec<&str> = fails
                .iter()
                .filter(|l| l.contains("still exists after Kill"))
                .filter_map(|l| l.split_whitespace().nth(3))
                .collect();
            let only_leftover = *go && *mux && !fails.is_empty() && leftover.len() == fails.len();
            for path in &leftover {
                let _ = std::fs::remove_file(path);
            }
            assert!(out.status.success() || only_leftover, "{name}: {stdout}");
            let p50 = stdout
                .lines()
                .find_map(|l| l.strip_prefix("TIMING: brokered Put p50 "))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or_else(|| panic!("{name}: no TIMING line in {stdout}"));
            p50s[i].push(p50);
            eprintln!("round {}/{ROUNDS}: brokered, {name} done", round + 1);
        }
    }
    println!("\n{:<24} {:>20}", "pair (AutoMTLS)", "brokered Put p50 µs");
    for ((name, _, _), runs) in rows.iter().zip(&p50s) {
        println!("{:<24} {:>20.1}", name, quantile(runs, 0.5));
    }
    println!(
        "\n{BROKERED_CALLS} brokered Puts per run, {ROUNDS} runs per row: the median of the runs' medians."
    );
}
