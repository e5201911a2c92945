//! memcap-core: the Kajitsuka–Sato memorization construction made executable.
//!
//! Kajitsuka & Sato, "On the Optimal Memorization Capacity of Transformers"
//! (arXiv:2409.17677, ICLR 2025): N labelled sequences can be memorized with
//! Õ(√N) parameters (next-token) or Õ(√(nN)) (seq2seq). This crate builds
//! such weights explicitly ([`construct`]) and checks them by running the
//! stored model in exact arithmetic ([`verify`]).
//!
//! The crate does no IO: datasets and models come in and go out as values or
//! strings; the `memcap` CLI reads and writes files.
//!
//! ```
//! use memcap_core::{construct, gen, verify};
//! let ds = gen::generate(&gen::GenConfig {
//!     n_seqs: 20, seq_len: 4, vocab: 10, num_classes: 3,
//!     task: memcap_core::data::Task::NextToken, kind: gen::GenKind::Ids,
//!     positional: Default::default(), seed: 1,
//! }).unwrap();
//! let built = construct::construct(&ds, &Default::default()).unwrap();
//! let report = verify::verify(&built.model, &ds, verify::Arith::Exact, &memcap_core::eval::NoProgress).unwrap();
//! assert_eq!(report.memorized, 20);
//! ```
#![warn(missing_docs)]
#![allow(missing_docs)] // fields of plain data types are documented where not obvious

pub mod baselines;
pub mod construct;
pub mod data;
pub mod error;
pub mod eval;
pub mod gen;
pub mod int;
pub mod model;
pub mod parse;
pub mod verify;

pub use construct::{construct, ConstructConfig, Construction, MapChoice};
pub use data::{Dataset, Dedupe, Inputs, Labels, Positional, Task};
pub use error::{ConstructError, DataError, ModelError};
pub use model::Model;
pub use verify::{verify, Arith, VerifyReport};
