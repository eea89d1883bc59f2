//! A host-side and a plugin-side broker joined by a real `GRPCBroker`
//! stream over a unix socket, with and without AutoMTLS.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use super::{Broker, BrokerError, CloseReason, Context};
use crate::tls::{self, Identity};
use crate::transport::{Endpoint, Listen, Transport, UnixTransport};
use demo_proto::counter::add_helper_client::AddHelperClient;
use demo_proto::counter::add_helper_server::{AddHelper, AddHelperServer};
use demo_proto::counter::{SumRequest, SumResponse};

/// Adds, plus `bias` (to tell services apart), after `delay`.
#[derive(Clone, Default)]
struct Adder {
    bias: i64,
    delay: Duration,
}

#[tonic::async_trait]
impl AddHelper for Adder {
    async fn sum(&self, request: Request<SumRequest>) -> Result<Response<SumResponse>, Status> {
        tokio::time::sleep(self.delay).await;
        let SumRequest { a, b } = request.into_inner();
        Ok(Response::new(SumResponse {
            r: a + b + self.bias,
        }))
    }
}

fn adder(bias: i64, delay: Duration) -> Routes {
    Routes::new(AddHelperServer::new(Adder { bias, delay }))
}

/// Serves an [`Adder`] on a fresh id of `broker`.
async fn serve_adder(broker: &Broker, bias: i64, delay: Duration) -> super::BrokeredServer {
    let id = broker.next_id();
    broker
        .accept_and_serve(id, adder(bias, delay))
        .await
        .unwrap()
}

async fn sum(channel: Channel, a: i64, b: i64) -> Result<i64, Status> {
    let request = SumRequest { a, b };
    Ok(AddHelperClient::new(channel)
        .sum(request)
        .await?
        .into_inner()
        .r)
}

struct Pair {
    host: Broker,
    plugin: Broker,
    host_identity: Option<Identity>,
    dir: tempfile::TempDir,
    _main: UnixTransport,
}

/// Host and plugin brokers, the plugin's served on a unix socket, the
/// host's stream opened to it, brokered sockets in a temporary directory.
async fn pair(mtls: bool) -> Pair {
    pair_cut_by(mtls, None).await
}

/// [`pair`], the host's dialled connections cut off by `host_cut`.
async fn pair_cut_by(mtls: bool, host_cut: Option<CancellationToken>) -> Pair {
    let dir = tempfile::tempdir().unwrap();
    let listen = Listen::Unix {
        dir: dir.path().to_path_buf(),
        group: None,
    };
    let identities = mtls.then(|| (Identity::generate().unwrap(), Identity::generate().unwrap()));
    let config = |ours: Option<&Identity>, theirs: Option<&Identity>| match (ours, theirs) {
        (Some(ours), Some(theirs)) => {
            let cert = rustls::pki_types::CertificateDer::from(theirs.cert_der().to_vec());
            Context {
                listen: listen.clone(),
                server_tls: Some(tls::server_config(ours, cert.clone()).unwrap()),
                client_tls: Some(tls::client_config(ours, cert).unwrap()),
                mux: None,
                cut: None,
            }
        }
        _ => Context {
            listen: listen.clone(),
            server_tls: None,
            client_tls: None,
            mux: None,
            cut: None,
        },
    };
    let (host_id, plugin_id) = match &identities {
        Some((h, p)) => (Some(h), Some(p)),
        None => (None, None),
    };
    let plugin = Broker::new();
    plugin.connect(config(plugin_id, host_id));
    let host = Broker::new();
    host.connect(Context {
        cut: host_cut,
        ..config(host_id, plugin_id)
    });

    let main = UnixTransport::in_dir(dir.path());
    let (endpoint, incoming) = main.listen().await.unwrap();
    let incoming = match &plugin.inner.context.get().unwrap().server_tls {
        Some(config) => incoming.with_tls(config.clone()),
        None => incoming,
    };
    let service = plugin.service();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming),
    );
    let client_tls = host.inner.context.get().unwrap().client_tls.clone();
    let channel = crate::grpc::open_channel(&endpoint, client_tls, None)
        .await
        .unwrap();
    host.open_stream("test".into(), channel);
    Pair {
        host,
        plugin,
        host_identity: identities.map(|(h, _)| h),
        dir,
        _main: main,
    }
}

/// Socket files in the pair's directory other than the main one.
fn sockets(pair: &Pair) -> usize {
    std::fs::read_dir(pair.dir.path()).unwrap().count() - 1
}

async fn host_serves_plugin_dials(mtls: bool) {
    let pair = pair(mtls).await;
    let server = serve_adder(&pair.host, 0, Duration::ZERO).await;
    let id = server.id();
    let channel = pair.plugin.dial(id).await.unwrap();
    assert_eq!(sum(channel, 2, 3).await.unwrap(), 5);
    assert_eq!(sockets(&pair), 1);
    server.stop().await;
    assert_eq!(sockets(&pair), 0, "the brokered socket is removed on stop");
}

