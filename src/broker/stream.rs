//! The broker's control stream, `plugin.GRPCBroker/StartStream`: served by
//! the plugin, opened by the host right after it connects.

use std::pin::Pin;

use tokio_stream::wrappers::UnboundedReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::transport::Channel;
use tonic::{Request, Response, Status, Streaming};

use super::{Broker, CloseReason};
use crate::proto::plugin::ConnInfo;
use crate::proto::plugin::conn_info::Knock;
use crate::proto::plugin::grpc_broker_client::GrpcBrokerClient;
use crate::proto::plugin::grpc_broker_server::{GrpcBroker, GrpcBrokerServer};

type ConnInfoStream = Pin<Box<dyn Stream<Item = Result<ConnInfo, Status>> + Send>>;

/// Largest message taken on the broker stream. An announcement is an id,
/// a network name and an address of at most 512 bytes (longer ones are
/// refused anyway), a knock an error text of a line or two: 16 KiB is far
/// above any of them, where tonic's default of 4 MiB let a peer hand us
/// megabytes per message. A larger message ends the stream.
const MAX_BROKER_MESSAGE: usize = 16 * 1024;

/// The plugin's `GRPCBroker` service.
#[derive(Debug, Clone)]
pub(crate) struct Service {
    broker: Broker,
}

impl Broker {
    /// The plugin side: the `GRPCBroker` service to serve.
    pub(crate) fn service(&self) -> GrpcBrokerServer<Service> {
        GrpcBrokerServer::new(Service {
            broker: self.clone(),
        })
        .max_decoding_message_size(MAX_BROKER_MESSAGE)
    }

    /// The host side: opens the stream on `channel` and keeps it running
    /// until either side closes it.
    pub(crate) fn open_stream(&self, plugin: String, channel: Channel) {
        let broker = self.clone();
        let Some(outgoing) = self.take_outgoing() else {
            return;
        };
        tokio::spawn(async move {
            let opened = GrpcBrokerClient::new(channel)
                .max_decoding_message_size(MAX_BROKER_MESSAGE)
                .start_stream(UnboundedReceiverStream::new(outgoing))
                .await;
            match opened {
                Ok(response) => {
                    receive(&broker, response.into_inner()).await;
                    broker.close_in_background(CloseReason::PluginEnded);
                }
                Err(status) => {
                    tracing::debug!(plugin, %status, "GRPCBroker stream not opened");
                    broker.close_in_background(CloseReason::Refused { source: status });
                }
            }
        });
    }

    fn take_outgoing(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<ConnInfo>> {
        self.inner.outgoing_rx.lock().expect("outgoing lock").take()
    }
}

#[tonic::async_trait]
impl GrpcBroker for Service {
    type StartStreamStream = ConnInfoStream;

    async fn start_stream(
        &self,
        request: Request<Streaming<ConnInfo>>,
    ) -> Result<Response<ConnInfoStream>, Status> {
        if self.broker.is_closed() {
            return Err(Status::unavailable("the broker is closed"));
        }
        let outgoing = self
            .broker
            .take_outgoing()
            .ok_or_else(|| Status::already_exists("the broker stream is already open"))?;
        let broker = self.broker.clone();
        tokio::spawn(async move {
            receive(&broker, request.into_inner()).await;
            broker.close_in_background(CloseReason::HostEnded);
        });
        Ok(Response::new(Box::pin(
            UnboundedReceiverStream::new(outgoing).map(Ok),
        )))
    }
}

/// Records the other side's announcements until its half of the stream
/// ends.
async fn receive(broker: &Broker, mut incoming: Streaming<ConnInfo>) {
    let mut closed = broker.inner.closed.subscribe();
    loop {
        let next = tokio::select! {
            next = incoming.message() => next,
            _ = closed.wait_for(Option::is_some) => return,
        };
        match next {
            Ok(Some(info)) if info.knock.is_some() => knocked(broker, info),
            Ok(Some(info)) => {
                tracing::debug!(
                    id = info.service_id,
                    network = info.network,
                    address = info.address,
                    "broker announcement"
                );
                broker.announce(info);
            }
            Ok(None) => return,
            Err(status) => {
                tracing::debug!(%status, "broker stream failed");
                return;
            }
        }
    }
}

/// A knock (multiplexed brokering, go-plugin ≥ 1.6) from the other side:
/// an ack for our own knock goes to the dial waiting for it; a knock for
/// one of our brokered servers routes the session's next stream there and
/// is acknowledged (with an error if nothing serves that id, or if this
/// side does not multiplex).
fn knocked(broker: &Broker, info: ConnInfo) {
    let id = info.service_id;
    let Some(knock) = info.knock.clone() else {
        return;
    };
    if knock.ack {
        tracing::debug!(id, error = knock.error, "broker knock acknowledged");
        broker.announce(info);
        return;
    }
    if !knock.knock {
        tracing::warn!(id, "ignoring a broker knock that is not a knock");
        return;
    }
    let mux = broker.inner.context.get().and_then(|c| c.mux.clone());
    let error = match mux {
        Some(mux) => mux.accept_knock(id).err().unwrap_or_default(),
        None => "this side does not multiplex gRPC".to_owned(),
    };
    tracing::debug!(id, error, "broker knock");
    broker.send(ConnInfo {
        service_id: id,
        network: String::new(),
        address: String::new(),
        knock: Some(Knock {
            knock: true,
            ack: true,
            error,
        }),
    });
}
