//! A hostile host on the broker stream of a real plugin process (our
//! `counter_plugin`): a flood of announcements, an id announced twice, a
//! message far larger than any announcement. The plugin must stay
//! responsive and small, keep the first announcement of an id (as
//! go-plugin does), and end a stream that sends what no broker sends.

mod common;

use std::time::Duration;

use demo_proto::counter::add_helper_server::{AddHelper, AddHelperServer};
use demo_proto::counter::counter_client::CounterClient;
use demo_proto::counter::{GetRequest, PutRequest, SumRequest, SumResponse};
use rpcplugin::Transport;
use rpcplugin::proto::plugin::ConnInfo;
use rpcplugin::proto::plugin::grpc_broker_client::GrpcBrokerClient;
use rpcplugin::transport::AnyTransport;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{Request, Response, Status};

/// Bounds every wait of these tests: none should come near it.
const WAIT: Duration = Duration::from_secs(30);

struct Sum;

#[tonic::async_trait]
impl AddHelper for Sum {
    async fn sum(&self, request: Request<SumRequest>) -> Result<Response<SumResponse>, Status> {
        let SumRequest { a, b } = request.into_inner();
        Ok(Response::new(SumResponse { r: a + b }))
    }
}

/// Serves an AddHelper on a fresh unix socket in `dir`; gives its path.
async fn serve_add_helper(dir: &std::path::Path) -> String {
    // Windows: TCP on loopback, as every brokered service there.
    let at = if cfg!(unix) {
        rpcplugin::Endpoint::unix(dir.join("helper.sock")).unwrap()
    } else {
        "127.0.0.1:0".parse().unwrap()
    };
    let transport = AnyTransport::at(&at).unwrap();
    let (endpoint, incoming) = transport.listen().await.unwrap();
    tokio::spawn(async move {
        let _keep = transport;
        tonic::transport::Server::builder()
            .add_service(AddHelperServer::new(Sum))
            .serve_with_incoming(incoming)
            .await
    });
    endpoint.address()
}

fn announce(id: u32, address: &str) -> ConnInfo {
    ConnInfo {
        service_id: id,
        network: if cfg!(unix) { "unix" } else { "tcp" }.into(),
        address: address.into(),
        knock: None,
    }
}

/// The plugin, and the sending half of a broker stream opened on it.
async fn plugin_with_stream() -> (common::Launched, mpsc::UnboundedSender<ConnInfo>) {
    let plugin = common::launch(&common::example("counter_plugin"), &[], &[]);
    let (tx, rx) = mpsc::unbounded_channel();
    let mut broker = GrpcBrokerClient::new(plugin.channel().await);
    tokio::spawn(async move {
        // The plugin's announcements are not needed; the stream stays open.
        if let Ok(response) = broker.start_stream(UnboundedReceiverStream::new(rx)).await {
            let mut stream = response.into_inner();
            while let Ok(Some(_)) = stream.message().await {}
        }
    });
    (plugin, tx)
}

async fn put(plugin: &common::Launched, id: u32) -> Result<(), Status> {
    let mut counter = CounterClient::new(plugin.channel().await);
    let request = PutRequest {
        add_server: id,
        key: "k".into(),
        value: 2,
    };
    tokio::time::timeout(WAIT, counter.put(request))
        .await
        .expect("Put answered")
        .map(|_| ())
}

/// Kilobytes of the process's resident set and its CPU seconds so far.
#[cfg(unix)]
fn rss_kib_and_cpu(pid: u32) -> (u64, f64) {
    (
        common::status_kib(pid, "VmRSS:").expect("the plugin's VmRSS"),
        common::cpu_seconds(pid).expect("the plugin's CPU time"),
    )
}

#[tokio::test]
async fn the_first_announcement_of_an_id_wins() {
    let dir = tempfile::tempdir().unwrap();
    let helper = serve_add_helper(dir.path()).await;
    let (plugin, broker) = plugin_with_stream().await;
    broker.send(announce(7, &helper)).unwrap();
    broker
        .send(announce(
            7,
            &dir.path().join("nobody.sock").display().to_string(),
        ))
        .unwrap();
    put(&plugin, 7)
        .await
        .expect("the Put dialled the first address");
    let mut counter = CounterClient::new(plugin.channel().await);
    let got = counter.get(GetRequest { key: "k".into() }).await.unwrap();
    assert_eq!(got.into_inner().value, 2);
}

