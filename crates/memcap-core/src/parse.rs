//! Dataset text formats. Parsing takes `&str` (the caller reads the file), or
//! one line at a time ([`JsonlReader`], for callers that stream), so the core
//! stays free of IO; every error names its 1-based line.
//!
//! **JSONL**: one JSON object per line,
//! `{"tokens":[3,1,4],"label":2}` (next-token) or
//! `{"tokens":[3,1,4],"labels":[0,1,2]}` (seq2seq; a label `-100` or `null`
//! leaves its position out, [`IGNORE`]); tokens are integer ids or
//! float vectors (`[[0.5,1.0],[0,2]]`). An optional first line
//! `{"memcap_dataset":1,"vocab":V,"num_classes":C}` fixes V and C (otherwise
//! max+1 is used). A record may declare its label alphabet, `"classes": 7`
//! (or one size per position for seq2seq): then the information of the
//! labels is Σ log2 C_i ([`Dataset::label_classes`]). Blank lines are skipped.
//!
//! **CSV** (token ids only): a header row naming the columns `tok_0..tok_{n-1}`
//! followed by `label` (next-token) or `lab_0..lab_{n-1}` (seq2seq; `-100` or
//! an empty field ignores the position), then one row per sequence. Lines starting with `#` are comments;
//! a comment `# memcap_dataset {"vocab":V,"num_classes":C}` before the header
//! row fixes V and C as the JSONL header does ([`to_csv_lines`] writes it).

use crate::data::{Dataset, Inputs, Labels, IGNORE};
use crate::error::DataError;
use crate::limits::{LimitError, Limits};
use serde_json::Value;

/// Optional overrides for vocabulary size and class count.
#[derive(Debug, Clone, Copy, Default)]
pub struct ParseOptions {
    /// Vocabulary size V for token ids; takes precedence over the JSONL header, default max id + 1.
    pub vocab: Option<usize>,
    /// Number of classes C; takes precedence over the JSONL header, default max(max label + 1, 2).
    pub num_classes: Option<u32>,
    /// Largest vocabulary accepted (declared, or implied by the largest
    /// token id); `None`: [`Limits::default`]'s `max_vocab` (2^24).
    pub max_vocab: Option<usize>,
}

/// Refuses a vocabulary over the limit, naming where it came from: the
/// header line (`header_line`) or the line holding the largest token id.
fn check_vocab(
    vocab: usize,
    header_line: Option<usize>,
    seqs: &[Vec<u32>],
    lines: &[usize],
    opts: &ParseOptions,
) -> Result<(), DataError> {
    let max = opts.max_vocab.unwrap_or(Limits::default().max_vocab);
    if vocab <= max {
        return Ok(());
    }
    let (line, field) = match header_line {
        Some(h) if opts.vocab.is_none() => (h, "vocab (header)"),
        _ if opts.vocab.is_some() => (0, "--vocab"),
        _ => {
            let at = seqs.iter().position(|s| s.iter().any(|&t| t as usize + 1 == vocab)).unwrap_or(0);
            (lines.get(at).copied().unwrap_or(0), "vocab (largest token id + 1)")
        }
    };
    let e = LimitError { field: field.into(), value: vocab.to_string(), limit: max as u64, flag: Some("--max-vocab") };
    Err(perr(line, e.to_string()))
}

fn perr(line: usize, reason: impl Into<String>) -> DataError {
    DataError::Parse { line, reason: reason.into() }
}

/// A non-negative integer below 2^32; integral floats such as `2.0` (what a
/// float tensor's `tolist()` writes) count as integers, `2.5` does not.
fn as_u32(v: &Value, line: usize, what: &str) -> Result<u32, DataError> {
    integral_u32(v.as_u64(), v.as_f64())
        .ok_or_else(|| perr(line, format!("{what} must be a non-negative integer below 2^32, got {v}")))
}

/// A label: as [`as_u32`], but below 2^32 − 1, which is [`IGNORE`] (written
/// `-100` or `null`): a literal 4294967295 would otherwise be read as an
/// ignored position. CSV applies the same rule to its label columns.
fn as_label(v: &Value, line: usize, what: &str) -> Result<u32, DataError> {
    match as_u32(v, line, what)? {
        IGNORE => Err(perr(line, format!("{what} must be {LABEL_RANGE}, got {v}"))),
        x => Ok(x),
    }
}

