//! Error type of the training library.
//!
//! Everything that can go wrong because of *user input* (a config that does
//! not fit the data, an empty text file, an impossible random dataset) is a
//! variant here rather than a panic, so that the CLI can print it.

use thiserror::Error;

/// All failures of `memcap-train`.
#[derive(Debug, Error)]
pub enum TrainError {
    /// A model, training or search configuration is inconsistent.
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    /// The dataset is malformed or does not match the model config.
    #[error("invalid data: {0}")]
    InvalidData(String),
    /// The dataset is malformed (memcap-core's validation).
    #[error(transparent)]
    Data(#[from] memcap_core::DataError),
    /// memcap's construction failed on a sweep dataset.
    #[error(transparent)]
    Construct(#[from] memcap_core::ConstructError),
    /// Training takes token ids; a dataset of vector tokens was given.
    #[error("training needs token ids: this dataset has vector tokens, and the trained models embed ids with a lookup table (construct and verify accept vectors)")]
    VectorInputs,
    /// A numeric failure inside candle (shape mismatch, etc.).
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    /// Serializing weights failed.
    #[error("safetensors: {0}")]
    SafeTensors(#[from] safetensors::SafeTensorError),
    /// JSON (de)serialization failed.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// Writing a run folder failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, TrainError>;

pub(crate) fn cfg_err<T>(msg: impl Into<String>) -> Result<T> {
    Err(TrainError::InvalidConfig(msg.into()))
}
