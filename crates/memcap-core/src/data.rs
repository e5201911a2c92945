//! Datasets: token sequences with integer labels, their validation and the
//! permutation-equivariance consistency check.
//!
//! A Transformer without positional encoding is permutation-equivariant:
//! N(XΠ) = N(X)Π. So two next-token examples with the same *multiset* of
//! tokens and the same last token get the same output whatever the weights;
//! if their labels differ, no such Transformer memorizes both
//! (docs/construction.md §4). With learned positions only identical ordered contexts
//! are forced together. [`Dataset::check_consistency`] finds such pairs.

use crate::error::{DataError, Origin};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// Which label(s) a sequence carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Task {
    /// One label per sequence, predicted at the last position.
    NextToken,
    /// One label per position.
    Seq2seq,
}

/// Whether the model sees token positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Positional {
    /// No positional encoding: the paper's permutation-equivariant setting.
    #[default]
    None,
    /// A learned position embedding p_k added to every token input.
    Learned,
}

/// The tokens of every sequence.
#[derive(Debug, Clone, PartialEq)]
pub enum Inputs {
    /// Token ids below `vocab`; the embedding has one column per id (one-hot
    /// inputs, d = vocab).
    Ids {
        /// Vocabulary size V.
        vocab: usize,
        /// N sequences of n token ids each.
        seqs: Vec<Vec<u32>>,
    },
    /// Real-vector tokens of dimension `d` (the paper's setting).
    Vectors {
        /// Token dimension d.
        d: usize,
        /// N sequences of n vectors of d finite values each.
        seqs: Vec<Vec<Vec<f64>>>,
    },
}

/// Labels, in 0..num_classes.
#[derive(Debug, Clone, PartialEq)]
pub enum Labels {
    /// One label per sequence (shape N), read out at the last position.
    NextToken(Vec<u32>),
    /// One label per position (shape N × n).
    Seq2seq(Vec<Vec<u32>>),
}

/// The label of a seq2seq position that is left out of memorization: it
/// counts in no loss, accuracy, information or consistency figure, and the
/// construction gives it no key. Files write it as `-100` (PyTorch's
/// `ignore_index`) or `null`; next-token labels cannot be ignored.
pub const IGNORE: u32 = u32::MAX;

/// A labelled dataset of N sequences of length n.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// The N input sequences.
    pub inputs: Inputs,
    /// Their labels.
    pub labels: Labels,
    /// Number of classes C: every label is in `0..C`.
    pub num_classes: u32,
    /// 1-based source line of each example, when parsed from text.
    pub lines: Option<Vec<usize>>,
    /// Declared label alphabet size C_i of every target, one row per example
    /// aligned with [`Dataset::label_rows`] (JSONL `"classes"`: a number per
    /// row, or a list per position for seq2seq). `None`: every label may take
    /// all `num_classes` values. The information of the labels is then
    /// Σ log2 C_i instead of the counting upper bound N·log2 C.
    pub label_classes: Option<Vec<Vec<u32>>>,
}

/// How to treat examples that no Transformer of the chosen kind can all memorize.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Dedupe {
    /// Report the first conflicting pair as an error.
    #[default]
    Error,
    /// Keep the majority label of every conflict group (ties: smallest label).
    Majority,
}

/// What [`Dataset::resolve_conflicts`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConflictReport {
    /// Labels (examples for next-token, positions for seq2seq) before.
    pub labels_total: usize,
    /// Labels that sit in a group with more than one distinct label.
    pub labels_in_conflict: usize,
    /// Labels dropped or changed to the group's majority.
    pub labels_removed: usize,
    /// Best accuracy any Transformer of the chosen kind can reach on the
    /// original data: (total − removed) / total.
    pub best_accuracy: f64,
}

/// Canonical identity of one token value (ids, or the bits of a vector with
/// −0.0 folded into 0.0) used for hashing and equality.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TokenKey {
    /// A token id.
    Id(u32),
    /// The bit patterns of a vector token's coordinates.
    Vector(Vec<u64>),
}

