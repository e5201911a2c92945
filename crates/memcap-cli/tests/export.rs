//! `memcap export` and `memcap baselines`, run as a user would: the written
//! safetensors and ONNX files are read back in Rust and must hold exactly
//! the model's weights (f64 rounding of the exact values); config.json says
//! whether the model is float-exact; bad input exits 2.

mod common;
use common::*;

use memcap_export::onnx_proto;

use memcap_core::Model;
use prost::Message;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Output;

/// Asserts success and returns stdout.
fn ok_out(o: Output) -> String {
    stdout(&common::ok(o))
}

/// gen + construct; returns (data, model.json, parsed model).
fn small_model(d: &Path, n_seqs: &str, code_bits: Option<&str>) -> (PathBuf, PathBuf, Model) {
    let (data, model) = (d.join("data.jsonl"), d.join("model.json"));
    ok_out(memcap(&["gen", "-N", n_seqs, "-n", "2", "--vocab", "4", "--classes", "2", "-o", s(&data)]));
    let mut args = vec!["construct", s(&data), "-o", s(&model)];
    if let Some(b) = code_bits {
        args.extend(["--code-bits", b]);
    }
    ok_out(memcap(&args));
    let m = Model::from_json(&std::fs::read_to_string(&model).unwrap()).unwrap();
    (data, model, m)
}

/// What memcap-train's forward pass runs for `m` (PyTorch names and `[out, in]` shapes).
fn expected_tensors(m: &Model) -> HashMap<String, (Vec<usize>, Vec<f64>)> {
    let (_, w) = memcap_export::onnx::forward_weights(m, memcap_core::certificate::FloatType::F64).unwrap();
    w.into_iter().map(|(n, shape, vals)| (n, (shape, vals))).collect()
}

#[test]
fn safetensors_export_reads_back_identical_values() {
    let d = tmpdir("st");
    let (data, model, m) = small_model(&d, "6", Some("4"));
    let out = d.join("out");
    ok_out(memcap(&["export", s(&model), "--format", "safetensors", "-o", s(&out), "--data", s(&data)]));
    let bytes = std::fs::read(out.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let want = expected_tensors(&m);
    assert_eq!(st.names().len(), want.len());
    for (name, (shape, vals)) in &want {
        let t = st.tensor(name).unwrap_or_else(|_| panic!("{name} missing"));
        assert_eq!(t.dtype(), safetensors::Dtype::F64);
        assert_eq!(t.shape(), shape.as_slice(), "{name}");
        let got: Vec<f64> = t.data().chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect();
        assert_eq!(
            got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            vals.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            "{name}"
        );
    }
}

#[test]
fn config_json_describes_architecture_and_float_exactness() {
    let d = tmpdir("cfg");
    let (data, model, m) = small_model(&d, "6", Some("4"));
    let out = d.join("out");
    let stdout = ok_out(memcap(&["export", s(&model), "-o", s(&out), "--data", s(&data)]));
    assert!(stdout.contains("FLOAT-EXACT"), "{stdout}");
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["model_type"], "memcap-constructed");
    assert_eq!(cfg["hidden_size"], m.config.width);
    assert_eq!(cfg["intermediate_size"], m.config.ffn_width);
    assert_eq!(cfg["num_hidden_layers"], m.config.blocks);
    assert_eq!(cfg["max_position_embeddings"], 2);
    assert_eq!(cfg["vocab_size"], 4);
    assert_eq!(cfg["torch_dtype"], "float64");
    assert_eq!(cfg["float_exact"], true);
}

#[test]
fn export_without_data_leaves_float_exactness_open_when_weights_fit() {
    let d = tmpdir("nodata");
    let (_, model, _) = small_model(&d, "6", Some("4"));
    let out = d.join("out");
    let stdout = ok_out(memcap(&["export", s(&model), "-o", s(&out)]));
    assert!(stdout.contains("float-exactness unknown"), "{stdout}");
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert!(cfg["float_exact"].is_null());
}

#[test]
fn big_weight_models_are_reported_not_float_exact() {
    let d = tmpdir("big");
    let (data, model) = (d.join("data.jsonl"), d.join("model.json"));
    ok_out(memcap(&["gen", "-N", "2000", "-n", "16", "--vocab", "1000", "--classes", "16", "-o", s(&data)]));
    ok_out(memcap(&["construct", s(&data), "-o", s(&model)]));
    let out = d.join("out");
    let stdout = ok_out(memcap(&["export", s(&model), "--format", "onnx", "-o", s(&out), "--data", s(&data)]));
    assert!(stdout.contains("NOT float-exact"), "{stdout}");
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["float_exact"], false);
}

