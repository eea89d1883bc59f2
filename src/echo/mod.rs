//! echo sample streams (instadeepai's `echo` replay buffer): fixed-shape
//! samples of arrays, streamed by workers to a learner.
//!
//! This module starts with the stream's spec: the leaves of a sample, each a
//! dtype and a shape, and echo's TCP protocol v1 spec header.

mod spec;

pub use spec::{DType, Leaf, Spec, SpecError, WireSpec};
