//! A Terraform provider served with the `terraform` feature, driven by our
//! host as Terraform drives it: the handshake negotiates protocol 5 or 6,
//! the provider's schema comes back in that protocol, an RPC it does not
//! implement answers UNIMPLEMENTED, and a provider added under the wrong
//! protocol version is refused by `serve` with an error that names the
//! service and the fix.

mod common;

use rpcplugin::proto::{tfplugin5, tfplugin6};
use rpcplugin::{Client, ClientConfig, ClientError, HandshakeConfig};

fn provider(args: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new(common::example("terraform_provider"));
    command.args(args);
    command
}

async fn start(versions: &[u32], mtls: bool) -> Client {
    let mut config = ClientConfig::new(HandshakeConfig::terraform(6)).versions(versions.to_vec());
    if !mtls {
        config = config.danger_disable_auto_mtls();
    }
    config
        .start(provider(&[]))
        .await
        .unwrap_or_else(|err| panic!("start: {}", rpcplugin::log::Chain(&err)))
}

fn names<'a>(attributes: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    attributes.collect()
}

#[tokio::test]
async fn a_host_for_5_gets_protocol_5() {
    for mtls in [true, false] {
        let client = start(&[5], mtls).await;
        assert_eq!(client.handshake().app_version(), 5, "negotiated version");
        let mut tf = tfplugin5::provider_client::ProviderClient::new(client.channel());
        let schema = tf
            .get_schema(tfplugin5::get_provider_schema::Request {})
            .await
            .unwrap()
            .into_inner();
        assert!(
            schema.data_source_schemas.contains_key("example_file"),
            "{schema:?}"
        );
        let block = schema.resource_schemas["example_file"]
            .block
            .as_ref()
            .unwrap();
        assert_eq!(
            names(block.attributes.iter().map(|a| a.name.as_str())),
            ["id", "path", "content"]
        );
        // Not implemented by the provider (GetMetadata): the generated default answers.
        let status = tf
            .get_metadata(tfplugin5::get_metadata::Request::default())
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unimplemented, "{status:?}");
        client.kill().await;
    }
}

#[tokio::test]
async fn a_host_for_5_and_6_gets_protocol_6() {
    for mtls in [true, false] {
        let client = start(&[5, 6], mtls).await;
        assert_eq!(client.handshake().app_version(), 6, "negotiated version");
        let mut tf = tfplugin6::provider_client::ProviderClient::new(client.channel());
        let schema = tf
            .get_provider_schema(tfplugin6::get_provider_schema::Request {})
            .await
            .unwrap()
            .into_inner();
        let block = schema.resource_schemas["example_file"]
            .block
            .as_ref()
            .unwrap();
        assert_eq!(
            names(block.attributes.iter().map(|a| a.name.as_str())),
            ["id", "path", "content"]
        );
        let status = tf
            .get_metadata(tfplugin6::get_metadata::Request::default())
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unimplemented, "{status:?}");
        // Protocol 5's service is not offered beside it.
        let v5 = tfplugin5::provider_client::ProviderClient::new(client.channel())
            .get_schema(tfplugin5::get_provider_schema::Request {})
            .await
            .unwrap_err();
        assert_eq!(v5.code(), tonic::Code::Unimplemented, "{v5:?}");
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

/// `examples/terraform_schema`, a host for any provider, summarises ours.
#[test]
fn the_schema_host_example_summarises_our_provider() {
    assert_eq!(
        common::terraform_schema_summary(&common::example("terraform_provider")),
        "protocol 6\nresources: example_file\ndata sources: example_file\n"
    );
}

/// A hostile host: values that are not the schema's (a 4-billion-entry
/// map announced in 5 bytes, an array for an object, text that is not UTF-8, a number where a
/// string goes, trailing bytes) each come back as an error diagnostic
/// naming what is wrong, not a crash or an allocation; the provider goes
/// on answering.
#[tokio::test]
async fn malformed_values_from_the_host_are_diagnosed_and_the_provider_goes_on() {
    use tfplugin6::{DynamicValue, plan_resource_change};
    let client = start(&[6], true).await;
    let mut tf = tfplugin6::provider_client::ProviderClient::new(client.channel());
    let dv = |bytes: &[u8]| {
        Some(DynamicValue {
            msgpack: bytes.to_vec(),
            json: Vec::new(),
        })
    };
    for (bytes, says) in [
        (&b"\xdf\xff\xff\xff\xff"[..], "4294967295 items announced"),
        (b"\xdd\xff\xff\xff\xff", "expected object"),
        (
            b"\x81\xa4path\xa2\xff\xfe",
            ".path: malformed msgpack: text not UTF-8",
        ),
        (
            b"\x81\xa4path\x05",
            ".path: expected string, found a number",
        ),
        (b"\xc0\xc0", "1 bytes after the end of the value"),
    ] {
        let reply = tf
            .plan_resource_change(plan_resource_change::Request {
                type_name: "example_file".into(),
                prior_state: dv(b"\xc0"),
                proposed_new_state: dv(bytes),
                config: dv(bytes),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let [diagnostic] = &reply.diagnostics[..] else {
            panic!("one diagnostic for {bytes:x?}: {reply:?}");
        };
        assert_eq!(
            diagnostic.severity,
            tfplugin6::diagnostic::Severity::Error as i32
        );
        assert_eq!(diagnostic.summary, "Invalid value from Terraform");
        assert!(
            diagnostic.detail.contains(says),
            "{bytes:x?}: {diagnostic:?}"
        );
        assert!(reply.planned_state.is_none(), "no plan from a bad value");
    }
    // Still serving.
    let schema = tf
        .get_provider_schema(tfplugin6::get_provider_schema::Request {})
        .await
        .unwrap()
        .into_inner();
    assert!(schema.resource_schemas.contains_key("example_file"));
    client.kill().await;
}