#[test]
fn onnx_export_reads_back_identical_weights_and_a_well_formed_graph() {
    let d = tmpdir("onnx");
    let (data, model, m) = small_model(&d, "6", Some("4"));
    let out = d.join("out");
    ok_out(memcap(&["export", s(&model), "--format", "onnx", "-o", s(&out), "--data", s(&data)]));
    let proto = onnx_proto::ModelProto::decode(std::fs::read(out.join("model.onnx")).unwrap().as_slice()).unwrap();
    assert!(proto.opset_import.iter().any(|o| o.domain.is_empty() && o.version >= 13));
    let g = proto.graph.expect("graph");
    assert_eq!(g.input[0].name, "tokens");
    assert_eq!(g.output[0].name, "out");
    let want = expected_tensors(&m);
    let inits: HashMap<&str, &onnx_proto::TensorProto> = g.initializer.iter().map(|t| (t.name.as_str(), t)).collect();
    assert_eq!(inits.len(), g.initializer.len(), "an initializer name is repeated");
    for (name, (shape, vals)) in &want {
        let t = inits.get(name.as_str()).unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(t.data_type, onnx_proto::data_type::DOUBLE);
        let dims: Vec<usize> = t.dims.iter().map(|&x| x as usize).collect();
        let got: Vec<f64> = t.raw_data.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect();
        if dims.len() == 2 && !name.starts_with("embed.") && !name.starts_with("pos_embed.") {
            // Weight matrices are stored pre-transposed, [in, out]; the
            // embedding table is read by Gather as it is.
            let (rows, cols) = (shape[0], shape[1]);
            assert_eq!(dims, vec![cols, rows], "{name}");
            let back: Vec<f64> = (0..rows * cols).map(|i| got[(i % cols) * rows + i / cols]).collect();
            assert_eq!(&back, vals, "{name}");
        } else {
            assert_eq!(&dims, shape, "{name}");
            assert_eq!(&got, vals, "{name}");
        }
    }
    // No Transpose node at all, so none feeds a MatMul: onnxruntime 1.22 fuses
    // such pairs into FusedMatMul, which has no f64 kernel (session refused).
    assert!(g.node.iter().all(|n| n.op_type != "Transpose"), "a Transpose node is back");
    // Every node input is a graph input, an initializer or an earlier node's output.
    let mut known: std::collections::HashSet<String> = g.initializer.iter().map(|t| t.name.clone()).collect();
    known.insert("tokens".into());
    for node in &g.node {
        for i in &node.input {
            assert!(known.contains(i), "{} reads undefined {i}", node.name);
        }
        known.extend(node.output.iter().cloned());
    }
    assert!(known.contains("out"));
    let ops: std::collections::HashSet<&str> = g.node.iter().map(|n| n.op_type.as_str()).collect();
    for op in ["MatMul", "Add", "Relu", "Softmax", "Gather"] {
        assert!(ops.contains(op), "no {op} node");
    }
}

#[test]
fn export_of_a_missing_model_exits_2_naming_the_file() {
    let d = tmpdir("missing");
    let o = memcap(&["export", s(&d.join("nope.json")), "-o", s(&d.join("out"))]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("nope.json"));
    assert!(!d.join("out").join("config.json").exists());
}

