//! Hostile input and resource limits (issue 12): sizes declared in files are
//! checked before anything is allocated, bad records are refused with file
//! and line, no temp file survives an error, and equal inputs give
//! byte-identical outputs.

mod common;
use common::*;
use std::path::Path;

fn refused(args: &[&str], needles: &[&str]) {
    let o = memcap(args);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    for n in needles {
        assert!(stderr(&o).contains(n), "{args:?}: {n:?} not in {}", stderr(&o));
    }
}

/// Every file in `dir` (hidden ones too): what a command left behind.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[test]
fn declared_vocabularies_past_the_limit_are_refused_before_allocating() {
    let d = tmpdir("bigvocab");
    let header = d.join("header.jsonl");
    std::fs::write(
        &header,
        "{\"memcap_dataset\":1,\"vocab\":4294967295,\"num_classes\":4}\n{\"tokens\":[1,2],\"label\":1}\n",
    )
    .unwrap();
    let token = d.join("token.jsonl");
    std::fs::write(&token, "{\"tokens\":[1,2],\"label\":1}\n{\"tokens\":[4294967295,1],\"label\":0}\n").unwrap();
    let out = d.join("m.json");
    refused(&["construct", s(&header), "-o", s(&out)], &["line 1", "vocab (header) = 4294967295", "--max-vocab"]);
    refused(&["construct", s(&token), "-o", s(&out)], &["line 2", "largest token id", "--max-vocab"]);
    assert!(!out.exists());
    // The flag raises the limit (here only far enough to be checked, not built).
    refused(&["construct", s(&token), "--max-vocab", "100", "-o", s(&out)], &["over the limit 100"]);
}

/// A small constructed model, as JSON, to tamper with.
fn model_json(d: &Path) -> (serde_json::Value, std::path::PathBuf) {
    let data = d.join("d.jsonl");
    ok(memcap(&["gen", "-N", "12", "-n", "3", "--vocab", "6", "--num-classes", "3", "-o", s(&data)]));
    let m = d.join("m.json");
    ok(memcap(&["construct", s(&data), "-o", s(&m), "--no-safetensors"]));
    (serde_json::from_str(&std::fs::read_to_string(&m).unwrap()).unwrap(), data)
}

#[test]
fn model_files_declaring_huge_sizes_consistently_are_refused_by_verify_inspect_and_export() {
    let d = tmpdir("bigmodel");
    let (m, data) = model_json(&d);
    let big = 1_000_000_000_000u64;
    let mut cases = Vec::new();
    // head_dim: config and every head matrix agree, so only the size check can stop it.
    let mut hd = m.clone();
    hd["config"]["head_dim"] = big.into();
    for b in hd["weights"]["blocks"].as_array_mut().unwrap() {
        for h in b["heads"].as_array_mut().unwrap() {
            for k in ["wq", "wk", "wv"] {
                h[k]["rows"] = big.into();
            }
            h["wo"]["cols"] = big.into();
        }
    }
    cases.push(("head_dim", hd));
    let mut ff = m.clone();
    ff["config"]["ffn_width"] = big.into();
    for b in ff["weights"]["blocks"].as_array_mut().unwrap() {
        b["ffn"]["w1"]["rows"] = big.into();
        b["ffn"]["b1"]["rows"] = big.into();
        b["ffn"]["w2"]["cols"] = big.into();
    }
    cases.push(("ffn_width", ff));
    let mut voc = m.clone();
    voc["config"]["input"]["vocab"] = big.into();
    voc["weights"]["embed"]["cols"] = big.into();
    cases.push(("vocab", voc));
    for (name, bad) in cases {
        let f = d.join(format!("{name}.json"));
        std::fs::write(&f, bad.to_string()).unwrap();
        let out = d.join(format!("exp_{name}"));
        refused(&["verify", s(&f), s(&data)], &["dense parameters", "--max-dense-params"]);
        refused(&["inspect", s(&f)], &["--max-dense-params"]);
        refused(&["export", s(&f), "-o", s(&out)], &["--max-dense-params"]);
        assert!(!out.exists(), "{name}: export left output");
    }
}

