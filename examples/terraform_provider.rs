//! A Terraform provider on rpcplugin, speaking protocols 5 and 6 (the host
//! negotiates one): its schema so far, one managed resource and one data
//! source, `example_file`; every other RPC answers UNIMPLEMENTED until
//! implemented (issue 16 goes on with them).
//!
//! It validates any configuration (no diagnostics), so that `terraform
//! validate` passes with it.
//!
//! ```text
//! terraform_provider              # as Terraform launches it: protocols 5 and 6
//! terraform_provider --mispaired  # the README's old mistake: a v5 service
//!                                 # added under protocol 6 (serve refuses)
//! ```
//!
//! Terraform passes no arguments: `EXAMPLE_PROVIDER=v5` (only protocol 5)
//! or `EXAMPLE_PROVIDER=mispaired` in Terraform's environment do the same;
//! `EXAMPLE_PROVIDER=v5-routes-as-6` offers the v5 service as protocol 6
//! through `ServeConfig::version`, which cannot look inside its routes
//! (`rpcplugin probe --terraform` catches it).

use rpcplugin::proto::{tfplugin5, tfplugin6};
use rpcplugin::{HandshakeConfig, ServeConfig};
use tonic::{Request, Response, Status};

struct ExampleProvider;

/// The schemas, written once for both protocols: their schema messages
/// differ only in protocol 6's nested attributes.
macro_rules! schemas {
    ($proto:ident) => {{
        use $proto::schema::{Attribute, Block};
        let string = |name: &str, required: bool, computed: bool| Attribute {
            name: name.into(),
            r#type: br#""string""#.to_vec(),
            required,
            optional: !required && !computed,
            computed,
            ..Attribute::default()
        };
        let file = $proto::Schema {
            version: 0,
            block: Some(Block {
                attributes: vec![
                    string("id", false, true),
                    string("path", true, false),
                    string("content", true, false),
                ],
                ..Block::default()
            }),
        };
        let provider = $proto::Schema {
            version: 0,
            block: Some(Block::default()),
        };
        $proto::get_provider_schema::Response {
            provider: Some(provider),
            resource_schemas: [("example_file".to_owned(), file.clone())].into(),
            data_source_schemas: [("example_file".to_owned(), file)].into(),
            ..Default::default()
        }
    }};
}

#[tonic::async_trait]
impl tfplugin5::provider_server::Provider for ExampleProvider {
    async fn get_schema(
        &self,
        _: Request<tfplugin5::get_provider_schema::Request>,
    ) -> Result<Response<tfplugin5::get_provider_schema::Response>, Status> {
        Ok(Response::new(schemas!(tfplugin5)))
    }

    async fn prepare_provider_config(
        &self,
        request: Request<tfplugin5::prepare_provider_config::Request>,
    ) -> Result<Response<tfplugin5::prepare_provider_config::Response>, Status> {
        Ok(Response::new(
            tfplugin5::prepare_provider_config::Response {
                prepared_config: request.into_inner().config,
                diagnostics: Vec::new(),
            },
        ))
    }

    async fn validate_resource_type_config(
        &self,
        _: Request<tfplugin5::validate_resource_type_config::Request>,
    ) -> Result<Response<tfplugin5::validate_resource_type_config::Response>, Status> {
        Ok(Response::new(Default::default()))
    }

    async fn validate_data_source_config(
        &self,
        _: Request<tfplugin5::validate_data_source_config::Request>,
    ) -> Result<Response<tfplugin5::validate_data_source_config::Response>, Status> {
        Ok(Response::new(Default::default()))
    }
}

#[tonic::async_trait]
impl tfplugin6::provider_server::Provider for ExampleProvider {
    async fn get_provider_schema(
        &self,
        _: Request<tfplugin6::get_provider_schema::Request>,
    ) -> Result<Response<tfplugin6::get_provider_schema::Response>, Status> {
        Ok(Response::new(schemas!(tfplugin6)))
    }

    async fn validate_provider_config(
        &self,
        _: Request<tfplugin6::validate_provider_config::Request>,
    ) -> Result<Response<tfplugin6::validate_provider_config::Response>, Status> {
        Ok(Response::new(Default::default()))
    }

    async fn validate_resource_config(
        &self,
        _: Request<tfplugin6::validate_resource_config::Request>,
    ) -> Result<Response<tfplugin6::validate_resource_config::Response>, Status> {
        Ok(Response::new(Default::default()))
    }

    async fn validate_data_resource_config(
        &self,
        _: Request<tfplugin6::validate_data_resource_config::Request>,
    ) -> Result<Response<tfplugin6::validate_data_resource_config::Response>, Status> {
        Ok(Response::new(Default::default()))
    }
}

#[tokio::main]
async fn main() {
    let mode = std::env::var("EXAMPLE_PROVIDER").unwrap_or_default();
    let v5 = || tfplugin5::provider_server::ProviderServer::new(ExampleProvider);
    let config = if mode == "mispaired" || std::env::args().any(|a| a == "--mispaired") {
        ServeConfig::new(HandshakeConfig::terraform(6)).service(v5())
    } else if mode == "v5-routes-as-6" {
        // What `version` cannot check (Routes hide their services): a v5
        // provider offered as 6. `rpcplugin probe --terraform` fails it.
        ServeConfig::new(HandshakeConfig::terraform(6))
            .version(6, tonic::service::Routes::new(v5()))
    } else if mode == "v5" {
        ServeConfig::new(HandshakeConfig::terraform(5)).terraform_v5(v5())
    } else {
        ServeConfig::new(HandshakeConfig::terraform(6))
            .terraform_v5(v5())
            .terraform_v6(tfplugin6::provider_server::ProviderServer::new(
                ExampleProvider,
            ))
    };
    if let Err(err) = config.serve().await {
        eprintln!("terraform_provider: {}", rpcplugin::log::Chain(&err));
        std::process::exit(1);
    }
}
