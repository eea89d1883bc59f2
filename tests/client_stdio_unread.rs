//! A host whose own stdout is a pipe nobody reads goes on while its plugin
//! prints: with `StdioSink::Inherit` (the default), the plugin's output is
//! written to the host's stdout by a thread of its own, so a full pipe
//! blocks that thread (and, by flow control, the plugin's printing), never
//! a runtime worker: health checks and `kill` go on.
//!
//! This binary holds one test, because it points its own fd 1 at a pipe.
//! A watchdog thread ends the process if the runtime wedges, so the test
//! fails instead of hanging. Linux only: it shrinks the pipe with
//! `F_SETPIPE_SZ` and reads the writer's wait channel from `/proc`.
#![cfg(target_os = "linux")]

mod common;

use std::os::fd::AsRawFd;
use std::time::Duration;

use demo_proto::kv::PutRequest;
use demo_proto::kv::kv_client::KvClient;
use rpcplugin::{ClientConfig, HandshakeConfig};

/// Bytes waiting in the pipe `fd`.
fn queued(fd: &std::os::fd::OwnedFd) -> i32 {
    let mut n: nix::libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int through the pointer, which is valid.
    let rc = unsafe { nix::libc::ioctl(fd.as_raw_fd(), nix::libc::FIONREAD, &mut n) };
    assert_eq!(rc, 0, "FIONREAD");
    n
}

/// Whether this process's stdio sink thread (`rpcplugin-stdio-sink`,
/// whose name the kernel cuts to 15 bytes) is blocked writing into a pipe.
/// The pipe's byte count cannot tell: a write of up to `PIPE_BUF` (4096)
/// bytes is atomic, so a 4096-byte chunk waits for 4096 free bytes, and
/// a 4096-byte pipe holding 1024 is as full as it gets for it (seen in
/// about one run in eight: the test used to wait for 4096 queued bytes).
fn sink_blocked_in_write() -> bool {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return false;
    };
    tasks.flatten().any(|task| {
        let read = |file: &str| std::fs::read_to_string(task.path().join(file)).unwrap_or_default();
        read("comm").trim() == "rpcplugin-stdio" && read("wchan").contains("pipe_write")
    })
}

/// Points fd 1 back at the real stdout when dropped, also when the test
/// panics (declared after the pipe's read end, so it runs first: the test
/// harness then reports to the real stdout, not into the pipe).
struct RestoreStdout(std::os::fd::OwnedFd);

impl Drop for RestoreStdout {
    fn drop(&mut self) {
        let _ = nix::unistd::dup2_stdout(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_whose_stdout_nobody_reads_goes_on() {
    let plugin = common::example("stdio_plugin");
    let saved = nix::unistd::dup(std::io::stdout()).unwrap();
    let (unread, write_end) = nix::unistd::pipe().unwrap();
    let capacity = nix::fcntl::fcntl(&write_end, nix::fcntl::FcntlArg::F_SETPIPE_SZ(4096)).unwrap();
    let restore = RestoreStdout(nix::unistd::dup(&saved).unwrap());
    nix::unistd::dup2_stdout(&write_end).unwrap();
    drop(write_end);

    let watchdog_saved = nix::unistd::dup(&saved).unwrap();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        // Only a timeout is a wedge: a test that failed drops `done_tx`,
        // and its own report must get out. Written to fd 2 itself: the
        // test harness captures `eprintln!`, and `exit` would lose it.
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
            done_rx.recv_timeout(Duration::from_secs(120))
        {
            use std::io::Write;
            let _ = nix::unistd::dup2_stdout(&watchdog_saved);
            let _ = std::io::stderr()
                .write_all(b"the host wedged: no progress within 120 s with its stdout unread\n");
            std::process::exit(101);
        }
    });

    let client = ClientConfig::new(HandshakeConfig::basic_example())
        .start(std::process::Command::new(plugin))
        .await
        .unwrap_or_else(|err| panic!("start: {}", rpcplugin::log::Chain(&err)));
    // 2 MiB to the plugin's stdout; the call may never finish (the host's
    // stdout is full), so it is not awaited. Output the plugin prints
    // before the host's GRPCStdio stream is attached, or while it stalls,
    // passes through to the plugin's real stdout (which the host only
    // logs): flood again each second until the host's stdout is full.
    let flood = |kv: KvClient<tonic::transport::Channel>| {
        let mut kv = kv;
        tokio::spawn(async move {
            kv.put(PutRequest {
                key: "flood".into(),
                value: (2usize << 20).to_string().into(),
            })
            .await
        })
    };
    let kv = KvClient::new(client.channel());
    let mut floods = vec![flood(kv.clone())];
    // The host's stdout pipe fills up, until the thread that writes to it
    // waits on it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut next_flood = tokio::time::Instant::now() + Duration::from_secs(1);
    let mut blocked = false;
    while tokio::time::Instant::now() < deadline {
        if sink_blocked_in_write() {
            blocked = true;
            break;
        }
        if tokio::time::Instant::now() >= next_flood {
            floods.push(flood(kv.clone()));
            next_flood += Duration::from_secs(1);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let filled = queued(&unread);
    // With its stdout full, the host still answers, times and kills.
    let pinged = tokio::time::timeout(Duration::from_secs(20), client.ping()).await;
    let killed = tokio::time::timeout(Duration::from_secs(30), client.kill()).await;
    for flood in floods {
        flood.abort();
    }

    drop(restore);
    let _ = done_tx.send(());
    assert!(
        blocked,
        "the host's stdout never stopped its writer ({filled} of {capacity} bytes queued)"
    );
    assert!(matches!(pinged, Ok(Ok(()))), "ping: {pinged:?}");
    assert!(killed.is_ok(), "kill did not return within 30 s");
    assert!(client.exited(), "the plugin still runs after kill");
}
