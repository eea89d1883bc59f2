//! A quick look at a connection's first header block: does it carry an
//! `:authority` that h2 would reject?
//!
//! [`AuthorityFix`](super::authority::AuthorityFix) has to know that before
//! it can hand the block to h2 untouched. Decoding the block with
//! loona-hpack answers it, but loona builds a Huffman table (a map of 257
//! entries) for every Huffman-coded string and walks it bit by bit: 20–25 µs
//! a string, ~250 µs for the first request of a tonic or grpc-go host (eight
//! or so Huffman strings), measured as a plugin's first reply: the host's
//! first health check took 582 µs with it and 323 µs without the fix
//! (median of 60 launches, kv_host → kv_plugin over a unix socket). Every
//! new connection paid it, brokered ones too.
//!
//! This scan follows the block's representations (RFC 7541 §6) without
//! decoding the strings it does not need: names are told apart by index or
//! by their bytes, and only an `:authority` value is decoded. It answers
//! "fine" only when it can prove it; anything it cannot follow (a reference
//! into the dynamic table, a malformed block) is "unsure", and the caller
//! decodes in full as before.

use loona_hpack::huffman::HuffmanDecoder;

/// Index of `:authority` in the static table (RFC 7541 Appendix A).
const STATIC_AUTHORITY: usize = 1;

/// Entries in the static table; larger indices are dynamic.
const STATIC_ENTRIES: usize = 61;

/// The dynamic table size h2's server allows (its SETTINGS_HEADER_TABLE_SIZE,
/// the default).
const MAX_TABLE_SIZE: usize = 4096;

/// `:authority` Huffman-coded (RFC 7541 §5.2, Appendix B), padded with the
/// most significant bits of EOS. A Huffman coding with valid padding is
/// unique, so a Huffman-coded name is `:authority` exactly when it is these
/// bytes (a badly padded one is h2's to refuse).
const HUFFMAN_AUTHORITY: [u8; 8] = [0xb8, 0x3b, 0x53, 0x39, 0xec, 0x32, 0x7d, 0x7f];

/// `localhost` Huffman-coded: the `:authority` grpc-go and our own hosts
/// send over a unix socket.
const HUFFMAN_LOCALHOST: [u8; 6] = [0xa0, 0xe4, 0x1d, 0x13, 0x9d, 0x09];

/// Whether `block`, a complete header block and the first of its
/// connection (the dynamic table is empty), is proven to carry only
/// `:authority` values that `http` accepts (or none). `false` means
/// "decode it to know".
pub(crate) fn authorities_fine(block: &[u8]) -> bool {
    scan(block).unwrap_or(false)
}

/// `None`: the block could not be followed.
fn scan(mut rest: &[u8]) -> Option<bool> {
    while let Some(&first) = rest.first() {
        if first & 0x80 != 0 {
            // Indexed field: a static entry carries no value of its own
            // but `:authority`'s, which is empty (and refused by `http`,
            // as h2 would refuse it).
            let index = integer(&mut rest, 7)?;
            if index == 0 || index > STATIC_ENTRIES || index == STATIC_AUTHORITY {
                return None;
            }
            continue;
        }
        if first & 0xe0 == 0x20 {
            // Dynamic table size update: one above what h2 allows is
            // for the full decoder to refuse.
            if integer(&mut rest, 5)? > MAX_TABLE_SIZE {
                return None;
            }
            continue;
        }
        // A literal: with incremental indexing (01), or without (0000)
        // or never indexed (0001).
        let prefix = if first & 0x40 != 0 { 6 } else { 4 };
        let index = integer(&mut rest, prefix)?;
        let is_authority = match index {
            0 => {
                let (huffman, name) = string(&mut rest)?;
                match huffman {
                    true => name == HUFFMAN_AUTHORITY,
                    false => name == b":authority",
                }
            }
            STATIC_AUTHORITY => true,
            i if i <= STATIC_ENTRIES => false,
            _ => return None,
        };
        let (huffman, value) = string(&mut rest)?;
        if is_authority {
            let decoded;
            let value = match huffman {
                // What grpc-go and tonic send: known good, no decoding.
                true if value == HUFFMAN_LOCALHOST => continue,
                true => {
                    decoded = HuffmanDecoder::new().decode(value).ok()?;
                    decoded.as_slice()
                }
                false => value,
            };
            if http::uri::Authority::try_from(value).is_err() {
                return Some(false);
            }
        }
    }
    Some(true)
}

/// An HPACK integer with an `n`-bit prefix (RFC 7541 §5.1), taken off the
/// front of `rest`.
fn integer(rest: &mut &[u8], n: u32) -> Option<usize> {
    let (&first, mut tail) = rest.split_first()?;
    let max = (1usize << n) - 1;
    let mut value = usize::from(first) & max;
    if value == max {
        let mut shift = 0u32;
        loop {
            let (&byte, after) = tail.split_first()?;
            tail = after;
            // Beyond 2^28 no header block of ours is real; stop before
            // the shift can overflow.
            if shift > 21 {
                return None;
            }
            value += usize::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                break;
            }
        }
    }
    *rest = tail;
    Some(value)
}

/// A string literal (RFC 7541 §5.2): whether it is Huffman-coded, and its
/// bytes as sent.
fn string<'a>(rest: &mut &'a [u8]) -> Option<(bool, &'a [u8])> {
    let huffman = rest.first()? & 0x80 != 0;
    let len = integer(rest, 7)?;
    if len > rest.len() {
        return None;
    }
    let (bytes, after) = rest.split_at(len);
    *rest = after;
    Some((huffman, bytes))
}

