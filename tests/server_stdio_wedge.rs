//! Printing from handlers never wedges a plugin: `println!`/`eprintln!` in
//! an async handler is a blocking write on a runtime worker, and the pipes
//! behind fds 1 and 2 are drained by threads of their own, so printing
//! waits only for its pipe, never for a free worker. Every wait here is
//! bounded: a wedged plugin fails the test instead of hanging it.

mod common;

use std::time::Duration;

use demo_proto::kv::PutRequest;
use demo_proto::kv::kv_client::KvClient;
use rpcplugin::proto::plugin::Empty;
use rpcplugin::proto::plugin::grpc_controller_client::GrpcControllerClient;
use rpcplugin::proto::plugin::grpc_stdio_client::GrpcStdioClient;

/// A host reading the plugin's GRPCStdio stream as fast as it comes; gives
/// the bytes read so far.
async fn drain_stdio(
    channel: tonic::transport::Channel,
) -> std::sync::Arc<std::sync::atomic::AtomicUsize> {
    let read = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut stream = GrpcStdioClient::new(channel)
        .stream_stdio(())
        .await
        .unwrap()
        .into_inner();
    let counter = read.clone();
    tokio::spawn(async move {
        while let Ok(Some(data)) = stream.message().await {
            counter.fetch_add(data.data.len(), std::sync::atomic::Ordering::Relaxed);
        }
    });
    read
}

async fn put(
    channel: tonic::transport::Channel,
    key: &str,
    value: &str,
) -> Result<(), tonic::Status> {
    KvClient::new(channel)
        .put(PutRequest {
            key: key.into(),
            value: value.to_owned().into(),
        })
        .await
        .map(|_| ())
}

/// Drains the plugin's real stderr, as a go-plugin host does (output the
/// GRPCStdio stream cannot take at once passes through to it).
fn drain_stderr(plugin: &mut common::Launched) -> std::sync::Arc<std::sync::atomic::AtomicUsize> {
    use std::io::Read;
    let mut stderr = plugin.child.stderr.take().expect("stderr is piped");
    let read = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = read.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            counter.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        }
    });
    read
}

/// How long a printing call, and a health check while such calls run, may
/// take. With more printing handlers than workers, every worker is inside
/// a handler until one returns, so the health answer comes only after a
/// handler's printing ends: on Linux within a second. Under Wine, where
/// every pipe write is a round trip to `wineserver`, the whole test took
/// from 6 s to over 33 s across 34 runs on a 2-core machine (a health
/// answer over 20 s in 2 of 20, a call over 30 s in 2 of 8; CI failed on
/// the 5 s health bound once), hence 120 s there. A wedged plugin never
/// answers, whatever the bound.
const PRINTING_BOUND: Duration = if cfg!(windows) {
    Duration::from_secs(120)
} else {
    Duration::from_secs(30)
};

/// A health check on a new connection, within `bound`.
async fn answers_on_a_new_connection(plugin: &common::Launched, when: &str, bound: Duration) {
    let fresh = plugin.health_on_a_new_connection(bound).await;
    assert!(
        matches!(fresh, Some(Ok(()))),
        "no health answer on a new connection {when}: {fresh:?}"
    );
}

/// Shutdown answers and the plugin exits by itself within 2 s.
async fn shuts_down(plugin: &mut common::Launched, channel: tonic::transport::Channel) {
    let asked = tokio::time::timeout(
        Duration::from_secs(5),
        GrpcControllerClient::new(channel).shutdown(Empty {}),
    )
    .await;
    assert!(asked.is_ok(), "Shutdown got no answer within 5 s");
    let status = plugin.wait_exit(Duration::from_secs(2));
    assert!(status.is_some_and(|s| s.success()), "exit: {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_printing_at_once_do_not_wedge_the_plugin() {
    let mut plugin = common::launch(&common::example("stdio_plugin"), &[], &[]);
    let passed_stderr = drain_stderr(&mut plugin);
    let channel = plugin.channel().await;
    let read = drain_stdio(channel.clone()).await;
    // Two calls, each 20 000 lines of 200 bytes through eprintln!, and two
    // of one 1 MB println!: more handlers printing than the plugin has
    // workers, each far more than a pipe holds.
    let calls: Vec<_> = [
        ("eprint-lines", "20000"),
        ("eprint-lines", "20000"),
        ("print-bytes", "1000000"),
        ("print-bytes", "1000000"),
    ]
    .into_iter()
    .map(|(key, value)| tokio::spawn(put(channel.clone(), key, value)))
    .collect();
    answers_on_a_new_connection(&plugin, "while handlers print", PRINTING_BOUND).await;
    for call in calls {
        let done = tokio::time::timeout(PRINTING_BOUND, call).await;
        assert!(
            matches!(done, Ok(Ok(Ok(())))),
            "a printing call did not finish within 30 s: {done:?}"
        );
    }
    // Every byte reached the host: through the stream, or passed through
    // to the real stdout and stderr while the stream could not take it.
    let want = 2 * 20_000 * 200 + 2 * 1_000_000;
    let got = || {
        read.load(std::sync::atomic::Ordering::Relaxed)
            + passed_stderr.load(std::sync::atomic::Ordering::Relaxed)
            + plugin.stdout_rest.lock().unwrap().len()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while got() < want {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the host got {} of {want} bytes",
            got()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shuts_down(&mut plugin, channel).await;
}

#[tokio::test]
async fn a_current_thread_plugin_printing_100_kb_goes_on() {
    let mut plugin = common::launch(&common::example("stdio_plugin"), &["--current-thread"], &[]);
    let channel = plugin.channel().await;
    let _read = drain_stdio(channel.clone()).await;
    let done = tokio::time::timeout(
        Duration::from_secs(10),
        put(channel.clone(), "print-bytes", "100000"),
    )
    .await;
    assert!(matches!(done, Ok(Ok(()))), "println! of 100 kB: {done:?}");
    answers_on_a_new_connection(&plugin, "after printing", Duration::from_secs(5)).await;
    shuts_down(&mut plugin, channel).await;
}
