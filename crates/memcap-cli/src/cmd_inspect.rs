//! `memcap inspect`: architecture, parameter and bit accounting of a model.

use crate::args::*;
use crate::io::read_model;
use anyhow::Result;
use clap::Args;
use serde_json::json;
use std::path::PathBuf;

#[derive(Args)]
pub struct InspectArgs {
    /// Model JSON.
    model: PathBuf,
    #[command(flatten)]
    limits: crate::args::ModelLimitArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Also list the first K blocks' nonzero counts.
    #[arg(long, default_value_t = 0)]
    blocks: usize,
}

pub fn inspect(a: InspectArgs) -> Result<Outcome> {
    let m = read_model(&a.model, &a.limits.limits())?;
    let acc = m.accounting();
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"config": m.config, "accounting": acc, "construction": m.construction})
            )?
        );
        return Ok(Outcome::Ok);
    }
    let c = &m.config;
    println!("model            {} (format {} v{})", a.model.display(), m.format, m.version);
    println!(
        "input            {:?}, seq_len {}, positional {:?}, task {:?}, C = {}",
        c.input, c.seq_len, c.positional, c.task, c.num_classes
    );
    println!(
        "architecture     L = {}, m = {}, q = {}, heads = {}, head dim = {}, {:?}",
        c.blocks, c.width, c.ffn_width, c.heads, c.head_dim, c.attention
    );
    println!("attention blocks {:?} (all others have zero attention)", c.attention_blocks);
    println!("registers        {}", c.registers.join(" "));
    println!("params dense     {} (formula {})", acc.params_dense, m.dense_param_formula());
    println!("params nonzero   {}", acc.params_nonzero);
    println!("max weight bits  {}", acc.max_weight_bits);
    println!("total bits       {}", acc.total_bits);
    println!("inexact weights  f64: {}, f32: {}", acc.weights_inexact_f64, acc.weights_inexact_f32);
    if let Some(map) = m.construction.get("map_reason") {
        println!("construction     {}", map.as_str().unwrap_or_default());
    }
    for (l, b) in m.weights.blocks.iter().take(a.blocks).enumerate() {
        let nnz = b.ffn.w1.entries.len() + b.ffn.b1.entries.len() + b.ffn.w2.entries.len() + b.ffn.b2.entries.len();
        println!("  block {l:>5}: heads {}, FFN nonzeros {nnz}", b.heads.len());
    }
    Ok(Outcome::Ok)
}
