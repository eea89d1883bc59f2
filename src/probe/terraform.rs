//! The probe's check of a Terraform provider: the negotiated protocol's
//! provider service answers its schema call (`GetSchema` for protocol 5,
//! `GetProviderSchema` for 6), with what it offers and the reply's size.
//! A provider whose service is not served under the version it
//! negotiated fails here, as it would under Terraform ("Unsupported
//! plugin method").

use prost::Message;
use tonic::transport::Channel;

use super::report::ProbeReport;
use crate::proto::{tfplugin5, tfplugin6};

/// The check's name in the report.
const NAME: &str = "Terraform provider schema";

/// What a schema reply offers.
struct Offered {
    resources: usize,
    data_sources: usize,
    bytes: usize,
    errors: usize,
}

/// What `reply` (a `GetProviderSchema.Response` of either protocol)
/// offers; an error diagnostic is one of severity `ERROR`.
macro_rules! offered {
    ($proto:ident, $reply:expr) => {{
        let reply = $reply.into_inner();
        let error = $proto::diagnostic::Severity::Error as i32;
        Offered {
            resources: reply.resource_schemas.len(),
            data_sources: reply.data_source_schemas.len(),
            bytes: reply.encoded_len(),
            errors: reply
                .diagnostics
                .iter()
                .filter(|d| d.severity == error)
                .count(),
        }
    }};
}

/// Calls the schema RPC of protocol `version` and reports it.
pub(super) async fn check(version: u32, channel: Channel, report: &mut ProbeReport) {
    let (rpc, answer) = match version {
        5 => (
            "GetSchema",
            tfplugin5::provider_client::ProviderClient::new(channel)
                .max_decoding_message_size(crate::MAX_MESSAGE_SIZE)
                .get_schema(tfplugin5::get_provider_schema::Request {})
                .await
                .map(|reply| offered!(tfplugin5, reply)),
        ),
        6 => (
            "GetProviderSchema",
            tfplugin6::provider_client::ProviderClient::new(channel)
                .max_decoding_message_size(crate::MAX_MESSAGE_SIZE)
                .get_provider_schema(tfplugin6::get_provider_schema::Request {})
                .await
                .map(|reply| offered!(tfplugin6, reply)),
        ),
        other => {
            report.require(
                NAME,
                false,
                format!("negotiated protocol {other}: Terraform speaks 5 and 6"),
            );
            return;
        }
    };
    match answer {
        Ok(offered) => report.require(
            NAME,
            offered.errors == 0,
            format!(
                "tfplugin{version} {rpc}: {} resources, {} data sources, reply {} bytes{}",
                offered.resources,
                offered.data_sources,
                offered.bytes,
                match offered.errors {
                    0 => String::new(),
                    n => format!(", {n} error diagnostics"),
                }
            ),
        ),
        Err(status) => report.require(
            NAME,
            false,
            format!(
                "tfplugin{version} {rpc}: {status} (the provider service of the negotiated \
                 protocol {version} is not served)"
            ),
        ),
    };
}