/// What a label may be, for error messages.
const LABEL_RANGE: &str = "a non-negative integer below 4294967295 (2^32 − 1 marks an ignored position)";

/// A header size (`vocab`, `num_classes`) of JSONL or CSV: as [`as_u32`],
/// and at least 1.
fn as_size(v: &Value, line: usize, key: &str) -> Result<u32, DataError> {
    match as_u32(v, line, key)? {
        0 => Err(perr(line, format!("{key} must be at least 1"))),
        x => Ok(x),
    }
}

/// The one rule of JSONL and CSV for integer fields: `int` if given, else an
/// integral `float` in `0..2^32`; `None` when neither is such a number.
fn integral_u32(int: Option<u64>, float: Option<f64>) -> Option<u32> {
    int.or_else(|| float.filter(|x| x.fract() == 0.0 && *x >= 0.0 && *x < 4_294_967_296.0).map(|x| x as u64))
        .and_then(|x| u32::try_from(x).ok())
}

/// serde_json's message with its position as a column (each record is one
/// line, so its "line 1" would mislead).
fn json_reason(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let msg = msg.split(" at line ").next().unwrap_or(&msg);
    format!("{msg} (column {})", e.column())
}

/// A seq2seq label: a class, or `-100` / `null` for a position left out of
/// memorization ([`IGNORE`]).
fn seq2seq_label(v: &Value, line: usize) -> Result<u32, DataError> {
    if v.is_null() || v.as_f64() == Some(-100.0) {
        return Ok(IGNORE);
    }
    as_label(v, line, "label (or -100/null to ignore the position)")
}

/// One JSONL record, header or example. Deriving the struct (rather than
/// reading a `Value` map) makes a repeated key an error instead of the last
/// one silently winning; unknown keys are ignored.
#[derive(serde::Deserialize)]
struct Record {
    memcap_dataset: Option<Value>,
    vocab: Option<Value>,
    num_classes: Option<Value>,
    tokens: Option<Value>,
    label: Option<Value>,
    labels: Option<Value>,
    classes: Option<Value>,
}

/// A row's declared label alphabet: one size for all its labels, or one per
/// position (seq2seq).
#[derive(Debug)]
enum ClassesDecl {
    One(u32),
    Each(Vec<u32>),
}

fn label_rows_len(labels: &Labels) -> Vec<usize> {
    match labels {
        Labels::NextToken(y) => vec![1; y.len()],
        Labels::Seq2seq(y) => y.iter().map(Vec::len).collect(),
    }
}

/// The dataset format version this build reads (`{"memcap_dataset": 1, …}`).
pub const DATASET_VERSION: u64 = 1;

/// Parses JSONL text into a validated dataset (shape and range checks; the
/// consistency check is separate because it depends on the model kind).
/// The same as feeding every line to a [`JsonlReader`].
pub fn parse_jsonl(text: &str, opts: ParseOptions) -> Result<Dataset, DataError> {
    let mut r = JsonlReader::new(opts);
    for raw in text.lines() {
        r.push_line(raw)?;
    }
    r.finish()
}

/// A JSONL dataset read one line at a time, so a caller streaming a file
/// (`memcap` reads with a `BufReader`) never holds its text: at N = 10⁷ the
/// text is ~1 GB. Lines are numbered from 1 in the order they are pushed;
/// a byte-order mark on line 1 is skipped. [`parse_jsonl`] is this reader
/// fed every line of a string.
#[derive(Debug)]
pub struct JsonlReader {
    opts: ParseOptions,
    vocab: Option<usize>,
    classes: Option<u32>,
    ids: Vec<Vec<u32>>,
    vecs: Vec<Vec<Vec<f64>>>,
    next: Vec<u32>,
    s2s: Vec<Vec<u32>>,
    lines: Vec<usize>,
    is_vec: Option<bool>,
    d: Option<usize>,
    header_seen: bool,
    header_line: Option<usize>,
    per_row_classes: Vec<Option<ClassesDecl>>,
    line: usize,
}

