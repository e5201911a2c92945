//! Plain training data, plus the two dataset sources the experiments need.
//!
//! The library deliberately does not depend on `memcap-core`: a dataset is
//! just token ids and labels ([`TrainData`]). Two builders live here:
//!
//! * [`random_dataset`]: seeded uniform random token sequences with uniform
//!   random labels — the setting of the paper's capacity results, where the
//!   labels carry exactly `N·log2(C)` bits that a model must store.
//! * [`text_windows`]: windows of a real text file (bytes or whitespace
//!   tokens) labelled with the next token. Real text is *inconsistent*: the
//!   same context can be followed by different tokens, which caps the
//!   achievable training accuracy below 100%. [`consistency_report`] says by
//!   how much.

use std::collections::HashMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{cfg_err, data_err, Result};

/// Labels of a dataset: one class per sequence, or one per position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Labels {
    /// One label per sequence (read out at the last position).
    NextToken(Vec<u32>),
    /// One label per position (read out at every position).
    Seq2Seq(Vec<Vec<u32>>),
}

/// Which readout a dataset needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    /// Classify the whole sequence (label at the last position).
    NextToken,
    /// Label every position.
    Seq2Seq,
}

/// A memorization dataset: `N` sequences of equal length `n` over
/// `vocab` token ids, with labels in `0..num_classes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainData {
    /// Token ids are in `0..vocab`.
    pub vocab: usize,
    /// Labels are in `0..num_classes`.
    pub num_classes: usize,
    /// `N` sequences, all of length `n`.
    pub seqs: Vec<Vec<u32>>,
    /// Labels, one per sequence or one per position.
    pub labels: Labels,
}

impl TrainData {
    /// Number of examples `N`.
    pub fn len(&self) -> usize {
        self.seqs.len()
    }

    /// True when there are no examples.
    pub fn is_empty(&self) -> bool {
        self.seqs.is_empty()
    }

    /// Sequence length `n` (0 for an empty dataset).
    pub fn seq_len(&self) -> usize {
        self.seqs.first().map_or(0, Vec::len)
    }

    /// The task implied by the labels.
    pub fn task(&self) -> Task {
        match self.labels {
            Labels::NextToken(_) => Task::NextToken,
            Labels::Seq2Seq(_) => Task::Seq2Seq,
        }
    }

    /// Number of labelled targets: `N` for next-token, `N·n` for seq2seq.
    pub fn num_targets(&self) -> usize {
        match &self.labels {
            Labels::NextToken(l) => l.len(),
            Labels::Seq2Seq(l) => l.iter().map(Vec::len).sum(),
        }
    }

    /// Information content of the labels if they were uniformly random:
    /// `targets · log2(C)` bits. This is the numerator of bits/parameter.
    pub fn label_bits(&self) -> f64 {
        self.num_targets() as f64 * (self.num_classes as f64).log2()
    }

