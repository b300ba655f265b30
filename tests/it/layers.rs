//! The layering ARCHITECTURE.md promises, read from the sources: imports between
//! top-level modules run one way (no cycle, and only down the declared layers), the front
//! end crate depends on neither burn nor sled, and only the modules allowed to name burn,
//! sled or clap do. Test code (`#[cfg(test)]` tails, `*tests.rs` files) is left out: a
//! test may use whatever checks its module best.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::support::repo_root;

/// The non-test source of every `.rs` file under `dir`, by path.
fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir).expect("source directory");
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if !name.ends_with(".rs") || name == "tests.rs" || name.ends_with("_tests.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("source file");
            let code = match text.find("#[cfg(test)]") {
                Some(i) => &text[..i],
                None => &text,
            };
            let code: String = code
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            out.push((path, code));
        }
    }
    out.sort();
    out
}

/// The top-level module a file of `root` belongs to.
fn module_of(root: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(root).expect("under the root");
    let first = relative
        .components()
        .next()
        .and_then(|c| c.as_os_str().to_str())
        .unwrap_or("");
    first.trim_end_matches(".rs").to_string()
}

/// Top-level module → the top-level modules of the same crate it names (`crate::m`).
fn import_graph(root: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, code) in sources(root) {
        let from = module_of(root, &file);
        if from == "lib" || from == "main" {
            continue;
        }
        let entry = graph.entry(from.clone()).or_default();
        for (i, _) in code.match_indices("crate::") {
            let rest = &code[i + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && name != from {
                entry.insert(name);
            }
        }
    }
    graph
}

/// A cycle of `graph`, if it has one, as `a -> b -> a`.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<String> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<String> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle.join(" -> "));
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

/// Every import goes to a module of a lower layer (or the same one).
fn check_layers(graph: &BTreeMap<String, BTreeSet<String>>, layers: &[&[&str]]) -> Vec<String> {
    let layer_of = |module: &str| layers.iter().position(|l| l.contains(&module));
    let mut wrong = Vec::new();
    for (from, targets) in graph {
        let Some(own) = layer_of(from) else {
            wrong.push(format!(
                "`{from}` is in no layer: add it to ARCHITECTURE.md and here"
            ));
            continue;
        };
        for to in targets {
            match layer_of(to) {
                Some(layer) if layer <= own => {}
                Some(_) => wrong.push(format!("`{from}` imports `{to}`, a layer above it")),
                None => {} // a name re-exported from another crate
            }
        }
    }
    wrong
}

/// The imports between the top-level modules under `dir` have no cycle and keep to
/// `layers` (`check_layers`).
fn assert_imports_run_down(dir: &str, layers: &[&[&str]]) {
    let graph = import_graph(&repo_root().join(dir));
    assert_eq!(find_cycle(&graph), None, "{graph:#?}");
    assert_eq!(check_layers(&graph, layers), Vec::<String>::new());
}

#[test]
fn the_front_end_imports_run_down_its_layers() {
    let layers: &[&[&str]] = &[
        &["diag", "user_file", "metric_names"],
        &["syntax"],
        &["manifest"],
        &["architecture", "records"],
        &["rewards"],
        &["tasks", "metrics"],
        &["stages"],
        &["schema"],
        &["check"],
        &["plan"],
    ];
    assert_imports_run_down("crates/core/src", layers);
}

#[test]
fn execution_and_reports_import_down_their_layers() {
    // The front end's modules (re-exported from r1flow-core) lie below all of these.
    let layers: &[&[&str]] = &[
        &["store", "output_dir", "chat_isolation"],
        &["exec", "model"],
        &["train"],
        &["runners", "report"],
        &["cli"],
    ];
    assert_imports_run_down("src", layers);
}

/// ARCHITECTURE.md: a chat template is rendered in this process only by the renderer
/// child and the in-process default of the seam; everything else asks
/// `tasks::chat_render::render_all`, which the binary points at the child process.
#[test]
fn chat_templates_are_rendered_only_through_the_seam() {
    let rendering: Vec<String> = files_naming("render_in_process(").into_iter().collect();
    assert_eq!(
        rendering,
        [
            "chat_isolation/child.rs",
            "tasks/chat_render.rs",
            "tasks/chat_template.rs"
        ],
        "files that render a chat template outside the seam"
    );
    let installed = std::fs::read_to_string(repo_root().join("src/cli/mod.rs")).expect("cli");
    assert!(
        installed.contains("r1flow::chat_isolation::install();"),
        "the CLI installs the isolated renderer"
    );
}

