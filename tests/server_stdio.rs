//! GRPCStdio: the plugin's own stdout and stderr (fds 1 and 2) reach the
//! host's StreamStdio stream, and a host that never reads it cannot wedge
//! the plugin's shutdown.

mod common;

use std::time::Duration;

use demo_proto::kv::PutRequest;
use demo_proto::kv::kv_client::KvClient;
use rpcplugin::proto::plugin::grpc_controller_client::GrpcControllerClient;
use rpcplugin::proto::plugin::grpc_stdio_client::GrpcStdioClient;
use rpcplugin::proto::plugin::stdio_data::Channel;
use rpcplugin::proto::plugin::{Empty, StdioData};

fn stdio_plugin() -> std::path::PathBuf {
    common::example("stdio_plugin")
}

async fn put(channel: &tonic::transport::Channel, key: &str, value: &str) {
    KvClient::new(channel.clone())
        .put(PutRequest {
            key: key.into(),
            value: value.to_owned().into(),
        })
        .await
        .unwrap();
}

/// Reads the stream until every expected (channel, text) pair was seen.
async fn expect_output(stream: &mut tonic::Streaming<StdioData>, expected: &[(Channel, &str)]) {
    let mut seen: Vec<(i32, String)> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !expected.iter().all(|(ch, text)| {
        seen.iter()
            .any(|(c, s)| *c == *ch as i32 && s.contains(text))
    }) {
        let data = tokio::time::timeout_at(deadline, stream.message())
            .await
            .unwrap_or_else(|_| panic!("timed out; saw {seen:?}"))
            .unwrap()
            .expect("stream still open");
        let text = String::from_utf8_lossy(&data.data).into_owned();
        match seen.iter_mut().find(|(c, _)| *c == data.channel) {
            Some((_, s)) => s.push_str(&text),
            None => seen.push((data.channel, text)),
        }
    }
}

#[tokio::test]
async fn println_eprintln_and_child_output_reach_the_host() {
    let mut plugin = common::launch(&stdio_plugin(), &[], &[]);
    let channel = plugin.channel().await;
    // Written before the host attaches: held, then delivered.
    put(&channel, "stdout", "early bird").await;
    let mut stream = GrpcStdioClient::new(channel.clone())
        .stream_stdio(())
        .await
        .unwrap()
        .into_inner();
    put(&channel, "stdout", "hello from println").await;
    put(&channel, "stderr", "hello from eprintln").await;
    put(&channel, "child", "hello from a child process").await;
    expect_output(
        &mut stream,
        &[
            (Channel::Stdout, "early bird\n"),
            (Channel::Stdout, "hello from println\n"),
            (Channel::Stderr, "hello from eprintln\n"),
            (Channel::Stdout, "hello from a child process\n"),
        ],
    )
    .await;
    let asked = std::time::Instant::now();
    GrpcControllerClient::new(channel)
        .shutdown(Empty {})
        .await
        .unwrap();
    // The stream ends as soon as shutdown begins, so that it does not hold
    // up the graceful stop until the drain limit.
    let end = tokio::time::timeout(Duration::from_secs(2), async {
        while stream.message().await.ok().flatten().is_some() {}
    })
    .await;
    assert!(end.is_ok(), "the stdio stream ended on shutdown");
    let ended = asked.elapsed();
    drop(stream);
    assert!(plugin.wait_exit(Duration::from_secs(2)).unwrap().success());
    let exited = asked.elapsed();
    eprintln!("stream ended after {ended:?}, process exited after {exited:?}");
    // Nothing leaked onto the real stdout after the handshake line.
    assert!(plugin.stdout_rest.lock().unwrap().is_empty());
}

#[tokio::test]
async fn without_a_stream_output_passes_through_instead_of_blocking() {
    // go-plugin 1.0.1 and pyvider hosts never call StreamStdio: a plugin
    // that writes more than the pipe and our buffer hold must not block.
    let mut plugin = common::launch(&stdio_plugin(), &[], &[]);
    let channel = plugin.channel().await;
    let flood = 1 << 20;
    tokio::time::timeout(
        Duration::from_secs(10),
        put(&channel, "flood", &flood.to_string()),
    )
    .await
    .expect("1 MiB of output with no stdio stream did not block the plugin");
    GrpcControllerClient::new(channel)
        .shutdown(Empty {})
        .await
        .unwrap();
    assert!(plugin.wait_exit(Duration::from_secs(2)).unwrap().success());
    std::thread::sleep(Duration::from_millis(100));
    let passed = plugin
        .stdout_rest
        .lock()
        .unwrap()
        .iter()
        .filter(|b| **b == b'x')
        .count();
    assert_eq!(passed, flood, "every byte reached the original stdout");
}

