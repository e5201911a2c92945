//! Dataset sources: a seeded random generator and sliding windows of text.
//!
//! Random data are drawn so that they are consistent by construction: a
//! sequence whose context (multiset + last token, or the ordered sequence with
//! positions) was already drawn is redrawn, so every example is memorizable.

use crate::data::{Dataset, Inputs, Labels, Positional, Task};
use crate::error::DataError;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashSet;

/// Token kind for [`generate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum GenKind {
    /// Token ids in 0..vocab.
    Ids,
    /// A pool of `vocab` random vectors in [−1, 1]^d on the grid 2^−10
    /// (exactly representable, so exact arithmetic sees the same numbers).
    Vectors {
        /// Vector dimension d.
        d: usize,
    },
}

/// Parameters of the random generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GenConfig {
    /// Number of sequences N.
    #[serde(rename = "N")]
    pub n_seqs: usize,
    /// Sequence length n.
    #[serde(rename = "n")]
    pub seq_len: usize,
    /// Vocabulary size V: token ids are drawn uniformly from `0..V` (for
    /// vectors: the size of the vector pool).
    pub vocab: usize,
    /// Number of classes C: labels are drawn uniformly from `0..C`.
    pub num_classes: u32,
    /// One label per sequence, or one per position.
    pub task: Task,
    /// Token ids or real vectors.
    pub kind: GenKind,
    /// Draw contexts distinct for this model kind (without positions:
    /// distinct up to permutation), so every example is memorizable.
    pub positional: Positional,
    /// Seed of the ChaCha8 generator.
    pub seed: u64,
}

impl GenConfig {
    /// Token-id next-token data without positions: the paper's random setting.
    pub fn random_ids(n_seqs: usize, seq_len: usize, vocab: usize, num_classes: u32, seed: u64) -> Self {
        GenConfig {
            n_seqs,
            seq_len,
            vocab,
            num_classes,
            task: Task::NextToken,
            kind: GenKind::Ids,
            positional: Positional::None,
            seed,
        }
    }
}

