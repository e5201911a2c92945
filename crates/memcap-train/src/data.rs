//! Training data is memcap-core's [`Dataset`]: the same type, generator,
//! text-window builder and consistency check that the construction uses, so
//! a trained minimum and a construction can be compared on the same dataset.
//!
//! Training needs token ids (the embedding is a lookup table); vector inputs
//! are refused with [`crate::TrainError::VectorInputs`].

pub use memcap_core::data::{ConsistencyReport, Dataset, Inputs, Labels, Positional, Task, IGNORE};
pub use memcap_core::gen::{generate, text_windows, GenConfig, TextData, TextSpec, TextUnit};

use crate::error::{Result, TrainError};

/// The token ids of `data` and its vocabulary size V, after validating the
/// dataset (shapes, ranges).
///
/// # Errors
/// [`TrainError::Data`] for a malformed dataset, [`TrainError::VectorInputs`]
/// for vector tokens.
pub fn token_ids(data: &Dataset) -> Result<(usize, &[Vec<u32>])> {
    data.validate()?;
    data.token_ids().ok_or(TrainError::VectorInputs)
}