impl JsonlReader {
    /// An empty reader with the caller's overrides.
    pub fn new(opts: ParseOptions) -> JsonlReader {
        JsonlReader {
            opts,
            vocab: opts.vocab,
            classes: opts.num_classes,
            ids: Vec::new(),
            vecs: Vec::new(),
            next: Vec::new(),
            s2s: Vec::new(),
            lines: Vec::new(),
            is_vec: None,
            d: None,
            header_seen: false,
            header_line: None,
            per_row_classes: Vec::new(),
            line: 0,
        }
    }

    /// Reads the next line (without its line end).
    ///
    /// # Errors
    /// [`DataError`] naming this line: not a JSON object, a bad field, a
    /// record of another kind or task than the first.
    pub fn push_line(&mut self, raw: &str) -> Result<(), DataError> {
        self.line += 1;
        let line = self.line;
        let raw = if line == 1 { raw.strip_prefix('\u{feff}').unwrap_or(raw) } else { raw };
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(());
        }
        if !raw.starts_with('{') {
            let what = serde_json::from_str::<Value>(raw)
                .map_or("not valid JSON".to_string(), |v| v.to_string().chars().take(40).collect());
            return Err(perr(line, format!("expected a JSON object, got {what}")));
        }
        let obj: Record = serde_json::from_str(raw).map_err(|e| perr(line, json_reason(&e)))?;
        if let Some(version) = &obj.memcap_dataset {
            if !self.lines.is_empty() || self.header_seen {
                return Err(perr(line, "the memcap_dataset header must be the first record"));
            }
            self.header_seen = true;
            self.header_line = Some(line);
            if version.as_u64() != Some(DATASET_VERSION) {
                return Err(perr(
                    line,
                    format!("memcap_dataset version {version} is not supported (this build reads version {DATASET_VERSION})"),
                ));
            }
            if let Some(x) = &obj.vocab {
                self.vocab = self.vocab.or(Some(as_size(x, line, "vocab")? as usize));
            }
            if let Some(x) = &obj.num_classes {
                self.classes = self.classes.or(Some(as_size(x, line, "num_classes")?));
            }
            return Ok(());
        }
        let at = crate::error::Origin { index: self.lines.len(), line: Some(line) };
        let toks =
            obj.tokens.as_ref().and_then(Value::as_array).ok_or_else(|| perr(line, "missing \"tokens\" array"))?;
        let this_vec = toks.first().is_some_and(Value::is_array);
        if *self.is_vec.get_or_insert(this_vec) != this_vec {
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
                let dd = *self.d.get_or_insert(x.len());
                if x.len() != dd {
                    return Err(DataError::DimMismatch { at, expected: dd, got: x.len() });
                }
                seq.push(x);
            }
            self.vecs.push(seq);
        } else {
            self.ids.push(toks.iter().map(|t| as_u32(t, line, "token id")).collect::<Result<_, _>>()?);
        }
        match (&obj.label, &obj.labels) {
            (Some(y), None) => {
                if !self.s2s.is_empty() {
                    return Err(DataError::MixedTask { at });
                }
                self.next.push(as_label(y, line, "label")?);
            }
            (None, Some(ys)) => {
                if !self.next.is_empty() {
                    return Err(DataError::MixedTask { at });
                }
                let ys = ys.as_array().ok_or_else(|| perr(line, "\"labels\" must be an array"))?;
                self.s2s.push(ys.iter().map(|y| seq2seq_label(y, line)).collect::<Result<_, _>>()?);
            }
            (Some(_), Some(_)) => return Err(perr(line, "has both \"label\" and \"labels\"")),
            (None, None) => return Err(perr(line, "missing \"label\" (next-token) or \"labels\" (seq2seq)")),
        }
        self.per_row_classes.push(match &obj.classes {
            None => None,
            Some(Value::Array(cs)) => {
                Some(ClassesDecl::Each(cs.iter().map(|c| as_u32(c, line, "classes entry")).collect::<Result<_, _>>()?))
            }
            Some(c) => Some(ClassesDecl::One(as_u32(c, line, "classes")?)),
        });
        self.lines.push(line);
        Ok(())
    }

    /// The dataset read so far, validated.
    ///
    /// # Errors
    /// [`DataError`]: a vocabulary over the limit, `classes` on some examples
    /// only, or what [`Dataset::validate`] refuses.
    pub fn finish(self) -> Result<Dataset, DataError> {
        let JsonlReader {
            opts,
            vocab,
            classes,
            ids,
            vecs,
            next,
            s2s,
            lines,
            is_vec,
            d,
            header_line,
            per_row_classes,
            ..
        } = self;
        let labels = if s2s.is_empty() { Labels::NextToken(next) } else { Labels::Seq2seq(s2s) };
        let inputs = if is_vec == Some(true) {
            Inputs::Vectors { d: d.unwrap_or(1), seqs: vecs }
        } else {
            let v = vocab.unwrap_or_else(|| ids.iter().flatten().max().map_or(1, |&m| m as usize + 1));
            check_vocab(v, header_line, &ids, &lines, &opts)?;
            Inputs::Ids { vocab: v, seqs: ids }
        };
        let label_classes = if per_row_classes.iter().any(Option::is_some) {
            let rows = label_rows_len(&labels);
            let all: Option<Vec<Vec<u32>>> = per_row_classes
                .into_iter()
                .zip(&rows)
                .map(|(c, &len)| match c {
                    Some(ClassesDecl::One(c)) => Some(vec![c; len]),
                    Some(ClassesDecl::Each(v)) => Some(v),
                    None => None,
                })
                .collect();
            match all {
                Some(a) => Some(a),
                None => {
                    let at = lines.get(rows.len().min(lines.len()).saturating_sub(1)).copied().unwrap_or(0);
                    return Err(perr(at, "\"classes\" must be given on every example or on none"));
                }
            }
        } else {
            None
        };
        finish(inputs, labels, classes, lines, label_classes)
    }
}