#[cfg(test)]
mod tests {
    use loona_hpack::encoder::encode_integer_into;

    use super::*;

    fn literal(out: &mut Vec<u8>, name_index: usize, value: &[u8]) {
        encode_integer_into(name_index, 4, 0x00, out).unwrap();
        encode_integer_into(value.len(), 7, 0, out).unwrap();
        out.extend_from_slice(value);
    }

    /// `value` Huffman-coded.
    fn huffman(value: &str) -> Vec<u8> {
        // Our test encoder: the codes of the characters we use, from RFC
        // 7541 Appendix B, checked below against loona's decoder.
        let code = |c: char| -> (u32, u32) {
            match c {
                '%' => (0x15, 6),
                '/' => (0x18, 6),
                '2' => (0x2, 5),
                'a' => (0x3, 5),
                'c' => (0x4, 5),
                'f' => (0x25, 6),
                'g' => (0x26, 6),
                'h' => (0x27, 6),
                'i' => (0x6, 5),
                'l' => (0x28, 6),
                'm' => (0x29, 6),
                'n' => (0x2a, 6),
                'o' => (0x7, 5),
                'p' => (0x2b, 6),
                's' => (0x8, 5),
                't' => (0x9, 5),
                'u' => (0x2d, 6),
                other => panic!("no code for {other:?} in the test encoder"),
            }
        };
        let mut bits = 0u64;
        let mut len = 0u32;
        let mut out = Vec::new();
        for c in value.chars() {
            let (code, n) = code(c);
            bits = bits << n | u64::from(code);
            len += n;
            while len >= 8 {
                len -= 8;
                out.push((bits >> len) as u8);
            }
        }
        if len > 0 {
            out.push((bits << (8 - len)) as u8 | (0xff >> len));
        }
        assert_eq!(
            HuffmanDecoder::new().decode(&out).unwrap(),
            value.as_bytes(),
            "the test encoder agrees with loona"
        );
        out
    }

    fn huffman_literal(out: &mut Vec<u8>, name_index: usize, value: &str) {
        let coded = huffman(value);
        encode_integer_into(name_index, 4, 0x00, out).unwrap();
        encode_integer_into(coded.len(), 7, 0x80, out).unwrap();
        out.extend_from_slice(&coded);
    }

    #[test]
    fn huffman_constants_say_what_they_are_named() {
        assert_eq!(
            HuffmanDecoder::new().decode(&HUFFMAN_AUTHORITY).unwrap(),
            b":authority"
        );
        assert_eq!(
            HuffmanDecoder::new().decode(&HUFFMAN_LOCALHOST).unwrap(),
            b"localhost"
        );
        assert_eq!(huffman("localhost"), HUFFMAN_LOCALHOST);
    }

    #[test]
    fn tonic_like_first_block_is_fine_and_a_bad_authority_is_not() {
        // "localhost" is known coded; "plugins" is decoded.
        let cases = [
            ("localhost", true),
            ("plugins", true),
            ("tmp%2fplugin", false),
        ];
        for (authority, fine) in cases {
            let mut block = vec![0x83, 0x86]; // :method POST, :scheme http
            huffman_literal(&mut block, 4, "/plugin"); // :path
            huffman_literal(&mut block, STATIC_AUTHORITY, authority);
            huffman_literal(&mut block, 31, "cost"); // content-type
            assert_eq!(authorities_fine(&block), fine, "{authority}");
            // The same with raw strings, and with the name spelt out.
            let mut raw = vec![0x83];
            literal(&mut raw, STATIC_AUTHORITY, authority.as_bytes());
            assert_eq!(authorities_fine(&raw), fine, "{authority} raw");
            let mut named = vec![0x00, 10];
            named.extend_from_slice(b":authority");
            named.extend_from_slice(&[authority.len() as u8]);
            named.extend_from_slice(authority.as_bytes());
            assert_eq!(authorities_fine(&named), fine, "{authority} named");
            let mut coded_name = vec![0x00, 0x80 | 8];
            coded_name.extend_from_slice(&HUFFMAN_AUTHORITY);
            coded_name.extend_from_slice(&[authority.len() as u8]);
            coded_name.extend_from_slice(authority.as_bytes());
            assert_eq!(
                authorities_fine(&coded_name),
                fine,
                "{authority} coded name"
            );
        }
    }

    #[test]
    fn what_cannot_be_followed_is_unsure() {
        let cases: [&[u8]; 7] = [
            &[0xbe],                               // indexed 62: dynamic
            &[0x80],                               // indexed 0
            &[0x81],                               // :authority with no value of its own
            &[0x0f, 0x2f, 1, b'x'],                // literal with dynamic name 62
            &[0x04, 5, b'a'],                      // value longer than the block
            &[0x1f, 0xff, 0xff, 0xff, 0xff, 0xff], // endless integer
            &[0x04],                               // cut before the value
        ];
        for case in cases {
            assert!(!authorities_fine(case), "{case:02x?}");
        }
        // Size updates and other static fields are followed.
        let mut block = Vec::new();
        encode_integer_into(4096, 5, 0x20, &mut block).unwrap();
        block.extend_from_slice(&[0x83, 0x86, 0x84]);
        literal(&mut block, 58, b"tonic/0.14"); // user-agent
        assert!(authorities_fine(&block));
        assert!(authorities_fine(&[]));
    }
}