/// How far a dataset is from being memorizable, for both model kinds.
///
/// For each distinct input the best any function can do is to predict the
/// majority label of that input, so the best achievable training accuracy is
/// `Σ_context max-count / targets`. It is reported for models that see
/// positions (MLP, Transformer with learned positions) and for the
/// permutation-equivariant Transformer without positional encoding
/// (docs/construction.md §4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsistencyReport {
    /// Labelled targets: N for next-token, N·n for seq2seq.
    pub targets: usize,
    /// Distinct inputs as a position-aware model sees them.
    pub distinct_contexts: usize,
    /// Distinct inputs (position-aware) that occur with more than one label.
    pub conflicting_contexts: usize,
    /// Targets whose (position-aware) input occurs with more than one label.
    pub targets_in_conflicts: usize,
    /// Best achievable accuracy for a position-aware model, in [0, 1].
    pub max_accuracy: f64,
    /// Best achievable accuracy without positional encoding, in [0, 1].
    pub max_accuracy_no_pos: f64,
    /// `1 − max_accuracy`: the accuracy the inconsistency costs.
    pub accuracy_gap: f64,
}

impl std::fmt::Display for Task {
    /// `next-token` or `seq2seq` (the JSON and flag spelling).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Task::NextToken => "next-token",
            Task::Seq2seq => "seq2seq",
        })
    }
}

impl std::fmt::Display for Positional {
    /// `none` or `learned` (the JSON and flag spelling).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Positional::None => "none",
            Positional::Learned => "learned",
        })
    }
}

impl Dataset {
    /// Number of sequences N.
    pub fn len(&self) -> usize {
        match &self.inputs {
            Inputs::Ids { seqs, .. } => seqs.len(),
            Inputs::Vectors { seqs, .. } => seqs.len(),
        }
    }

    /// True when the dataset has no sequences.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sequence length n (0 for an empty dataset).
    pub fn seq_len(&self) -> usize {
        match &self.inputs {
            Inputs::Ids { seqs, .. } => seqs.first().map_or(0, Vec::len),
            Inputs::Vectors { seqs, .. } => seqs.first().map_or(0, Vec::len),
        }
    }

    /// The task these labels describe.
    pub fn task(&self) -> Task {
        match self.labels {
            Labels::NextToken(_) => Task::NextToken,
            Labels::Seq2seq(_) => Task::Seq2seq,
        }
    }

    /// The token ids and V, or `None` for vector inputs.
    pub fn token_ids(&self) -> Option<(usize, &[Vec<u32>])> {
        match &self.inputs {
            Inputs::Ids { vocab, seqs } => Some((*vocab, seqs)),
            Inputs::Vectors { .. } => None,
        }
    }

    /// Number of labelled targets: N for next-token, N·n for seq2seq.
    pub fn num_targets(&self) -> usize {
        match &self.labels {
            Labels::NextToken(y) => y.len(),
            Labels::Seq2seq(y) => y.iter().flatten().filter(|&&l| l != IGNORE).count(),
        }
    }

    /// Consistency for both model kinds (see [`ConsistencyReport`]).
    pub fn consistency(&self) -> ConsistencyReport {
        let best = |g: &Groups| -> (usize, usize, usize) {
            let (mut best, mut conflicting, mut in_conflict) = (0, 0, 0);
            for members in g.members.values() {
                let mut counts: HashMap<u32, usize> = HashMap::new();
                for &(_, _, y) in members {
                    *counts.entry(y).or_default() += 1;
                }
                best += counts.values().copied().max().unwrap_or(0);
                if counts.len() > 1 {
                    conflicting += 1;
                    in_conflict += members.len();
                }
            }
            (best, conflicting, in_conflict)
        };
        let pos = self.conflict_groups(Positional::Learned);
        let nopos = self.conflict_groups(Positional::None);
        let targets = self.num_targets();
        let denom = targets.max(1) as f64;
        let (best_pos, conflicting, in_conflict) = best(&pos);
        let max_accuracy = if targets == 0 { 1.0 } else { best_pos as f64 / denom };
        ConsistencyReport {
            targets,
            distinct_contexts: pos.members.len(),
            conflicting_contexts: conflicting,
            targets_in_conflicts: in_conflict,
            max_accuracy,
            max_accuracy_no_pos: if targets == 0 { 1.0 } else { best(&nopos).0 as f64 / denom },
            accuracy_gap: 1.0 - max_accuracy,
        }
    }

