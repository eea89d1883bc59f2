//! Sample clients never hang on a server that stops acknowledging: with
//! samples outstanding and no ack for the progress timeout, `send` and
//! `wait` fail naming the count outstanding (async and blocking clients,
//! both protocols, and `rpcplugin echo send`); a gRPC server that accepts
//! and never speaks fails `connect` within its timeout.

mod bad_input;

use std::time::{Duration, Instant};

use bad_input::within;
use bytes::Bytes;
use rpcplugin::Endpoint;
use rpcplugin::echo::{self, EchoClientError, Sample, SampleServer, Sink, SinkError};
use rpcplugin::transport::TcpTransport;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const SPEC: &str = "uint8[16]";
const PROGRESS: Duration = Duration::from_secs(1);

fn spec() -> echo::Spec {
    SPEC.parse().unwrap()
}

fn sample() -> Bytes {
    Bytes::from(vec![7u8; 16])
}

/// A v1 server that sends a valid spec header, reads everything, and never
/// acknowledges.
async fn silent_v1() -> Endpoint {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                conn.write_all(&spec().to_wire()).await.unwrap();
                let mut sink = vec![0u8; 4096];
                while let Ok(1..) = conn.read(&mut sink).await {}
            });
        }
    });
    Endpoint::tcp(addr)
}

/// A v1 server that sends a valid spec header and then `acks` ack bytes at
/// once, whatever it receives: more acks than samples sent.
async fn overacking_v1(acks: usize) -> Endpoint {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                conn.write_all(&spec().to_wire()).await.unwrap();
                let mut first = [0u8; 16];
                conn.read_exact(&mut first).await.unwrap();
                conn.write_all(&vec![0x01; acks]).await.unwrap();
                let mut sink = vec![0u8; 4096];
                while let Ok(1..) = conn.read(&mut sink).await {}
            });
        }
    });
    Endpoint::tcp(addr)
}

/// A v1 server that acknowledges more samples than were sent ends the
/// stream with `TooManyAcks`, at once: before, the surplus became credits
/// (more than the window in flight), and `wait` reported as delivered
/// samples the server had not acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_client_refuses_acks_beyond_what_was_sent() {
    let endpoint = overacking_v1(1000).await;
    let client = echo::TcpClient::connect(&endpoint, &spec(), 4)
        .await
        .unwrap()
        .progress_timeout(PROGRESS);
    client.send(sample()).await.unwrap();
    // One sample sent, 1000 acks back: some of them may arrive after
    // the first ones were counted (one read), never all.
    let err = within("wait", client.wait()).await.unwrap_err();
    let EchoClientError::ConnectionClosed {
        reason: echo::CloseReason::TooManyAcks { acknowledged, sent },
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(*sent, 1, "{err}");
    assert!(*acknowledged > 1, "{err}");
    assert_eq!(client.acknowledged(), 0, "no ack of that read is counted");
    // Later sends fail the same way instead of queueing past the window.
    let err = within("send after", client.send(sample()))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            EchoClientError::ConnectionClosed {
                reason: echo::CloseReason::TooManyAcks { .. }
            }
        ),
        "{err:?}"
    );
    client.close().await;
}

/// A gRPC sample server whose sink never takes a sample.
#[derive(Debug, Clone)]
struct Stuck;

impl Sink for Stuck {
    async fn push(&self, _: Sample) -> Result<(), SinkError> {
        std::future::pending().await
    }
}