    /// Check shapes and ranges; every builder in this module produces data
    /// that passes, but data from elsewhere (the CLI, memcap-core) may not.
    pub fn validate(&self) -> Result<()> {
        if self.seqs.is_empty() {
            return data_err("dataset has no sequences");
        }
        if self.vocab == 0 || self.num_classes == 0 {
            return data_err("vocab and num_classes must be positive");
        }
        let n = self.seq_len();
        if n == 0 {
            return data_err("sequences must be non-empty");
        }
        for (i, s) in self.seqs.iter().enumerate() {
            if s.len() != n {
                return data_err(format!("sequence {i} has length {} but sequence 0 has {n}", s.len()));
            }
            if let Some(&t) = s.iter().find(|&&t| t as usize >= self.vocab) {
                return data_err(format!("sequence {i} has token {t} >= vocab {}", self.vocab));
            }
        }
        let c = self.num_classes;
        match &self.labels {
            Labels::NextToken(l) => {
                if l.len() != self.seqs.len() {
                    return data_err(format!("{} labels for {} sequences", l.len(), self.seqs.len()));
                }
                if let Some(&y) = l.iter().find(|&&y| y as usize >= c) {
                    return data_err(format!("label {y} >= num_classes {c}"));
                }
            }
            Labels::Seq2Seq(l) => {
                if l.len() != self.seqs.len() {
                    return data_err(format!("{} label rows for {} sequences", l.len(), self.seqs.len()));
                }
                for (i, row) in l.iter().enumerate() {
                    if row.len() != n {
                        return data_err(format!("label row {i} has length {} != {n}", row.len()));
                    }
                    if let Some(&y) = row.iter().find(|&&y| y as usize >= c) {
                        return data_err(format!("label {y} >= num_classes {c}"));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Parameters of [`random_dataset`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RandomSpec {
    /// Number of sequences `N`.
    pub n_examples: usize,
    /// Sequence length `n`.
    pub seq_len: usize,
    /// Token ids are drawn uniformly from `0..vocab`.
    pub vocab: usize,
    /// Labels are drawn uniformly from `0..num_classes`.
    pub num_classes: usize,
    /// Next-token (one label per sequence) or seq2seq (one per position).
    pub task: Task,
    /// Seed of the ChaCha8 generator.
    pub seed: u64,
}

/// Seeded random dataset: distinct token sequences, uniform labels.
///
/// Sequences are drawn uniformly and rejected when they collide with an
/// earlier one *up to a permutation of the positions a Transformer without
/// positional encoding cannot tell apart* (for next-token: same last token
/// and same multiset of the others; for seq2seq: same multiset). Such a
/// model is permutation-equivariant, so colliding pairs with different
/// labels could not both be memorized; rejecting them keeps 100% achievable
/// for every model in this crate. With `vocab^n ≫ N` rejection is rare.
pub fn random_dataset(spec: &RandomSpec) -> Result<TrainData> {
    let RandomSpec { n_examples, seq_len, vocab, num_classes, task, seed } = *spec;
    if n_examples == 0 || seq_len == 0 || vocab == 0 || num_classes == 0 {
        return cfg_err("random dataset: N, n, vocab and num_classes must all be positive");
    }
    if vocab > u32::MAX as usize || num_classes > u32::MAX as usize {
        return cfg_err("random dataset: vocab and num_classes must fit in u32");
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut seen = std::collections::HashSet::with_capacity(n_examples);
    let mut seqs = Vec::with_capacity(n_examples);
    // Bounded rejection sampling: give up (with an error, not a hang) when
    // the space of distinguishable sequences is too small for N.
    let max_attempts = n_examples.saturating_mul(50).max(1000);
    let mut attempts = 0usize;
    while seqs.len() < n_examples {
        attempts += 1;
        if attempts > max_attempts {
            return cfg_err(format!(
                "random dataset: could not draw {n_examples} distinguishable sequences of length {seq_len} over vocab {vocab}"
            ));
        }
        let s: Vec<u32> = (0..seq_len).map(|_| rng.gen_range(0..vocab as u32)).collect();
        if seen.insert(permutation_key(&s, task)) {
            seqs.push(s);
        }
    }
    let labels = match task {
        Task::NextToken => Labels::NextToken((0..n_examples).map(|_| rng.gen_range(0..num_classes as u32)).collect()),
        Task::Seq2Seq => Labels::Seq2Seq(
            (0..n_examples).map(|_| (0..seq_len).map(|_| rng.gen_range(0..num_classes as u32)).collect()).collect(),
        ),
    };
    Ok(TrainData { vocab, num_classes, seqs, labels })
}

/// The key under which a permutation-equivariant model (no positional
/// encoding) sees two sequences as the same input.
fn permutation_key(s: &[u32], task: Task) -> Vec<u32> {
    match task {
        Task::NextToken => {
            let (last, rest) = s.split_last().map_or((0, &[][..]), |(l, r)| (*l, r));
            let mut k = rest.to_vec();
            k.sort_unstable();
            k.push(last);
            k
        }
        Task::Seq2Seq => {
            let mut k = s.to_vec();
            k.sort_unstable();
            k
        }
    }
}

/// How a text file is cut into tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tokenization {
    /// Every byte is a token (vocab 256).
    Bytes,
    /// Maximal runs of non-whitespace are tokens; the vocabulary is the
    /// distinct tokens in order of first appearance.
    Whitespace,
}

/// Parameters of [`text_windows`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextSpec {
    /// Bytes or whitespace tokens.
    pub tokenization: Tokenization,
    /// Context length `n`.
    pub seq_len: usize,
    /// Distance between the starts of consecutive windows (1 = all windows).
    pub stride: usize,
    /// Keep at most this many windows (the first ones); `None` keeps all.
    pub max_examples: Option<usize>,
}

/// A text dataset together with its vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextData {
    /// Windows and next-token labels (`num_classes == vocab`).
    pub data: TrainData,
    /// Token strings by id (bytes are rendered as `\xNN` when not printable).
    pub vocab_tokens: Vec<String>,
}

/// Windows of a text with the next token as label.
///
/// Window `i` is tokens `[i·stride, i·stride + n)` and its label is the
/// token right after it, so labels are in the same id space as the inputs.
pub fn text_windows(text: &[u8], spec: &TextSpec) -> Result<TextData> {
    if spec.seq_len == 0 || spec.stride == 0 {
        return cfg_err("text windows: seq_len and stride must be positive");
    }
    let (ids, vocab_tokens): (Vec<u32>, Vec<String>) = match spec.tokenization {
        Tokenization::Bytes => (
            text.iter().map(|&b| u32::from(b)).collect(),
            (0u8..=255)
                .map(
                    |b| if b.is_ascii_graphic() || b == b' ' { (b as char).to_string() } else { format!("\\x{b:02x}") },
                )
                .collect(),
        ),
        Tokenization::Whitespace => {
            let mut index: HashMap<&[u8], u32> = HashMap::new();
            let mut vocab = Vec::new();
            let mut ids = Vec::new();
            for tok in text.split(|b| b.is_ascii_whitespace()).filter(|t| !t.is_empty()) {
                let next = vocab.len() as u32;
                let id = *index.entry(tok).or_insert_with(|| {
                    vocab.push(String::from_utf8_lossy(tok).into_owned());
                    next
                });
                ids.push(id);
            }
            (ids, vocab)
        }
    };
    let n = spec.seq_len;
    if ids.len() <= n {
        return data_err(format!("text has {} tokens; need more than the window length {n}", ids.len()));
    }
    let mut seqs = Vec::new();
    let mut labels = Vec::new();
    let mut start = 0usize;
    while start + n < ids.len() {
        if spec.max_examples.is_some_and(|m| seqs.len() >= m) {
            break;
        }
        seqs.push(ids[start..start + n].to_vec());
        labels.push(ids[start + n]);
        start += spec.stride;
    }
    let vocab = vocab_tokens.len();
    Ok(TextData {
        data: TrainData { vocab, num_classes: vocab, seqs, labels: Labels::NextToken(labels) },
        vocab_tokens,
    })
}

/// How far a dataset is from being memorizable.
///
/// For each distinct input the best any function can do is to predict the
/// majority label of that input, so the best achievable training accuracy is
/// `Σ_context max-count / targets`. It is reported twice: for models that see
/// positions (MLP, Transformer with positional encoding) and for the
/// permutation-equivariant Transformer without positional encoding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsistencyReport {
    /// Number of labelled targets (N for next-token).
    pub targets: usize,
    /// Distinct inputs (as position-aware models see them).
    pub distinct_contexts: usize,
    /// Distinct inputs that occur with more than one label.
    pub conflicting_contexts: usize,
    /// Targets whose input occurs with more than one label.
    pub targets_in_conflicts: usize,
    /// Best achievable accuracy for a position-aware model.
    pub max_accuracy: f64,
    /// Best achievable accuracy without positional encoding.
    pub max_accuracy_no_pos: f64,
    /// `1 - max_accuracy`: the accuracy the inconsistency costs.
    pub accuracy_gap: f64,
}

/// Consistency of a next-token or seq2seq dataset (see [`ConsistencyReport`]).
///
/// For seq2seq, the "context" of a target is the whole sequence plus the
/// position (position-aware) or the sequence's multiset plus the token at
/// the position (no positional encoding).
pub fn consistency_report(data: &TrainData) -> ConsistencyReport {
    // context key -> (label -> count)
    let mut pos: HashMap<Vec<u32>, HashMap<u32, usize>> = HashMap::new();
    let mut nopos: HashMap<Vec<u32>, HashMap<u32, usize>> = HashMap::new();
    match &data.labels {
        Labels::NextToken(l) => {
            for (s, &y) in data.seqs.iter().zip(l) {
                *pos.entry(s.clone()).or_default().entry(y).or_default() += 1;
                *nopos.entry(permutation_key(s, Task::NextToken)).or_default().entry(y).or_default() += 1;
            }
        }
        Labels::Seq2Seq(l) => {
            for (s, row) in data.seqs.iter().zip(l) {
                let ms = permutation_key(s, Task::Seq2Seq);
                for (i, &y) in row.iter().enumerate() {
                    let mut k = s.clone();
                    k.push(i as u32);
                    *pos.entry(k).or_default().entry(y).or_default() += 1;
                    let mut k2 = ms.clone();
                    k2.push(s.get(i).copied().unwrap_or(0));
                    *nopos.entry(k2).or_default().entry(y).or_default() += 1;
                }
            }
        }
    }
    let targets = data.num_targets();
    let best = |m: &HashMap<Vec<u32>, HashMap<u32, usize>>| -> usize {
        m.values().map(|c| c.values().copied().max().unwrap_or(0)).sum()
    };
    let conflicting: Vec<&HashMap<u32, usize>> = pos.values().filter(|c| c.len() > 1).collect();
    let denom = targets.max(1) as f64;
    let max_accuracy = best(&pos) as f64 / denom;
    ConsistencyReport {
        targets,
        distinct_contexts: pos.len(),
        conflicting_contexts: conflicting.len(),
        targets_in_conflicts: conflicting.iter().map(|c| c.values().sum::<usize>()).sum(),
        max_accuracy,
        max_accuracy_no_pos: best(&nopos) as f64 / denom,
        accuracy_gap: 1.0 - max_accuracy,
    }
}
