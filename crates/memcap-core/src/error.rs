//! Typed errors of the core crate. Every variant carries the structured
//! facts a caller needs (record index, line, reason) so that the CLI can print
//! "file:line: reason" without parsing messages.

use thiserror::Error;

/// Where a record came from: its 0-based index in the dataset and, when it was
/// parsed from text, its 1-based line number in that text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// 0-based index of the example in the dataset.
    pub index: usize,
    /// 1-based line number in the source text, if parsed from text.
    pub line: Option<usize>,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}"),
            None => write!(f, "example {}", self.index),
        }
    }
}

/// Errors in dataset text or dataset contents.
#[derive(Debug, Error, PartialEq)]
pub enum DataError {
    // === Parse errors ===
    /// A line could not be parsed.
    #[error("line {line}: {reason}")]
    Parse {
        /// 1-based line number of the offending line (or CSV header).
        line: usize,
        /// What is wrong with it, e.g. "not valid JSON: …".
        reason: String,
    },

    // === Shape errors ===
    /// The dataset has no examples.
    #[error("the dataset is empty")]
    Empty,
    /// Sequences of different lengths (Transformers here take fixed n).
    #[error(
        "{at}: sequence has length {got}, but the first sequence has length {expected} (pad shorter seq2seq rows \
         and label the padded positions -100 to leave them out)"
    )]
    Ragged {
        /// The first example whose length differs.
        at: Origin,
        /// Length n (tokens) of the first sequence.
        expected: usize,
        /// Length of this sequence.
        got: usize,
    },
    /// Vector tokens of different dimension.
    #[error("{at}: token has dimension {got}, expected {expected}")]
    DimMismatch {
        /// The example holding the offending token.
        at: Origin,
        /// Dimension d of the first vector token (or the dataset's d).
        expected: usize,
        /// Dimension of this token.
        got: usize,
    },
    /// A seq2seq example whose label count differs from its length.
    #[error("{at}: {got} labels for a sequence of length {expected}")]
    LabelCount {
        /// The offending example.
        at: Origin,
        /// Sequence length n: seq2seq needs one label per position.
        expected: usize,
        /// Number of labels given.
        got: usize,
    },
    /// Mixed next-token and seq2seq records.
    #[error("{at}: mixes \"label\" and \"labels\" records; a dataset has one task")]
    MixedTask {
        /// The first record whose task differs from the earlier records'.
        at: Origin,
    },
    /// Mixed token kinds (ids vs vectors).
    #[error("{at}: mixes integer token ids and vector tokens")]
    MixedKind {
        /// The first record whose token kind differs from the first record's.
        at: Origin,
    },

    // === Value errors ===
    /// Token id not below the vocabulary size.
    #[error("{at}: token id {token} is not below the vocabulary size {vocab}")]
    TokenOutOfRange {
        /// The example holding the token.
        at: Origin,
        /// The offending token id.
        token: u64,
        /// Vocabulary size V.
        vocab: usize,
    },
    /// Label not below the number of classes.
    #[error("{at}: label {label} is not below the number of classes {classes}")]
    LabelOutOfRange {
        /// The example carrying the label.
        at: Origin,
        /// The offending label.
        label: u64,
        /// Number of classes C.
        classes: u32,
    },
    /// NaN or infinity in a vector token.
    #[error("{at}: non-finite value {value} in a vector token")]
    NonFinite {
        /// The example holding the token.
        at: Origin,
        /// The offending coordinate (NaN or ±∞).
        value: f64,
    },
    /// Bad generator or loader parameters.
    #[error("invalid parameter: {0}")]
    Param(String),

    // === Consistency ===
    /// Two examples that every Transformer of the chosen kind must map to the
    /// same output carry different labels.
    #[error(
        "inconsistent labels: {a} and {b} {why}, but have labels {label_a} and {label_b}; \
         no Transformer {mode} can memorize both (use --dedupe majority to keep the majority label)"
    )]
    Inconsistent {
        /// The earlier example of the conflicting pair.
        a: Origin,
        /// The later example, whose label contradicts `a`'s.
        b: Origin,
        /// Label of `a` at the conflicting position.
        label_a: u32,
        /// Label of `b` at the conflicting position.
        label_b: u32,
        /// What makes them indistinguishable.
        why: String,
        /// "without positional encoding" / "with positional encoding".
        mode: String,
    },
    /// seq2seq without positions: two positions of one sequence hold the same
    /// token but different labels (equal tokens of a sequence get equal outputs).
    #[error(
        "inconsistent labels: {at}, positions {pos_a} and {pos_b}, holds the same token twice, with labels \
         {label_a} and {label_b}; without positional encoding a Transformer gives equal tokens of one sequence \
         equal outputs (use --positional learned, or --dedupe majority to keep the majority label)"
    )]
    InconsistentWithin {
        /// The sequence.
        at: Origin,
        /// 1-based position of the first occurrence.
        pos_a: usize,
        /// 1-based position of the repeat.
        pos_b: usize,
        /// Label at `pos_a`.
        label_a: u32,
        /// Label at `pos_b`.
        label_b: u32,
    },
}

/// Errors while building a construction.
#[derive(Debug, Error, PartialEq)]
pub enum ConstructError {
    /// The data violate consistency (see [`DataError::Inconsistent`]).
    #[error(transparent)]
    Data(#[from] DataError),
    /// The forced M1 contextual map is impossible on this dataset.
    #[error("M1 condition violated: {0}")]
    M1Violated(String),
    /// A random choice kept failing (should be astronomically unlikely).
    #[error("gave up after {attempts} attempts: {what}")]
    Retries {
        /// Number of draws made (usually the config's `max_attempts`; 16 for baselines).
        attempts: u32,
        /// The random choice that kept failing, e.g. "hash sums injective on distinct multisets".
        what: String,
    },
    /// Bad construction options.
    #[error("invalid construction option: {0}")]
    Config(String),
    /// A float-exact construction (`--precision f64|f32`) cannot serve this data.
    #[error("cannot build a {dtype}-exact model: {reason}")]
    Precision {
        /// `f64` or `f32`.
        dtype: String,
        /// Why, with the numbers.
        reason: String,
    },
}

/// Errors in a model file or in evaluating a model.
#[derive(Debug, Error, PartialEq)]
pub enum ModelError {
    /// The JSON does not describe a valid model.
    #[error("invalid model: {0}")]
    Invalid(String),
    /// A declared size is over its resource limit ([`crate::limits`]).
    #[error("model too large: {0}")]
    Limit(#[from] crate::limits::LimitError),
    /// Unsupported format version.
    #[error("model format version {got} is not supported (this build reads version {supported})")]
    Version {
        /// Version in the file (0 when missing or not a number).
        got: u32,
        /// The version this build reads, [`FORMAT_VERSION`](crate::model::FORMAT_VERSION).
        supported: u32,
    },
    /// Model and dataset disagree (kind, dimension, length, task).
    #[error("model does not fit the dataset: {0}")]
    Mismatch(String),
    /// Softmax with non-uniform scores has irrational weights; no exact
    /// rational evaluation exists.
    #[error(
        "block {block}: softmax over non-equal scores has irrational weights and cannot be \
         evaluated exactly (use hardmax, or the f64 evaluator)"
    )]
    InexactSoftmax {
        /// 0-based index of the block whose attention cannot be evaluated exactly.
        block: usize,
    },
}