#[test]
fn baselines_table_builds_and_verifies_every_network() {
    let d = tmpdir("baselines");
    let data = d.join("data.jsonl");
    ok_out(memcap(&["gen", "-N", "60", "-n", "4", "--vocab", "10", "--classes", "4", "-o", s(&data)]));
    let out = ok_out(memcap(&["baselines", s(&data), "--trained-min", "123", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rows = v["rows"].as_array().unwrap();
    let built: Vec<&serde_json::Value> = rows.iter().filter(|r| r["kind"] == "built").collect();
    assert_eq!(built.len(), 3, "{out}");
    for r in built {
        assert_eq!(r["memorized"], "60/60", "{r}");
    }
    assert!(rows.iter().any(|r| r["kind"] == "trained" && r["params_dense"] == 123));
    assert_eq!(rows.iter().filter(|r| r["kind"] == "formula").count(), 4);
}

#[test]
fn averaging_over_three_tokens_is_not_float_exact() {
    // Attention weights 1/3 are not f64 values: PyTorch and onnxruntime may round the
    // average differently, so the verdict must be false even if memcap's own f64 pass agrees.
    let d = tmpdir("third");
    let (data, model) = (d.join("data.jsonl"), d.join("model.json"));
    ok_out(memcap(&[
        "gen",
        "-N",
        "8",
        "-n",
        "3",
        "--vocab",
        "5",
        "--classes",
        "3",
        "--positional",
        "learned",
        "-o",
        s(&data),
    ]));
    ok_out(memcap(&["construct", s(&data), "-o", s(&model), "--positional", "learned"]));
    let out = d.join("out");
    let stdout = ok_out(memcap(&["export", s(&model), "-o", s(&out), "--data", s(&data)]));
    assert!(stdout.contains("NOT float-exact") && stdout.contains("1/3"), "{stdout}");
}

/// A model whose attention scores vary (W_Q = W_K ≠ 0) has irrational
/// softmax weights: the exact verifier refuses it, but f64 and f32 passes
/// run, and export reports float_exact = false with that reason.
#[test]
fn nonuniform_softmax_models_run_in_floats_and_export_as_not_float_exact() {
    let d = tmpdir("nonuniform");
    let data = d.join("d.jsonl");
    std::fs::write(
        &data,
        "{\"tokens\":[1,2,3,4],\"label\":0}\n{\"tokens\":[2,3,4,5],\"label\":2}\n{\"tokens\":[3,4,5,6],\"label\":1}\n\
         {\"tokens\":[4,5,6,0],\"label\":1}\n{\"tokens\":[5,6,0,1],\"label\":0}\n{\"tokens\":[6,0,1,2],\"label\":2}\n",
    )
    .unwrap();
    let m = d.join("m.json");
    ok(memcap(&["construct", s(&data), "-o", s(&m), "--no-safetensors"]));
    let mut model: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&m).unwrap()).unwrap();
    let head = &mut model["weights"]["blocks"][0]["heads"][0];
    let cols = head["wq"]["cols"].as_u64().unwrap();
    // Score = (z_r / 16)², z_r the first register that varies between tokens: any one will do.
    let entries: Vec<serde_json::Value> = (0..cols).map(|c| serde_json::json!([0, c, "1/16"])).collect();
    head["wq"]["entries"] = entries.clone().into();
    head["wk"]["entries"] = entries.into();
    let bad = d.join("nonuniform.json");
    std::fs::write(&bad, model.to_string()).unwrap();
    let o = memcap(&["verify", s(&bad), s(&data)]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("irrational"), "{}", stderr(&o));
    let o = memcap(&["verify", s(&bad), s(&data), "--f64", "--f32"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("f64    memorized") && stdout(&o).contains("f32    memorized"), "{}", stdout(&o));
    let out = d.join("exp");
    let o = memcap(&["export", s(&bad), "-o", s(&out), "--data", s(&data)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    let text = cfg.to_string();
    assert!(text.contains("\"float_exact\":false") && text.contains("irrational"), "{text}");
}

/// `construct --precision f32` prints its certificate, and `export` writes
/// f32 weights (safetensors and ONNX) with `torch_dtype: float32` and the
/// certificate in config.json, by default (the model records its precision).
#[test]
fn f32_constructions_export_f32_weights_with_their_certificate() {
    let d = tmpdir("f32exp");
    let (data, model) = (d.join("d.jsonl"), d.join("m.json"));
    ok_out(memcap(&["gen", "-N", "60", "-n", "3", "--vocab", "12", "--classes", "4", "-o", s(&data)]));
    let out = ok_out(memcap(&["construct", s(&data), "--precision", "f32", "-o", s(&model), "--verify"]));
    assert!(out.contains("certificate      f32 exact") && out.contains("memorized 60/60"), "{out}");
    let x = d.join("x");
    ok_out(memcap(&["export", s(&model), "-o", s(&x), "--data", s(&data)]));
    ok_out(memcap(&["export", s(&model), "--format", "onnx", "-o", s(&x), "--data", s(&data)]));
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(x.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["torch_dtype"], "float32");
    assert_eq!(cfg["float_exact"], true);
    assert_eq!(cfg["float_exactness"]["certificate"]["certified"], true);
    assert_eq!(cfg["float_exactness"]["certificate"]["outputs_exact"], 60);
    let bytes = std::fs::read(x.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert!(st.tensors().iter().all(|(_, v)| v.dtype() == safetensors::Dtype::F32));
    let proto = onnx_proto::ModelProto::decode(std::fs::read(x.join("model.onnx")).unwrap().as_slice()).unwrap();
    let g = proto.graph.expect("graph");
    assert!(g
        .initializer
        .iter()
        .filter(|t| t.data_type != onnx_proto::data_type::INT64)
        .all(|t| t.data_type == onnx_proto::data_type::FLOAT));
    // The same model exported as f64 is certified in f64 too.
    let y = d.join("y");
    let o = ok_out(memcap(&["export", s(&model), "-o", s(&y), "--data", s(&data), "--dtype", "f64"]));
    assert!(o.contains("FLOAT-EXACT in f64"), "{o}");
}

/// Data a float precision cannot serve: a typed error naming the reason,
/// exit 2, and no output file.
#[test]
fn float_precision_on_vector_tokens_is_refused_and_writes_nothing() {
    let d = tmpdir("f32vec");
    let (data, model) = (d.join("v.jsonl"), d.join("m.json"));
    ok_out(memcap(&["gen", "-N", "20", "-n", "4", "--kind", "vectors", "--dim", "3", "-o", s(&data)]));
    let o = memcap(&["construct", s(&data), "--precision", "f32", "-o", s(&model)]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("f32") && stderr(&o).contains("vector"), "{}", stderr(&o));
    assert!(!model.exists() && !model.with_extension("safetensors").exists());
}

/// `-o m.safetensors` would make the model JSON and its safetensors one file:
/// refused before any work (regression: the JSON was silently overwritten).
#[test]
fn construct_refuses_an_output_that_collides_with_its_safetensors() {
    let d = tmpdir("stcollide");
    let (data, out) = (d.join("d.jsonl"), d.join("m.safetensors"));
    ok_out(memcap(&["gen", "-N", "10", "-n", "3", "--vocab", "8", "--classes", "3", "-o", s(&data)]));
    let o = memcap(&["construct", s(&data), "-o", s(&out)]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("same file") && !out.exists(), "{}", stderr(&o));
}

/// `verify --transformer-forward f32` runs an f32 construction through
/// memcap-train's forward pass (the one exports and trained models run) and
/// gets every label; the default exact construction on n = 3 does not, and
/// says so without changing the exit code (only exact arithmetic decides).
#[test]
fn verify_runs_the_transformer_forward_in_the_construction_dtype() {
    let d = tmpdir("tforward");
    let (data, f32m, exact) = (d.join("d.jsonl"), d.join("f32.json"), d.join("exact.json"));
    ok_out(memcap(&["gen", "-N", "200", "-n", "3", "--vocab", "20", "--classes", "8", "-o", s(&data)]));
    ok_out(memcap(&["construct", s(&data), "--precision", "f32", "-o", s(&f32m), "--no-safetensors"]));
    let out = ok_out(memcap(&["verify", s(&f32m), s(&data), "--transformer-forward", "f32", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["transformer_forward"]["memorized"], 200, "{out}");
    assert_eq!(v["transformer_forward"]["dtype"], "f32");
    ok_out(memcap(&["construct", s(&data), "-o", s(&exact), "--no-safetensors"]));
    let out = ok_out(memcap(&["verify", s(&exact), s(&data), "--transformer-forward", "f64"]));
    let line = out.lines().find(|l| l.starts_with("transformer forward (f64")).expect("a transformer forward line");
    assert!(!line.contains("200/200"), "{line}");
}

/// A trained run whose weights do not fit its config is refused by export
/// (with or without --data), naming model.safetensors, with exit 2 and
/// nothing written.
#[test]
fn trained_export_checks_the_weights_before_writing_anything() {
    let d = tmpdir("trainedbad");
    let (data, run, out) = (d.join("d.jsonl"), d.join("run"), d.join("out"));
    ok_out(memcap(&["gen", "-N", "30", "-n", "4", "--vocab", "8", "--classes", "4", "-o", s(&data)]));
    let o = memcap(&["train", s(&data), "--d-model", "8", "--steps", "3", "-o", s(&run)]);
    assert!(run.join("model.safetensors").exists(), "{}", stderr(&o));
    let cfg_path = run.join("config.json");
    let cfg = std::fs::read_to_string(&cfg_path).unwrap();
    std::fs::write(&cfg_path, cfg.replace("\"d_model\": 8", "\"d_model\": 9")).unwrap();
    for with_data in [false, true] {
        let mut args = vec!["export", s(&run), "-o", s(&out)];
        if with_data {
            args.extend(["--data", s(&data)]);
        }
        let o = memcap(&args);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains("model.safetensors"));
        assert!(!out.join("model.safetensors").exists() && !out.join("config.json").exists());
    }
    // A bad value in the config is blamed on config.json, not on the weights.
    std::fs::write(&cfg_path, cfg.replace("\"num_classes\": 4", "\"num_classes\": 0")).unwrap();
    let o = memcap(&["export", s(&run), "-o", s(&out)]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("config.json") && stderr(&o).contains("num_classes"), "{}", stderr(&o));
    // A misspelt config key is named, not ignored.
    std::fs::write(&cfg_path, cfg.replace("\"d_model\": 8", "\"d_model\": 8, \"d_modle\": 9")).unwrap();
    let o = memcap(&["export", s(&run), "-o", s(&out)]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("config.json") && stderr(&o).contains("d_modle"), "{}", stderr(&o));
    // A NaN weight is refused by tensor name before anything is written.
    std::fs::write(&cfg_path, &cfg).unwrap();
    let st_path = run.join("model.safetensors");
    let bytes = std::fs::read(&st_path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut owned: Vec<(String, Vec<usize>, Vec<u8>)> =
        st.tensors().into_iter().map(|(n, t)| (n, t.shape().to_vec(), t.data().to_vec())).collect();
    owned.sort();
    owned[0].2[..4].copy_from_slice(&f32::NAN.to_le_bytes());
    let views: Vec<(String, safetensors::tensor::TensorView)> = owned
        .iter()
        .map(|(n, sh, d)| {
            (n.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, sh.clone(), d).unwrap())
        })
        .collect();
    std::fs::write(&st_path, safetensors::serialize(views, &None).unwrap()).unwrap();
    let o = memcap(&["export", s(&run), "-o", s(&out), "--data", s(&data)]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains(&owned[0].0) && stderr(&o).contains("not a finite number"), "{}", stderr(&o));
    assert!(!out.join("model.safetensors").exists());
}

/// Exporting one format into a folder that holds the other format from an
/// earlier export warns when that file is of another model or dtype, and
/// stays quiet when both describe the same model in the same dtype.
#[test]
fn export_warns_about_the_other_format_from_another_model_or_dtype() {
    let d = tmpdir("stale");
    let (data, model, out) = (d.join("d.jsonl"), d.join("m.json"), d.join("x"));
    ok_out(memcap(&["gen", "-N", "50", "-n", "3", "--vocab", "12", "--classes", "4", "-o", s(&data)]));
    ok_out(memcap(&["construct", s(&data), "--precision", "f32", "-o", s(&model), "--no-safetensors"]));
    let warned = |args: &[&str]| {
        let o = memcap(args);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        stderr(&o).contains("earlier export")
    };
    assert!(!warned(&["export", s(&model), "--format", "onnx", "--dtype", "f64", "-o", s(&out)]));
    // Same model, other dtype: the f64 ONNX file no longer matches config.json.
    assert!(warned(&["export", s(&model), "-o", s(&out)]));
    // Both formats now in f32, same model: quiet.
    assert!(!warned(&["export", s(&model), "--format", "onnx", "-o", s(&out)]));
    assert!(!warned(&["export", s(&model), "-o", s(&out)]));
}

/// Exporting a trained run without --data into a folder that holds an
/// earlier export's logits.json removes it (it would describe another
/// model); with --data, logits.json records the weights' SHA-256.
#[test]
fn trained_export_never_leaves_logits_of_another_model() {
    let d = tmpdir("stalelogits");
    let (data, out) = (d.join("d.jsonl"), d.join("out"));
    ok_out(memcap(&["gen", "-N", "20", "-n", "3", "--vocab", "6", "--classes", "3", "-o", s(&data)]));
    let (a, b) = (d.join("a"), d.join("b"));
    for (run, seed) in [(&a, "1"), (&b, "2")] {
        let o = memcap(&["train", s(&data), "--d-model", "8", "--steps", "5", "--seed", seed, "-o", s(run)]);
        assert!(run.join("model.safetensors").exists(), "{}", stderr(&o));
    }
    ok_out(memcap(&["export", s(&a), "-o", s(&out), "--data", s(&data)]));
    let logits: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("logits.json")).unwrap()).unwrap();
    use sha2::Digest;
    let digest = format!("{:x}", sha2::Sha256::digest(std::fs::read(a.join("model.safetensors")).unwrap()));
    assert_eq!(logits["model_sha256"], serde_json::Value::from(digest));
    let o = memcap(&["export", s(&b), "-o", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!out.join("logits.json").exists() && stderr(&o).contains("logits.json"), "{}", stderr(&o));
}