/// Draws a random consistent dataset: N sequences of n uniform tokens, distinct
/// as the chosen model kind sees them, with uniform labels in `0..C`.
/// Deterministic in `cfg` (ChaCha8 seeded by `cfg.seed`).
///
/// # Errors
/// [`DataError::Param`] when a size is 0, or when the requested number of
/// distinct contexts cannot exist (or is not found after many redraws), or
/// when N × n or the vocabulary is over [`Limits`](crate::Limits)' defaults.
pub fn generate(cfg: &GenConfig) -> Result<Dataset, DataError> {
    if cfg.n_seqs == 0 || cfg.seq_len == 0 || cfg.vocab == 0 || cfg.num_classes == 0 {
        return Err(DataError::Param("N, n, vocab and classes must all be at least 1".into()));
    }
    let limits = crate::Limits::default();
    let tokens = cfg.n_seqs as u128 * cfg.seq_len as u128;
    if tokens > u128::from(limits.max_generated_tokens) {
        let e = crate::LimitError {
            field: format!("N × n ({} × {})", cfg.n_seqs, cfg.seq_len),
            value: tokens.to_string(),
            limit: limits.max_generated_tokens,
            flag: None,
        };
        return Err(DataError::Param(e.to_string()));
    }
    if cfg.vocab > limits.max_vocab {
        let e = crate::LimitError {
            field: "vocab".into(),
            value: cfg.vocab.to_string(),
            limit: limits.max_vocab as u64,
            flag: None,
        };
        return Err(DataError::Param(e.to_string()));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let pool: Vec<Vec<f64>> = match cfg.kind {
        GenKind::Ids => Vec::new(),
        GenKind::Vectors { d } => {
            if d == 0 {
                return Err(DataError::Param("d must be at least 1".into()));
            }
            let mut seen = HashSet::new();
            let mut pool = Vec::with_capacity(cfg.vocab);
            let mut tries = 0usize;
            while pool.len() < cfg.vocab {
                let x: Vec<f64> = (0..d).map(|_| rng.gen_range(-1024i32..=1024) as f64 / 1024.0).collect();
                if seen.insert(crate::data::vector_key(&x)) {
                    pool.push(x);
                }
                tries += 1;
                if tries > 100 * cfg.vocab + 1000 {
                    return Err(DataError::Param(format!(
                        "cannot draw {} distinct vectors in dimension {d}",
                        cfg.vocab
                    )));
                }
            }
            pool
        }
    };
    let mut seen: HashSet<Vec<u32>> = HashSet::new();
    let mut seqs: Vec<Vec<u32>> = Vec::with_capacity(cfg.n_seqs);
    let mut misses = 0usize;
    while seqs.len() < cfg.n_seqs {
        let s: Vec<u32> = (0..cfg.seq_len).map(|_| rng.gen_range(0..cfg.vocab as u32)).collect();
        // The context that fixes the label(s): for next-token without
        // positions the multiset plus the last token; for seq2seq without
        // positions the multiset; with positions the sequence itself.
        let ctx = match (cfg.positional, cfg.task) {
            (Positional::Learned, _) => s.clone(),
            (Positional::None, task) => {
                let mut m = s.clone();
                m.sort_unstable();
                if task == Task::NextToken {
                    m.push(s[cfg.seq_len - 1]);
                }
                m
            }
        };
        if seen.insert(ctx) {
            seqs.push(s);
        } else {
            misses += 1;
            if misses > 1000 + 20 * cfg.n_seqs {
                return Err(DataError::Param(format!(
                    "could not draw {} distinct contexts of length {} over {} tokens (got {})",
                    cfg.n_seqs,
                    cfg.seq_len,
                    cfg.vocab,
                    seqs.len()
                )));
            }
        }
    }
    let labels = match cfg.task {
        Task::NextToken => Labels::NextToken((0..cfg.n_seqs).map(|_| rng.gen_range(0..cfg.num_classes)).collect()),
        Task::Seq2seq => {
            // Seq2seq without positions: equal tokens inside one sequence must
            // share a label, so labels are drawn per (sequence, token value).
            Labels::Seq2seq(
                seqs.iter()
                    .map(|s| {
                        let mut by_tok = std::collections::HashMap::new();
                        s.iter()
                            .map(|&t| match cfg.positional {
                                Positional::Learned => rng.gen_range(0..cfg.num_classes),
                                Positional::None => {
                                    *by_tok.entry(t).or_insert_with(|| rng.gen_range(0..cfg.num_classes))
                                }
                            })
                            .collect()
                    })
                    .collect(),
            )
        }
    };
    let inputs = match cfg.kind {
        GenKind::Ids => Inputs::Ids { vocab: cfg.vocab, seqs },
        GenKind::Vectors { d } => Inputs::Vectors {
            d,
            seqs: seqs.iter().map(|s| s.iter().map(|&t| pool[t as usize].clone()).collect()).collect(),
        },
    };
    let ds = Dataset { inputs, labels, num_classes: cfg.num_classes, lines: None, label_classes: None };
    ds.validate()?;
    Ok(ds)
}

/// How to cut text into tokens for [`text_windows`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum TextUnit {
    /// Every byte is a token (vocabulary V = 256).
    #[default]
    Bytes,
    /// Whitespace-separated words (Unicode whitespace); ids in order of first
    /// appearance, so V is the number of distinct words.
    Words,
}

/// Parameters of [`text_windows`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TextSpec {
    /// Bytes or words.
    pub unit: TextUnit,
    /// Window (context) length n, in tokens; at least 1.
    pub seq_len: usize,
    /// Distance between the starts of consecutive windows, in tokens (1 = every window); at least 1.
    pub stride: usize,
    /// Keep at most this many windows (the first ones); `None` keeps all.
    pub max_examples: Option<usize>,
}

impl TextSpec {
    /// Every window of `seq_len` tokens of the given unit (stride 1, no cap).
    pub fn new(seq_len: usize, unit: TextUnit) -> Self {
        TextSpec { unit, seq_len, stride: 1, max_examples: None }
    }
}

/// A text turned into next-token data, with the token strings.
#[derive(Debug, Clone)]
pub struct TextData {
    /// Windows (token ids) and next-token labels; `num_classes` = V, so labels
    /// live in the same id space as the inputs.
    pub dataset: Dataset,
    /// For `Words`: the word of every id. Empty for `Bytes` (id = byte value).
    pub words: Vec<String>,
}

