//! A Rust host for any installed Terraform provider: launches it with
//! Terraform's handshake (protocols 5 and 6 offered, AutoMTLS), prints a
//! summary of its schema in the protocol it chose, and stops it as
//! Terraform does.
//!
//! ```text
//! terraform_schema PROVIDER [ARGS...]
//! terraform_schema ~/.terraform.d/plugins/.../terraform-provider-null_v2.1.2_x4
//! ```

use std::process::ExitCode;

use rpcplugin::proto::{tfplugin5, tfplugin6};
use rpcplugin::{ClientConfig, HandshakeConfig};

/// Names, sorted, of a map's keys.
fn names<V>(map: &std::collections::HashMap<String, V>) -> Vec<&str> {
    let mut names: Vec<&str> = map.keys().map(String::as_str).collect();
    names.sort_unstable();
    names
}

async fn summary(client: &rpcplugin::Client) -> Result<String, tonic::Status> {
    let version = client.handshake().app_version();
    let channel = client.channel();
    let (resources, data_sources) = match version {
        5 => {
            let schema = tfplugin5::provider_client::ProviderClient::new(channel)
                .max_decoding_message_size(rpcplugin::MAX_MESSAGE_SIZE)
                .get_schema(tfplugin5::get_provider_schema::Request {})
                .await?
                .into_inner();
            (
                names(&schema.resource_schemas).join(", "),
                names(&schema.data_source_schemas).join(", "),
            )
        }
        _ => {
            let schema = tfplugin6::provider_client::ProviderClient::new(channel)
                .max_decoding_message_size(rpcplugin::MAX_MESSAGE_SIZE)
                .get_provider_schema(tfplugin6::get_provider_schema::Request {})
                .await?
                .into_inner();
            (
                names(&schema.resource_schemas).join(", "),
                names(&schema.data_source_schemas).join(", "),
            )
        }
    };
    Ok(format!(
        "protocol {version}\nresources: {resources}\ndata sources: {data_sources}"
    ))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((program, rest)) = args.split_first() else {
        eprintln!("usage: terraform_schema PROVIDER [ARGS...]");
        return ExitCode::from(2);
    };
    let mut command = std::process::Command::new(program);
    command.args(rest);
    let client = match ClientConfig::new(HandshakeConfig::terraform(6))
        .versions([5, 6])
        .start(command)
        .await
    {
        Ok(client) => client,
        Err(err) => {
            eprintln!("terraform_schema: {}", rpcplugin::log::Chain(&err));
            return ExitCode::FAILURE;
        }
    };
    let outcome = summary(&client).await;
    client.kill().await;
    match outcome {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(status) => {
            eprintln!("terraform_schema: the schema call failed: {status}");
            ExitCode::FAILURE
        }
    }
}