    /// Input dimension d of the embedding (vocab for one-hot ids).
    pub fn input_dim(&self) -> usize {
        match &self.inputs {
            Inputs::Ids { vocab, .. } => *vocab,
            Inputs::Vectors { d, .. } => *d,
        }
    }

    /// Where example `i` came from.
    pub fn origin(&self, index: usize) -> Origin {
        Origin { index, line: self.lines.as_ref().and_then(|l| l.get(index).copied()) }
    }

    /// Labels as one slice per example (a single label for next-token).
    pub fn label_rows(&self) -> Vec<&[u32]> {
        match &self.labels {
            Labels::NextToken(y) => y.iter().map(std::slice::from_ref).collect(),
            Labels::Seq2seq(y) => y.iter().map(Vec::as_slice).collect(),
        }
    }

    /// Information content of the labels, in bits: N·log2 C for next-token,
    /// n·N·log2 C for seq2seq (the number of free label bits; positions
    /// labelled [`IGNORE`] carry none), counted over
    /// **distinct** examples: a copy of an example (same tokens, same labels)
    /// carries no information. This is the counting upper bound: it assumes
    /// every label can take all C values.
    pub fn label_bits(&self) -> f64 {
        let first = self.first_occurrences();
        let full = (self.num_classes.max(1) as f64).log2();
        let mut bits = 0.0;
        for (i, row) in self.label_rows().iter().enumerate().filter(|(i, _)| first[*i]) {
            for (k, &y) in row.iter().enumerate().filter(|(_, y)| **y != IGNORE) {
                let _ = y;
                bits += match &self.label_classes {
                    Some(c) => (c[i].get(k).copied().unwrap_or(self.num_classes).max(1) as f64).log2(),
                    None => full,
                };
            }
        }
        bits
    }

    /// The counting upper bound on the label information: (distinct,
    /// non-ignored) targets × log2 C, as if every label could take all C
    /// values. Equal to [`Dataset::label_bits`] without declared alphabets.
    pub fn label_bits_upper(&self) -> f64 {
        let first = self.first_occurrences();
        let targets: usize = self
            .label_rows()
            .iter()
            .zip(&first)
            .filter(|(_, f)| **f)
            .map(|(row, _)| row.iter().filter(|&&y| y != IGNORE).count())
            .sum();
        targets as f64 * (self.num_classes.max(1) as f64).log2()
    }

    /// How many distinct label values occur (beside the declared C: byte text
    /// declares C = 256 but uses far fewer).
    pub fn labels_used(&self) -> usize {
        let used: HashSet<u32> =
            self.label_rows().iter().flat_map(|r| r.iter().copied()).filter(|&y| y != IGNORE).collect();
        used.len()
    }

    /// Indices of the first occurrence of every distinct example (same
    /// tokens and same labels), in order.
    fn first_occurrences(&self) -> Vec<bool> {
        let table;
        let seqs: &[Vec<u32>] = match &self.inputs {
            Inputs::Ids { seqs, .. } => seqs,
            Inputs::Vectors { .. } => {
                table = self.token_table().1;
                &table
            }
        };
        let labels = self.label_rows();
        let mut seen: HashSet<(&[u32], &[u32])> = HashSet::with_capacity(self.len());
        seqs.iter().zip(&labels).map(|(t, y)| seen.insert((t.as_slice(), *y))).collect()
    }

