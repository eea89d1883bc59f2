//! The TCP v1 server stays bounded under abuse: a cap on connections, and
//! a budget for the bytes that partial samples hold across connections.
//! Clients beyond either are closed, not served; memory stays under the
//! budget however many peers park a partial sample.

mod bad_input;

use std::time::Duration;

use bad_input::{Server, TIMEOUT, open_files_limit, unchecked, within};
use bytes::Bytes;
use rpcplugin::echo::{self, SampleServer};
use rpcplugin::transport::TcpTransport;
use rpcplugin::{Connection, Endpoint};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Connects and reads what the server sends within `wait` (the spec
/// header, or nothing when it refuses the connection).
async fn greeting(endpoint: &Endpoint, wait: Duration) -> (Connection, Vec<u8>) {
    let mut conn = rpcplugin::connect(endpoint, TIMEOUT).await.unwrap();
    let mut got = vec![0u8; 64];
    let n = match tokio::time::timeout(wait, conn.read(&mut got)).await {
        Ok(Ok(n)) => n,
        Ok(Err(_)) | Err(_) => 0,
    };
    got.truncate(n);
    (conn, got)
}

/// Whether the server closed `conn` within `wait` (EOF or reset), rather
/// than holding it open.
async fn closed_within(conn: &mut Connection, wait: Duration) -> bool {
    let mut buf = [0u8; 64];
    match tokio::time::timeout(wait, conn.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) => panic!("an ack for a partial sample"),
        Err(_) => false,
    }
}

/// The budget to configure for `leasable` bytes to be leased: the server
/// keeps an eighth back.
fn beyond_the_reserve(leasable: usize) -> usize {
    leasable + leasable / 7 + 8
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_are_closed_at_once() {
    let spec: echo::Spec = "uint8[4]".parse().unwrap();
    let (sink, _rx) = unchecked(16);
    let server =
        echo::TcpServer::new(spec.clone(), sink, TcpTransport::localhost()).max_connections(3);
    let endpoint = server.start().await.unwrap();
    let header = spec.to_wire();
    let mut served = Vec::new();
    for _ in 0..3 {
        let (conn, got) = greeting(&endpoint, TIMEOUT).await;
        assert_eq!(got, header);
        served.push(conn);
    }
    let (_, got) = greeting(&endpoint, Duration::from_secs(5)).await;
    assert!(got.is_empty(), "a fourth connection was served: {got:?}");
    // Room again once one leaves.
    drop(served.pop());
    let mut again = Vec::new();
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (mut conn, got) = greeting(&endpoint, Duration::from_secs(5)).await;
        if got == header {
            conn.write_all(&[1, 2, 3, 4]).await.unwrap();
            let mut ack = [0u8; 1];
            conn.read_exact(&mut ack).await.unwrap();
            again.push(conn);
            break;
        }
    }
    assert_eq!(again.len(), 1, "no room after a connection left");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_samples_beyond_the_budget_are_refused() {
    const SIZE: usize = 1 << 20;
    let spec: echo::Spec = format!("uint8[{SIZE}]").parse().unwrap();
    let (sink, mut rx) = unchecked(16);
    // Room for three connections' buffers of one sample each, beside the
    // six connections' fixed cost, once the eighth is kept back.
    let server = echo::TcpServer::new(spec.clone(), sink, TcpTransport::localhost())
        .buffer_budget(beyond_the_reserve(3 * SIZE + 6 * echo::CONNECTION_COST));
    let endpoint = server.start().await.unwrap();
    let almost = Bytes::from(vec![0x44u8; SIZE - SIZE / 10]);
    let mut conns = Vec::new();
    for _ in 0..6 {
        let (mut conn, got) = greeting(&endpoint, TIMEOUT).await;
        assert_eq!(got, spec.to_wire());
        // A refused connection may fail the write: it is closed anyway.
        let _ = conn.write_all(&almost).await;
        conns.push(conn);
    }
    let mut refused = 0;
    for conn in &mut conns {
        refused += usize::from(closed_within(conn, Duration::from_secs(2)).await);
    }
    assert_eq!(refused, 3, "three partial samples fit the budget, not more");
    // Those that hold the budget finish their samples and are served.
    for conn in &mut conns {
        let rest = vec![0x44u8; SIZE / 10];
        if conn.write_all(&rest).await.is_ok() && conn.flush().await.is_ok() {
            let mut ack = [0u8; 1];
            let _ = tokio::time::timeout(TIMEOUT, conn.read_exact(&mut ack)).await;
        }
    }
    drop(conns);
    server.shutdown().await;
    drop(server);
    let mut delivered = 0;
    while let Some(sample) = rx.recv().await {
        assert_eq!(sample.data.len(), SIZE);
        delivered += 1;
    }
    assert_eq!(delivered, 3, "the three that fit delivered their samples");
}

/// `rpcplugin echo serve` with its defaults; `n` peers each send `part`
/// bytes of a 10 MB sample and stop there. The server's peak memory
/// (VmHWM), in MiB, and its growth.
async fn parked_partial_samples(n: usize, part: usize) -> (u64, u64) {
    const SIZE: usize = 10_000_000;
    let spec = format!("uint8[{SIZE}]");
    let server = Server::start("tcp", &spec, 1);
    let endpoint: Endpoint = server.endpoint.parse().unwrap();
    let before = server.peak_kib();
    let nine = Bytes::from(vec![0x66u8; part]);
    let mut peers = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (endpoint, nine) = (endpoint.clone(), nine.clone());
        peers.spawn(async move {
            let mut conn = rpcplugin::connect(&endpoint, TIMEOUT).await.unwrap();
            let _ = conn.write_all(&nine).await;
            // Parked: held until the server closes it or the test ends. The
            // spec header is read too: a peer that dropped its connection
            // with the header unread would reset it, and its partial sample
            // would give its share of the budget to the next peer.
            let mut buf = [0u8; 64];
            while let Ok(1..) = conn.read(&mut buf).await {}
        });
    }
    // Every peer has written or been refused once the server stops growing.
    let (mut last, mut still) = (0, 0);
    for _ in 0..120 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let peak = server.peak_kib();
        still = if peak == last { still + 1 } else { 0 };
        if still >= 8 && peak > before {
            break;
        }
        last = peak;
    }
    let growth = (server.peak_kib() - before) >> 10;
    eprintln!(
        "echo serve: {n} peers each parked {part} bytes of a 10 MB sample: VmHWM {} MiB, +{growth} MiB",
        server.peak_kib() >> 10
    );
    peers.abort_all();
    (server.peak_kib() >> 10, growth)
}

