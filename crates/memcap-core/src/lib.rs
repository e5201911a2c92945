//! # memcap-core: the Kajitsuka–Sato memorization construction made executable
//!
//! Kajitsuka & Sato, "On the Optimal Memorization Capacity of Transformers"
//! (arXiv:2409.17677, ICLR 2025): N labelled sequences can be memorized with
//! Õ(√N) parameters (next-token) or Õ(√(nN)) (seq2seq). One attention layer
//! gives every sequence an ID (a contextual mapping); a deep, narrow ReLU
//! stack maps IDs to labels by bit extraction (Vardi et al. 2022). This crate
//! builds such weights explicitly ([`construct()`]) and checks them by
//! running the stored model in exact arithmetic ([`verify()`]). The theory and
//! every gadget are written up in `docs/construction.md`; code comments cite
//! its sections.
//!
//! It also holds the one data model of memcap: [`Dataset`] (token ids or
//! vectors; next-token or seq2seq labels), the seeded generator
//! ([`gen::generate`]), text windows ([`gen::text_windows`]) and the
//! consistency check ([`Dataset::consistency`], [`Dataset::check_consistency`]).
//! `memcap-train` trains on the same type.
//!
//! The crate does no IO: datasets and models come in and go out as values or
//! strings; the `memcap` CLI reads and writes files.
//!
//! ## Generate → construct → verify exactly
//!
//! ```
//! use memcap_core::{construct, gen, verify, ConstructConfig};
//! // N = 20 random sequences of n = 4 token ids over V = 10, labels in 0..3.
//! let ds = gen::generate(&gen::GenConfig::random_ids(20, 4, 10, 3, 1)).unwrap();
//! let built = construct(&ds, &ConstructConfig::default()).unwrap();
//! // Every block of the stored weights, in exact arithmetic, on every example.
//! let report = verify(&built.model, &ds, verify::Arith::Exact, &memcap_core::eval::NoProgress).unwrap();
//! assert_eq!(report.memorized, 20);
//! let acc = built.model.accounting();
//! println!("{} blocks, {} nonzero params, {} bits vs {} label bits",
//!          acc.blocks, acc.params_nonzero, acc.total_bits, ds.label_bits());
//! ```
//!
//! ## Text windows and consistency
//!
//! ```
//! use memcap_core::gen::{text_windows, TextSpec, TextUnit};
//! let t = text_windows(b"abacabab", &TextSpec::new(1, TextUnit::Bytes)).unwrap();
//! let r = t.dataset.consistency();
//! // "a" is followed by b, c, b, b: the best any model can do is 6 of 7.
//! assert!((r.max_accuracy - 6.0 / 7.0).abs() < 1e-12);
//! ```
#![warn(missing_docs)]

pub mod baselines;
pub mod certificate;
pub mod construct;
pub mod data;
pub mod error;
pub mod eval;
pub mod gen;
pub mod int;
pub mod limits;
pub mod model;
pub mod parse;
pub mod reference;
pub mod stats;
pub mod verify;

pub use construct::{construct, ConstructConfig, Construction, MapChoice, Precision};
pub use data::{Dataset, Dedupe, Inputs, Labels, Positional, Task};
pub use error::{ConstructError, DataError, ModelError};
pub use limits::{LimitError, Limits};
pub use model::Model;
pub use verify::{verify, Arith, VerifyReport};
