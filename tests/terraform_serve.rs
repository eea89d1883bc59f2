//! A Terraform provider served with the `terraform` feature, driven by our
//! host as Terraform drives it: the handshake negotiates protocol 5, the
//! provider's schema comes back, an RPC it does not implement answers
//! UNIMPLEMENTED, and a provider added under the wrong protocol version is
//! refused by `serve` with an error that names the service and the fix.

mod common;

use rpcplugin::proto::tfplugin5::provider_client::ProviderClient;
use rpcplugin::proto::tfplugin5::{configure, get_provider_schema};
use rpcplugin::{ClientConfig, ClientError, HandshakeConfig};

fn provider(args: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new(common::example("terraform_provider"));
    command.args(args);
    command
}

#[tokio::test]
async fn a_v5_provider_is_negotiated_as_5_and_serves_its_schema() {
    for mtls in [true, false] {
        let mut config = ClientConfig::new(HandshakeConfig::terraform(6)).versions([5, 6]);
        if !mtls {
            config = config.danger_disable_auto_mtls();
        }
        let client = config
            .start(provider(&[]))
            .await
            .unwrap_or_else(|err| panic!("start: {}", rpcplugin::log::Chain(&err)));
        assert_eq!(client.handshake().app_version(), 5, "negotiated version");
        let mut tf = ProviderClient::new(client.channel());
        let schema = tf
            .get_schema(get_provider_schema::Request {})
            .await
            .unwrap()
            .into_inner();
        assert!(
            schema.resource_schemas.contains_key("example_file"),
            "{schema:?}"
        );
        assert!(
            schema.data_source_schemas.contains_key("example_file"),
            "{schema:?}"
        );
        let attributes = &schema.resource_schemas["example_file"]
            .block
            .as_ref()
            .unwrap()
            .attributes;
        let names: Vec<&str> = attributes.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["id", "path", "content"]);
        // Not implemented by the provider: the generated default answers.
        let status = tf
            .configure(configure::Request::default())
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unimplemented, "{status:?}");
        client.kill().await;
    }
}

#[tokio::test]
async fn a_v5_provider_added_under_protocol_6_is_refused_by_serve() {
    let err = ClientConfig::new(HandshakeConfig::terraform(6))
        .versions([5, 6])
        .start(provider(&["--mispaired"]))
        .await
        .expect_err("the plugin refuses to serve");
    let ClientError::ExitedBeforeHandshake { stderr, .. } = &err else {
        panic!("{}", rpcplugin::log::Chain(&err));
    };
    let stderr = stderr.join("\n");
    assert!(
        stderr.contains("tfplugin5.Provider is Terraform protocol 5")
            && stderr.contains("ServeConfig::terraform_v5"),
        "{stderr}"
    );
}