#[test]
fn the_front_end_crate_builds_without_burn_or_sled() {
    let manifest =
        std::fs::read_to_string(repo_root().join("crates/core/Cargo.toml")).expect("Cargo.toml");
    for dependency in ["burn", "sled", "tokenizers", "safetensors", "clap"] {
        assert!(
            !manifest
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{dependency} "))
                    || l.trim_start().starts_with(&format!("{dependency}="))),
            "crates/core depends on {dependency}"
        );
    }
}

/// Which files name a crate, as `module/file` paths relative to `src/`.
fn files_naming(pattern: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for root in [repo_root().join("src"), repo_root().join("crates/core/src")] {
        for (file, code) in sources(&root) {
            if code.contains(pattern) {
                let relative = file.strip_prefix(&root).expect("under the root");
                found.insert(relative.display().to_string());
            }
        }
    }
    found
}

#[test]
fn only_the_model_layer_names_burn_only_the_store_sled_only_the_cli_clap() {
    let outside = |pattern: &str, allowed: &[&str]| -> Vec<String> {
        files_naming(pattern)
            .into_iter()
            .filter(|f| !allowed.iter().any(|a| f.starts_with(a)))
            .collect()
    };
    assert_eq!(
        outside("burn::", &["model/", "train/"]),
        Vec::<String>::new()
    );
    assert_eq!(outside("sled::", &["store/"]), Vec::<String>::new());
    // `generate` and `export` keep their flags with the model layer (ARCHITECTURE.md).
    assert_eq!(
        outside("clap::", &["cli/", "model/cli.rs"]),
        Vec::<String>::new()
    );
    assert_eq!(
        outside("anyhow", &["cli/", "model/cli.rs", "main.rs"]),
        Vec::<String>::new()
    );
}

/// ARCHITECTURE.md: only `cli/` writes to stdout or stderr, and there only through
/// `cli/terminal.rs`, whose writes survive a closed pipe (`eprintln!` panics on one).
#[test]
fn only_the_cli_terminal_prints() {
    let mut printing = BTreeSet::new();
    for macro_name in ["println!", "eprintln!", "print!(", "eprint!(", "dbg!("] {
        printing.extend(files_naming(macro_name));
    }
    printing.extend(files_naming("std::io::stdout()"));
    printing.extend(files_naming("std::io::stderr()"));
    let allowed = ["cli/terminal.rs", "cli/mod.rs"];
    let outside: Vec<String> = printing
        .into_iter()
        .filter(|f| !allowed.contains(&f.as_str()))
        .collect();
    assert_eq!(
        outside,
        Vec::<String>::new(),
        "files that print outside cli/terminal.rs"
    );
}

/// ARCHITECTURE.md: every file a manifest names (a dataset, a word list, a tokenizer, a
/// chat template, a checkpoint) is read through `user_file`, which refuses FIFOs and
/// devices and stops at a byte limit. The front end (the core crate) and the model layer
/// open no file otherwise; the exceptions read the kernel's own files.
#[test]
fn files_a_manifest_names_are_read_through_user_file() {
    let allowed = [
        "user_file.rs",
        // /proc/meminfo and the cgroup's memory limit
        "check/capabilities.rs",
        // /proc/self/status
        "rewards/sandbox.rs",
        // /sys's description of the CPU caches (the native profile's machine)
        "check/numerics.rs",
    ];
    let mut outside = BTreeSet::new();
    for root in [
        repo_root().join("crates/core/src"),
        repo_root().join("src/model"),
    ] {
        for (file, code) in sources(&root) {
            let relative = file
                .strip_prefix(&root)
                .expect("under the root")
                .display()
                .to_string();
            let opens = ["fs::read(", "fs::read_to_string(", "File::open("]
                .iter()
                .any(|pattern| code.contains(pattern));
            if opens && !allowed.contains(&relative.as_str()) {
                outside.insert(relative);
            }
        }
    }
    assert_eq!(
        outside,
        BTreeSet::new(),
        "files that open files without user_file"
    );
}

