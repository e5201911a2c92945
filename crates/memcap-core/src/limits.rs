//! Resource limits on sizes that come from files.
//!
//! A dataset header, a token id, a model config or a weight string can
//! declare sizes far beyond the data they come with (a `vocab` of 2^32 with
//! ten token ids in use; a `head_dim` of 10^12 with no entries; a weight of
//! ten million digits). Such sizes are checked **before** anything is
//! allocated, against the limits here; over a limit is a typed error naming
//! the field, the value and the limit, and the CLI flag that raises it.
//!
//! The defaults are far above anything the construction or a CPU training
//! run needs (the largest construction measured, N = 10^6, has weights of a
//! few thousand bits and a few million dense parameters).

/// The limits one read or build is held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest vocabulary (token-id range) a dataset may declare or imply
    /// (`--max-vocab`). Default 2^24 = 16,777,216.
    pub max_vocab: usize,
    /// Largest dense parameter count (every entry of the fixed-width
    /// architecture, [`crate::Model::dense_param_formula`]) a model file may
    /// declare; dense exports allocate 8 bytes per entry
    /// (`--max-dense-params`). Default 2^30 = 1,073,741,824 (8 GiB as f64).
    pub max_dense_params: u64,
    /// Most decimal digits in one weight string, numerator and denominator
    /// each (`--max-weight-digits`). Default 10,000 (about 33,000 bits;
    /// measured constructions stay below 1,400 bits at N = 10^5).
    pub max_weight_digits: usize,
    /// Most examples × sequence length a generator may be asked for
    /// (`memcap gen`, sweep data; no flag). Default 2^31 tokens.
    pub max_generated_tokens: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_vocab: 1 << 24,
            max_dense_params: 1 << 30,
            max_weight_digits: 10_000,
            max_generated_tokens: 1 << 31,
        }
    }
}

/// A size over its limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} = {value} is over the limit {limit}{}", flag.map_or(String::new(), |f| format!(" (raise it with {f})")))]
pub struct LimitError {
    /// What was too large (a field name, e.g. `vocab` or `head_dim`).
    pub field: String,
    /// Its value (as text: it may not fit an integer type).
    pub value: String,
    /// The limit.
    pub limit: u64,
    /// The CLI flag that raises the limit, if there is one.
    pub flag: Option<&'static str>,
}

/// The longest run of ASCII digits in `text` and the 1-based line it is on
/// (a linear scan, so a huge number is refused before anything parses it).
pub fn longest_digit_run(text: &str) -> (usize, usize) {
    let (mut best, mut best_line, mut run, mut line) = (0usize, 1usize, 0usize, 1usize);
    for b in text.bytes() {
        if b.is_ascii_digit() {
            run += 1;
            if run > best {
                best = run;
                best_line = line;
            }
        } else {
            run = 0;
            if b == b'\n' {
                line += 1;
            }
        }
    }
    (best, best_line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digit_runs_are_found_with_their_line() {
        assert_eq!(longest_digit_run("{\"a\": \"12\",\n \"b\": \"12345\"}"), (5, 2));
        assert_eq!(longest_digit_run("no digits"), (0, 1));
    }

    #[test]
    fn limit_errors_name_field_value_limit_and_flag() {
        let e =
            LimitError { field: "vocab".into(), value: "4294967296".into(), limit: 1 << 24, flag: Some("--max-vocab") };
        assert_eq!(e.to_string(), "vocab = 4294967296 is over the limit 16777216 (raise it with --max-vocab)");
    }
}