/// 100 000 distinct announcements nobody dials: the plugin keeps at most
/// its cap of them, each for 5 s; afterwards it answers at once, a new
/// announcement is dialled, and it has stayed small. The CPU time the
/// flood cost is printed (`cargo test -- --nocapture`): a figure, not a
/// bound.
// Its RSS and CPU time come from /proc.
#[cfg(unix)]
#[tokio::test]
async fn a_flood_of_announcements_is_bounded() {
    const FLOOD: u32 = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let helper = serve_add_helper(dir.path()).await;
    let (plugin, broker) = plugin_with_stream().await;
    let pid = plugin.child.id();
    let (rss_before, cpu_before) = rss_kib_and_cpu(pid);
    for id in 1..=FLOOD {
        broker
            .send(announce(id, &format!("/nowhere/{id:0>40}")))
            .unwrap();
    }
    // Each announcement expires 5 s after it arrived; then a new one is
    // taken again (it would be refused while the flood fills the cap).
    tokio::time::sleep(Duration::from_secs(6)).await;
    broker.send(announce(FLOOD + 1, &helper)).unwrap();
    put(&plugin, FLOOD + 1)
        .await
        .expect("a Put after the flood dials its helper");
    let (rss_after, cpu_after) = rss_kib_and_cpu(pid);
    println!(
        "flood of {FLOOD} announcements: plugin CPU {:.3} s, RSS {} KiB -> {} KiB",
        cpu_after - cpu_before,
        rss_before,
        rss_after
    );
    assert!(
        rss_after < rss_before + 32 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
}

/// A message far larger than any announcement ends the stream: the
/// broker closes, and a Put that needs it says so at once.
#[tokio::test]
async fn an_oversized_message_ends_the_broker_stream() {
    let (plugin, broker) = plugin_with_stream().await;
    broker.send(announce(1, &"x".repeat(1 << 20))).unwrap();
    // Sent before the stream ended or after: a dial waiting for id 1 is
    // woken by the close.
    let status = put(&plugin, 1).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(status.message().contains("closed"), "{status:?}");
    // The plugin itself still answers.
    let mut counter = CounterClient::new(plugin.channel().await);
    counter.get(GetRequest { key: "k".into() }).await.unwrap();
}

/// Announcements naming what no peer of ours listens on are not dialled:
/// a Linux abstract socket, a relative path, a TCP address off loopback.
/// The Put says why, quoting the address cut to a readable length.
#[tokio::test]
async fn addresses_off_loopback_or_abstract_are_refused() {
    let (plugin, broker) = plugin_with_stream().await;
    let long = format!("/tmp/{}", "d/".repeat(200));
    let cases: [(u32, &str, &str, &str); 5] = [
        (1, "unix", "\0abstract", "abstract socket"),
        (2, "unix", "relative.sock", "relative path"),
        (3, "tcp", "10.1.2.3:4321", "not a loopback address"),
        (4, "tcp", "0.0.0.0:4321", "not a loopback address"),
        (5, "tcp", "example.invalid:4321", "not a loopback address"),
    ];
    for (id, network, address, why) in cases {
        broker
            .send(ConnInfo {
                service_id: id,
                network: network.into(),
                address: address.into(),
                knock: None,
            })
            .unwrap();
        let status = put(&plugin, id).await.unwrap_err();
        assert!(
            status.message().contains("refusing to dial") && status.message().contains(why),
            "{address:?}: {status:?}"
        );
    }
    // A long path that is refused for another reason is quoted cut.
    broker.send(announce(6, &format!("@{long}"))).unwrap();
    let status = put(&plugin, 6).await.unwrap_err();
    assert!(status.message().contains('…'), "{status:?}");
    assert!(status.message().len() < 400, "{status:?}");
}

/// An id announced more than 5 s before the plugin dials it: the Put says
/// the announcement came and was dropped unused, not that none arrived.
#[tokio::test]
async fn a_late_dial_says_the_announcement_expired() {
    let dir = tempfile::tempdir().unwrap();
    let helper = serve_add_helper(dir.path()).await;
    let (plugin, broker) = plugin_with_stream().await;
    broker.send(announce(9, &helper)).unwrap();
    tokio::time::sleep(Duration::from_millis(5500)).await;
    let status = put(&plugin, 9).await.unwrap_err();
    assert!(
        status.message().contains("broker id 9 arrived")
            && status.message().contains("dropped unused"),
        "{status:?}"
    );
}
