//! A Terraform provider on rpcplugin, speaking protocols 5 and 6 (the host
//! negotiates one): the `example_file` resource, a file under the
//! provider's `directory` (create, read with drift detection, update in
//! place, replace when its path changes, import, delete), and the
//! `example_file` data source, which reads one.
//!
//! ```hcl
//! provider "example" {
//!   directory = "out"      # optional: Terraform's working directory
//! }
//! resource "example_file" "greeting" {
//!   path    = "hello.txt"  # relative, inside the directory
//!   content = "hello"
//! }
//! data "example_file" "motd" {
//!   path = "motd.txt"      # content is read
//! }
//! ```
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
//! (`rpcplugin probe --terraform` catches it). `RPCPLUGIN_DEBUG=<source
//! address>` starts it in debug mode (see the README's Terraform guide).

mod files;

use files::{Files, Problem};
use rpcplugin::proto::{tfplugin5, tfplugin6};
use rpcplugin::terraform::{Type, Value};
use rpcplugin::{HandshakeConfig, ServeConfig};
use tonic::{Request, Response, Status};

#[derive(Default)]
struct ExampleProvider {
    files: Files,
}

/// The schemas, written once for both protocols: their schema messages
/// differ only in protocol 6's nested attributes.
macro_rules! schemas {
    ($proto:ident) => {{
        use $proto::schema::{Attribute, Block};
        let string = |name: &str, required: bool, computed: bool| Attribute {
            name: name.into(),
            r#type: Type::String.to_json(),
            required,
            optional: !required && !computed,
            computed,
            ..Attribute::default()
        };
        let schema = |attributes| $proto::Schema {
            version: 0,
            block: Some(Block {
                attributes,
                ..Block::default()
            }),
        };
        $proto::get_provider_schema::Response {
            provider: Some(schema(vec![string("directory", false, false)])),
            resource_schemas: [(
                "example_file".to_owned(),
                schema(vec![
                    string("id", false, true),
                    string("path", true, false),
                    string("content", true, false),
                ]),
            )]
            .into(),
            data_source_schemas: [(
                "example_file".to_owned(),
                schema(vec![
                    string("path", true, false),
                    string("content", false, true),
                ]),
            )]
            .into(),
            ..Default::default()
        }
    }};
}

/// The protocol's diagnostics for our problems.
macro_rules! diagnostics {
    ($proto:ident, $problems:expr) => {
        $problems
            .into_iter()
            .map(|p: Problem| {
                let diagnostic = $proto::Diagnostic::error(p.summary, p.detail);
                match p.attribute {
                    Some(name) => diagnostic.with_attribute($proto::AttributePath::attribute(name)),
                    None => diagnostic,
                }
            })
            .collect::<Vec<_>>()
    };
}

/// A request's value, or the diagnostics answer for one Terraform sent
/// that does not fit the schema.
macro_rules! decode {
    ($value:expr, $ty:expr, $response:ty) => {
        match $value.unwrap_or_default().to_value(&$ty) {
            Ok(value) => value,
            Err(err) => {
                return Ok(Response::new(<$response>::from_problems(vec![
                    Problem::unreadable("Invalid value from Terraform", &err),
                ])));
            }
        }
    };
}

/// A value to send back.
macro_rules! encode {
    ($proto:ident, $value:expr, $ty:expr) => {
        $proto::DynamicValue::from_value(&$value, &$ty)
            .map_err(|err| Status::internal(format!("encoding our own value: {err}")))?
    };
}

/// Responses that are diagnostics and defaults otherwise.
trait FromProblems {
    fn from_problems(problems: Vec<Problem>) -> Self;
}

macro_rules! from_problems {
    ($proto:ident: $($message:ident),*) => {$(
        impl FromProblems for $proto::$message::Response {
            fn from_problems(problems: Vec<Problem>) -> Self {
                Self { diagnostics: diagnostics!($proto, problems), ..Default::default() }
            }
        }
    )*};
}