fn assert_stalled(err: &EchoClientError, outstanding: u64) {
    match err {
        EchoClientError::Stalled {
            outstanding: n,
            after,
        } => {
            assert_eq!((*n, *after), (outstanding, PROGRESS), "{err}");
            assert!(
                err.to_string()
                    .contains(&format!("{outstanding} samples outstanding")),
                "{err}"
            );
        }
        other => panic!("not a stall: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_client_fails_when_acks_stop() {
    let endpoint = silent_v1().await;
    let client = echo::TcpClient::connect(&endpoint, &spec(), 4)
        .await
        .unwrap()
        .progress_timeout(PROGRESS);
    for _ in 0..4 {
        client.send(sample()).await.unwrap();
    }
    let started = Instant::now();
    let err = within("the fifth send", client.send(sample()))
        .await
        .unwrap_err();
    assert_stalled(&err, 4);
    assert!(started.elapsed() >= PROGRESS, "{:?}", started.elapsed());
    // The stream is failed for good, saying why.
    let err = within("wait after the stall", client.wait())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            EchoClientError::ConnectionClosed {
                reason: echo::CloseReason::Stalled { outstanding: 4, .. }
            }
        ),
        "{err:?}"
    );
    let text = rpcplugin::log::Chain(&err).to_string();
    assert!(text.contains("4 samples outstanding"), "{text}");
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_client_wait_fails_when_acks_stop() {
    let endpoint = silent_v1().await;
    let client = echo::TcpClient::connect(&endpoint, &spec(), 32)
        .await
        .unwrap()
        .progress_timeout(PROGRESS);
    for _ in 0..3 {
        client.send(sample()).await.unwrap();
    }
    let err = within("wait", client.wait()).await.unwrap_err();
    assert_stalled(&err, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_tcp_client_fails_when_acks_stop() {
    let endpoint = silent_v1().await;
    let waited = tokio::task::spawn_blocking(move || {
        let client = echo::blocking::TcpClient::connect(&endpoint, &spec(), 32)
            .unwrap()
            .progress_timeout(PROGRESS);
        client.send(sample()).unwrap();
        client.send(sample()).unwrap();
        client.wait()
    });
    let err = within("the blocking wait", waited)
        .await
        .unwrap()
        .unwrap_err();
    assert_stalled(&err, 2);
}

async fn stuck_grpc() -> (echo::GrpcServer<TcpTransport, Stuck>, rpcplugin::Endpoint) {
    let server = echo::GrpcServer::new(spec(), Stuck, TcpTransport::localhost());
    let endpoint = server.start().await.unwrap();
    (server, endpoint)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_clients_fail_when_acks_stop() {
    let (server, endpoint) = stuck_grpc().await;
    let client = echo::GrpcClient::connect_endpoint(&endpoint, &spec(), 4)
        .await
        .unwrap()
        .progress_timeout(PROGRESS);
    for _ in 0..4 {
        client.send(sample()).await.unwrap();
    }
    let err = within("the fifth send", client.send(sample()))
        .await
        .unwrap_err();
    assert_stalled(&err, 4);
    within("close after a stall", client.close()).await;

    let at = endpoint.clone();
    let waited = tokio::task::spawn_blocking(move || {
        let client = echo::blocking::GrpcClient::connect(&at, &spec(), 8)
            .unwrap()
            .progress_timeout(PROGRESS);
        for _ in 0..5 {
            client.send(sample()).unwrap();
        }
        client.wait()
    });
    let err = within("the blocking wait", waited)
        .await
        .unwrap()
        .unwrap_err();
    assert_stalled(&err, 5);
    within("shutdown", server.shutdown()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_connect_fails_against_a_server_that_never_speaks() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = Endpoint::tcp(listener.local_addr().unwrap());
    let _held = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            conns.push(conn);
        }
    });
    let err = within(
        "connect to a mute server",
        echo::GrpcClient::connect_endpoint(&endpoint, &spec(), 8),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            EchoClientError::ConnectionClosed {
                reason: echo::CloseReason::NoAnswer { .. }
            }
        ),
        "{err:?}"
    );
    let text = rpcplugin::log::Chain(&err).to_string();
    assert!(text.contains("did not answer"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_send_exits_non_zero_when_acks_stop() {
    let endpoint = silent_v1().await;
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_rpcplugin"))
        .args(["echo", "send", "--transport", "tcp", "--spec", SPEC])
        .args(["--connect", &endpoint.to_string()])
        .args([
            "--count",
            "100",
            "--inflight",
            "8",
            "--progress-timeout",
            "1",
        ])
        .output();
    let out = within("echo send", run).await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("8 samples outstanding"), "{stderr}");
}