/// Windows of `spec.seq_len` consecutive tokens with the following token as
/// label (next-token). Window `i` starts at token `i·stride`. Windows that
/// occur more than once are kept: repeated contexts with different
/// continuations are exactly what [`Dataset::consistency`] measures.
///
/// # Errors
/// [`DataError::Param`] when `seq_len` or `stride` is 0, or the text has at
/// most `seq_len` tokens.
pub fn text_windows(text: &[u8], spec: &TextSpec) -> Result<TextData, DataError> {
    let n = spec.seq_len;
    if n == 0 {
        return Err(DataError::Param("window length n must be at least 1".into()));
    }
    if spec.stride == 0 {
        return Err(DataError::Param("window stride must be at least 1".into()));
    }
    let (toks, words, vocab): (Vec<u32>, Vec<String>, usize) = match spec.unit {
        TextUnit::Bytes => (text.iter().map(|&b| b as u32).collect(), Vec::new(), 256),
        TextUnit::Words => {
            let s = String::from_utf8_lossy(text);
            let mut ids = std::collections::HashMap::new();
            let mut words = Vec::new();
            let toks = s
                .split_whitespace()
                .map(|w| {
                    *ids.entry(w.to_string()).or_insert_with(|| {
                        words.push(w.to_string());
                        words.len() as u32 - 1
                    })
                })
                .collect();
            let v = words.len().max(1);
            (toks, words, v)
        }
    };
    if toks.len() <= n {
        return Err(DataError::Param(format!(
            "text has {} tokens; windows of {n} need at least {}",
            toks.len(),
            n + 1
        )));
    }
    let cap = spec.max_examples.unwrap_or(usize::MAX);
    let starts = (0..toks.len() - n).step_by(spec.stride).take(cap);
    let (seqs, labels): (Vec<Vec<u32>>, Vec<u32>) = starts.map(|i| (toks[i..i + n].to_vec(), toks[i + n])).unzip();
    let dataset = Dataset {
        inputs: Inputs::Ids { vocab, seqs },
        labels: Labels::NextToken(labels),
        num_classes: vocab as u32,
        lines: None,
        label_classes: None,
    };
    dataset.validate()?;
    Ok(TextData { dataset, words })
}

/// A local copy of a text corpus the paper trains on, to be turned into next-token
/// windows ([`corpus_text`] then [`text_windows`]). Nothing is downloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum CorpusFormat {
    /// Plain text, used as is.
    #[default]
    Raw,
    /// MultiNLI JSON Lines (`multinli_1.0_train.jsonl`): the `sentence1` and
    /// `sentence2` fields of every line.
    Multinli,
    /// IMDb reviews as CSV with a `review` column (the common
    /// `IMDB Dataset.csv`), or one review per file (the `aclImdb` folders; the
    /// CLI concatenates them).
    Imdb,
}

/// The text of a corpus file: the sentences or reviews, one per line, in file
/// order (HTML line breaks `<br />` in IMDb reviews become spaces).
///
/// # Errors
/// [`DataError::Parse`] naming the 1-based line of a malformed record, or a
/// missing field/column.
pub fn corpus_text(format: CorpusFormat, content: &str) -> Result<String, DataError> {
    let mut out = String::new();
    match format {
        CorpusFormat::Raw => out.push_str(content),
        CorpusFormat::Multinli => {
            for (i, line) in content.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                let v: serde_json::Value = serde_json::from_str(line)
                    .map_err(|e| DataError::Parse { line: i + 1, reason: format!("MultiNLI JSON: {e}") })?;
                for key in ["sentence1", "sentence2"] {
                    let s = v.get(key).and_then(|s| s.as_str()).ok_or_else(|| DataError::Parse {
                        line: i + 1,
                        reason: format!("MultiNLI record has no string field {key:?}"),
                    })?;
                    out.push_str(s);
                    out.push('\n');
                }
            }
        }
        CorpusFormat::Imdb => {
            let mut rdr = csv::ReaderBuilder::new().flexible(false).from_reader(content.as_bytes());
            let headers = rdr.headers().map_err(|e| DataError::Parse { line: 1, reason: format!("IMDb CSV: {e}") })?;
            let col = headers
                .iter()
                .position(|h| h.trim_start_matches('\u{feff}') == "review")
                .ok_or_else(|| DataError::Parse { line: 1, reason: "IMDb CSV has no \"review\" column".into() })?;
            for (i, rec) in rdr.records().enumerate() {
                let rec = rec.map_err(|e| DataError::Parse {
                    line: e.position().map_or(i + 2, |p| p.line() as usize),
                    reason: format!("IMDb CSV: {e}"),
                })?;
                out.push_str(&rec.get(col).unwrap_or_default().replace("<br />", " "));
                out.push('\n');
            }
        }
    }
    Ok(out)
}