#[tokio::test]
async fn host_serves_plugin_dials_plain() {
    host_serves_plugin_dials(false).await;
}

#[tokio::test]
async fn host_serves_plugin_dials_mtls() {
    host_serves_plugin_dials(true).await;
}

#[tokio::test]
async fn plugin_serves_host_dials_mtls() {
    let pair = pair(true).await;
    let server = serve_adder(&pair.plugin, 100, Duration::ZERO).await;
    let id = server.id();
    let channel = pair.host.dial(id).await.unwrap();
    assert_eq!(sum(channel, 2, 3).await.unwrap(), 105);
}

/// A host cuts its brokered connections off when its plugin exits (the
/// client's `Liveness`): a call waiting on the plugin's brokered server
/// fails when the cut fires, as it would not if a process the plugin
/// forked still held the socket.
#[tokio::test]
async fn a_cut_fails_a_call_on_a_channel_the_host_dialled() {
    for mtls in [false, true] {
        let cut = CancellationToken::new();
        let pair = pair_cut_by(mtls, Some(cut.clone())).await;
        let server = serve_adder(&pair.plugin, 0, Duration::from_secs(60)).await;
        let channel = pair.host.dial(server.id()).await.unwrap();
        let call = tokio::spawn(sum(channel.clone(), 2, 3));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!call.is_finished(), "the call waits on the slow server");
        cut.cancel();
        let answer = tokio::time::timeout(Duration::from_secs(10), call)
            .await
            .expect("the call ends with the cut")
            .unwrap();
        let status = answer.unwrap_err();
        assert!(
            matches!(
                status.code(),
                tonic::Code::Unavailable | tonic::Code::Unknown
            ),
            "{status:?}"
        );
        let said = crate::chain::Chain(&status).to_string();
        assert!(
            said.contains("the other end exited or was killed"),
            "{said}"
        );
    }
}

#[tokio::test]
async fn an_id_never_announced_times_out_after_5_s() {
    let pair = pair(false).await;
    let started = std::time::Instant::now();
    let err = pair.plugin.dial(77).await.unwrap_err();
    assert!(
        matches!(err, BrokerError::Timeout { id: 77, .. }),
        "{err:?}"
    );
    assert!(started.elapsed() >= Duration::from_secs(5));
    assert_eq!(
        err.to_string(),
        "no connection info for broker id 77 arrived within 5s"
    );
}

#[tokio::test]
async fn an_announcement_nobody_dials_is_dropped_after_5_s() {
    let pair = pair(false).await;
    let server = serve_adder(&pair.host, 0, Duration::ZERO).await;
    let id = server.id();
    tokio::time::sleep(Duration::from_millis(5200)).await;
    // Said at once, and as what happened: it came, and was dropped unused.
    let started = std::time::Instant::now();
    let err = pair.plugin.dial(id).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(4), "{err:?}");
    match &err {
        BrokerError::Expired { id: got, ago, .. } => {
            assert_eq!(*got, id);
            assert!(*ago >= Duration::from_secs(5), "{err:?}");
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("dropped unused"), "{err}");
}

#[tokio::test]
async fn fifty_concurrent_brokered_services() {
    let pair = Arc::new(pair(true).await);
    let mut servers = Vec::new();
    for _ in 0..50 {
        let id = pair.host.next_id();
        let server = pair
            .host
            .accept_and_serve(id, adder(i64::from(id) * 1000, Duration::ZERO));
        servers.push(server.await.unwrap());
    }
    assert_eq!(sockets(&pair), 50);
    let mut calls = tokio::task::JoinSet::new();
    for server in &servers {
        let (pair, id) = (pair.clone(), server.id());
        calls.spawn(async move {
            let channel = pair.plugin.dial(id).await.unwrap();
            (id, sum(channel, 1, 2).await.unwrap())
        });
    }
    let mut answered = 0;
    while let Some(result) = calls.join_next().await {
        let (id, r) = result.unwrap();
        assert_eq!(
            r,
            i64::from(id) * 1000 + 3,
            "each id reaches its own service"
        );
        answered += 1;
    }
    assert_eq!(answered, 50);
    pair.host.close().await;
    assert_eq!(sockets(&pair), 0, "closing the broker removes every socket");
}