#[test]
fn a_weight_with_too_many_digits_is_refused_at_once() {
    let d = tmpdir("digits");
    let (mut m, data) = model_json(&d);
    m["weights"]["readout_bias"]["entries"] = serde_json::json!([[0, 0, format!("1{}", "0".repeat(2_000_000))]]);
    let f = d.join("digits.json");
    std::fs::write(&f, m.to_string()).unwrap();
    let t = std::time::Instant::now();
    refused(&["verify", s(&f), s(&data)], &["digits of one number", "2000001", "--max-weight-digits"]);
    assert!(t.elapsed().as_secs() < 30, "refusal must not parse the number first");
}

#[test]
fn grids_and_tasks_past_their_limits_are_errors_not_hangs() {
    let d = tmpdir("biggrid");
    let ns: Vec<usize> = (1..=10_000).collect();
    let cfg = serde_json::json!({"sweeps": [{"kind": "construct", "grid": {"N": ns, "seed": ns},
        "fixed": {"n": 8, "vocab": 100, "classes": 4}}]});
    let f = d.join("big.json");
    std::fs::write(&f, cfg.to_string()).unwrap();
    refused(&["sweep", "plan", s(&f), "-o", s(&d.join("t.jsonl"))], &["sweeps[0].grid", "100000000 tasks"]);
    refused(&["gen", "-N", "1000000000", "-n", "8", "-o", s(&d.join("g.jsonl"))], &["N × n", "over the limit"]);
    assert!(!d.join("t.jsonl").exists() && !d.join("g.jsonl").exists());
    let huge = d.join("huge.json");
    std::fs::write(
        &huge,
        r#"{"sweeps":[{"kind":"construct","fixed":{"N":1000000000,"n":8,"vocab":100,"classes":4}}]}"#,
    )
    .unwrap();
    let tasks = d.join("tasks.jsonl");
    ok(memcap(&["sweep", "plan", s(&huge), "-o", s(&tasks)]));
    let o = memcap(&["sweep", "run", s(&tasks), "-o", s(&d.join("res"))]);
    assert!(!o.status.success() && stderr(&o).contains("over the limit"), "{}", stderr(&o));
}

#[test]
fn an_existing_directory_as_output_file_is_refused_and_leaves_no_temp_file() {
    let d = tmpdir("outdir");
    let data = d.join("d.jsonl");
    ok(memcap(&["gen", "-N", "12", "-n", "3", "--vocab", "6", "--num-classes", "3", "-o", s(&data)]));
    let taken = d.join("taken");
    std::fs::create_dir(&taken).unwrap();
    let before = listing(&d);
    refused(&["gen", "-N", "12", "-n", "3", "-o", s(&taken)], &["is an existing directory"]);
    refused(&["construct", s(&data), "-o", s(&taken)], &["is an existing directory"]);
    let file = d.join("d.jsonl");
    refused(&["train", s(&data), "-o", s(&file)], &["is an existing file"]);
    assert_eq!(listing(&d), before, "a refused command left files behind");
    assert!(listing(&taken).is_empty());
}

#[test]
fn strict_datasets_unknown_version_zero_sizes_and_repeated_keys_name_the_line() {
    let d = tmpdir("strict");
    let out = d.join("m.json");
    for (name, text, needle) in [
        (
            "ver.jsonl",
            "{\"memcap_dataset\":2,\"vocab\":4,\"num_classes\":4}\n{\"tokens\":[1,2],\"label\":1}\n",
            "line 1: memcap_dataset version 2",
        ),
        (
            "v0.jsonl",
            "{\"memcap_dataset\":1,\"vocab\":0,\"num_classes\":4}\n{\"tokens\":[1,2],\"label\":1}\n",
            "line 1: vocab must be at least 1",
        ),
        (
            "c0.jsonl",
            "{\"memcap_dataset\":1,\"vocab\":4,\"num_classes\":0}\n{\"tokens\":[1,2],\"label\":1}\n",
            "line 1: num_classes must be at least 1",
        ),
        (
            "dup.jsonl",
            "{\"tokens\":[1,2],\"label\":1}\n{\"tokens\":[2,1],\"label\":0,\"label\":2}\n",
            "line 2: duplicate field `label`",
        ),
        ("frac.csv", "tok_0,tok_1,label\n1,2,1\n2,1,2.5\n", "line 3: label = \"2.5\""),
    ] {
        let f = d.join(name);
        std::fs::write(&f, text).unwrap();
        refused(&["construct", s(&f), "-o", s(&out)], &[name, needle]);
    }
    assert!(!out.exists());
}