/// The RPCs whose messages are the same in both protocols, and the
/// protocol's own ones after them.
macro_rules! provider {
    ($proto:ident; $($own:tt)*) => {
        from_problems!($proto: read_resource, plan_resource_change, apply_resource_change,
            import_resource_state, upgrade_resource_state, read_data_source);

        #[tonic::async_trait]
        impl $proto::provider_server::Provider for ExampleProvider {
            $($own)*

            async fn upgrade_resource_state(
                &self,
                request: Request<$proto::upgrade_resource_state::Request>,
            ) -> Result<Response<$proto::upgrade_resource_state::Response>, Status> {
                // Schema version 0 is the only one: the stored state is
                // today's, read from JSON and sent back as msgpack.
                let raw = request.into_inner().raw_state.unwrap_or_default();
                let ty = files::file_type();
                match raw.to_value(&ty) {
                    Ok(state) => Ok(Response::new($proto::upgrade_resource_state::Response {
                        upgraded_state: Some(encode!($proto, state, ty)),
                        diagnostics: Vec::new(),
                    })),
                    Err(err) => Ok(Response::new(FromProblems::from_problems(vec![
                        Problem::unreadable("Unreadable stored state", &err),
                    ]))),
                }
            }

            async fn read_resource(
                &self,
                request: Request<$proto::read_resource::Request>,
            ) -> Result<Response<$proto::read_resource::Response>, Status> {
                type Reply = $proto::read_resource::Response;
                let request = request.into_inner();
                let ty = files::file_type();
                let state = decode!(request.current_state, ty, Reply);
                Ok(Response::new(match self.files.read(state).await {
                    Ok(state) => Reply {
                        new_state: Some(encode!($proto, state, ty)),
                        private: request.private,
                        ..Default::default()
                    },
                    Err(problem) => Reply::from_problems(vec![problem]),
                }))
            }

            async fn plan_resource_change(
                &self,
                request: Request<$proto::plan_resource_change::Request>,
            ) -> Result<Response<$proto::plan_resource_change::Response>, Status> {
                type Reply = $proto::plan_resource_change::Response;
                let request = request.into_inner();
                let ty = files::file_type();
                let prior = decode!(request.prior_state, ty, Reply);
                let proposed = decode!(request.proposed_new_state, ty, Reply);
                let plan = Files::plan(&prior, proposed);
                Ok(Response::new(Reply {
                    planned_state: Some(encode!($proto, plan.planned, ty)),
                    requires_replace: plan
                        .requires_replace
                        .into_iter()
                        .map($proto::AttributePath::attribute)
                        .collect(),
                    planned_private: request.prior_private,
                    ..Default::default()
                }))
            }

            async fn apply_resource_change(
                &self,
                request: Request<$proto::apply_resource_change::Request>,
            ) -> Result<Response<$proto::apply_resource_change::Response>, Status> {
                type Reply = $proto::apply_resource_change::Response;
                let request = request.into_inner();
                let ty = files::file_type();
                let prior = decode!(request.prior_state, ty, Reply);
                let planned = decode!(request.planned_state, ty, Reply);
                Ok(Response::new(match self.files.apply(&prior, planned).await {
                    Ok(state) => Reply {
                        new_state: Some(encode!($proto, state, ty)),
                        private: request.planned_private,
                        ..Default::default()
                    },
                    Err(problem) => Reply::from_problems(vec![problem]),
                }))
            }

            async fn import_resource_state(
                &self,
                request: Request<$proto::import_resource_state::Request>,
            ) -> Result<Response<$proto::import_resource_state::Response>, Status> {
                type Reply = $proto::import_resource_state::Response;
                let request = request.into_inner();
                Ok(Response::new(match self.files.import(&request.id).await {
                    Ok(state) => Reply {
                        imported_resources: vec![$proto::import_resource_state::ImportedResource {
                            type_name: request.type_name,
                            state: Some(encode!($proto, state, files::file_type())),
                            private: Vec::new(),
                        }],
                        ..Default::default()
                    },
                    Err(problem) => Reply::from_problems(vec![problem]),
                }))
            }

            async fn read_data_source(
                &self,
                request: Request<$proto::read_data_source::Request>,
            ) -> Result<Response<$proto::read_data_source::Response>, Status> {
                type Reply = $proto::read_data_source::Response;
                let ty = files::data_type();
                let config = decode!(request.into_inner().config, ty, Reply);
                Ok(Response::new(match self.files.read_data(&config).await {
                    Ok(state) => Reply {
                        state: Some(encode!($proto, state, ty)),
                        ..Default::default()
                    },
                    Err(problem) => Reply::from_problems(vec![problem]),
                }))
            }
        }
    };
}

/// A validation or configuration answer (the messages differ in name
/// only): the request's configuration of type `$ty` through `$check`.
macro_rules! validate {
    ($self:ident, $proto:ident, $message:ident, $request:ident, $ty:expr, $check:expr) => {{
        let config = $request.into_inner().config.unwrap_or_default();
        let problems = checked(config.to_value(&$ty), |config| $check($self, config));
        Ok(Response::new($proto::$message::Response {
            diagnostics: diagnostics!($proto, problems),
        }))
    }};
}

/// The problems of a configuration Terraform sent: `check`'s, or the one
/// saying it could not be read as its type.
fn checked(
    config: Result<Value, rpcplugin::terraform::ValueError>,
    check: impl FnOnce(&Value) -> Vec<Problem>,
) -> Vec<Problem> {
    match config {
        Ok(config) => check(&config),
        Err(err) => vec![Problem::unreadable("Invalid configuration", &err)],
    }
}

