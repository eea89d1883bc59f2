//! `plugin.GRPCController`: the host's request to stop.

use tonic::{Request, Response, Status};

use crate::proto::plugin::Empty;
use crate::proto::plugin::grpc_controller_server::GrpcController;
use tokio_util::sync::CancellationToken;

/// Answers `Shutdown` at once, then starts the graceful stop: the reply is
/// an in-flight call, so the server drains it before it stops.
#[derive(Debug)]
pub(crate) struct Controller {
    pub(crate) shutdown: CancellationToken,
}

#[tonic::async_trait]
impl GrpcController for Controller {
    async fn shutdown(&self, _: Request<Empty>) -> Result<Response<Empty>, Status> {
        tracing::debug!("shutdown requested by the host");
        self.shutdown.cancel();
        Ok(Response::new(Empty {}))
    }
}
