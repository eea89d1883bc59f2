//! Every server of ours advertises a limit on HTTP/2 streams open at once
//! on one connection (SETTINGS_MAX_CONCURRENT_STREAMS): tonic sets none,
//! which lifts hyper's own, and a local client holding streams half-open
//! could grow a plugin or echo server without bound. A raw HTTP/2 client
//! (the h2 crate) reads what each server advertises.

mod common;

use rpcplugin::echo::{self, SampleServer};
use rpcplugin::transport::TcpTransport;

/// The limit `addr`'s server advertises, read by a raw HTTP/2 client once
/// a request has gone through (so its SETTINGS have arrived).
async fn advertised_limit(addr: &str, path: &'static str) -> usize {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut h2, mut conn) = h2::client::handshake(tcp).await.unwrap();
    let request = http::Request::post(path)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
    let (response, mut body) = h2.send_request(request, false).unwrap();
    // An empty gRPC message: a 5-byte prefix of zeros.
    body.send_data(bytes::Bytes::from_static(&[0; 5]), true)
        .unwrap();
    let answered = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        tokio::select! {
            r = response => r.map(|_| ()),
            c = &mut conn => c,
        }
    })
    .await;
    assert!(matches!(answered, Ok(Ok(()))), "{answered:?}");
    conn.max_concurrent_send_streams()
}

#[tokio::test]
async fn the_plugins_server_limits_streams_per_connection() {
    let plugin = common::launch(&common::example("kv_plugin"), &["--transport", "tcp"], &[]);
    let addr = plugin.line.endpoint().address();
    let limit = advertised_limit(&addr, "/grpc.health.v1.Health/Check").await;
    assert_eq!(limit, 1024);
}

#[tokio::test]
async fn the_echo_grpc_server_limits_streams_per_connection() {
    let spec: echo::Spec = "uint8[8]".parse().unwrap();
    let (sink, _samples) = echo::channel(spec.clone(), 4);
    let server = echo::GrpcServer::new(spec, sink, TcpTransport::localhost());
    let endpoint = server.start().await.unwrap();
    let limit = advertised_limit(&endpoint.address(), "/echo.v1.SampleStream/GetSpec").await;
    // A sample client needs two; h2 keeps memory for every stream a
    // connection had open at once (see echo::GrpcServer).
    assert_eq!(limit, 16);
    server.shutdown().await;
}