#[tokio::test]
async fn a_host_that_never_reads_stdio_cannot_wedge_shutdown() {
    let mut plugin = common::launch(&stdio_plugin(), &[], &[]);
    // The host opens the stdio stream on its own connection and never reads.
    let stdio_channel = plugin.channel().await;
    let _unread = GrpcStdioClient::new(stdio_channel)
        .stream_stdio(())
        .await
        .unwrap();
    let channel = plugin.channel().await;
    let flood = 4 << 20;
    let writer = tokio::spawn({
        let channel = channel.clone();
        async move { put(&channel, "flood", &flood.to_string()).await }
    });
    // Once the stream's queue stays full, the output passes through to
    // the original stdout (which a go-plugin host drains; `launch` does):
    // the writes finish, nothing waits on the unread stream.
    let finished = tokio::time::timeout(Duration::from_secs(20), writer).await;
    assert!(
        matches!(finished, Ok(Ok(()))),
        "the writes did not finish within 20 s"
    );
    // What the stream's HTTP/2 windows did not hold passed through.
    let passed = plugin.stdout_rest.lock().unwrap().len();
    assert!(passed > 0, "nothing of {flood} bytes passed through");
    GrpcControllerClient::new(channel)
        .shutdown(Empty {})
        .await
        .unwrap();
    let status = plugin
        .wait_exit(Duration::from_secs(2))
        .expect("exited within go-plugin's 2 s");
    assert!(status.success(), "{status}");
}

/// A panic's text reaches the plugin's real stderr at once, as a Go
/// plugin's does, even with no GRPCStdio stream attached and when the
/// panic aborts the process (`panic = "abort"`), where output held for the
/// stream would be lost.
#[tokio::test]
async fn panic_text_reaches_the_real_stderr_even_when_the_plugin_aborts() {
    let mut plugin = common::launch(&stdio_plugin(), &[], &[]);
    let channel = plugin.channel().await;
    let call = KvClient::new(channel)
        .put(PutRequest {
            key: "panic-abort".into(),
            value: "the plugin's last words".into(),
        })
        .await;
    assert!(call.is_err(), "the call of a plugin that aborts");
    let status = plugin
        .wait_exit(Duration::from_secs(5))
        .expect("the plugin aborted");
    assert!(!status.success(), "{status}");
    let stderr = plugin.stderr();
    assert!(
        stderr.contains("panicked at") && stderr.contains("the plugin's last words"),
        "{stderr:?}"
    );
}

/// Output printed just before the plugin calls `std::process::exit` while
/// serving (held for a host that may still open GRPCStdio, or still in the
/// pipes) reaches the plugin's real stdout and stderr before it ends, as a
/// Go plugin's does. Unix only: on Windows `std::process::exit` skips the
/// C runtime's exit handlers, so there is no hook (see the README).
#[cfg(unix)]
#[tokio::test]
async fn output_printed_just_before_exit_reaches_the_real_descriptors() {
    let mut plugin = common::launch(&stdio_plugin(), &[], &[]);
    let channel = plugin.channel().await;
    let lines = 500;
    let call = KvClient::new(channel)
        .put(PutRequest {
            key: "print-then-exit".into(),
            value: lines.to_string().into(),
        })
        .await;
    assert!(call.is_err(), "the call of a plugin that exits");
    let status = plugin
        .wait_exit(Duration::from_secs(5))
        .expect("the plugin exited");
    assert_eq!(status.code(), Some(3), "{status}");
    // The launcher's readers catch up with the closed pipes (up to 5 s on
    // a busy machine; at once on a quiet one).
    let complete = |text: &str, stream: &str| {
        text.contains(&format!("last words {} on {stream}\n", lines - 1))
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let (stdout, stderr) = loop {
        let stdout = String::from_utf8_lossy(&plugin.stdout_rest.lock().unwrap()).into_owned();
        let stderr = plugin.stderr();
        if (complete(&stdout, "stdout") && complete(&stderr, "stderr"))
            || std::time::Instant::now() >= deadline
        {
            break (stdout, stderr);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    for i in [0, lines / 2, lines - 1] {
        assert!(
            stdout.contains(&format!("last words {i} on stdout\n")),
            "stdout line {i} lost; stdout has {} bytes",
            stdout.len()
        );
        assert!(
            stderr.contains(&format!("last words {i} on stderr\n")),
            "stderr line {i} lost; stderr has {} bytes",
            stderr.len()
        );
    }
    assert_eq!(
        stdout.matches(" on stdout\n").count(),
        lines,
        "every stdout line, once"
    );
    assert_eq!(
        stderr.matches(" on stderr\n").count(),
        lines,
        "every stderr line, once"
    );
}
