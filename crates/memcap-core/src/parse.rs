//! Dataset text formats. Parsing takes `&str` (the caller reads the file), so
//! the core stays free of IO; every error names its 1-based line.
//!
//! **JSONL**: one JSON object per line,
//! `{"tokens":[3,1,4],"label":2}` (next-token) or
//! `{"tokens":[3,1,4],"labels":[0,1,2]}` (seq2seq); tokens are integer ids or
//! float vectors (`[[0.5,1.0],[0,2]]`). An optional first line
//! `{"memcap_dataset":1,"vocab":V,"num_classes":C}` fixes V and C (otherwise
//! max+1 is used). Blank lines are skipped.
//!
//! **CSV** (token ids only): a header row naming the columns `tok_0..tok_{n-1}`
//! followed by `label` (next-token) or `lab_0..lab_{n-1}` (seq2seq), then one
//! row per sequence. Lines starting with `#` are comments.

use crate::data::{Dataset, Inputs, Labels};
use crate::error::DataError;
use serde_json::Value;

/// Optional overrides for vocabulary size and class count.
#[derive(Debug, Clone, Copy, Default)]
pub struct ParseOptions {
    /// Vocabulary size V for token ids; takes precedence over the JSONL header, default max id + 1.
    pub vocab: Option<usize>,
    /// Number of classes C; takes precedence over the JSONL header, default max(max label + 1, 2).
    pub num_classes: Option<u32>,
}

fn perr(line: usize, reason: impl Into<String>) -> DataError {
    DataError::Parse { line, reason: reason.into() }
}

fn as_u32(v: &Value, line: usize, what: &str) -> Result<u32, DataError> {
    v.as_u64()
        .and_then(|x| u32::try_from(x).ok())
        .ok_or_else(|| perr(line, format!("{what} must be a non-negative integer below 2^32, got {v}")))
}

/// Parses JSONL text into a validated dataset (shape and range checks; the
/// consistency check is separate because it depends on the model kind).
pub fn parse_jsonl(text: &str, opts: ParseOptions) -> Result<Dataset, DataError> {
    let mut vocab = opts.vocab;
    let mut classes = opts.num_classes;
    let mut ids: Vec<Vec<u32>> = Vec::new();
    let mut vecs: Vec<Vec<Vec<f64>>> = Vec::new();
    let mut next: Vec<u32> = Vec::new();
    let mut s2s: Vec<Vec<u32>> = Vec::new();
    let mut lines = Vec::new();
    let mut is_vec: Option<bool> = None;
    let mut d: Option<usize> = None;
    for (ln0, raw) in text.lines().enumerate() {
        let line = ln0 + 1;
        let raw = raw.trim();
        if raw.is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(raw).map_err(|e| perr(line, format!("not valid JSON: {e}")))?;
        let obj = v.as_object().ok_or_else(|| perr(line, "expected a JSON object"))?;
        if obj.contains_key("memcap_dataset") {
            if !lines.is_empty() {
                return Err(perr(line, "the memcap_dataset header must be the first record"));
            }
            if let Some(x) = obj.get("vocab").filter(|x| !x.is_null()) {
                vocab = vocab.or(Some(as_u32(x, line, "vocab")? as usize));
            }
            if let Some(x) = obj.get("num_classes") {
                classes = classes.or(Some(as_u32(x, line, "num_classes")?));
            }
            continue;
        }
        let at = crate::error::Origin { index: lines.len(), line: Some(line) };
        let toks = obj.get("tokens").and_then(Value::as_array).ok_or_else(|| perr(line, "missing \"tokens\" array"))?;
        let this_vec = toks.first().is_some_and(Value::is_array);
        if *is_vec.get_or_insert(this_vec) != this_vec {
            return Err(DataError::MixedKind { at });
        }
        if this_vec {
            let mut seq = Vec::with_capacity(toks.len());
            for t in toks {
                let arr =
                    t.as_array().ok_or_else(|| perr(line, "every token must be a vector when the first one is"))?;
                let x: Vec<f64> = arr
                    .iter()
                    .map(|c| c.as_f64().ok_or_else(|| perr(line, format!("vector entry {c} is not a number"))))
                    .collect::<Result<_, _>>()?;
                let dd = *d.get_or_insert(x.len());
                if x.len() != dd {
                    return Err(DataError::DimMismatch { at, expected: dd, got: x.len() });
                }
                seq.push(x);
            }
            vecs.push(seq);
        } else {
            ids.push(toks.iter().map(|t| as_u32(t, line, "token id")).collect::<Result<_, _>>()?);
        }
        match (obj.get("label"), obj.get("labels")) {
            (Some(y), None) => {
                if !s2s.is_empty() {
                    return Err(DataError::MixedTask { at });
                }
                next.push(as_u32(y, line, "label")?);
            }
            (None, Some(ys)) => {
                if !next.is_empty() {
                    return Err(DataError::MixedTask { at });
                }
                let ys = ys.as_array().ok_or_else(|| perr(line, "\"labels\" must be an array"))?;
                s2s.push(ys.iter().map(|y| as_u32(y, line, "label")).collect::<Result<_, _>>()?);
            }
            (Some(_), Some(_)) => return Err(perr(line, "has both \"label\" and \"labels\"")),
            (None, None) => return Err(perr(line, "missing \"label\" (next-token) or \"labels\" (seq2seq)")),
        }
        lines.push(line);
    }
    let labels = if s2s.is_empty() { Labels::NextToken(next) } else { Labels::Seq2seq(s2s) };
    let inputs = if is_vec == Some(true) {
        Inputs::Vectors { d: d.unwrap_or(1), seqs: vecs }
    } else {
        let v = vocab.unwrap_or_else(|| ids.iter().flatten().max().map_or(1, |&m| m as usize + 1));
        Inputs::Ids { vocab: v, seqs: ids }
    };
    finish(inputs, labels, classes, lines)
}

