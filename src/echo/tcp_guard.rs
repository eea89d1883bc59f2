//! What keeps a TCP v1 server bounded whatever its peers do: a cap on
//! connections, a byte budget for the buffers that hold partial samples,
//! and the refusal of connections that open as another protocol would.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Connections a TCP v1 server serves at once by default. A thousand idle
/// connections cost the server about 2.5 MiB here
/// (`tests/echo_bad_input_tcp.rs`), and 1024 is the usual soft limit on
/// open files, which a server past it could not honour anyway.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// The memory a TCP v1 server may spend on its connections by default:
/// 192 MiB: an eighth kept back (see `RESERVE_SHARE`), [`CONNECTION_COST`]
/// per connection served, the rest for receive buffers.
/// A buffer holds at most one partial sample plus one 64 KiB read, so this
/// serves the 1024 connections of [`DEFAULT_MAX_CONNECTIONS`] with small
/// samples, or 17 that are each in the middle of a 10 MB sample.
///
/// Measured with 1000 peers each parking part of a 10 MB sample
/// (`tests/echo_caps.rs`, debug build, VmHWM of the whole `rpcplugin echo
/// serve` process, three runs each): 158–159 MiB for 9 MB parked, 175 MiB
/// for all but the last byte; 181 MiB with 1 MB samples parked one byte
/// short (`uint8[1000000]`, 176 buffers: the buffers' share used to the
/// byte). Before the reserve and the connection cost, the buffers alone
/// could take all 192 MiB: 20 parked 9 MB buffers peaked at 185 MiB (172
/// MiB of buffers and the process's 12 MiB, 11 MiB of it the binary's
/// code), and buffers filled to the byte would have passed the budget.
pub const DEFAULT_BUFFER_BUDGET: usize = 192 << 20;

/// What each connection served is charged against the budget, whatever its
/// buffer: its task, its socket and its idle buffer. A thousand idle
/// connections cost the server about 2.5 MiB (`tests/echo_bad_input_tcp.rs`),
/// 2.5 KiB each; 4 KiB leaves room for the allocator's rounding.
pub const CONNECTION_COST: usize = 4 << 10;

/// The share of the budget that no lease may take (one in this many
/// bytes): memory a lease cannot see, spent by the server process itself
/// (its code, runtime and allocator: 12 MiB for `rpcplugin echo serve`
/// before any connection, a debug build) and allocator slack. An eighth, 24
/// MiB of the default budget, covers the process twice over: with the rest
/// (168 MiB) filled to the byte, `echo serve` peaked at 181 MiB (see
/// [`DEFAULT_BUFFER_BUDGET`]).
const RESERVE_SHARE: usize = 8;

/// The bytes a server may hold in receive buffers, shared by its
/// connections.
#[derive(Debug)]
pub(super) struct Budget {
    left: AtomicUsize,
}

impl Budget {
    /// The budget for a server configured with `configured` bytes: all of
    /// it but the reserve ([`RESERVE_SHARE`]), and never less than one
    /// connection with the largest buffer it needs (`largest`) can hold.
    pub(super) fn for_connections(configured: usize, largest: usize) -> Arc<Self> {
        let leasable = configured - configured / RESERVE_SHARE;
        Self::new(leasable.max(largest.saturating_add(CONNECTION_COST)))
    }

    pub(super) fn new(bytes: usize) -> Arc<Self> {
        Arc::new(Budget {
            left: AtomicUsize::new(bytes),
        })
    }

    fn take(&self, bytes: usize) -> bool {
        self.left
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                left.checked_sub(bytes)
            })
            .is_ok()
    }

    fn give(&self, bytes: usize) {
        self.left.fetch_add(bytes, Ordering::AcqRel);
    }
}

/// One connection's share of the [`Budget`]: [`CONNECTION_COST`], and the
/// capacity of the buffer it allocated last. Given back when dropped.
#[derive(Debug)]
pub(super) struct Lease {
    budget: Arc<Budget>,
    held: usize,
}

impl Lease {
    /// A connection's lease, holding [`CONNECTION_COST`]; `None` when the
    /// budget has not that much left.
    pub(super) fn open(budget: Arc<Budget>) -> Option<Self> {
        // Not `then_some`: a lease made eagerly and dropped would give back
        // what was never taken.
        if !budget.take(CONNECTION_COST) {
            return None;
        }
        Some(Lease { budget, held: 0 })
    }

    /// Holds `bytes` of buffer instead of what it held; false (holding no
    /// buffer) when the budget has not that much left.
    pub(super) fn hold(&mut self, bytes: usize) -> bool {
        self.budget.give(std::mem::take(&mut self.held));
        if !self.budget.take(bytes) {
            return false;
        }
        self.held = bytes;
        true
    }

