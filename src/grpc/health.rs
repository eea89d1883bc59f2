//! go-plugin's health check: `grpc.health.v1.Health/Check` on service
//! `"plugin"`, which every go-plugin plugin serves.

use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// The health services a plugin reports: go-plugin's `"plugin"`, and `""`
/// (the whole server) for generic gRPC health checkers.
pub(crate) const HEALTH_SERVICES: [&str; 2] = ["plugin", ""];

/// Asks for the health of `"plugin"`: `Ok` when SERVING; otherwise the
/// call's status, or an `Unavailable` status naming the serving status
/// reported.
pub(crate) async fn ping(channel: Channel) -> Result<(), tonic::Status> {
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: "plugin".into(),
        })
        .await?;
    let status = response.into_inner().status;
    if status != ServingStatus::Serving as i32 {
        let name = ServingStatus::try_from(status)
            .map(|s| s.as_str_name())
            .unwrap_or("UNKNOWN");
        return Err(tonic::Status::unavailable(format!(
            "service \"plugin\" is {name}"
        )));
    }
    Ok(())
}