    /// Examples that repeat an earlier one exactly (tokens and labels).
    pub fn duplicate_count(&self) -> usize {
        self.first_occurrences().iter().filter(|k| !**k).count()
    }

    /// The dataset without exact duplicates (first occurrences kept, in
    /// order, with their source lines) and how many were merged. Training
    /// cost and every information count then follow distinct examples.
    pub fn merge_duplicates(&self) -> (Dataset, usize) {
        let keep = self.first_occurrences();
        let merged = keep.iter().filter(|k| !**k).count();
        if merged == 0 {
            return (self.clone(), 0);
        }
        (self.select(&keep), merged)
    }

    /// Checks shapes and ranges: non-empty, equal lengths, equal dimensions,
    /// ids below vocab, labels below num_classes, finite values.
    pub fn validate(&self) -> Result<(), DataError> {
        if self.is_empty() {
            return Err(DataError::Empty);
        }
        let n = self.seq_len();
        if n == 0 {
            return Err(DataError::Param("sequences must have at least one token".into()));
        }
        if self.num_classes == 0 {
            return Err(DataError::Param("num_classes must be at least 1".into()));
        }
        match &self.inputs {
            Inputs::Ids { vocab, seqs } => {
                for (i, s) in seqs.iter().enumerate() {
                    if s.len() != n {
                        return Err(DataError::Ragged { at: self.origin(i), expected: n, got: s.len() });
                    }
                    if let Some(&t) = s.iter().find(|&&t| t as usize >= *vocab) {
                        return Err(DataError::TokenOutOfRange { at: self.origin(i), token: t.into(), vocab: *vocab });
                    }
                }
            }
            Inputs::Vectors { d, seqs } => {
                if *d == 0 {
                    return Err(DataError::Param("vector tokens need dimension d ≥ 1".into()));
                }
                for (i, s) in seqs.iter().enumerate() {
                    if s.len() != n {
                        return Err(DataError::Ragged { at: self.origin(i), expected: n, got: s.len() });
                    }
                    for x in s {
                        if x.len() != *d {
                            return Err(DataError::DimMismatch { at: self.origin(i), expected: *d, got: x.len() });
                        }
                        if let Some(&v) = x.iter().find(|v| !v.is_finite()) {
                            return Err(DataError::NonFinite { at: self.origin(i), value: v });
                        }
                    }
                }
            }
        }
        let labels = self.label_rows();
        if labels.len() != self.len() {
            return Err(DataError::Param(format!("{} label rows for {} sequences", labels.len(), self.len())));
        }
        for (i, row) in labels.iter().enumerate() {
            if self.task() == Task::Seq2seq && row.len() != n {
                return Err(DataError::LabelCount { at: self.origin(i), expected: n, got: row.len() });
            }
            if self.task() == Task::NextToken && row.first() == Some(&IGNORE) {
                return Err(DataError::Parse {
                    line: self.origin(i).line.unwrap_or(0),
                    reason: "a next-token label cannot be ignored (-100/null): drop the example instead".into(),
                });
            }
            if let Some(c) = self.label_classes.as_ref().map(|c| c.get(i)) {
                let c = c.ok_or_else(|| DataError::Param("label_classes has fewer rows than the dataset".into()))?;
                if c.len() != row.len() {
                    return Err(DataError::Param(format!(
                        "{}: {} declared alphabets for {} labels",
                        self.origin(i),
                        c.len(),
                        row.len()
                    )));
                }
                if let Some((k, (&y, &ci))) = row
                    .iter()
                    .zip(c)
                    .enumerate()
                    .find(|(_, (&y, &ci))| ci == 0 || ci > self.num_classes || (y != IGNORE && y >= ci))
                {
                    return Err(DataError::Parse {
                        line: self.origin(i).line.unwrap_or(0),
                        reason: format!(
                            "label {y} at position {} does not fit its declared classes {ci} (must be in 1..={} and above the label)",
                            k + 1,
                            self.num_classes
                        ),
                    });
                }
            }
            if let Some(&y) = row.iter().find(|&&y| y >= self.num_classes && y != IGNORE) {
                return Err(DataError::LabelOutOfRange {
                    at: self.origin(i),
                    label: y.into(),
                    classes: self.num_classes,
                });
            }
        }
        Ok(())
    }

