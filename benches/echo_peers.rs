//! Benchmark: echo's TCP protocol v1 served by our `TcpTransport`
//! (`rpcplugin echo serve --transport tcp`) beside id-echo's own Python
//! `Server` with its `TcpTransport`, both fed by the same client, echo's own
//! Python `TcpClient` (id-echo 0.2.1, 32 samples in flight), for uint8
//! samples of 1 KiB, 64 KiB and 4 MiB, with 1 and 4 client processes.
//!
//! ```text
//! .ci/install-peers                  # once: .venv-peers with id-echo
//! cargo bench --features cli --bench echo_peers
//! ```
//!
//! It needs Python with id-echo and numpy: the peers' virtualenv
//! `.venv-peers` that `.ci/install-peers` makes, or the Python named by
//! `RPCPLUGIN_PEERS_PYTHON`; without one it stops at once and says so.
//! Every run starts a fresh server and fresh clients
//! (`benches/python/tcp_client_rate.py`; id-echo's server is
//! `benches/python/id_echo_server.py`, whose consumer drains every batch at
//! once). The clients connect, check the spec and then wait on a barrier,
//! so imports and set-up are not measured; a run's rate is all its samples
//! over (last client's end − first client's start), the time until every
//! sample is acknowledged. A run streams a fixed number of samples, split
//! among its clients. Configurations are interleaved round by round (the
//! two servers of a pair take turns going first); the table gives medians
//! of 5 runs, the ratio ours / id-echo, how many acknowledged samples
//! never reached the server's consumer, and how many runs stalled (their
//! clients had not finished after a minute; such runs are left out of the
//! medians, their processes killed). About 2–4 minutes on 2 cores.
//! `ECHO_BENCH_SIZES=65536,4194304` runs only those sample sizes,
//! `ECHO_PEERS_ROUNDS=3` runs 3 rounds.

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const ROUNDS: usize = 5;
const CLIENTS: [usize; 2] = [1, 4];
/// Bytes streamed per run, at most `MAX_SAMPLES` samples: about 0.5–1.5 s
/// of streaming each on 2 cores.
const BYTES_PER_RUN: usize = 2 << 30;
const MAX_SAMPLES: usize = 49_152;

#[derive(Clone, Copy, PartialEq)]
enum Server {
    Ours,
    IdEcho,
}

impl Server {
    fn name(self) -> &'static str {
        match self {
            Server::Ours => "rpcplugin TcpTransport",
            Server::IdEcho => "id-echo Server",
        }
    }
}