#[test]
fn csv_as_spreadsheets_write_it_reads_like_plain_csv() {
    let d = tmpdir("csv");
    let plain = "tok_0,tok_1,label\n1,2,1\n2,1,0\n3,1,2\n";
    let files = [
        ("plain.csv", plain.to_string()),
        ("bom.csv", format!("\u{feff}{plain}")),
        ("quoted.csv", "tok_0,\"tok_1\",label\r\n\"1\",2,1\r\n2,\"1\",0\r\n\r\n3,1,2.0\r\n".to_string()),
    ];
    let mut models = Vec::new();
    for (name, text) in files {
        let f = d.join(name);
        std::fs::write(&f, text).unwrap();
        let m = d.join(format!("{name}.json"));
        ok(memcap(&["construct", s(&f), "-o", s(&m), "--no-safetensors", "--verify"]));
        models.push(std::fs::read(&m).unwrap());
    }
    assert!(models.windows(2).all(|w| w[0] == w[1]), "BOM, quotes, CRLF and 2.0 must not change the dataset");
}

#[test]
fn equal_inputs_give_byte_identical_model_safetensors_onnx_and_config_files() {
    let d = tmpdir("bytes");
    let data = d.join("d.jsonl");
    ok(memcap(&["gen", "-N", "40", "-n", "4", "--vocab", "8", "--num-classes", "3", "-o", s(&data)]));
    let mut seen: Vec<Vec<(String, Vec<u8>)>> = Vec::new();
    for run in 0..2 {
        let m = d.join(format!("m{run}.json"));
        ok(memcap(&["construct", s(&data), "-o", s(&m)]));
        let (st, onnx) = (d.join(format!("st{run}")), d.join(format!("onnx{run}")));
        ok(memcap(&["export", s(&m), "-o", s(&st), "--data", s(&data)]));
        ok(memcap(&["export", s(&m), "--format", "onnx", "-o", s(&onnx), "--data", s(&data)]));
        let mut files = vec![
            ("model.json".to_string(), std::fs::read(&m).unwrap()),
            ("model.safetensors".to_string(), std::fs::read(m.with_extension("safetensors")).unwrap()),
        ];
        for dir in [&st, &onnx] {
            for name in listing(dir) {
                files.push((name.clone(), std::fs::read(dir.join(&name)).unwrap()));
            }
        }
        seen.push(files);
    }
    assert_eq!(seen[0].len(), seen[1].len());
    for (a, b) in seen[0].iter().zip(&seen[1]) {
        assert_eq!(a.0, b.0);
        assert!(a.1 == b.1, "{} differs between two equal runs", a.0);
    }
    // Hugging Face loaders accept only format pt/tf/flax/mlx.
    let st = safetensors::SafeTensors::read_metadata(&seen[0][1].1).expect("safetensors header").1;
    let meta = st.metadata().clone().expect("metadata");
    assert_eq!(meta.get("format").map(String::as_str), Some("pt"));
    assert_eq!(meta.get("memcap_format").map(String::as_str), Some("memcap-safetensors"));
}

/// `verify` given a directory, or data that do not fit the model, names the
/// path(s) and says what it expected, with exit 2.
#[test]
fn verify_names_the_files_it_cannot_use() {
    let d = tmpdir("verifyfiles");
    let (data, other, model) = (d.join("d.jsonl"), d.join("o.jsonl"), d.join("m.json"));
    assert!(memcap(&["gen", "-N", "20", "-n", "3", "--vocab", "8", "--classes", "4", "-o", s(&data)]).status.success());
    assert!(memcap(&["gen", "-N", "20", "-n", "5", "--vocab", "8", "--classes", "4", "-o", s(&other)])
        .status
        .success());
    assert!(memcap(&["construct", s(&data), "-o", s(&model), "--no-safetensors"]).status.success());
    refused(&["verify", s(&d), s(&data)], &["is a directory, not a model JSON"]);
    refused(&["verify", s(&model), s(&other)], &["m.json", "o.jsonl", "length 5"]);
}
