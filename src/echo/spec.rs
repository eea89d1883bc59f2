//! The spec of a sample stream: the leaves of the sample's pytree, each a
//! dtype and a shape, in the order echo's client flattens them (optree's).

use std::fmt;
use std::str::FromStr;

/// The element type of a leaf.
///
/// | dtype | numpy | bytes |
/// | --- | --- | --- |
/// | `bool` | `\|b1` | 1 |
/// | `int8`, `uint8` | `\|i1`, `\|u1` | 1 |
/// | `int16`, `uint16`, `float16` | `<i2`, `<u2`, `<f2` | 2 |
/// | `int32`, `uint32`, `float32` | `<i4`, `<u4`, `<f4` | 4 |
/// | `int64`, `uint64`, `float64`, `complex64` | `<i8`, `<u8`, `<f8`, `<c8` | 8 |
/// | `complex128` | `<c16` | 16 |
///
/// echo sends leaves in native byte order, which is little-endian on every
/// machine it runs on; hence `<`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DType {
    /// numpy `bool`.
    Bool,
    /// numpy `int8`.
    Int8,
    /// numpy `int16`.
    Int16,
    /// numpy `int32`.
    Int32,
    /// numpy `int64`.
    Int64,
    /// numpy `uint8`.
    UInt8,
    /// numpy `uint16`.
    UInt16,
    /// numpy `uint32`.
    UInt32,
    /// numpy `uint64`.
    UInt64,
    /// numpy `float16`.
    Float16,
    /// numpy `float32`.
    Float32,
    /// numpy `float64`.
    Float64,
    /// numpy `complex64`.
    Complex64,
    /// numpy `complex128`.
    Complex128,
}

const DTYPES: [(DType, &str, &str, u32); 14] = [
    (DType::Bool, "bool", "|b1", 1),
    (DType::Int8, "int8", "|i1", 1),
    (DType::Int16, "int16", "<i2", 2),
    (DType::Int32, "int32", "<i4", 4),
    (DType::Int64, "int64", "<i8", 8),
    (DType::UInt8, "uint8", "|u1", 1),
    (DType::UInt16, "uint16", "<u2", 2),
    (DType::UInt32, "uint32", "<u4", 4),
    (DType::UInt64, "uint64", "<u8", 8),
    (DType::Float16, "float16", "<f2", 2),
    (DType::Float32, "float32", "<f4", 4),
    (DType::Float64, "float64", "<f8", 8),
    (DType::Complex64, "complex64", "<c8", 8),
    (DType::Complex128, "complex128", "<c16", 16),
];

impl DType {
    fn entry(self) -> &'static (DType, &'static str, &'static str, u32) {
        DTYPES
            .iter()
            .find(|e| e.0 == self)
            .expect("every dtype is listed")
    }

    /// numpy's name: `float32`.
    pub fn name(self) -> &'static str {
        self.entry().1
    }

    /// numpy's type string: `<f4`.
    pub fn numpy_str(self) -> &'static str {
        self.entry().2
    }

    /// Bytes per element (what echo's TCP protocol calls `dtype_size`).
    pub fn size(self) -> u32 {
        self.entry().3
    }

    /// From a numpy name (`float32`) or type string (`<f4`, `|u1`, `f4`).
    pub fn from_name(name: &str) -> Option<DType> {
        let bare = name.trim_start_matches(['<', '|', '=']);
        DTYPES
            .iter()
            .find(|(_, n, s, _)| *n == name || *s == name || s[1..] == *bare)
            .map(|e| e.0)
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One leaf of a sample: a dtype and a shape (no dims: a scalar).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Leaf {
    /// The element type.
    pub dtype: DType,
    /// The dims; empty for a scalar.
    pub shape: Vec<u32>,
}

impl Leaf {
    /// Elements in the leaf: the product of the dims, 1 for a scalar
    /// (saturating at `u64::MAX`; a [`Spec`] refuses such leaves).
    pub fn elements(&self) -> u64 {
        self.shape
            .iter()
            .fold(1u64, |n, &d| n.saturating_mul(u64::from(d)))
    }

    /// Bytes of the leaf in a sample (saturating, as
    /// [`elements`](Self::elements)).
    pub fn size(&self) -> u64 {
        self.elements().saturating_mul(u64::from(self.dtype.size()))
    }
}

impl fmt::Display for Leaf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dims: Vec<String> = self.shape.iter().map(u32::to_string).collect();
        write!(f, "{}[{}]", self.dtype, dims.join(","))
    }
}

/// A failure to parse or decode a spec, or a mismatch between two specs.
/// Each names the leaf (by index) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// Text that is not `dtype[dims]`.
    #[error("spec {input:?}, leaf {index}: {reason}")]
    Syntax {
        /// The whole spec text.
        input: String,
        /// The leaf's index.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// The spec has no leaves.
    #[error("a spec needs at least one leaf")]
    Empty,
    /// A sample would be larger than [`MAX_PAYLOAD`] bytes.
    #[error(
        "samples of this spec would be {bytes} bytes (from leaf {index} on), more than the {MAX_PAYLOAD} a sample may hold"
    )]
    TooLarge {
        /// The first leaf at which the running size passes the limit.
        index: usize,
        /// The size so far, saturated at `u64::MAX`.
        bytes: u64,
    },
    /// Bytes that are not echo's spec header.
    #[error("not an echo spec header: {reason}")]
    Wire {
        /// What is wrong.
        reason: String,
    },
    /// Two specs differ.
    #[error("spec mismatch at leaf {index}: expected {expected}, got {actual}")]
    Mismatch {
        /// The leaf's index (or the shorter spec's length when the leaf
        /// counts differ).
        index: usize,
        /// What this side expected.
        expected: String,
        /// What the other side has.
        actual: String,
    },
}

