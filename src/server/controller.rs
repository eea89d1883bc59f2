//! `plugin.GRPCController`: the host's request to stop.

use tonic::{Request, Response, Status};

use super::shutdown::Shutdown;
use crate::proto::plugin::Empty;
use crate::proto::plugin::grpc_controller_server::GrpcController;

/// Answers `Shutdown` at once, then starts the graceful stop: the reply is
/// an in-flight call, so the server drains it before it stops.
#[derive(Debug)]
pub(crate) struct Controller {
    pub(crate) shutdown: Shutdown,
}

#[tonic::async_trait]
impl GrpcController for Controller {
    async fn shutdown(&self, _: Request<Empty>) -> Result<Response<Empty>, Status> {
        tracing::debug!("shutdown requested by the host");
        self.shutdown.trigger();
        Ok(Response::new(Empty {}))
    }
}