/// Stage kinds are told apart through `stages::StageKind` (and the kind enums), never by
/// comparing their names as strings outside the kind registry (`crates/core/src/stages/`):
/// a renamed or added kind is then a compile error, not a branch that silently stops
/// matching.
#[test]
fn stage_kinds_are_not_compared_as_strings() {
    let mut comparing = BTreeSet::new();
    for pattern in ["kind == \"", "kind != \"", "kind() == \"", "kind() != \""] {
        comparing.extend(files_naming(pattern));
    }
    let outside: Vec<String> = comparing
        .into_iter()
        .filter(|f| !f.starts_with("stages/"))
        .collect();
    assert_eq!(outside, Vec::<String>::new(), "files comparing kind names");
}

/// Metric names are written once (`metric_names`), for the code that logs them and the
/// reports that read them: no other source file spells one as a string. (The short ones —
/// `loss`, `reward`, `kl`, `entropy`, `steps` — are also plot labels and plain words, and
/// `learning_rate` is a parameter's name; those are left out of the check.)
#[test]
fn metric_names_are_written_once() {
    let distinctive = r1flow::metric_names::ALL
        .iter()
        .filter(|n| (n.contains('_') || n.contains('/')) && **n != "learning_rate");
    let mut spelled = BTreeSet::new();
    for name in distinctive {
        for file in files_naming(&format!("\"{name}\"")) {
            if file != "metric_names.rs" {
                spelled.insert(format!("{file}: {name}"));
            }
        }
    }
    assert_eq!(
        spelled,
        BTreeSet::new(),
        "metric names spelled outside metric_names.rs"
    );
}

/// A stage's inputs cross from the front end to its runner typed (`stages::InputField`):
/// no runner or training loop looks one up by a string (`inputs.get("from")`,
/// `read_records("prompts", …)`), which would compile with a typo and fail at run time.
#[test]
fn inputs_are_not_looked_up_by_string() {
    let mut by_string = BTreeSet::new();
    for pattern in [
        "inputs.get(\"",
        "read_records(\"",
        "read_input(\"",
        "input(\"",
        "load_input(context, \"",
        "_field: \"",
    ] {
        by_string.extend(files_naming(pattern));
    }
    assert_eq!(
        by_string,
        BTreeSet::new(),
        "files looking inputs up by string"
    );
}

