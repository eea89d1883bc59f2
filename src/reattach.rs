//! Reattach: the configuration a host needs to attach to a plugin that is
//! already running (under a debugger, say), in go-plugin's
//! `ReattachConfig` shape and Terraform's `TF_REATTACH_PROVIDERS` JSON.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::handshake::Protocol;
use crate::transport::{Endpoint, EndpointError};

/// A failure to read a reattach configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReattachError {
    /// The JSON does not have the expected shape.
    #[error("reattach configuration is not valid JSON of the expected shape")]
    Json {
        /// serde's error, which names the field and position.
        source: serde_json::Error,
    },
    /// The address does not fit its network.
    #[error("reattach address of {name:?} is not usable")]
    Address {
        /// The provider's name.
        name: String,
        /// Why the address does not parse.
        source: EndpointError,
    },
    /// A process id no plugin can have: 0 (which `kill` takes as the
    /// caller's own process group), or one past `i32::MAX` (which it takes
    /// as a process group, or every process).
    #[error("reattach configuration{} has pid {pid}, which no plugin can have (1 to 2147483647)", name.as_deref().map(|n| format!(" of {n:?}")).unwrap_or_default())]
    Pid {
        /// The provider's name, when read from JSON.
        name: Option<String>,
        /// The pid as written.
        pid: i64,
    },
    /// The configuration names a version or protocol this host does not
    /// accept.
    #[error("cannot attach to the plugin at {endpoint} (app version {version})")]
    Refused {
        /// Where the plugin listens.
        endpoint: Endpoint,
        /// The app protocol version it serves.
        version: u32,
        /// Why the host refuses it.
        source: Box<crate::handshake::HandshakeError>,
    },
    /// A protocol other than gRPC.
    #[error(
        "reattach configuration of {name:?} uses protocol {protocol:?}; only \"grpc\" is supported"
    )]
    Protocol {
        /// The provider's name.
        name: String,
        /// The protocol as written.
        protocol: String,
    },
}

/// How to reach a running plugin: go-plugin's `ReattachConfig`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReattachConfig {
    /// The RPC protocol (gRPC).
    pub protocol: Protocol,
    /// The app protocol version the plugin serves.
    pub protocol_version: u32,
    /// Where the plugin listens.
    pub endpoint: Endpoint,
    /// The plugin's process id: from 1 to `i32::MAX`, checked when the
    /// configuration is made or read, and again before any use.
    pub pid: u32,
    /// Test (debug) mode: a host never kills a plugin it attached to in
    /// this mode; the person who started it stops it.
    pub test: bool,
}

impl ReattachConfig {
    /// A configuration for a gRPC plugin.
    ///
    /// # Errors
    ///
    /// [`ReattachError::Pid`] for a pid of 0 or over `i32::MAX`.
    pub fn new(
        protocol_version: u32,
        endpoint: Endpoint,
        pid: u32,
        test: bool,
    ) -> Result<Self, ReattachError> {
        let config = ReattachConfig {
            protocol: Protocol::Grpc,
            protocol_version,
            endpoint,
            pid,
            test,
        };
        config.check_pid(None)?;
        Ok(config)
    }

    /// The pid as `kill(2)` takes it, when it names one process.
    ///
    /// # Errors
    ///
    /// [`ReattachError::Pid`] for a pid of 0 or over `i32::MAX`.
    pub(crate) fn check_pid(&self, name: Option<&str>) -> Result<i32, ReattachError> {
        checked_pid(i64::from(self.pid), name)
    }
}

