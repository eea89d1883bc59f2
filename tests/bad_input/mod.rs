//! Helpers for the bad-input tests of both echo transports
//! (`echo_bad_input_{tcp,grpc,shutdown}.rs`): a sink that records whatever
//! a transport pushes, deterministic junk, bounded waits, and `rpcplugin
//! echo serve` as a child process whose memory we can read.

#![allow(dead_code)]

pub mod grpc;

use std::future::Future;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::time::Duration;

use rpcplugin::echo::{Sample, Sink, SinkError};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// The longest any single wait in these tests may take.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// How much a server's resident memory may grow for a thousand idle
/// connections: 32 KiB each, generous (about 2.5 KiB each measured for
/// protocol v1, 16 KiB for gRPC), yet a bound.
pub const IDLE_GROWTH_LIMIT_KIB: u64 = 32 * 1024;

/// Waits for `fut`, failing the test after [`TIMEOUT`].
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(TIMEOUT, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing after {TIMEOUT:?}"))
}

/// A bounded sink that records whatever the transport pushes, without
/// checking sizes: [`rpcplugin::echo::ChannelSink`] would refuse a partial
/// sample itself and hide a transport that tried to deliver one.
#[derive(Debug, Clone)]
pub struct Unchecked(mpsc::Sender<Sample>);

impl Sink for Unchecked {
    async fn push(&self, sample: Sample) -> Result<(), SinkError> {
        self.0.send(sample).await.map_err(|_| SinkError::Closed)
    }
}

pub fn unchecked(capacity: usize) -> (Unchecked, mpsc::Receiver<Sample>) {
    let (tx, rx) = mpsc::channel(capacity);
    (Unchecked(tx), rx)
}

/// `len` bytes of deterministic junk (xorshift64).
pub fn garbage(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Polls `progress` until it stops growing (the same value for two
/// seconds) or reaches `limit`, within a minute; returns the last value.
/// A pause on a busy machine only ends the wait early, which makes the
/// callers' upper bounds easier to meet, never harder; callers count the
/// server's progress in too, so that a slow server does not look stalled.
pub async fn until_stalled(progress: impl Fn() -> u64, limit: u64) -> u64 {
    let mut last = progress();
    let mut still = 0;
    for _ in 0..240 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = progress();
        if now >= limit {
            return now;
        }
        still = if now == last { still + 1 } else { 0 };
        last = now;
        if still >= 8 {
            return now;
        }
    }
    panic!("still progressing after a minute: {last}");
}

/// The soft limit on open files of this process (children inherit it).
pub fn open_files_limit() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a Max open files line");
    let soft = line.split_whitespace().nth(3).unwrap();
    soft.parse().unwrap_or(u64::MAX)
}

/// How many idle connections to open: a thousand, unless the soft limit
/// on open files (shared by the test's own sockets and the tests running
/// beside it) leaves less room; then fewer, and says so.
pub fn idle_count() -> usize {
    let limit = open_files_limit();
    if limit >= 2100 {
        return 1000;
    }
    let n = limit.saturating_sub(600).max(100) as usize;
    eprintln!("the open-files limit is {limit}: opening {n} idle connections, not 1000");
    n
}

/// Opens `n` raw TCP connections to `addr` and reads `greeting` bytes on
/// each (the server's first words), so that each is accepted and served
/// before we count. Then they sit idle until dropped.
pub async fn open_idle(addr: SocketAddr, n: usize, greeting: usize) -> Vec<TcpStream> {
    let mut conns = Vec::with_capacity(n);
    for batch in 0..n.div_ceil(100) {
        let mut opening = tokio::task::JoinSet::new();
        for _ in batch * 100..(batch * 100 + 100).min(n) {
            opening.spawn(async move {
                let mut conn = TcpStream::connect(addr).await.unwrap();
                let mut first = vec![0u8; greeting];
                conn.read_exact(&mut first).await.unwrap();
                conn
            });
        }
        while let Some(conn) = opening.join_next().await {
            conns.push(conn.unwrap());
        }
    }
    conns
}

/// `rpcplugin echo serve` in a child process.
pub struct Server {
    child: Child,
    stdout: BufReader<ChildStdout>,
    pub endpoint: String,
}

impl Server {
    /// Starts it on 127.0.0.1 and reads where it listens.
    pub fn start(transport: &str, spec: &str, count: u64) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rpcplugin"))
            .args(["echo", "serve", "--transport", transport])
            .args(["--listen", "127.0.0.1:0", "--spec", spec])
            .args(["--count", &count.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let endpoint = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("not a listening line: {line:?}"))
            .to_owned();
        Server {
            child,
            stdout,
            endpoint,
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn addr(&self) -> SocketAddr {
        self.endpoint.parse().unwrap()
    }

    /// Its resident memory (VmRSS), in KiB.
    pub fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    /// The most resident memory it ever had (VmHWM), in KiB.
    pub fn peak_kib(&self) -> u64 {
        self.status_kib("VmHWM:")
    }

    /// Windows: the working set (`VmRSS:`) or its peak (`VmHWM:`).
    #[cfg(windows)]
    fn status_kib(&self, field: &str) -> u64 {
        use windows_sys::Win32::Foundation::CloseHandle;
        use windows_sys::Win32::System::ProcessStatus::{
            K32GetProcessMemoryInfo, PROCESS_MEMORY_COUNTERS,
        };
        use windows_sys::Win32::System::Threading::{OpenProcess, PROCESS_QUERY_INFORMATION};
        // SAFETY: a handle we open and close, and a counters structure of
        // the size we pass.
        let counters = unsafe {
            let process = OpenProcess(PROCESS_QUERY_INFORMATION, 0, self.child.id());
            assert!(!process.is_null(), "cannot open the server process");
            let mut counters: PROCESS_MEMORY_COUNTERS = std::mem::zeroed();
            let size = std::mem::size_of::<PROCESS_MEMORY_COUNTERS>() as u32;
            let ok = K32GetProcessMemoryInfo(process, &mut counters, size);
            CloseHandle(process);
            assert!(ok != 0, "cannot read the server's memory counters");
            counters
        };
        let bytes = match field {
            "VmRSS:" => counters.WorkingSetSize,
            "VmHWM:" => counters.PeakWorkingSetSize,
            other => panic!("no Windows counter for {other}"),
        };
        bytes as u64 / 1024
    }

    #[cfg(unix)]
    fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with(field)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// Waits (at most [`TIMEOUT`]) for it to exit by itself; its status and
    /// the rest of its output.
    pub async fn exit(mut self) -> (ExitStatus, String) {
        let status = within("the server's exit", async {
            loop {
                if let Some(status) = self.child.try_wait().unwrap() {
                    return status;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).unwrap();
        (status, rest)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