/// Parses CSV text of token ids (see the module docs for the columns), as
/// spreadsheets write it: a UTF-8 byte-order mark, quoted fields (`"4"`),
/// CRLF line ends and blank lines are accepted (read by the `csv` crate).
/// Integral floats (`2.0`) count as integers.
pub fn parse_csv(text: &str, opts: ParseOptions) -> Result<Dataset, DataError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (meta_line, meta_vocab, meta_classes) = csv_meta(text)?;
    // Flags take precedence over the file's comment, as over a JSONL header.
    let given = opts;
    let opts =
        ParseOptions { vocab: given.vocab.or(meta_vocab), num_classes: given.num_classes.or(meta_classes), ..given };
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let lines_at = LineIndex::new(text);
    let mut records = rdr.records().map(|r| {
        r.map_err(|e| {
            let line = e.position().map_or(0, |p| lines_at.record_line(p.byte() as usize));
            perr(line, format!("not valid CSV: {e}"))
        })
        .map(|rec| (rec.position().map_or(0, |p| lines_at.record_line(p.byte() as usize)), rec))
    });
    let (hline, header) = records.next().ok_or(DataError::Empty)??;
    let cols: Vec<&str> = header.iter().collect();
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
    for rec in records {
        let (line, row) = rec?;
        if row.len() != cols.len() {
            return Err(perr(line, format!("{} fields, header has {}", row.len(), cols.len())));
        }
        let vals: Vec<u32> = row
            .iter()
            .zip(&cols)
            .map(|(c, name)| {
                if seq2seq && name.starts_with("lab_") && (c.is_empty() || c.parse::<f64>().ok() == Some(-100.0)) {
                    return Ok(IGNORE);
                }
                let v = integral_u32(c.parse::<u64>().ok(), c.parse::<f64>().ok())
                    .ok_or_else(|| perr(line, format!("{name} = {c:?} is not a non-negative integer below 2^32")))?;
                if (*name == "label" || name.starts_with("lab_")) && v == IGNORE {
                    return Err(perr(line, format!("{name} = {c:?} is not {LABEL_RANGE}")));
                }
                Ok(v)
            })
            .collect::<Result<_, _>>()?;
        seqs.push(vals[..n_tok].to_vec());
        if seq2seq {
            s2s.push(vals[n_tok..].to_vec());
        } else {
            next.push(vals[n_tok]);
        }
        lines.push(line);
    }
    let vocab = opts.vocab.unwrap_or_else(|| seqs.iter().flatten().max().map_or(1, |&m| m as usize + 1));
    let header_line = meta_vocab.and(meta_line);
    check_vocab(vocab, header_line, &seqs, &lines, &given)?;
    let labels = if seq2seq { Labels::Seq2seq(s2s) } else { Labels::NextToken(next) };
    finish(Inputs::Ids { vocab, seqs }, labels, opts.num_classes, lines, None)
}