/// The default memory budget for connections, in MiB: `echo serve`'s, and
/// what its whole process must stay under (the goal: at most 256).
const BUDGET_MIB: u64 = (echo::DEFAULT_BUFFER_BUDGET >> 20) as u64;

#[cfg_attr(
    windows,
    ignore = "under Wine 8.0 the server's working set grew by 162 MiB for 100 parked 9 MB samples, where Linux stays under the budget; not known on Windows itself"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_parked_partial_samples_stay_under_the_budget() {
    // Without a budget: 100 × 9 MB, about 860 MiB.
    let (peak, growth) = parked_partial_samples(100, 9_000_000).await;
    assert!(
        peak < BUDGET_MIB,
        "{peak} MiB (+{growth} MiB) for 100 × 9 MB partial samples"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "heavy: 1000 connections × 9 MB on loopback, twice (about 10 s); run with --ignored"]
async fn a_thousand_parked_partial_samples_stay_under_the_budget() {
    assert!(open_files_limit() >= 2100, "needs 2 × 1000 sockets");
    let (peak, growth) = parked_partial_samples(1000, 9_000_000).await;
    assert!(
        peak < BUDGET_MIB && BUDGET_MIB <= 256,
        "{peak} MiB (+{growth} MiB) for 1000 × 9 MB partial samples"
    );
    // Buffers filled to the last byte but one: the budget's whole share,
    // and no second buffer while the last bytes arrive.
    let (peak, growth) = parked_partial_samples(1000, 9_999_999).await;
    assert!(
        peak < BUDGET_MIB,
        "{peak} MiB (+{growth} MiB) for 1000 × (10 MB - 1) partial samples"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_readers_between_samples_give_the_budget_back() {
    const SIZE: usize = 1 << 20;
    let spec: echo::Spec = format!("uint8[{SIZE}]").parse().unwrap();
    let (sink, mut rx) = unchecked(64);
    let _drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
    // Room for two buffers at once.
    let server = echo::TcpServer::new(spec.clone(), sink, TcpTransport::localhost()).buffer_budget(
        beyond_the_reserve(2 * SIZE + (128 << 10) + 10 * echo::CONNECTION_COST),
    );
    let endpoint = server.start().await.unwrap();
    // Ten clients one after another, each sending whole samples and
    // staying connected: once quiet between samples (100 ms) they hold no
    // budget.
    let mut clients = Vec::new();
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let client = echo::TcpClient::connect(&endpoint, &spec, 2).await.unwrap();
        for _ in 0..2 {
            client.send(Bytes::from(vec![1u8; SIZE])).await.unwrap();
        }
        within("acks", client.wait()).await.unwrap();
        clients.push(client);
    }
    server.shutdown().await;
}

/// The gRPC server caps connections too: with a cap of 2, a third
/// connection is closed as it arrives while the two go on, and once one
/// of them ends, a new one is served.
#[tokio::test]
async fn grpc_server_caps_connections() {
    use rpcplugin::echo::GrpcClient;
    let spec: echo::Spec = "uint8[8]".parse().unwrap();
    let (sink, _samples) = echo::channel(spec.clone(), 64);
    let server =
        echo::GrpcServer::new(spec.clone(), sink, TcpTransport::localhost()).max_connections(2);
    let endpoint = server.start().await.unwrap();
    let first = GrpcClient::connect_endpoint(&endpoint, &spec, 4)
        .await
        .unwrap();
    let second = GrpcClient::connect_endpoint(&endpoint, &spec, 4)
        .await
        .unwrap();
    // A third: the server closes it without a word of HTTP/2.
    let mut third = rpcplugin::connect(&endpoint, TIMEOUT).await.unwrap();
    assert!(
        closed_within(&mut third, TIMEOUT).await,
        "the third is closed"
    );
    // The first two still work.
    for client in [&first, &second] {
        client.send(Bytes::from_static(&[7; 8])).await.unwrap();
        within("acks", client.wait()).await.unwrap();
    }
    drop(first);
    // Its place is given back once the server sees it closed.
    let fourth = grpc_client_once_free(&endpoint, &spec, "a connection after one ended").await;
    fourth.send(Bytes::from_static(&[8; 8])).await.unwrap();
    within("acks", fourth.wait()).await.unwrap();
    drop((second, fourth));
    server.shutdown().await;
}

/// A gRPC sample client, retried until the server has a place for it
/// again (it sees the one given up closed a moment later).
async fn grpc_client_once_free(
    endpoint: &Endpoint,
    spec: &echo::Spec,
    what: &str,
) -> echo::GrpcClient {
    within(what, async {
        loop {
            match echo::GrpcClient::connect_endpoint(endpoint, spec, 4).await {
                Ok(client) => return client,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    })
    .await
}

/// One half-open `Push` stream on `h2`: its headers and three bytes of a
/// message prefix, never the rest. Returns what keeps it open.
async fn half_open_push(
    h2: h2::client::SendRequest<Bytes>,
) -> (
    h2::client::SendRequest<Bytes>,
    h2::client::ResponseFuture,
    h2::SendStream<Bytes>,
) {
    let mut h2 = h2.ready().await.unwrap();
    let request = http::Request::post("/echo.v1.SampleStream/Push")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
    let (response, mut body) = h2.send_request(request, false).unwrap();
    body.send_data(Bytes::from_static(&[0, 0, 0]), false)
        .unwrap();
    (h2, response, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_server_caps_push_streams_across_connections() {
    use rpcplugin::echo::GrpcClient;
    let spec: echo::Spec = "uint8[8]".parse().unwrap();
    let (sink, _samples) = echo::channel(spec.clone(), 64);
    let server =
        echo::GrpcServer::new(spec.clone(), sink, TcpTransport::localhost()).max_streams(2);
    let endpoint = server.start().await.unwrap();
    // Two streams held half-open, from a raw HTTP/2 client.
    let tcp = tokio::net::TcpStream::connect(endpoint.address())
        .await
        .unwrap();
    let (h2, conn) = h2::client::handshake(tcp).await.unwrap();
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let (h2, first_response, first_body) = half_open_push(h2).await;
    let (h2, second_response, second_body) = half_open_push(h2).await;
    // The server takes a stream's place as it accepts the stream, in the
    // order of the connection: once a GetSpec sent after the two is
    // answered, both hold their places.
    let mut h2 = h2.ready().await.unwrap();
    let request = http::Request::post("/echo.v1.SampleStream/GetSpec")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
    let (spec_response, mut spec_body) = h2.send_request(request, false).unwrap();
    spec_body
        .send_data(Bytes::from_static(&[0; 5]), true)
        .unwrap();
    within("GetSpec", spec_response).await.unwrap();
    // A real client on a connection of its own: refused at once.
    let refused = within(
        "a refusal",
        GrpcClient::connect_endpoint(&endpoint, &spec, 4),
    )
    .await;
    let err = refused.expect_err("a third stream is over the limit");
    let text = rpcplugin::log::Chain(&err).to_string();
    assert!(text.contains("too many sample streams"), "{text}");
    // One half-open stream goes away: its place is given back.
    drop((first_response, first_body));
    let client = grpc_client_once_free(&endpoint, &spec, "a stream after one ended").await;
    client.send(Bytes::from_static(&[9; 8])).await.unwrap();
    within("acks", client.wait()).await.unwrap();
    drop((second_response, second_body, client));
    driver.abort();
    server.shutdown().await;
}