fn checked_pid(pid: i64, name: Option<&str>) -> Result<i32, ReattachError> {
    i32::try_from(pid)
        .ok()
        .filter(|&p| p > 0)
        .ok_or_else(|| ReattachError::Pid {
            name: name.map(str::to_owned),
            pid,
        })
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireConfig {
    protocol: String,
    protocol_version: u32,
    /// Read wide, so that -1 or 2^32 is refused by name, not by serde.
    pid: i64,
    test: bool,
    addr: WireAddr,
}

#[derive(Serialize, Deserialize)]
struct WireAddr {
    #[serde(rename = "Network")]
    network: String,
    #[serde(rename = "String")]
    address: String,
}

/// Reattach configurations by provider name, as in `TF_REATTACH_PROVIDERS`:
/// `{"registry.terraform.io/x/y":{"Protocol":"grpc","ProtocolVersion":6,"Pid":59343,"Test":true,"Addr":{"Network":"unix","String":"/tmp/plugin76083934"}}}`.
///
/// ```
/// use rpcplugin::ReattachConfig;
/// use rpcplugin::reattach::ReattachProviders;
///
/// let json = r#"{"registry.terraform.io/x/y":{"Protocol":"grpc","ProtocolVersion":6,"Pid":59343,"Test":true,"Addr":{"Network":"unix","String":"/tmp/plugin76083934"}}}"#;
/// let providers = ReattachProviders::from_json(json)?;
/// let config = &providers.0["registry.terraform.io/x/y"];
/// assert_eq!(config.endpoint.address(), "/tmp/plugin76083934");
/// assert_eq!(providers.to_json(), json);
/// # Ok::<(), rpcplugin::reattach::ReattachError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReattachProviders(pub BTreeMap<String, ReattachConfig>);

impl ReattachProviders {
    /// Parses `TF_REATTACH_PROVIDERS` JSON.
    ///
    /// # Errors
    ///
    /// [`ReattachError`] naming the provider and what is wrong.
    pub fn from_json(json: &str) -> Result<Self, ReattachError> {
        let wire: BTreeMap<String, WireConfig> =
            serde_json::from_str(json).map_err(|source| ReattachError::Json { source })?;
        let mut out = BTreeMap::new();
        for (name, config) in wire {
            if config.protocol != "grpc" {
                return Err(ReattachError::Protocol {
                    name,
                    protocol: config.protocol,
                });
            }
            let endpoint = Endpoint::from_network(&config.addr.network, &config.addr.address)
                .map_err(|source| ReattachError::Address {
                    name: name.clone(),
                    source,
                })?;
            let pid = checked_pid(config.pid, Some(&name))? as u32;
            let config = ReattachConfig {
                protocol: Protocol::Grpc,
                protocol_version: config.protocol_version,
                endpoint,
                pid,
                test: config.test,
            };
            out.insert(name, config);
        }
        Ok(ReattachProviders(out))
    }

    /// Reads `TF_REATTACH_PROVIDERS`; `Ok(None)` when it is unset or empty.
    ///
    /// # Errors
    ///
    /// As [`from_json`](Self::from_json).
    pub fn from_env() -> Result<Option<Self>, ReattachError> {
        match std::env::var(crate::env::TF_REATTACH_PROVIDERS) {
            Ok(json) if !json.trim().is_empty() => Self::from_json(&json).map(Some),
            _ => Ok(None),
        }
    }

    /// The JSON, on one line.
    pub fn to_json(&self) -> String {
        let wire: BTreeMap<&str, WireConfig> = self
            .0
            .iter()
            .map(|(name, c)| {
                let wire = WireConfig {
                    protocol: c.protocol.as_str().to_owned(),
                    protocol_version: c.protocol_version,
                    pid: i64::from(c.pid),
                    test: c.test,
                    addr: WireAddr {
                        network: c.endpoint.network().to_owned(),
                        address: c.endpoint.address(),
                    },
                };
                (name.as_str(), wire)
            })
            .collect();
        serde_json::to_string(&wire).expect("reattach configurations serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let config = ReattachConfig::new(5, "127.0.0.1:10000".parse().unwrap(), 42, false).unwrap();
        let providers = ReattachProviders([("kv".to_owned(), config.clone())].into());
        let json = providers.to_json();
        assert!(
            json.contains(r#""Addr":{"Network":"tcp","String":"127.0.0.1:10000"}"#),
            "{json}"
        );
        assert_eq!(ReattachProviders::from_json(&json).unwrap().0["kv"], config);

        let err = ReattachProviders::from_json(r#"{"a":{"Protocol":"netrpc","ProtocolVersion":1,"Pid":1,"Test":true,"Addr":{"Network":"unix","String":"/x"}}}"#).unwrap_err();
        assert!(matches!(err, ReattachError::Protocol { .. }), "{err}");
        let err = ReattachProviders::from_json(r#"{"a":{"Protocol":"grpc","ProtocolVersion":1,"Pid":1,"Test":true,"Addr":{"Network":"udp","String":"x"}}}"#).unwrap_err();
        assert!(err.to_string().contains("\"a\""), "{err}");
        let err = ReattachProviders::from_json(r#"{"a":{"Protocol":"grpc"}}"#).unwrap_err();
        let text = crate::chain::Chain(&err).to_string();
        assert!(text.contains("ProtocolVersion"), "{text}");
    }

    #[test]
    fn pids_that_kill_would_misread_are_refused() {
        for pid in [
            "0",
            "-1",
            "4294967295",
            "2147483648",
            "-2147483648",
            "99999999999",
        ] {
            let json = format!(
                r#"{{"p":{{"Protocol":"grpc","ProtocolVersion":5,"Pid":{pid},"Test":false,"Addr":{{"Network":"unix","String":"/tmp/x"}}}}}}"#
            );
            let err = ReattachProviders::from_json(&json).unwrap_err();
            assert!(matches!(err, ReattachError::Pid { .. }), "{pid}: {err}");
            assert!(
                err.to_string().contains(pid) && err.to_string().contains("\"p\""),
                "{err}"
            );
        }
        let endpoint: Endpoint = "/tmp/x".parse().unwrap();
        for pid in [0, u32::MAX, 1 << 31] {
            assert!(ReattachConfig::new(5, endpoint.clone(), pid, false).is_err());
        }
        let ok = ReattachConfig::new(5, endpoint, i32::MAX as u32, false).unwrap();
        assert_eq!(ok.check_pid(None).unwrap(), i32::MAX);
    }
}