/// 1-based line numbers of byte offsets in a CSV text. The `csv` crate's own
/// line count is off after skipped comment or blank lines and with CRLF
/// line ends, so errors take the line from the record's byte offset
/// instead, past the separators, blank lines and `#` comments before it.
struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str) -> Self {
        let starts = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        LineIndex { text, starts }
    }

    /// The line of the first record byte at or after `byte`.
    fn record_line(&self, byte: usize) -> usize {
        let bytes = self.text.as_bytes();
        let mut b = byte.min(bytes.len());
        loop {
            match bytes.get(b) {
                Some(b'\r' | b'\n') => b += 1,
                Some(_) if self.starts.binary_search(&b).is_ok() => {
                    let end = bytes[b..].iter().position(|&c| c == b'\n').map_or(bytes.len(), |e| b + e);
                    let line = &bytes[b..end];
                    if line.first() == Some(&b'#') || line.iter().all(u8::is_ascii_whitespace) {
                        b = end;
                    } else {
                        break;
                    }
                }
                _ => break,
            }
        }
        self.starts.partition_point(|&s| s <= b).max(1)
    }
}

/// What a CSV file's `# memcap_dataset {...}` comment says:
/// `(its line, vocab, num_classes)`, each `None` when not given.
type CsvMeta = (Option<usize>, Option<usize>, Option<u32>);

/// The `# memcap_dataset {...}` comment of a CSV file. Like the JSONL
/// header it must come first (only other comments and blank lines may
/// precede it), at most once, with the keys `vocab` and `num_classes`, each
/// at most once. The comment starts at column 0, as the CSV reader's
/// comments do.
fn csv_meta(text: &str) -> Result<CsvMeta, DataError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Meta {
        vocab: Option<Value>,
        num_classes: Option<Value>,
    }
    let mut found: Option<CsvMeta> = None;
    let mut header_seen = false;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let Some(comment) = raw.strip_prefix('#') else {
            header_seen |= !raw.trim().is_empty();
            continue;
        };
        let comment = comment.trim_start();
        let Some(json) = comment.strip_prefix("memcap_dataset") else { continue };
        if !(json.is_empty() || json.starts_with(|c: char| c.is_whitespace() || c == '{')) {
            continue; // another word, such as `# memcap_dataset_notes`
        }
        if header_seen {
            return Err(perr(line, "the memcap_dataset comment must come before the header row"));
        }
        if let Some((Some(first), _, _)) = found {
            return Err(perr(line, format!("a second memcap_dataset comment (the first is on line {first})")));
        }
        let meta: Meta = serde_json::from_str(json.trim())
            .map_err(|e| perr(line, format!("memcap_dataset comment: {}", json_reason(&e))))?;
        let size = |key: &str, x: &Option<Value>| x.as_ref().map(|x| as_size(x, line, key)).transpose();
        found = Some((
            Some(line),
            size("vocab", &meta.vocab)?.map(|v| v as usize),
            size("num_classes", &meta.num_classes)?,
        ));
    }
    Ok(found.unwrap_or((None, None, None)))
}