/// Parses CSV text of token ids (see the module docs for the columns).
pub fn parse_csv(text: &str, opts: ParseOptions) -> Result<Dataset, DataError> {
    let mut rows =
        text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())).filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
    let (hline, header) = rows.next().ok_or(DataError::Empty)?;
    let cols: Vec<&str> = header.split(',').map(str::trim).collect();
    let n_tok = cols.iter().take_while(|c| c.starts_with("tok_")).count();
    for (k, c) in cols[..n_tok].iter().enumerate() {
        if *c != format!("tok_{k}") {
            return Err(perr(hline, format!("header column {} is {c:?}, expected \"tok_{k}\"", k + 1)));
        }
    }
    let rest = &cols[n_tok..];
    let seq2seq = match rest {
        ["label"] => false,
        r if r.len() == n_tok && r.iter().enumerate().all(|(k, c)| *c == format!("lab_{k}")) => true,
        _ => {
            return Err(perr(
                hline,
                "header must be tok_0..tok_{n-1} followed by label (next-token) or lab_0..lab_{n-1} (seq2seq)",
            ))
        }
    };
    if n_tok == 0 {
        return Err(perr(hline, "header has no tok_ columns"));
    }
    let mut seqs = Vec::new();
    let mut next = Vec::new();
    let mut s2s = Vec::new();
    let mut lines = Vec::new();
    for (line, row) in rows {
        let vals: Vec<u32> = row
            .split(',')
            .map(|c| c.trim().parse::<u32>().map_err(|_| perr(line, format!("{c:?} is not a non-negative integer"))))
            .collect::<Result<_, _>>()?;
        if vals.len() != cols.len() {
            return Err(perr(line, format!("{} fields, header has {}", vals.len(), cols.len())));
        }
        seqs.push(vals[..n_tok].to_vec());
        if seq2seq {
            s2s.push(vals[n_tok..].to_vec());
        } else {
            next.push(vals[n_tok]);
        }
        lines.push(line);
    }
    let vocab = opts.vocab.unwrap_or_else(|| seqs.iter().flatten().max().map_or(1, |&m| m as usize + 1));
    let labels = if seq2seq { Labels::Seq2seq(s2s) } else { Labels::NextToken(next) };
    finish(Inputs::Ids { vocab, seqs }, labels, opts.num_classes, lines)
}

fn finish(inputs: Inputs, labels: Labels, classes: Option<u32>, lines: Vec<usize>) -> Result<Dataset, DataError> {
    let max_label = match &labels {
        Labels::NextToken(y) => y.iter().max().copied(),
        Labels::Seq2seq(y) => y.iter().flatten().max().copied(),
    };
    let ds = Dataset {
        inputs,
        labels,
        num_classes: classes.unwrap_or_else(|| max_label.map_or(1, |m| m + 1).max(2)),
        lines: Some(lines),
    };
    ds.validate()?;
    Ok(ds)
}

/// Writes a dataset as JSONL text (header line first), the inverse of
/// [`parse_jsonl`].
pub fn to_jsonl(ds: &Dataset) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let vocab = match &ds.inputs {
        Inputs::Ids { vocab, .. } => Value::from(*vocab),
        Inputs::Vectors { .. } => Value::Null,
    };
    let header = serde_json::json!({"memcap_dataset": 1, "vocab": vocab, "num_classes": ds.num_classes});
    let _ = writeln!(out, "{header}");
    let labels = ds.label_rows();
    for i in 0..ds.len() {
        let toks = match &ds.inputs {
            Inputs::Ids { seqs, .. } => serde_json::to_value(&seqs[i]),
            Inputs::Vectors { seqs, .. } => serde_json::to_value(&seqs[i]),
        }
        .unwrap_or(Value::Null);
        let rec = match ds.labels {
            Labels::NextToken(_) => serde_json::json!({"tokens": toks, "label": labels[i][0]}),
            Labels::Seq2seq(_) => serde_json::json!({"tokens": toks, "labels": labels[i]}),
        };
        let _ = writeln!(out, "{rec}");
    }
    out
}