/// The spec of a stream: its leaves in flattened order.
///
/// Written and parsed as `float32[4],float32[1],uint8[84,84,3],int64[]`.
///
/// ```
/// use rpcplugin::echo::Spec;
///
/// let spec: Spec = "float32[4],float32[1],float64[]".parse()?;
/// assert_eq!(spec.payload_size(), 4 * 4 + 4 + 8);
/// assert_eq!(spec.to_string(), "float32[4],float32[1],float64[]");
/// # Ok::<(), rpcplugin::echo::SpecError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Spec {
    leaves: Vec<Leaf>,
}

/// The largest sample, in bytes: the largest gRPC message (2^31 − 1), which
/// also keeps one sample's buffer allocatable on every platform.
pub const MAX_PAYLOAD: u64 = i32::MAX as u64;

impl Spec {
    /// A spec of these leaves.
    ///
    /// # Errors
    ///
    /// [`SpecError::Empty`] for no leaves; [`SpecError::TooLarge`] for
    /// samples over [`MAX_PAYLOAD`] bytes.
    pub fn new(leaves: Vec<Leaf>) -> Result<Self, SpecError> {
        if leaves.is_empty() {
            return Err(SpecError::Empty);
        }
        let mut bytes = 0u64;
        for (index, leaf) in leaves.iter().enumerate() {
            bytes = bytes.saturating_add(leaf.size());
            if bytes > MAX_PAYLOAD {
                return Err(SpecError::TooLarge { index, bytes });
            }
        }
        Ok(Spec { leaves })
    }

    /// The leaves, in flattened order.
    pub fn leaves(&self) -> &[Leaf] {
        &self.leaves
    }

    /// Bytes of one sample: the leaves' sizes added up.
    pub fn payload_size(&self) -> u64 {
        self.leaves.iter().map(Leaf::size).sum()
    }
}

impl Spec {
    /// Checks that `other` (the peer's spec) is this one, leaf by leaf.
    ///
    /// # Errors
    ///
    /// [`SpecError::Mismatch`] naming the first leaf that differs.
    pub fn check(&self, other: &Spec) -> Result<(), SpecError> {
        for (index, (mine, theirs)) in self.leaves.iter().zip(&other.leaves).enumerate() {
            if mine != theirs {
                return Err(SpecError::Mismatch {
                    index,
                    expected: mine.to_string(),
                    actual: theirs.to_string(),
                });
            }
        }
        if self.leaves.len() != other.leaves.len() {
            return Err(SpecError::Mismatch {
                index: self.leaves.len().min(other.leaves.len()),
                expected: format!("{} leaves", self.leaves.len()),
                actual: format!("{} leaves", other.leaves.len()),
            });
        }
        Ok(())
    }
}

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, leaf) in self.leaves.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{leaf}")?;
        }
        Ok(())
    }
}

impl FromStr for Spec {
    type Err = SpecError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let mut leaves = Vec::new();
        let mut rest = input.trim();
        let mut index = 0;
        while !rest.is_empty() {
            let syntax = |reason: String| SpecError::Syntax {
                input: input.to_owned(),
                index,
                reason,
            };
            let open = rest
                .find('[')
                .ok_or_else(|| syntax("expected `dtype[dims]`".into()))?;
            let close = rest.find(']').ok_or_else(|| syntax("missing `]`".into()))?;
            if close < open {
                return Err(syntax("`]` before `[`".into()));
            }
            let name = rest[..open].trim();
            let dtype =
                DType::from_name(name).ok_or_else(|| syntax(format!("unknown dtype {name:?}")))?;
            let dims = rest[open + 1..close].trim();
            let shape = if dims.is_empty() {
                Vec::new()
            } else {
                dims.split(',')
                    .map(|d| {
                        let d = d.trim();
                        if d.is_empty() || !d.bytes().all(|b| b.is_ascii_digit()) {
                            return Err(syntax(format!("dim {d:?} is not a number")));
                        }
                        d.parse::<u32>()
                            .map_err(|_| syntax(format!("dim {d} is too large")))
                    })
                    .collect::<Result<Vec<u32>, SpecError>>()?
            };
            leaves.push(Leaf { dtype, shape });
            rest = rest[close + 1..].trim_start();
            if let Some(after) = rest.strip_prefix(',') {
                rest = after.trim_start();
                if rest.is_empty() {
                    return Err(SpecError::Syntax {
                        input: input.to_owned(),
                        index: index + 1,
                        reason: "nothing after the last `,`".into(),
                    });
                }
            } else if !rest.is_empty() {
                return Err(syntax(format!("expected `,` before {rest:?}")));
            }
            index += 1;
        }
        Spec::new(leaves)
    }
}

#[cfg(test)]
#[path = "spec_tests.rs"]
mod tests;