    /// Distinct token values and every sequence rewritten as indices into them.
    /// Indices follow sorted [`TokenKey`] order, so the table is deterministic.
    pub fn token_table(&self) -> (Vec<TokenKey>, Vec<Vec<u32>>) {
        let keys: Vec<Vec<TokenKey>> = match &self.inputs {
            Inputs::Ids { seqs, .. } => seqs.iter().map(|s| s.iter().map(|&t| TokenKey::Id(t)).collect()).collect(),
            Inputs::Vectors { seqs, .. } => seqs.iter().map(|s| s.iter().map(|x| vector_key(x)).collect()).collect(),
        };
        let mut distinct: Vec<TokenKey> = keys.iter().flatten().cloned().collect();
        distinct.sort();
        distinct.dedup();
        let index: HashMap<&TokenKey, u32> = distinct.iter().enumerate().map(|(i, k)| (k, i as u32)).collect();
        let seqs = keys.iter().map(|s| s.iter().map(|k| index[k]).collect()).collect();
        (distinct, seqs)
    }

    /// Finds the first pair of examples that every Transformer of the given
    /// kind must map to the same output but whose labels differ.
    pub fn check_consistency(&self, positional: Positional) -> Result<(), DataError> {
        match self.conflict_groups(positional).first_conflict {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Applies a [`Dedupe`] policy: `Error` fails on the first conflict;
    /// `Majority` keeps each group's majority label (next-token: drops the
    /// minority examples; seq2seq: relabels minority positions) and reports
    /// the best achievable accuracy on the original data.
    pub fn resolve_conflicts(
        &self,
        positional: Positional,
        policy: Dedupe,
    ) -> Result<(Dataset, ConflictReport), DataError> {
        let groups = self.conflict_groups(positional);
        let total = groups.members.values().map(Vec::len).sum::<usize>();
        if policy == Dedupe::Error {
            if let Some(e) = groups.first_conflict {
                return Err(e);
            }
        }
        let mut in_conflict = 0;
        let mut removed = 0;
        // (example, position) -> majority label for every conflicting slot.
        let mut fix: HashMap<(usize, usize), u32> = HashMap::new();
        for members in groups.members.values() {
            let mut counts: HashMap<u32, usize> = HashMap::new();
            for &(_, _, y) in members {
                *counts.entry(y).or_default() += 1;
            }
            if counts.len() > 1 {
                in_conflict += members.len();
                let (&best, &best_count) =
                    counts.iter().max_by_key(|(y, c)| (**c, std::cmp::Reverse(**y))).expect("non-empty group");
                removed += members.len() - best_count;
                for &(i, k, y) in members {
                    if y != best {
                        fix.insert((i, k), best);
                    }
                }
            }
        }
        let mut out = self.clone();
        match &mut out.labels {
            Labels::NextToken(_) => {
                let keep: Vec<bool> = (0..self.len()).map(|i| !fix.contains_key(&(i, self.seq_len() - 1))).collect();
                out = self.select(&keep);
            }
            Labels::Seq2seq(rows) => {
                for (&(i, k), &y) in &fix {
                    rows[i][k] = y;
                }
            }
        }
        let best_accuracy = if total == 0 { 1.0 } else { (total - removed) as f64 / total as f64 };
        Ok((
            out,
            ConflictReport {
                labels_total: total,
                labels_in_conflict: in_conflict,
                labels_removed: removed,
                best_accuracy,
            },
        ))
    }

    /// The examples with `keep[i]` true, in order.
    pub fn select(&self, keep: &[bool]) -> Dataset {
        fn pick<T: Clone>(v: &[T], keep: &[bool]) -> Vec<T> {
            v.iter().zip(keep).filter(|(_, k)| **k).map(|(x, _)| x.clone()).collect()
        }
        Dataset {
            inputs: match &self.inputs {
                Inputs::Ids { vocab, seqs } => Inputs::Ids { vocab: *vocab, seqs: pick(seqs, keep) },
                Inputs::Vectors { d, seqs } => Inputs::Vectors { d: *d, seqs: pick(seqs, keep) },
            },
            labels: match &self.labels {
                Labels::NextToken(y) => Labels::NextToken(pick(y, keep)),
                Labels::Seq2seq(y) => Labels::Seq2seq(pick(y, keep)),
            },
            num_classes: self.num_classes,
            lines: self.lines.as_ref().map(|l| pick(l, keep)),
            label_classes: self.label_classes.as_ref().map(|c| pick(c, keep)),
        }
    }

    /// Groups (example, position, label) slots by what the model can see.
    fn conflict_groups(&self, positional: Positional) -> Groups {
        let (_, seqs) = self.token_table();
        let labels = self.label_rows();
        let n = self.seq_len();
        let mut members: HashMap<Context, Vec<Slot>> = HashMap::new();
        let mut first_conflict = None;
        let (why_perm, why_ord, mode) = match positional {
            Positional::None => ("have the same multiset of tokens and the same", "", "without positional encoding"),
            Positional::Learned => ("", "have the same ordered tokens", "with positional encoding"),
        };
        for (i, s) in seqs.iter().enumerate() {
            let context = match positional {
                Positional::None => {
                    let mut m = s.clone();
                    m.sort_unstable();
                    m
                }
                Positional::Learned => s.clone(),
            };
            let positions: Vec<usize> = match self.task() {
                Task::NextToken => vec![n - 1],
                Task::Seq2seq => (0..n).collect(),
            };
            for (slot, k) in positions.into_iter().enumerate() {
                let y = labels[i][slot];
                if y == IGNORE {
                    continue;
                }
                // With positions the position itself is part of the key.
                let tok = match positional {
                    Positional::None => s[k],
                    Positional::Learned => k as u32,
                };
                let group = members.entry((context.clone(), tok)).or_default();
                if first_conflict.is_none() {
                    if let Some(&(j, kj, yj)) = group.iter().find(|m| m.2 != y) {
                        let why = match (positional, self.task()) {
                            (Positional::None, Task::NextToken) => format!("{why_perm} last token"),
                            (Positional::None, Task::Seq2seq) => {
                                format!("{why_perm} token (positions {} and {})", kj + 1, k + 1)
                            }
                            (Positional::Learned, Task::NextToken) => why_ord.to_string(),
                            (Positional::Learned, Task::Seq2seq) => format!("{why_ord} (position {})", k + 1),
                        };
                        first_conflict = Some(if j == i {
                            DataError::InconsistentWithin {
                                at: self.origin(i),
                                pos_a: kj + 1,
                                pos_b: k + 1,
                                label_a: yj,
                                label_b: y,
                            }
                        } else {
                            DataError::Inconsistent {
                                a: self.origin(j),
                                b: self.origin(i),
                                label_a: yj,
                                label_b: y,
                                why,
                                mode: mode.to_string(),
                            }
                        });
                    }
                }
                group.push((i, k, y));
            }
        }
        Groups { members, first_conflict }
    }
}

/// What the model sees of one labelled slot: the context (multiset or ordered
/// sequence, as token indices) and the token (or position) at the slot.
type Context = (Vec<u32>, u32);
/// One labelled slot: (example, position, label).
type Slot = (usize, usize, u32);

struct Groups {
    members: HashMap<Context, Vec<Slot>>,
    first_conflict: Option<DataError>,
}

/// The hashable identity of a vector token (−0.0 and 0.0 are the same token).
pub fn vector_key(x: &[f64]) -> TokenKey {
    TokenKey::Vector(x.iter().map(|v| if *v == 0.0 { 0u64 } else { v.to_bits() }).collect())
}
