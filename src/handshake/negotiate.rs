//! App protocol version negotiation, exactly as a go-plugin plugin does it.

use super::line::go_atoi;
use crate::env::PLUGIN_PROTOCOL_VERSIONS;

/// The outcome of [`negotiate_version`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Negotiated {
    /// The version to serve and print in the handshake line.
    pub version: u32,
    /// Whether the host offered it; `false` when the plugin fell back to its
    /// lowest version (the host will report the mismatch).
    pub offered: bool,
    /// Entries of `PLUGIN_PROTOCOL_VERSIONS` that were not integers, as
    /// written; go-plugin reports and skips them.
    pub invalid: Vec<String>,
}

/// Picks the app protocol version to serve, as go-plugin's server does: the
/// highest of `ours` that the host lists in `offered` (the value of
/// `PLUGIN_PROTOCOL_VERSIONS`, comma-separated); with no overlap, or nothing
/// offered, our lowest version.
///
/// Entries are parsed like Go's `strconv.Atoi` (an optional sign, then
/// decimal digits; no spaces); others are skipped and listed in
/// [`Negotiated::invalid`].
///
/// # Panics
///
/// If `ours` is empty: a plugin serves at least one version.
///
/// ```
/// use rpcplugin::handshake::negotiate_version;
///
/// let n = negotiate_version(Some("5,6"), &[5, 6]);
/// assert_eq!((n.version, n.offered), (6, true));
/// let n = negotiate_version(Some("7,x"), &[5, 6]);
/// assert_eq!((n.version, n.offered, n.invalid), (5, false, vec!["x".to_string()]));
/// ```
pub fn negotiate_version(offered: Option<&str>, ours: &[u32]) -> Negotiated {
    let lowest = *ours
        .iter()
        .min()
        .expect("a plugin serves at least one version");
    let mut invalid = Vec::new();
    let mut host: Vec<i64> = Vec::new();
    if let Some(list) = offered.filter(|l| !l.is_empty()) {
        for entry in list.split(',') {
            match go_atoi(entry) {
                Some(v) => host.push(v),
                None => invalid.push(entry.to_owned()),
            }
        }
    }
    let mut ours: Vec<u32> = ours.to_vec();
    ours.sort_unstable_by(|a, b| b.cmp(a));
    let chosen = ours.iter().find(|v| host.contains(&i64::from(**v)));
    Negotiated {
        version: chosen.copied().unwrap_or(lowest),
        offered: chosen.is_some(),
        invalid,
    }
}

/// [`negotiate_version`] over this process's `PLUGIN_PROTOCOL_VERSIONS`,
/// reporting invalid entries on stderr as go-plugin does.
pub fn negotiate_version_from_env(ours: &[u32]) -> Negotiated {
    let offered = std::env::var(PLUGIN_PROTOCOL_VERSIONS).ok();
    let negotiated = negotiate_version(offered.as_deref(), ours);
    for entry in &negotiated.invalid {
        eprintln!("server sent invalid plugin version {entry:?}");
    }
    negotiated
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highest_common_version() {
        assert_eq!(negotiate_version(Some("5,6"), &[5, 6]).version, 6);
        assert_eq!(negotiate_version(Some("6,5"), &[5, 6]).version, 6);
        assert_eq!(negotiate_version(Some("5"), &[5, 6]).version, 5);
        assert_eq!(negotiate_version(Some("1,2,3"), &[3, 2]).version, 3);
        assert_eq!(negotiate_version(Some("+6"), &[5, 6]).version, 6);
    }

    #[test]
    fn falls_back_to_lowest() {
        for offered in [None, Some(""), Some("7"), Some("x")] {
            let n = negotiate_version(offered, &[6, 5]);
            assert_eq!((n.version, n.offered), (5, false), "{offered:?}");
        }
    }

    #[test]
    fn bad_entries_skipped_and_reported() {
        let n = negotiate_version(Some("5, 6,abc,,-1"), &[5, 6]);
        assert_eq!(n.version, 5);
        assert_eq!(n.invalid, vec![" 6", "abc", ""]);
    }
}