#[tokio::test]
async fn closing_the_broker_mid_call_ends_the_call() {
    let pair = pair(true).await;
    let server = serve_adder(&pair.host, 0, Duration::from_secs(60)).await;
    let id = server.id();
    let channel = pair.plugin.dial(id).await.unwrap();
    let call = tokio::spawn(sum(channel, 1, 1));
    tokio::time::sleep(Duration::from_millis(200)).await;
    pair.host.close().await;
    assert_eq!(sockets(&pair), 0, "the socket goes at once");
    let ended = tokio::time::timeout(Duration::from_secs(20), call).await;
    let status = ended.expect("the call ends").unwrap().unwrap_err();
    assert!(
        matches!(
            status.code(),
            tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
        ),
        "{status:?}"
    );
    let err = pair
        .host
        .accept_and_serve(9, adder(0, Duration::ZERO))
        .await
        .unwrap_err();
    assert!(matches!(err, BrokerError::Closed { .. }), "{err:?}");
    // The plugin sees the stream end, and closes its side too.
    for _ in 0..100 {
        if pair.plugin.is_closed() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let err = pair.plugin.dial(1).await.unwrap_err();
    assert!(
        matches!(
            err,
            BrokerError::Closed {
                reason: CloseReason::HostEnded
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        crate::chain::Chain(&err).to_string(),
        "the broker is closed: the host ended the broker stream"
    );
}

#[tokio::test]
async fn brokered_tls_refuses_another_certificate_and_plaintext() {
    let pair = pair(true).await;
    let server = serve_adder(&pair.host, 0, Duration::ZERO).await;
    let id = server.id();
    // A client with a certificate of its own, trusting the host's.
    let stranger = Identity::generate().unwrap();
    let host_cert = pair.host_identity.as_ref().unwrap().cert_der().to_vec();
    let config = tls::client_config(&stranger, host_cert.into()).unwrap();
    let refused = match crate::grpc::open_channel(server.endpoint(), Some(config), None).await {
        Err(_) => true,
        Ok(channel) => sum(channel, 1, 1).await.is_err(),
    };
    assert!(refused, "another client certificate is refused");
    let refused = match crate::grpc::open_channel(server.endpoint(), None, None).await {
        Err(_) => true,
        Ok(channel) => sum(channel, 1, 1).await.is_err(),
    };
    assert!(refused, "plaintext is refused");
    // The plugin, with the certificate the host pinned, still gets in.
    let channel = pair.plugin.dial(id).await.unwrap();
    assert_eq!(sum(channel, 1, 1).await.unwrap(), 2);
}

#[tokio::test]
async fn a_broker_before_its_connection_says_so() {
    let broker = Broker::new();
    let err = broker.dial(1).await.unwrap_err();
    assert!(matches!(err, BrokerError::NotConnected), "{err:?}");
    let err = broker
        .accept_and_serve(1, adder(0, Duration::ZERO))
        .await
        .unwrap_err();
    assert!(matches!(err, BrokerError::NotConnected), "{err:?}");
    assert_eq!((broker.next_id(), broker.next_id()), (1, 2));
}

#[tokio::test]
async fn the_plugins_brokered_sockets_go_when_the_host_ends_the_stream() {
    let pair = pair(false).await;
    let _server = serve_adder(&pair.plugin, 0, Duration::ZERO).await;
    assert_eq!(sockets(&pair), 1);
    pair.host.close().await;
    for _ in 0..100 {
        if sockets(&pair) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sockets(&pair), 0);
    assert!(pair.plugin.is_closed());
}

#[tokio::test]
async fn a_second_broker_stream_is_refused() {
    let pair = pair(false).await;
    // The host's stream took the plugin's outgoing side; another is refused.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let main = pair
        .dir
        .path()
        .read_dir()
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let endpoint = crate::transport::Endpoint::unix(main).unwrap();
    let channel = crate::grpc::open_channel(&endpoint, None, None)
        .await
        .unwrap();
    let (_tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let refused = crate::proto::plugin::grpc_broker_client::GrpcBrokerClient::new(channel)
        .start_stream(tokio_stream::wrappers::UnboundedReceiverStream::new(rx))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::AlreadyExists);
}

#[test]
fn dial_policy_takes_absolute_paths_and_loopback_only() {
    let ok = [
        "/tmp/plugin1",
        "127.0.0.1:1234",
        "127.8.9.10:1",
        "[::1]:80",
        "localhost:7",
    ];
    for address in ok {
        let endpoint: Endpoint = address.parse().unwrap();
        assert_eq!(super::dialable(&endpoint), Ok(()), "{address}");
    }
    let refused = [
        ("unix", "\0abstract"),
        ("unix", "@abstract"),
        ("unix", "relative.sock"),
        ("tcp", "10.0.0.1:1234"),
        ("tcp", "0.0.0.0:1234"),
        ("tcp", "[::]:1234"),
        ("tcp", "example.com:443"),
    ];
    for (network, address) in refused {
        let endpoint = Endpoint::from_network(network, address).unwrap();
        assert!(super::dialable(&endpoint).is_err(), "{address:?}");
    }
    assert_eq!(super::cut("short"), "short");
    let cut = super::cut(&"é".repeat(300));
    assert_eq!(cut.chars().count(), 201);
    assert!(cut.ends_with('…'));
}
