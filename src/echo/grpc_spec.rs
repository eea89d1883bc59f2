//! Specs as the gRPC transport carries them (`echo.v1.Spec`).

use super::{DType, Leaf, Spec, SpecError};

impl Spec {
    /// The spec as the gRPC transport carries it.
    pub(crate) fn to_proto(&self) -> crate::proto::echo::Spec {
        crate::proto::echo::Spec {
            leaves: self
                .leaves()
                .iter()
                .map(|leaf| crate::proto::echo::Leaf {
                    dtype: leaf.dtype.name().to_owned(),
                    shape: leaf.shape.clone(),
                    path: String::new(),
                })
                .collect(),
        }
    }

    /// A spec from the gRPC transport.
    ///
    /// # Errors
    ///
    /// [`SpecError::Syntax`] for an unknown dtype, [`SpecError::Empty`] for
    /// no leaves.
    pub(crate) fn from_proto(spec: &crate::proto::echo::Spec) -> Result<Spec, SpecError> {
        let leaves = spec
            .leaves
            .iter()
            .enumerate()
            .map(|(index, leaf)| {
                let dtype = DType::from_name(&leaf.dtype).ok_or_else(|| SpecError::Syntax {
                    input: leaf.dtype.clone(),
                    index,
                    reason: format!("unknown dtype {:?}", leaf.dtype),
                })?;
                Ok(Leaf {
                    dtype,
                    shape: leaf.shape.clone(),
                })
            })
            .collect::<Result<Vec<Leaf>, SpecError>>()?;
        Spec::new(leaves)
    }
}