/// The portable profile holds only if no tensor is reduced by burn's own sums, whose order
/// follows the CPU's vector width (and, past 4M elements, the thread count): outside the
/// kernels, tensors are summed through `model::kernels` (`sum`, `mean`, `sum_last`,
/// `expand_last`, `log_softmax`), whose CPU implementations add in a fixed order.
#[test]
fn tensors_are_reduced_only_by_the_ordered_kernels() {
    let kernels = repo_root().join("src/model/kernels");
    let mut found = Vec::new();
    for (file, code) in sources(&repo_root().join("src")) {
        if file.starts_with(&kernels) || !(code.contains("burn::") || code.contains("Tensor<")) {
            continue;
        }
        for line in code.lines() {
            let burn_reduction = [
                ".sum_dim(",
                ".mean_dim(",
                ".expand(",
                "activation::softmax",
                "activation::log_softmax",
                ".var(",
            ]
            .iter()
            .any(|p| line.contains(p));
            // `.sum()` / `.mean()` on a tensor; an iterator's sum is exact in its order.
            let tensor_sum = (line.contains(".sum()") || line.contains(".mean()"))
                && !line.contains("iter")
                && !line.contains("values()");
            if burn_reduction || tensor_sum {
                found.push(format!("{}: {}", file.display(), line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "tensors reduced by burn's own sums:\n{}",
        found.join("\n")
    );
}

/// One training loop: only `train/training_loop.rs` builds an optimizer, resumes from a
/// checkpoint, schedules the learning rate, logs a training step or writes a checkpoint;
/// the training kinds supply a `Learner` to it.
#[test]
fn one_training_loop_serves_every_training_kind() {
    let train = repo_root().join("src/train");
    let allowed = |file: &Path| {
        // The loop, and the files that define what it calls.
        ["training_loop.rs", "state.rs", "update.rs", "schedule.rs"]
            .iter()
            .any(|name| file == train.join(name))
    };
    let mut found = Vec::new();
    for (file, code) in sources(&repo_root().join("src")) {
        if allowed(&file) {
            continue;
        }
        for pattern in [
            "AdamWConfig::new",
            "resumed_state(",
            "checkpoint_if_due(",
            "learning_rate_at(",
            "load_optimizer(",
        ] {
            if code.contains(pattern) {
                found.push(format!("{}: {pattern}", file.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "a training loop of its own outside train/training_loop.rs:\n{}",
        found.join("\n")
    );
    let learners = sources(&train)
        .into_iter()
        .filter(|(_, code)| code.contains("impl<B: TrainBackend> Learner<B> for"))
        .count();
    assert_eq!(
        learners, 3,
        "supervised, reward model and GRPO each give the loop a Learner"
    );
}

/// Adding a stage kind is its two files — the config in `crates/core/src/stages/`, the
/// runner in `src/runners/` — and one entry in each crate's registry (`stage_kinds!` and
/// the runners' match, with their `mod` lines). Proven on the kinds that have no
/// behaviour beyond their own files: nothing else in the code names them.
#[test]
fn a_stage_kind_is_its_own_files_and_one_registry_entry_per_crate() {
    let registries = [
        "crates/core/src/stages/mod.rs".to_string(),
        "src/runners/mod.rs".to_string(),
    ];
    for (variant, file) in [
        ("Pretrain", "pretrain"),
        ("RejectionSampling", "rejection_sampling"),
        ("Distill", "distill"),
    ] {
        let own = [
            format!("crates/core/src/stages/{file}.rs"),
            format!("src/runners/{file}.rs"),
        ];
        let mut naming = BTreeSet::new();
        for dir in ["src", "crates/core/src"] {
            for (path, code) in sources(&repo_root().join(dir)) {
                let relative = path
                    .strip_prefix(repo_root())
                    .expect("under the repository")
                    .display()
                    .to_string();
                let names_it = code
                    .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .any(|word| word == variant || word == format!("{variant}Stage"));
                if names_it && !own.contains(&relative) {
                    naming.insert(relative);
                }
            }
        }
        assert_eq!(
            naming,
            registries.iter().cloned().collect::<BTreeSet<_>>(),
            "`{variant}` is named outside its own files and the two registries"
        );
        for registry in &registries {
            let code = std::fs::read_to_string(repo_root().join(registry)).expect("registry");
            let lines = code
                .lines()
                .filter(|line| {
                    line.trim() == format!("mod {file};")
                        || line
                            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                            .any(|word| word == variant)
                })
                .count();
            assert!(
                (2..=3).contains(&lines),
                "{registry} names `{variant}` on {lines} lines: its `mod` line, its entry and \
                 (in core) its re-export"
            );
        }
    }
}

/// One parameter, one declaration: a shared parameter's field, default, range, key rule and
/// resolved name come from its declaration in `manifest/params.rs` alone. Written anywhere
/// else, it would be a second place to keep in sync: a `pub NAME:` field in a stage or
/// manifest struct (the splice writes those), a `("NAME", Range::…)` rule, or a `"NAME"`
/// string in `plan/` (the key rules come from the declarations).
#[test]
fn a_shared_parameter_is_declared_once() {
    let declarations = "crates/core/src/manifest/params.rs";
    let names: Vec<&str> = r1flow::manifest::params::declared_parameters()
        .map(|declared| declared.name)
        .collect();
    assert!(names.len() > 30, "only {} shared parameters", names.len());
    let mut found = Vec::new();
    for (path, code) in sources(&repo_root().join("crates/core/src")) {
        let relative = path
            .strip_prefix(repo_root())
            .expect("under the repository")
            .display()
            .to_string();
        if relative == declarations {
            continue;
        }
        let declares_configs = relative.contains("/stages/") || relative.contains("/manifest/");
        for line in code.lines() {
            let line = line.trim();
            for name in &names {
                let field = declares_configs && line.starts_with(&format!("pub {name}:"));
                let range = line.contains(&format!("(\"{name}\", Range::"));
                let key = relative.contains("/plan/") && line.contains(&format!("\"{name}\""));
                if field || range || key {
                    found.push(format!("{relative}: {line}"));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "shared parameters written outside their declaration ({declarations}): {found:#?}"
    );
}
