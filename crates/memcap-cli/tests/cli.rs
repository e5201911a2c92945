//! The `memcap` binary, run as a user would: exit codes (0 ok, 1 not
//! memorized, 2 error), error messages naming file and line, no partial
//! output on failure, JSON output, and the safetensors export.

mod common;
use common::*;

#[test]
fn gen_construct_verify_round_trip() {
    let d = tmpdir("round");
    let (data, model) = (d.join("data.jsonl"), d.join("model.json"));
    let o = memcap(&["gen", "-N", "300", "-n", "6", "--vocab", "50", "--classes", "8", "--seed", "3", "-o", s(&data)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = memcap(&["construct", s(&data), "-o", s(&model)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("params nonzero"));
    assert!(d.join("model.safetensors").exists());
    let o = memcap(&["verify", s(&model), s(&data), "--exact", "--f64", "--f32"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("exact  memorized 300/300"), "{}", stdout(&o));
    // JSON output is machine-readable and carries the accounting.
    let o = memcap(&["verify", s(&model), s(&data), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["results"][0]["report"]["memorized"], 300);
    assert!(v["accounting"]["params_nonzero"].as_u64().unwrap() > 0);
    let o = memcap(&["inspect", s(&model), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["config"]["task"], "next-token");
}

/// `gen -o x.csv` writes memcap's CSV format (with V and C), which every
/// command reads back as the same data; token vectors cannot be CSV and
/// leave no file.
#[test]
fn gen_writes_csv_for_a_csv_path_and_it_reads_back() {
    let d = tmpdir("gencsv");
    let (jsonl, csv, model) = (d.join("d.jsonl"), d.join("d.csv"), d.join("m.json"));
    for out in [&jsonl, &csv] {
        ok(memcap(&["gen", "-N", "40", "-n", "4", "--vocab", "500", "--classes", "90", "--seed", "2", "-o", s(out)]));
    }
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.starts_with("# memcap_dataset") && text.contains("tok_0,tok_1,tok_2,tok_3,label"), "{text}");
    ok(memcap(&["construct", s(&csv), "-o", s(&model), "--no-safetensors"]));
    let o = memcap(&["inspect", s(&model), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!((v["config"]["input"]["vocab"].as_u64(), v["config"]["num_classes"].as_u64()), (Some(500), Some(90)));
    let o = memcap(&["verify", s(&model), s(&jsonl)]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("memorized 40/40"), "{}", stdout(&o));
    let v = d.join("v.csv");
    let o = memcap(&["gen", "-N", "5", "-n", "3", "--kind", "vectors", "-o", s(&v)]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("v.csv") && !v.exists(), "{}", stderr(&o));
}

#[test]
fn wrong_labels_exit_with_code_1() {
    let d = tmpdir("wrong");
    let (data, model) = (d.join("data.jsonl"), d.join("model.json"));
    assert!(memcap(&["gen", "-N", "50", "-n", "4", "--vocab", "20", "--classes", "4", "-o", s(&data)])
        .status
        .success());
    assert!(memcap(&["construct", s(&data), "-o", s(&model)]).status.success());
    // Change one label: the model memorized the old one.
    let text = std::fs::read_to_string(&data).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let rec: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
    let y = rec["label"].as_u64().unwrap();
    lines[1] = lines[1].replace(&format!("\"label\":{y}"), &format!("\"label\":{}", (y + 1) % 4));
    std::fs::write(&data, lines.join("\n")).unwrap();
    let o = memcap(&["verify", s(&model), s(&data)]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("memorized 49/50"), "{}", stdout(&o));
    assert!(stdout(&o).contains("line 2, position 4"), "{}", stdout(&o));
}

#[test]
fn bad_input_exits_2_names_file_and_line_and_writes_nothing() {
    let d = tmpdir("bad");
    let (data, model) = (d.join("bad.jsonl"), d.join("model.json"));
    std::fs::write(&data, "{\"tokens\":[1,2,3],\"label\":0}\n{\"tokens\":[1,2],\"label\":1}\n").unwrap();
    let o = memcap(&["construct", s(&data), "-o", s(&model)]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("bad.jsonl: line 2: sequence has length 2"), "{err}");
    assert!(!model.exists() && !d.join("model.safetensors").exists());
    assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1, "no temp files left behind");

    std::fs::write(&data, "{\"tokens\":[1,2,3],\"label\":0}\n{\"tokens\":[2,1,3],\"label\":1}\n").unwrap();
    let o = memcap(&["construct", s(&data), "-o", s(&model)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("line 1 and line 2"), "{}", stderr(&o));
    // --dedupe majority keeps one label and reports the cap.
    let o = memcap(&["construct", s(&data), "-o", s(&model), "--dedupe", "majority", "--verify"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("best achievable accuracy 50.00%"), "{}", stderr(&o));

    let o = memcap(&["verify", s(&d.join("missing.json")), s(&data)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("missing.json"), "{}", stderr(&o));
}

/// Export round-trip: the safetensors file `construct` writes holds the f64
/// weights of the one Transformer forward (PyTorch names, [out, in] layout):
/// every tensor of `forward_weights`, the embedding as W_Eᵀ and the value
/// readout as w_oᵀ.
#[test]
fn safetensors_export_holds_the_f64_weights() {
    let d = tmpdir("st");
    let (data, model) = (d.join("data.jsonl"), d.join("model.json"));
    assert!(memcap(&["gen", "-N", "40", "-n", "3", "--vocab", "10", "--classes", "3", "-o", s(&data)])
        .status
        .success());
    assert!(memcap(&["construct", s(&data), "-o", s(&model)]).status.success());
    let m = memcap_core::Model::from_json(&std::fs::read_to_string(&model).unwrap()).unwrap();
    let bytes = std::fs::read(d.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let read = |name: &str| -> (Vec<usize>, Vec<f64>) {
        let view = st.tensor(name).unwrap_or_else(|_| panic!("{name} missing"));
        assert_eq!(view.dtype(), safetensors::Dtype::F64);
        (view.shape().to_vec(), view.data().chunks(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect())
    };
    let (_, forward) = memcap_export::onnx::forward_weights(&m, memcap_core::certificate::FloatType::F64).unwrap();
    assert_eq!(st.names().len(), forward.len());
    for (name, shape, vals) in &forward {
        assert_eq!(&read(name), &(shape.clone(), vals.clone()), "{name}");
    }
    let (e, we) = (read("embed.weight"), &m.weights.embed);
    assert_eq!(e.0, vec![we.cols, we.rows]);
    let dense = we.to_dense_f64();
    for r in 0..we.rows {
        for c in 0..we.cols {
            assert_eq!(e.1[c * we.rows + r], dense[r * we.cols + c], "embed.weight[{c}, {r}]");
        }
    }
    assert_eq!(read("head.weight").1, m.weights.readout.to_dense_f64());
}

#[test]
fn text_windows_with_learned_positions() {
    let d = tmpdir("text");
    let (txt, data, model) = (d.join("t.txt"), d.join("data.jsonl"), d.join("model.json"));
    std::fs::write(&txt, "dog bites man. man bites dog. the dog bites the man.").unwrap();
    let o = memcap(&["gen", "--text", s(&txt), "-n", "5", "--positional", "learned", "-o", s(&data)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("best achievable accuracy"), "{}", stderr(&o));
    let o = memcap(&["construct", s(&data), "-o", s(&model), "--positional", "learned", "--verify"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("M2: learned positions"), "{}", stdout(&o));
}

#[test]
fn demo_runs_and_memorizes() {
    let o = memcap(&["demo", "-N", "200", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["verify"][0]["memorized"], 200);
    assert_eq!(v["verify"][0]["arithmetic"], "exact");
}

/// MultiNLI and IMDb cannot be downloaded here; a user who has them locally
/// gets next-token windows from the files as they are distributed. The test
/// writes small files in those formats.
#[test]
fn local_multinli_and_imdb_files_become_next_token_windows() {
    let d = tmpdir("corpus");
    let nli = d.join("multinli_1.0_train.jsonl");
    std::fs::write(
        &nli,
        "{\"gold_label\":\"neutral\",\"sentence1\":\"The cat sat.\",\"sentence2\":\"A cat is sitting.\"}\n\
         {\"gold_label\":\"entailment\",\"sentence1\":\"It rains.\",\"sentence2\":\"Water falls.\"}\n",
    )
    .unwrap();
    let out = d.join("nli.jsonl");
    ok(memcap(&["gen", "--text", s(&nli), "--corpus", "multinli", "-n", "4", "-o", s(&out)]));
    let rows = std::fs::read_to_string(&out).unwrap();
    // "The cat sat.\nA cat is sitting.\nIt rains.\nWater falls.\n" = 54 bytes → 50 windows before dedupe.
    assert!(rows.lines().count() > 30, "{rows}");

    let csv = d.join("IMDB Dataset.csv");
    std::fs::write(&csv, "review,sentiment\n\"Great film, truly.<br />Loved it\",positive\n\"Dull.\",negative\n")
        .unwrap();
    let out2 = d.join("imdb.jsonl");
    ok(memcap(&["gen", "--text", s(&csv), "--corpus", "imdb", "-n", "3", "-o", s(&out2)]));
    assert!(std::fs::read_to_string(&out2).unwrap().lines().count() > 10);

    let folder = d.join("aclImdb/train/pos");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("0_9.txt"), "A fine and moving story.").unwrap();
    let out3 = d.join("acl.jsonl");
    ok(memcap(&["gen", "--text", s(&d.join("aclImdb")), "--corpus", "imdb", "-n", "3", "-o", s(&out3)]));
    assert!(std::fs::read_to_string(&out3).unwrap().lines().count() > 10);

    // A MultiNLI line without sentence2 names its line; exit 2, no output.
    let bad = d.join("bad.jsonl");
    std::fs::write(&bad, "{\"sentence1\":\"x\",\"sentence2\":\"y\"}\n{\"sentence1\":\"only\"}\n").unwrap();
    let o = memcap(&["gen", "--text", s(&bad), "--corpus", "multinli", "-n", "2", "-o", s(&d.join("no.jsonl"))]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("line 2") && stderr(&o).contains("sentence2"), "{}", stderr(&o));
    assert!(!d.join("no.jsonl").exists());
}

/// Bad training flags are a clear error naming the flag, exit 2, no output folder.
#[test]
fn bad_training_flags_name_the_flag_and_exit_2() {
    let d = tmpdir("badflags");
    let data = d.join("t.jsonl");
    ok(memcap(&["gen", "-N", "16", "-n", "4", "--vocab", "8", "--num-classes", "2", "-o", s(&data)]));
    let out = d.join("run");
    for (args, flag) in [
        (vec!["train", s(&data), "--lr", "-1", "-o", s(&out)], "--lr"),
        (vec!["train", s(&data), "--lr", "NaN", "-o", s(&out)], "--lr"),
        (vec!["train", s(&data), "--steps", "0", "-o", s(&out)], "--steps"),
        (vec!["train", s(&data), "--grad-clip", "-2", "-o", s(&out)], "--grad-clip"),
        (vec!["train", s(&data), "--threads", "0", "-o", s(&out)], "--threads"),
        (vec!["capacity", s(&data), "--widths", "0,4", "-o", s(&out)], "--widths"),
        (vec!["capacity", s(&data), "--blocks", "0", "-o", s(&out)], "--blocks"),
        (vec!["capacity", s(&data), "--heads", "0", "-o", s(&out)], "--heads"),
        (vec!["capacity", s(&data), "--seeds", "", "-o", s(&out)], "--seeds"),
        (vec!["capacity", s(&data), "--max-grow", "40", "-o", s(&out)], "--max-grow"),
        (vec!["train", s(&data), "--max-vocab", "4", "-o", s(&out)], "--max-vocab"),
        (vec!["capacity", s(&data), "--max-vocab", "4", "-o", s(&out)], "--max-vocab"),
        (vec!["train", s(&data), "--weight-decay", "NaN", "-o", s(&out)], "--weight-decay"),
        (
            vec![
                "capacity",
                s(&data),
                "--steps",
                "18446744073709551615",
                "--max-grow",
                "0",
                "--widths",
                "4",
                "-o",
                s(&out),
            ],
            "steps",
        ),
    ] {
        let o = memcap(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(flag), "{args:?}: {}", stderr(&o));
        assert!(!out.exists(), "{args:?} left output");
    }
}

/// `verify --shard I/K -o FILE` per shard, then `verify merge`: the merged
/// counts equal one run's, exit 1 for a planted wrong label, exit 2 (with
/// the file named) for a missing or foreign shard.
#[test]
fn sharded_verify_and_merge_match_one_run() {
    let d = tmpdir("shards");
    let data = d.join("d.jsonl");
    ok(memcap(&["gen", "-N", "30", "-n", "4", "--vocab", "9", "--num-classes", "4", "-o", s(&data)]));
    let model = d.join("m.json");
    ok(memcap(&["construct", s(&data), "-o", s(&model), "--no-safetensors"]));
    let text = std::fs::read_to_string(&data).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut rec: serde_json::Value = serde_json::from_str(&lines[4]).unwrap();
    rec["label"] = ((rec["label"].as_u64().unwrap() + 1) % 4).into();
    lines[4] = rec.to_string();
    let bad = d.join("bad.jsonl");
    std::fs::write(&bad, lines.join("\n") + "\n").unwrap();
    let files: Vec<std::path::PathBuf> = (0..3).map(|i| d.join(format!("shard{i}.json"))).collect();
    for (i, f) in files.iter().enumerate() {
        memcap(&["verify", s(&model), s(&bad), "--shard", &format!("{i}/3"), "-o", s(f)]);
        assert!(f.exists(), "shard {i} written");
    }
    let args: Vec<&str> = ["verify", "merge"].into_iter().chain(files.iter().map(|f| s(f))).collect();
    let o = memcap(&args);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stdout(&o).contains("memorized 29/30"), "{}", stdout(&o));
    let o = memcap(&["verify", "merge", s(&files[0]), s(&files[2])]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("1 of 3 shards are missing: 1"), "{}", stderr(&o));
    let other = d.join("other.json");
    memcap(&["verify", s(&model), s(&data), "--shard", "1/3", "-o", s(&other)]);
    let o = memcap(&["verify", "merge", s(&files[0]), s(&other), s(&files[2])]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("other.json") && stderr(&o).contains("data hash"), "{}", stderr(&o));
    let o = memcap(&["verify", s(&model), s(&data), "--shard", "3/3", "-o", s(&d.join("x.json"))]);
    assert_eq!(o.status.code(), Some(2));
    // More shards than examples, or a shard file claiming so: refused, no panic.
    let o = memcap(&["verify", s(&model), s(&data), "--shard", "0/18446744073709551615", "-o", s(&d.join("x.json"))]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("need K <= N"), "{}", stderr(&o));
    let mut forged: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap();
    forged["shards"] = u64::MAX.into();
    let forged_path = d.join("forged.json");
    std::fs::write(&forged_path, forged.to_string()).unwrap();
    let o = memcap(&["verify", "merge", s(&forged_path)]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("forged.json") && stderr(&o).contains("inconsistent"), "{}", stderr(&o));
    // A duplicate names both files.
    let o = memcap(&["verify", "merge", s(&files[0]), s(&files[1]), s(&files[2]), s(&files[1])]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("shard1.json and") && stderr(&o).contains("given twice"), "{}", stderr(&o));
}

/// `-o` never replaces an input, and a directory path (existing or ending in
/// `/`) is refused before any work; written files get the umask's mode, as
/// a plain file create would (not the temp file's 0600).
#[test]
fn outputs_never_replace_inputs_and_follow_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let d = tmpdir("outputs");
    let data = d.join("d.jsonl");
    ok(memcap(&["gen", "-N", "20", "-n", "3", "--vocab", "9", "--num-classes", "4", "-o", s(&data)]));
    let plain = d.join("plain");
    std::fs::File::create(&plain).unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), mode(&plain), "gen output mode");
    let before = std::fs::read(&data).unwrap();
    let o = memcap(&["construct", s(&data), "-o", s(&data), "--no-safetensors"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("is an input"), "{}", stderr(&o));
    assert_eq!(std::fs::read(&data).unwrap(), before, "the dataset is untouched");
    let model = d.join("m.json");
    ok(memcap(&["construct", s(&data), "-o", s(&model), "--no-safetensors"]));
    assert_eq!(mode(&model), mode(&plain), "construct output mode");
    let o = memcap(&["verify", s(&model), s(&data), "--shard", "0/2", "-o", s(&model)]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let newdir = format!("{}/", d.join("newdir").display());
    let o = memcap(&["verify", s(&model), s(&data), "--shard", "0/2", "-o", &newdir]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("directory path"), "{}", stderr(&o));
    let o = memcap(&["verify", s(&model), s(&data), "--shard", "0/2", "--f64", "--exact", "-o", s(&d.join("x.json"))]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

/// `capacity --quiet` prints the result without the per-size progress lines.
#[test]
fn capacity_quiet_prints_the_result_without_progress_lines() {
    let d = tmpdir("capquiet");
    let data = d.join("d.jsonl");
    ok(memcap(&["gen", "-N", "20", "-n", "3", "--vocab", "6", "--classes", "2", "-o", s(&data)]));
    let run = |quiet: bool| {
        let out = d.join(if quiet { "q" } else { "v" });
        let mut args = vec!["capacity", s(&data), "--widths", "8", "--max-grow", "0", "--steps", "100", "-o", s(&out)];
        if quiet {
            args.push("--quiet");
        }
        let o = memcap(&args);
        assert!(out.join("capacity.json").exists(), "{}", stderr(&o));
        (stdout(&o), stderr(&o))
    };
    let (loud_out, loud_err) = run(false);
    let (quiet_out, quiet_err) = run(true);
    assert!(loud_err.contains("params: memorized"), "{loud_err}");
    assert!(!quiet_err.contains("params: memorized"), "{quiet_err}");
    // The result line (its timing aside) is printed either way.
    let first_word = |t: &str| t.split_whitespace().next().map(str::to_string);
    assert!(!quiet_out.trim().is_empty() && first_word(&quiet_out) == first_word(&loud_out), "{quiet_out}");
}
