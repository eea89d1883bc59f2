//! A Terraform provider on rpcplugin, protocol 5: its schema so far (one
//! managed resource and one data source, `example_file`); every other RPC
//! answers UNIMPLEMENTED until implemented (issue 16 goes on with them).
//!
//! ```text
//! terraform_provider              # as Terraform launches it
//! terraform_provider --mispaired  # the README's old mistake: a v5 service
//!                                 # added under protocol 6 (serve refuses)
//! ```

use rpcplugin::proto::tfplugin5::provider_server::{Provider, ProviderServer};
use rpcplugin::proto::tfplugin5::schema::{Attribute, Block};
use rpcplugin::proto::tfplugin5::{Schema, get_provider_schema};
use rpcplugin::{HandshakeConfig, ServeConfig};
use tonic::{Request, Response, Status};

struct ExampleProvider;

/// An attribute of type `string` (Terraform's JSON type syntax).
fn string(name: &str, required: bool, computed: bool) -> Attribute {
    Attribute {
        name: name.into(),
        r#type: br#""string""#.to_vec(),
        required,
        optional: !required && !computed,
        computed,
        ..Attribute::default()
    }
}

fn file_schema() -> Schema {
    Schema {
        version: 0,
        block: Some(Block {
            attributes: vec![
                string("id", false, true),
                string("path", true, false),
                string("content", true, false),
            ],
            ..Block::default()
        }),
    }
}

#[tonic::async_trait]
impl Provider for ExampleProvider {
    async fn get_schema(
        &self,
        _: Request<get_provider_schema::Request>,
    ) -> Result<Response<get_provider_schema::Response>, Status> {
        let provider = Schema {
            version: 0,
            block: Some(Block::default()),
        };
        Ok(Response::new(get_provider_schema::Response {
            provider: Some(provider),
            resource_schemas: [("example_file".to_owned(), file_schema())].into(),
            data_source_schemas: [("example_file".to_owned(), file_schema())].into(),
            ..Default::default()
        }))
    }
}

#[tokio::main]
async fn main() {
    let config = if std::env::args().any(|a| a == "--mispaired") {
        ServeConfig::new(HandshakeConfig::terraform(6))
            .service(ProviderServer::new(ExampleProvider))
    } else {
        ServeConfig::new(HandshakeConfig::terraform(5))
            .terraform_v5(ProviderServer::new(ExampleProvider))
    };
    if let Err(err) = config.serve().await {
        eprintln!("terraform_provider: {}", rpcplugin::log::Chain(&err));
        std::process::exit(1);
    }
}
