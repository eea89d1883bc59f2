//! go-plugin's environment for listeners: port range and socket group.

use std::fmt;

use super::EnvError;

use crate::env::{PLUGIN_MAX_PORT, PLUGIN_MIN_PORT, PLUGIN_UNIX_SOCKET_GROUP};

/// The TCP ports a plugin may listen on, from `PLUGIN_MIN_PORT` and
/// `PLUGIN_MAX_PORT`.
///
/// As in go-plugin, the first port of the range that binds wins; a range of
/// `0..=0` (both variables unset) lets the operating system pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    min: u16,
    max: u16,
}

impl PortRange {
    /// Any port: the operating system picks one.
    pub const ANY: PortRange = PortRange { min: 0, max: 0 };

    /// The ports `min..=max`.
    ///
    /// # Errors
    ///
    /// [`EnvError::InvertedPortRange`] when `min > max`.
    pub fn new(min: u16, max: u16) -> Result<Self, EnvError> {
        if min > max {
            return Err(EnvError::InvertedPortRange { min, max });
        }
        Ok(PortRange { min, max })
    }

    /// Reads `PLUGIN_MIN_PORT` and `PLUGIN_MAX_PORT`; an unset or empty
    /// variable counts as 0, as in go-plugin.
    ///
    /// # Errors
    ///
    /// [`EnvError::Invalid`] for a value that is not a port number,
    /// [`EnvError::InvertedPortRange`] when min > max.
    pub fn from_env() -> Result<Self, EnvError> {
        Self::from_values(
            std::env::var(PLUGIN_MIN_PORT).ok().as_deref(),
            std::env::var(PLUGIN_MAX_PORT).ok().as_deref(),
        )
    }

    /// As [`from_env`](Self::from_env), from the two values as given.
    ///
    /// # Errors
    ///
    /// As [`from_env`](Self::from_env).
    pub fn from_values(min: Option<&str>, max: Option<&str>) -> Result<Self, EnvError> {
        let min = parse_port_var(PLUGIN_MIN_PORT, min)?;
        let max = parse_port_var(PLUGIN_MAX_PORT, max)?;
        Self::new(min, max)
    }

    /// The lowest port.
    pub fn min(&self) -> u16 {
        self.min
    }

    /// The highest port.
    pub fn max(&self) -> u16 {
        self.max
    }

    pub(crate) fn ports(&self) -> impl Iterator<Item = u16> {
        self.min..=self.max
    }
}

impl Default for PortRange {
    fn default() -> Self {
        PortRange::ANY
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ports {}-{}", self.min, self.max)
    }
}

fn parse_port_var(var: &'static str, value: Option<&str>) -> Result<u16, EnvError> {
    let value = value.unwrap_or("");
    if value.is_empty() {
        return Ok(0);
    }
    let invalid = |reason: &'static str| EnvError::Invalid {
        var,
        value: value.to_owned(),
        reason,
    };
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("not a decimal port number"));
    }
    value
        .parse()
        .map_err(|_| invalid("port out of range (0-65535)"))
}

/// The group that owns a plugin's unix sockets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketGroup {
    /// A group name, looked up in the group database.
    Name(String),
    /// A numeric group id.
    Gid(u32),
}

impl SocketGroup {
    /// Reads `PLUGIN_UNIX_SOCKET_GROUP`; `None` when unset or empty.
    pub fn from_env() -> Option<Self> {
        std::env::var(PLUGIN_UNIX_SOCKET_GROUP)
            .ok()
            .filter(|v| !v.is_empty())
            .map(|v| Self::parse(&v))
    }

    /// A gid when `value` is all digits, else a group name.
    pub fn parse(value: &str) -> Self {
        match value.parse::<u32>() {
            Ok(gid) if value.bytes().all(|b| b.is_ascii_digit()) => SocketGroup::Gid(gid),
            _ => SocketGroup::Name(value.to_owned()),
        }
    }

    /// The numeric group id.
    ///
    /// # Errors
    ///
    /// [`EnvError::UnknownGroup`] for a name that is not in the group
    /// database.
    ///
    /// On Windows, which has no group database, every name is unknown.
    pub fn gid(&self) -> Result<u32, EnvError> {
        let unknown = |name: &str| EnvError::UnknownGroup {
            group: name.to_owned(),
        };
        match self {
            SocketGroup::Gid(gid) => Ok(*gid),
            #[cfg(unix)]
            SocketGroup::Name(name) => match nix::unistd::Group::from_name(name) {
                Ok(Some(group)) => Ok(group.gid.as_raw()),
                _ => Err(unknown(name)),
            },
            #[cfg(not(unix))]
            SocketGroup::Name(name) => Err(unknown(name)),
        }
    }
}

impl fmt::Display for SocketGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SocketGroup::Name(name) => f.write_str(name),
            SocketGroup::Gid(gid) => write!(f, "{gid}"),
        }
    }
}

/// `PLUGIN_UNIX_SOCKET_DIR`, else the temporary directory.
pub(crate) fn socket_dir_from_env() -> std::path::PathBuf {
    std::env::var_os(crate::env::PLUGIN_UNIX_SOCKET_DIR)
        .filter(|d| !d.is_empty())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_range_like_go_plugin() {
        assert_eq!(PortRange::from_values(None, None).unwrap(), PortRange::ANY);
        assert_eq!(
            PortRange::from_values(Some(""), Some("")).unwrap(),
            PortRange::ANY
        );
        let r = PortRange::from_values(Some("10000"), Some("25000")).unwrap();
        assert_eq!((r.min(), r.max()), (10000, 25000));
        // Only a max: min counts as 0, as in go-plugin.
        assert_eq!(PortRange::from_values(None, Some("5")).unwrap().min(), 0);
        // Only a min: max counts as 0, so min > max.
        assert!(matches!(
            PortRange::from_values(Some("5"), None),
            Err(EnvError::InvertedPortRange { min: 5, max: 0 })
        ));
        for bad in ["-1", "+5", "70000", "1e3", " 5"] {
            let err = PortRange::from_values(Some(bad), Some("9")).unwrap_err();
            assert!(matches!(
                err,
                EnvError::Invalid {
                    var: "PLUGIN_MIN_PORT",
                    ..
                }
            ));
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    #[cfg(unix)]
    fn socket_group_parse_and_lookup() {
        assert_eq!(SocketGroup::parse("0"), SocketGroup::Gid(0));
        assert_eq!(SocketGroup::parse("+0"), SocketGroup::Name("+0".into()));
        assert_eq!(SocketGroup::parse("root").gid().unwrap(), 0);
        let err = SocketGroup::parse("no-such-group-rpcplugin")
            .gid()
            .unwrap_err();
        assert!(err.to_string().contains("no-such-group-rpcplugin"), "{err}");
    }
}
