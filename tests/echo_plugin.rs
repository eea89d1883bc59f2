//! A host streams echo samples into a plugin over the connection go-plugin
//! set up: `echo_plugin` launched by our `Client` (unix socket, AutoMTLS),
//! the gRPC sample stream on the client's channel.

mod common;

use rpcplugin::echo::{self, GrpcClient};
use rpcplugin::{ClientConfig, HandshakeConfig};

#[tokio::test]
async fn samples_stream_into_a_plugin_over_automtls() {
    let client = ClientConfig::new(HandshakeConfig::basic_example())
        .start(std::process::Command::new(common::example("echo_plugin")))
        .await
        .unwrap();
    assert!(client.handshake().server_cert().is_some(), "AutoMTLS is on");
    let network = if cfg!(windows) { "tcp" } else { "unix" };
    assert_eq!(client.handshake().endpoint().network(), network);

    let spec: echo::Spec = "float32[4],float32[1],float64[]".parse().unwrap();
    let samples = GrpcClient::connect(client.channel(), &spec, 32)
        .await
        .unwrap();
    for i in 0..1000u32 {
        let mut data = Vec::with_capacity(28);
        for v in [i as f32, 1.0, 2.0, 3.0, -(i as f32)] {
            data.extend_from_slice(&v.to_le_bytes());
        }
        data.extend_from_slice(&f64::from(i).to_le_bytes());
        samples.send(data.into()).await.unwrap();
    }
    samples.wait().await.unwrap();
    assert_eq!(
        samples.acknowledged(),
        1000,
        "every sample reached the plugin's sink"
    );
    samples.close().await;

    let other: echo::Spec = "float32[4]".parse().unwrap();
    let err = GrpcClient::connect(client.channel(), &other, 32)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("leaves"), "{err}");

    let status = client.kill().await.expect("exited");
    assert!(status.success(), "{status}");
}