fn check_provider(_: &ExampleProvider, config: &Value) -> Vec<Problem> {
    Files::validate_provider(config)
}

fn check_file(_: &ExampleProvider, config: &Value) -> Vec<Problem> {
    Files::validate_file(config)
}

fn check_nothing(_: &ExampleProvider, _: &Value) -> Vec<Problem> {
    Vec::new()
}

fn configure(provider: &ExampleProvider, config: &Value) -> Vec<Problem> {
    provider.files.configure(config)
}

provider! {
    tfplugin5;
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
        // Protocol 5 hands the configuration back, possibly amended.
        let config = request.into_inner().config.unwrap_or_default();
        let problems = checked(
            config.to_value(&files::provider_type()),
            Files::validate_provider,
        );
        Ok(Response::new(
            tfplugin5::prepare_provider_config::Response {
                prepared_config: Some(config),
                diagnostics: diagnostics!(tfplugin5, problems),
            },
        ))
    }

    async fn validate_resource_type_config(
        &self,
        request: Request<tfplugin5::validate_resource_type_config::Request>,
    ) -> Result<Response<tfplugin5::validate_resource_type_config::Response>, Status> {
        validate!(
            self,
            tfplugin5,
            validate_resource_type_config,
            request,
            files::file_type(),
            check_file
        )
    }

    async fn validate_data_source_config(
        &self,
        request: Request<tfplugin5::validate_data_source_config::Request>,
    ) -> Result<Response<tfplugin5::validate_data_source_config::Response>, Status> {
        validate!(
            self,
            tfplugin5,
            validate_data_source_config,
            request,
            files::data_type(),
            check_nothing
        )
    }

    async fn configure(
        &self,
        request: Request<tfplugin5::configure::Request>,
    ) -> Result<Response<tfplugin5::configure::Response>, Status> {
        validate!(
            self,
            tfplugin5,
            configure,
            request,
            files::provider_type(),
            configure
        )
    }

    async fn stop(
        &self,
        _: Request<tfplugin5::stop::Request>,
    ) -> Result<Response<tfplugin5::stop::Response>, Status> {
        // Nothing runs long enough to interrupt.
        Ok(Response::new(Default::default()))
    }
}

provider! {
    tfplugin6;
    async fn get_provider_schema(
        &self,
        _: Request<tfplugin6::get_provider_schema::Request>,
    ) -> Result<Response<tfplugin6::get_provider_schema::Response>, Status> {
        Ok(Response::new(schemas!(tfplugin6)))
    }

    async fn validate_provider_config(
        &self,
        request: Request<tfplugin6::validate_provider_config::Request>,
    ) -> Result<Response<tfplugin6::validate_provider_config::Response>, Status> {
        validate!(
            self,
            tfplugin6,
            validate_provider_config,
            request,
            files::provider_type(),
            check_provider
        )
    }

    async fn validate_resource_config(
        &self,
        request: Request<tfplugin6::validate_resource_config::Request>,
    ) -> Result<Response<tfplugin6::validate_resource_config::Response>, Status> {
        validate!(
            self,
            tfplugin6,
            validate_resource_config,
            request,
            files::file_type(),
            check_file
        )
    }

    async fn validate_data_resource_config(
        &self,
        request: Request<tfplugin6::validate_data_resource_config::Request>,
    ) -> Result<Response<tfplugin6::validate_data_resource_config::Response>, Status> {
        validate!(
            self,
            tfplugin6,
            validate_data_resource_config,
            request,
            files::data_type(),
            check_nothing
        )
    }

    async fn configure_provider(
        &self,
        request: Request<tfplugin6::configure_provider::Request>,
    ) -> Result<Response<tfplugin6::configure_provider::Response>, Status> {
        validate!(
            self,
            tfplugin6,
            configure_provider,
            request,
            files::provider_type(),
            configure
        )
    }

    async fn stop_provider(
        &self,
        _: Request<tfplugin6::stop_provider::Request>,
    ) -> Result<Response<tfplugin6::stop_provider::Response>, Status> {
        Ok(Response::new(Default::default()))
    }
}

// Terraform starts a provider afresh several times per command; a
// current-thread runtime starts no worker threads (the README's "Runtime").
#[tokio::main(flavor = "current_thread")]
async fn main() {
    // hclog JSON on stderr: Terraform logs each event at its level
    // (`TF_LOG=debug`).
    rpcplugin::init_logging("terraform-provider-example").ok();
    let mode = std::env::var("EXAMPLE_PROVIDER").unwrap_or_default();
    let v5 = || tfplugin5::provider_server::ProviderServer::new(ExampleProvider::default());
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
                ExampleProvider::default(),
            ))
    };
    if let Err(err) = config.serve().await {
        eprintln!("terraform_provider: {}", rpcplugin::log::Chain(&err));
        std::process::exit(1);
    }
}
