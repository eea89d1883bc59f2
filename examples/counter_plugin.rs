//! go-plugin's "bidirectional" example as a Rust plugin: `counter.Counter`,
//! whose `Put` dials the `AddHelper` the host serves through the
//! GRPCBroker (on the broker id the host passes in `add_server`) and asks
//! it for the sum; `ServeAdder` serves an `AddHelper` of the plugin's own
//! through the broker for the host to dial. Cookie `BASIC_PLUGIN=hello`, app protocol version 1;
//! go-plugin's Go host and rpcplugin's `counter_host` launch it.
//!
//! ```text
//! counter_plugin [--transport unix|tcp]
//! ```

use std::collections::HashMap;
use std::sync::Mutex;

use clap::Parser;
use demo_proto::counter::add_helper_client::AddHelperClient;
use demo_proto::counter::add_helper_server::{AddHelper, AddHelperServer};
use demo_proto::counter::counter_server::{Counter, CounterServer};
use demo_proto::counter::{
    AdderId, Empty, GetRequest, GetResponse, PutRequest, SumRequest, SumResponse,
};
use rpcplugin::broker::BrokeredServer;
use rpcplugin::server::Network;
use rpcplugin::{Broker, HandshakeConfig, ServeConfig};
use tonic::service::Routes;
use tonic::{Request, Response, Status};

#[derive(Debug, Parser)]
#[command(about = "go-plugin's bidirectional (broker) example plugin, in Rust")]
struct Args {
    /// The socket to listen on (go-plugin's default: unix; tcp on Windows).
    #[arg(long, default_value_t = Network::default())]
    transport: Network,
}

/// Counters by key; sums computed by the host.
struct BrokeredCounter {
    broker: Broker,
    values: Mutex<HashMap<String, i64>>,
    /// What `ServeAdder` serves, kept until the plugin exits.
    adders: tokio::sync::Mutex<Vec<BrokeredServer>>,
}

/// The plugin's own `AddHelper`, served through the broker for the host.
struct PluginAdder;

#[tonic::async_trait]
impl AddHelper for PluginAdder {
    async fn sum(&self, request: Request<SumRequest>) -> Result<Response<SumResponse>, Status> {
        let SumRequest { a, b } = request.into_inner();
        Ok(Response::new(SumResponse { r: a + b }))
    }
}

#[tonic::async_trait]
impl Counter for BrokeredCounter {
    async fn get(&self, request: Request<GetRequest>) -> Result<Response<GetResponse>, Status> {
        let key = request.into_inner().key;
        let value = *self.values.lock().unwrap().get(&key).unwrap_or(&0);
        Ok(Response::new(GetResponse { value }))
    }

    async fn put(&self, request: Request<PutRequest>) -> Result<Response<Empty>, Status> {
        let request = request.into_inner();
        let channel = self
            .broker
            .dial(request.add_server)
            .await
            .map_err(|err| Status::unavailable(err.to_string()))?;
        let current = *self.values.lock().unwrap().get(&request.key).unwrap_or(&0);
        let sum = AddHelperClient::new(channel)
            .sum(SumRequest {
                a: current,
                b: request.value,
            })
            .await?
            .into_inner()
            .r;
        self.values.lock().unwrap().insert(request.key, sum);
        Ok(Response::new(Empty {}))
    }

    async fn serve_adder(&self, _: Request<Empty>) -> Result<Response<AdderId>, Status> {
        let id = self.broker.next_id();
        let server = self
            .broker
            .accept_and_serve(id, Routes::new(AddHelperServer::new(PluginAdder)))
            .await
            .map_err(|err| Status::unavailable(err.to_string()))?;
        self.adders.lock().await.push(server);
        Ok(Response::new(AdderId { id }))
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Err(err) = rpcplugin::init_logging("counter_plugin") {
        eprintln!("counter_plugin: {}", rpcplugin::log::Chain(&err));
    }
    let network = args.transport;
    let config = ServeConfig::new(HandshakeConfig::basic_example()).network(network);
    let counter = BrokeredCounter {
        broker: config.broker(),
        values: Mutex::new(HashMap::new()),
        adders: tokio::sync::Mutex::default(),
    };
    if let Err(err) = config.service(CounterServer::new(counter)).serve().await {
        eprintln!("counter_plugin: {}", rpcplugin::log::Chain(&err));
        std::process::exit(1);
    }
}