/// Writes a token-id dataset as memcap's CSV format, the inverse of
/// [`parse_csv`]: a `# memcap_dataset {"vocab":V,"num_classes":C}` comment,
/// the header row, then one row per sequence (an ignored seq2seq position
/// is `-100`).
///
/// # Errors
/// [`DataError::Param`] for token vectors or per-record label alphabets
/// (`classes`), which CSV cannot hold: write JSONL ([`to_jsonl`]) instead.
pub fn to_csv_lines(ds: &Dataset) -> Result<impl Iterator<Item = String> + '_, DataError> {
    let Inputs::Ids { vocab, seqs } = &ds.inputs else {
        return Err(DataError::Param("CSV holds token ids only; write token vectors as JSONL".into()));
    };
    if ds.label_classes.is_some() {
        return Err(DataError::Param("CSV cannot hold per-record label alphabets (\"classes\"); write JSONL".into()));
    }
    let n = ds.seq_len();
    let meta = serde_json::json!({"vocab": vocab, "num_classes": ds.num_classes});
    let mut header: Vec<String> = (0..n).map(|k| format!("tok_{k}")).collect();
    match &ds.labels {
        Labels::NextToken(_) => header.push("label".into()),
        Labels::Seq2seq(_) => header.extend((0..n).map(|k| format!("lab_{k}"))),
    }
    let first = [format!("# memcap_dataset {meta}"), header.join(",")];
    Ok(first.into_iter().chain((0..ds.len()).map(move |i| {
        let mut cells: Vec<String> = seqs[i].iter().map(u32::to_string).collect();
        match &ds.labels {
            Labels::NextToken(y) => cells.push(y[i].to_string()),
            Labels::Seq2seq(y) => {
                cells.extend(y[i].iter().map(|&l| if l == IGNORE { "-100".to_string() } else { l.to_string() }))
            }
        }
        cells.join(",")
    })))
}

fn finish(
    inputs: Inputs,
    labels: Labels,
    classes: Option<u32>,
    lines: Vec<usize>,
    label_classes: Option<Vec<Vec<u32>>>,
) -> Result<Dataset, DataError> {
    let max_label = match &labels {
        Labels::NextToken(y) => y.iter().max().copied(),
        Labels::Seq2seq(y) => y.iter().flatten().filter(|&&l| l != IGNORE).max().copied(),
    };
    let ds = Dataset {
        inputs,
        labels,
        num_classes: classes.unwrap_or_else(|| {
            let declared = label_classes.iter().flatten().flatten().copied().max().unwrap_or(0);
            max_label.map_or(1, |m| m + 1).max(2).max(declared)
        }),
        lines: Some(lines),
        label_classes,
    };
    ds.validate()?;
    Ok(ds)
}

/// Writes a dataset as JSONL text (header line first), the inverse of
/// [`parse_jsonl`]: [`to_jsonl_lines`] joined with line ends.
pub fn to_jsonl(ds: &Dataset) -> String {
    let mut out = String::new();
    for line in to_jsonl_lines(ds) {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The JSONL lines of a dataset (header first, no line ends), one at a time,
/// for writers that stream ([`to_jsonl`] collects them).
pub fn to_jsonl_lines(ds: &Dataset) -> impl Iterator<Item = String> + '_ {
    let vocab = match &ds.inputs {
        Inputs::Ids { vocab, .. } => Value::from(*vocab),
        Inputs::Vectors { .. } => Value::Null,
    };
    let header = serde_json::json!({"memcap_dataset": 1, "vocab": vocab, "num_classes": ds.num_classes});
    std::iter::once(header.to_string()).chain((0..ds.len()).map(move |i| {
        let toks = match &ds.inputs {
            Inputs::Ids { seqs, .. } => serde_json::to_value(&seqs[i]),
            Inputs::Vectors { seqs, .. } => serde_json::to_value(&seqs[i]),
        }
        .unwrap_or(Value::Null);
        let mut rec = match &ds.labels {
            Labels::NextToken(y) => serde_json::json!({"tokens": toks, "label": y[i]}),
            Labels::Seq2seq(y) => {
                let ys: Vec<Value> =
                    y[i].iter().map(|&y| if y == IGNORE { Value::from(-100) } else { Value::from(y) }).collect();
                serde_json::json!({"tokens": toks, "labels": ys})
            }
        };
        if let (Some(cs), Some(obj)) = (&ds.label_classes, rec.as_object_mut()) {
            let row = &cs[i];
            let v = if row.windows(2).all(|w| w[0] == w[1]) && !row.is_empty() {
                Value::from(row[0])
            } else {
                Value::from(row.clone())
            };
            obj.insert("classes".into(), v);
        }
        rec.to_string()
    }))
}