    pub(super) fn held(&self) -> usize {
        self.held
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.budget.give(self.held + CONNECTION_COST);
    }
}

/// What the first bytes of a connection say about its client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Opening {
    /// Samples, as far as anyone can tell.
    Samples,
    /// Too few bytes yet: they begin as another protocol's opening would.
    Undecided,
    /// Certainly not an echo client.
    Foreign(&'static str),
}

/// The connection preface of every HTTP/2 client (RFC 9113 §3.4).
const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The longest TLS record a ClientHello may come in: 2^14 bytes of
/// plaintext (RFC 8446 §5.1), plus the 2048 that TLS 1.2 allows for
/// expansion.
const TLS_MAX_RECORD: usize = (1 << 14) + 2048;

/// Bytes of a TLS record that identify a ClientHello: content type 22
/// (handshake), version 3.x, a 2-byte length, handshake type 1.
const TLS_HEAD: usize = 6;

/// Classifies the first bytes a client sent. echo's protocol has no client
/// header, so anything may be samples; but a connection that opens with
/// the HTTP/2 preface or a TLS ClientHello record is certainly a client of
/// another protocol, pointed at the wrong port.
pub(super) fn opening(first: &[u8]) -> Opening {
    let prefix = |pattern: &[u8]| {
        let n = first.len().min(pattern.len());
        first[..n] == pattern[..n]
    };
    if prefix(HTTP2_PREFACE) {
        return match first.len() >= HTTP2_PREFACE.len() {
            true => Opening::Foreign("the HTTP/2 connection preface (an HTTP/2 or gRPC client)"),
            false => Opening::Undecided,
        };
    }
    let tls = |i: usize, byte: u8| match i {
        0 => byte == 0x16,
        1 => byte == 0x03,
        2 => byte <= 0x04,
        // The length's high byte, then handshake type ClientHello.
        3 => usize::from(byte) << 8 <= TLS_MAX_RECORD,
        5 => byte == 0x01,
        _ => true,
    };
    if first
        .iter()
        .take(TLS_HEAD)
        .enumerate()
        .all(|(i, b)| tls(i, *b))
    {
        if first.len() < TLS_HEAD {
            return Opening::Undecided;
        }
        let length = usize::from(u16::from_be_bytes([first[3], first[4]]));
        if (4..=TLS_MAX_RECORD).contains(&length) {
            return Opening::Foreign("a TLS ClientHello (a TLS client)");
        }
    }
    Opening::Samples
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http2_and_tls_openings_are_foreign_samples_are_not() {
        let h2 = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04";
        assert!(matches!(opening(h2), Opening::Foreign(_)));
        assert_eq!(opening(&h2[..10]), Opening::Undecided);
        assert_eq!(opening(b"PRI * HTTP/1.1"), Opening::Samples);
        let hello = [
            0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
        ];
        assert!(matches!(opening(&hello), Opening::Foreign(_)));
        assert_eq!(opening(&hello[..3]), Opening::Undecided);
        // A record too long for TLS, another handshake type, zeros, floats.
        assert_eq!(
            opening(&[0x16, 0x03, 0x01, 0xff, 0xff, 0x01]),
            Opening::Samples
        );
        assert_eq!(
            opening(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x02]),
            Opening::Samples
        );
        assert_eq!(opening(&[0; 64]), Opening::Samples);
        assert_eq!(opening(&1.5f32.to_le_bytes()), Opening::Samples);
        assert_eq!(opening(&[]), Opening::Undecided);
    }

    #[test]
    fn leases_share_the_budget_and_give_it_back() {
        let budget = Budget::new(2 * CONNECTION_COST + 100);
        let open = || Lease::open(budget.clone()).unwrap();
        let (mut a, mut b) = (open(), open());
        assert!(Lease::open(budget.clone()).is_none(), "no room for a third");
        assert!(a.hold(60));
        assert!(!b.hold(50), "only 40 left");
        assert_eq!(b.held(), 0);
        assert!(a.hold(10), "shrinking gives back");
        assert!(b.hold(90));
        drop((a, b));
        let mut c = open();
        assert!(c.hold(CONNECTION_COST + 100));
    }

    #[test]
    fn the_reserve_and_one_connection() {
        let budget = Budget::for_connections(800 << 10, 1000);
        assert!(budget.take(700 << 10) && !budget.take(1));
        // Room for one connection with its largest buffer, however small
        // the configured budget.
        let budget = Budget::for_connections(100, 1000);
        let mut lease = Lease::open(budget).unwrap();
        assert!(lease.hold(1000));
    }
}
