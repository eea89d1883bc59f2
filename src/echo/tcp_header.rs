//! echo's TCP protocol v1 spec header: the one message a server sends
//! before samples flow, `ECHO`, version 1, then per array its dtype size
//! and dims (little-endian u32).

use super::{Spec, SpecError};

/// echo's TCP protocol magic and version.
const MAGIC: &[u8; 4] = b"ECHO";
const VERSION: u8 = 1;

impl Spec {
    /// echo's TCP protocol v1 spec header: `ECHO`, version 1, the number of
    /// arrays, then per array its dtype size, number of dims and dims, all
    /// little-endian u32.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(9 + self.leaves().len() * 12);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&(self.leaves().len() as u32).to_le_bytes());
        for leaf in self.leaves() {
            out.extend_from_slice(&leaf.dtype.size().to_le_bytes());
            out.extend_from_slice(&(leaf.shape.len() as u32).to_le_bytes());
            for dim in &leaf.shape {
                out.extend_from_slice(&dim.to_le_bytes());
            }
        }
        out
    }

    /// Checks that `wire` (a v1 header, which carries dtype sizes, not
    /// names) describes this spec.
    ///
    /// # Errors
    ///
    /// [`SpecError::Wire`] for a malformed header; [`SpecError::Mismatch`]
    /// naming the first leaf that differs.
    pub fn check_wire(&self, wire: &WireSpec) -> Result<(), SpecError> {
        let ours: Vec<(u32, &[u32])> = self
            .leaves()
            .iter()
            .map(|l| (l.dtype.size(), &l.shape[..]))
            .collect();
        for (index, (mine, theirs)) in ours.iter().zip(&wire.leaves).enumerate() {
            if mine.0 != theirs.0 || mine.1 != theirs.1.as_slice() {
                return Err(SpecError::Mismatch {
                    index,
                    expected: format!("{}", self.leaves()[index]),
                    actual: format!("{} bytes/element, dims {:?}", theirs.0, theirs.1),
                });
            }
        }
        if ours.len() != wire.leaves.len() {
            return Err(SpecError::Mismatch {
                index: ours.len().min(wire.leaves.len()),
                expected: format!("{} leaves", ours.len()),
                actual: format!("{} leaves", wire.leaves.len()),
            });
        }
        Ok(())
    }
}

/// A spec as echo's TCP protocol v1 carries it: dtype sizes and dims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireSpec {
    /// Per leaf: bytes per element, dims.
    pub leaves: Vec<(u32, Vec<u32>)>,
}

impl WireSpec {
    /// Decodes a complete header from the start of `bytes`; returns it and
    /// its length, or `Ok(None)` when more bytes are needed.
    ///
    /// # Errors
    ///
    /// [`SpecError::Wire`] for a wrong magic ("not an echo server"), another
    /// version, or absurd counts.
    pub fn decode(bytes: &[u8]) -> Result<Option<(WireSpec, usize)>, SpecError> {
        let wire = |reason: String| SpecError::Wire { reason };
        let n = bytes.len().min(4);
        if bytes[..n] != MAGIC[..n] {
            return Err(wire(format!(
                "magic {:02x?} is not \"ECHO\": not an echo server",
                &bytes[..n]
            )));
        }
        let mut at = 4;
        let Some(&version) = bytes.get(at) else {
            return Ok(None);
        };
        if version != VERSION {
            return Err(wire(format!(
                "protocol version {version} is not supported (only 1)"
            )));
        }
        at += 1;
        let u32_at = |at: &mut usize| -> Option<u32> {
            let v = bytes.get(*at..*at + 4)?;
            *at += 4;
            Some(u32::from_le_bytes(v.try_into().expect("4 bytes")))
        };
        let Some(count) = u32_at(&mut at) else {
            return Ok(None);
        };
        if count == 0 || count > MAX_LEAVES {
            return Err(wire(format!("{count} arrays (expected 1 to {MAX_LEAVES})")));
        }
        let mut leaves = Vec::with_capacity(count as usize);
        for index in 0..count {
            let Some(size) = u32_at(&mut at) else {
                return Ok(None);
            };
            let Some(ndims) = u32_at(&mut at) else {
                return Ok(None);
            };
            if size == 0 || ndims > MAX_DIMS {
                return Err(wire(format!(
                    "array {index}: dtype size {size}, {ndims} dims"
                )));
            }
            let mut dims = Vec::with_capacity(ndims as usize);
            for _ in 0..ndims {
                let Some(dim) = u32_at(&mut at) else {
                    return Ok(None);
                };
                dims.push(dim);
            }
            leaves.push((size, dims));
        }
        Ok(Some((WireSpec { leaves }, at)))
    }
}

/// Most leaves a spec header may announce: far more than any pytree echo
/// streams, few enough that a hostile header cannot make us allocate much.
const MAX_LEAVES: u32 = 65_536;
/// Most dims a leaf may have (numpy's own limit is 64).
const MAX_DIMS: u32 = 64;