/// The batch size of id-echo's server: about 16 MiB per batch, at least 4
/// samples (its ring holds 3 batches; with batches of 1 or 2 samples
/// id-echo 0.2.1 sometimes stops reading its connections for good).
fn batch(size: usize) -> usize {
    ((16 << 20) / size).clamp(4, 8192)
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Samples per run: a multiple of id-echo's batch (its consumer sees whole
/// batches) and of every client count.
fn samples_per_run(size: usize) -> usize {
    let mut unit = batch(size);
    for clients in CLIENTS {
        unit = unit / gcd(unit, clients) * clients;
    }
    ((BYTES_PER_RUN / size).min(MAX_SAMPLES) / unit).max(1) * unit
}

/// A child process with its stdout read line by line in the background;
/// killed (if still running) and reaped when dropped, also on a panic.
struct Proc {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Proc {
    fn spawn(name: &str, cmd: &mut Command) -> Proc {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Proc {
            name: name.to_owned(),
            stdin: child.stdin.take(),
            child,
            lines,
        }
    }

    /// The rest of the next stdout line that starts with `prefix` (other
    /// lines are skipped), if one comes within `limit`.
    fn line(&self, prefix: &str, limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).ok()?;
            if let Some(rest) = line.strip_prefix(prefix) {
                return Some(rest.trim().to_owned());
            }
        }
    }

    fn expect_line(&self, prefix: &str, limit: Duration) -> String {
        self.line(prefix, limit).unwrap_or_else(|| {
            panic!(
                "{} printed no {prefix:?} line within {limit:?} (its stderr is above)",
                self.name
            )
        })
    }

    fn say(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin
            .write_all(text.as_bytes())
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("cannot write to {}: {e}", self.name));
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        drop(self.stdin.take());
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// What one run measured.
struct Outcome {
    rate: f64,
    /// Samples acknowledged to the clients that the consumer did not get.
    lost: usize,
}

/// How long the clients of a run may take once started: runs take about a
/// second; a run that takes longer has stalled.
const STALL: Duration = Duration::from_secs(60);

/// One run, or None when the clients did not finish within [`STALL`].
fn run(python: &Path, server: Server, size: usize, clients: usize) -> Option<Outcome> {
    let total = samples_per_run(size);
    let scripts = common::crate_dir().join("benches/python");
    let spec = format!("uint8[{size}]");
    let mut srv = match server {
        // No --count: `serve` would shut down on the last sample, maybe
        // before that sample's ack is written, and echo's TcpClient would
        // then wait forever.
        Server::Ours => Proc::spawn(
            "rpcplugin echo serve",
            Command::new(env!("CARGO_BIN_EXE_rpcplugin")).args([
                "echo",
                "serve",
                "--transport",
                "tcp",
                "--listen",
                "127.0.0.1:0",
                "--spec",
                &spec,
            ]),
        ),
        Server::IdEcho => Proc::spawn(
            "id_echo_server.py",
            Command::new(python)
                .arg(scripts.join("id_echo_server.py"))
                .arg(size.to_string())
                .arg(batch(size).to_string())
                .arg(total.to_string()),
        ),
    };
    let port: u16 = match server {
        Server::Ours => srv
            .expect_line("listening on ", Duration::from_secs(30))
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("listening on host:port"),
        Server::IdEcho => srv
            .expect_line("PORT ", Duration::from_secs(30))
            .parse()
            .expect("PORT <port>"),
    };

    let per_client = total / clients;
    let mut procs: Vec<Proc> = (0..clients)
        .map(|i| {
            Proc::spawn(
                &format!("client {i} (tcp_client_rate.py)"),
                Command::new(python)
                    .arg(scripts.join("tcp_client_rate.py"))
                    .arg("127.0.0.1")
                    .arg(port.to_string())
                    .arg(size.to_string())
                    .arg(per_client.to_string()),
            )
        })
        .collect();
    for client in &procs {
        client.expect_line("READY", Duration::from_secs(60));
    }
    for client in &mut procs {
        client.say("go\n");
    }
    let (mut first, mut last) = (f64::INFINITY, f64::NEG_INFINITY);
    let deadline = Instant::now() + STALL;
    for client in &mut procs {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(done) = client.line("DONE ", left) else {
            if let Ok(Some(status)) = client.child.try_wait() {
                panic!("{} failed ({status}); its stderr is above", client.name);
            }
            eprintln!(
                "{} stalled: {} did not finish within {STALL:?} ({}, clients: {clients})",
                server.name(),
                client.name,
                human(size)
            );
            return None;
        };
        let fields: Vec<f64> = done
            .split_whitespace()
            .map(|f| f.parse().expect("DONE <start> <end> <count>"))
            .collect();
        assert_eq!(fields.len(), 3, "DONE <start> <end> <count>: {done}");
        assert_eq!(fields[2] as usize, per_client, "{done}");
        first = first.min(fields[0]);
        last = last.max(fields[1]);
    }
    drop(procs);

    // Every sample is acknowledged now; how many reached the consumer?
    let received = match server {
        Server::Ours => {
            // A sample is acknowledged once it is in the sink's channel;
            // let the consumer empty it, then stop the server, which
            // prints "received N samples, ...".
            std::thread::sleep(Duration::from_millis(200));
            #[cfg(unix)]
            {
                let pid = nix::unistd::Pid::from_raw(srv.child.id() as i32);
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
            }
            #[cfg(not(unix))]
            let _ = srv.child.kill();
            srv.line("received ", Duration::from_secs(10))
        }
        Server::IdEcho => srv.line("RECEIVED ", Duration::from_secs(5)).or_else(|| {
            // Not all batches completed: ask for what did arrive.
            srv.say("stop\n");
            srv.line("RECEIVED ", Duration::from_secs(5))
        }),
    };
    let received: usize = received
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    Some(Outcome {
        rate: total as f64 / (last - first).max(1e-9),
        lost: total.saturating_sub(received),
    })
}

/// The median (NaN when there is nothing to take it of).
fn median(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let mut xs = xs.to_vec();
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// "Python 3.11.7, id-echo 0.2.1, numpy 2.3.5", or a panic that says how
/// to install the peers.
fn versions(python: &Path) -> String {
    let out = Command::new(python)
        .args([
            "-c",
            "import sys, importlib.metadata as m, echo, numpy; \
             print(f'Python {sys.version.split()[0]}, id-echo {m.version(\"id-echo\")}, \
             numpy {numpy.__version__}')",
        ])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e}; {}",
                python.display(),
                common::INSTALL_HINT
            )
        });
    assert!(
        out.status.success(),
        "{} cannot import id-echo: {}\n{}",
        python.display(),
        String::from_utf8_lossy(&out.stderr),
        common::INSTALL_HINT
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn human(size: usize) -> String {
    match size {
        s if s >= 1 << 20 && s % (1 << 20) == 0 => format!("{} MiB", s >> 20),
        s if s >= 1 << 10 && s % (1 << 10) == 0 => format!("{} KiB", s >> 10),
        s => format!("{s} B"),
    }
}

fn main() {
    let python = common::peers_python();
    let peers = versions(&python);
    eprintln!("peers: {peers} ({})", python.display());
    let sizes: Vec<usize> = match std::env::var("ECHO_BENCH_SIZES") {
        Ok(list) => list
            .split(',')
            .map(|s| s.trim().parse().expect("a byte count"))
            .collect(),
        Err(_) => vec![1 << 10, 64 << 10, 4 << 20],
    };
    let rounds: usize = std::env::var("ECHO_PEERS_ROUNDS")
        .map(|r| r.parse().expect("a number of rounds"))
        .unwrap_or(ROUNDS);
    let mut pairs = Vec::new();
    for &size in &sizes {
        for clients in CLIENTS {
            pairs.push((size, clients));
        }
    }
    let started = Instant::now();
    // rates[pair][0 = ours, 1 = id-echo]
    let mut rates = vec![[Vec::new(), Vec::new()]; pairs.len()];
    let mut lost = vec![[0usize; 2]; pairs.len()];
    let mut stalls = vec![[0usize; 2]; pairs.len()];
    for round in 0..rounds {
        for (i, &(size, clients)) in pairs.iter().enumerate() {
            let order = if round % 2 == 0 {
                [Server::Ours, Server::IdEcho]
            } else {
                [Server::IdEcho, Server::Ours]
            };
            for server in order {
                let k = usize::from(server == Server::IdEcho);
                let Some(outcome) = run(&python, server, size, clients) else {
                    stalls[i][k] += 1;
                    continue;
                };
                rates[i][k].push(outcome.rate);
                lost[i][k] += outcome.lost;
                if outcome.lost > 0 {
                    eprintln!(
                        "{} lost {} of {} acknowledged samples ({}, clients: {clients})",
                        server.name(),
                        outcome.lost,
                        samples_per_run(size),
                        human(size)
                    );
                }
            }
        }
        eprintln!(
            "round {}/{rounds} done ({:.0} s)",
            round + 1,
            started.elapsed().as_secs_f64()
        );
    }

    println!(
        "\n{:<8} {:>7}  {:<23} {:>10} {:>8} {:>19} {:>6} {:>6} {:>12}",
        "sample",
        "clients",
        "server",
        "samples/s",
        "MB/s",
        "range samples/s",
        "lost",
        "stalls",
        "ours/id-echo"
    );
    for (i, &(size, clients)) in pairs.iter().enumerate() {
        let medians = [median(&rates[i][0]), median(&rates[i][1])];
        for (k, server) in [Server::Ours, Server::IdEcho].into_iter().enumerate() {
            let xs = &rates[i][k];
            let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            println!(
                "{:<8} {:>7}  {:<23} {:>10.0} {:>8.0} {:>19} {:>6} {:>6} {:>12}",
                human(size),
                clients,
                server.name(),
                medians[k],
                medians[k] * size as f64 / 1e6,
                format!("{lo:.0}–{hi:.0}"),
                lost[i][k],
                stalls[i][k],
                if k == 0 {
                    format!("{:.2}", medians[0] / medians[1])
                } else {
                    String::new()
                },
            );
        }
    }
    println!(
        "\necho's Python TcpClient (32 in flight) against each server on 127.0.0.1; \
         medians of {rounds} runs of {} (at most {} samples) each, \
         split among the clients; \"lost\": acknowledged samples that did not reach \
         the consumer, over all runs (id-echo counts whole batches of up to 16 MiB); \
         \"stalls\": runs whose clients had not finished after {STALL:?} (left out of the \
         medians).\
         \npeers: {peers}. Took {:.0} s.",
        human(BYTES_PER_RUN),
        MAX_SAMPLES,
        started.elapsed().as_secs_f64()
    );
}
