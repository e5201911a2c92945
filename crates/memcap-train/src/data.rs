//! Training data is memcap-core's [`Dataset`]: the same type, generator,
//! text-window builder and consistency check that the construction uses, so
//! a trained minimum and a construction can be compared on the same dataset.
//!
//! Token ids are embedded by a lookup table; vector tokens by a linear input
//! projection ([`crate::TransformerConfig::vector_input`]).

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

/// The inputs of `data` as one tensor: token ids `[N, n]` (u32) or token
/// vectors `[N, n, d]` (f32), after validating the dataset.
///
/// # Errors
/// [`TrainError::Data`] for a malformed dataset; candle failures.
pub fn input_tensor(data: &Dataset) -> Result<candle_core::Tensor> {
    use candle_core::{Device, Tensor};
    data.validate()?;
    let n = data.seq_len();
    Ok(match &data.inputs {
        Inputs::Ids { seqs, .. } => {
            let flat: Vec<u32> = seqs.iter().flatten().copied().collect();
            Tensor::from_vec(flat, (seqs.len(), n), &Device::Cpu)?
        }
        Inputs::Vectors { d, seqs } => {
            let flat: Vec<f32> = seqs.iter().flatten().flatten().map(|&x| x as f32).collect();
            Tensor::from_vec(flat, (seqs.len(), n, *d), &Device::Cpu)?
        }
    })
}
