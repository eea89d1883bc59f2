//! The hosts' `--multiplex` option: go-plugin's multiplexed gRPC, asked
//! for or not. Shared by the host examples (`#[path]`-included).

use rpcplugin::client::Multiplex;

/// go-plugin's multiplexed gRPC (`PLUGIN_MULTIPLEX_GRPC`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum MultiplexArg {
    /// Not asked (go-plugin's default).
    #[default]
    Off,
    /// Asked and required: a plugin without it is refused.
    Required,
    /// Asked; a plugin without it is used without.
    Preferred,
}

impl From<MultiplexArg> for Multiplex {
    fn from(arg: MultiplexArg) -> Multiplex {
        match arg {
            MultiplexArg::Off => Multiplex::Off,
            MultiplexArg::Required => Multiplex::Required,
            MultiplexArg::Preferred => Multiplex::Preferred,
        }
    }
}
