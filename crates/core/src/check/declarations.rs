//! Check: the values of `models:`, `datasets:` and `rewards:` entries, and the files they
//! name (checkpoints, JSONL files, word lists, verifier programs) — so that a missing file
//! fails `validate`, not a run an hour in.

use std::path::{Component, Path, PathBuf};

use indexmap::IndexMap;

use crate::architecture::{self, ModelConfig};

use crate::diag::Diagnostic;
use crate::manifest::{
    CodeSandbox, DatasetDecl, LanguageDetection, ModelDecl, Operation, RewardDecl, Scratchpad,
    SolutionNoise, ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, LORA_ALL_LINEAR, LORA_TARGET_MODULES,
    MAX_GENERATED_SAMPLES, MAX_LORA_RANK,
};
use crate::records;
use crate::syntax::{Document, YamlPath};
use crate::user_file;

struct At<'a> {
    doc: &'a Document,
    path: YamlPath,
    what: String,
    diagnostics: &'a mut Vec<Diagnostic>,
}

impl At<'_> {
    fn ensure(
        &mut self,
        ok: bool,
        field: &str,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        if !ok {
            let path = if field.is_empty() {
                self.path.clone()
            } else {
                self.path.key(field)
            };
            let location = if field.is_empty() {
                self.doc.key_location(&path)
            } else {
                self.doc.value_location(&path)
            };
            self.diagnostics.push(
                Diagnostic::error(format!("{}: {}", self.what, message.into()))
                    .at(Some(location))
                    .with_help(help),
            );
        }
    }

    /// Whether `file`, a `what` the manifest names at `field`, is a regular file; if it is
    /// not, reports what it is, with `help`.
    fn ensure_named_file(&mut self, file: &Path, what: &str, field: &str, help: &str) -> bool {
        match named_file(file, what) {
            Ok(()) => true,
            Err(problem) => {
                self.ensure(false, field, problem, help);
                false
            }
        }
    }
}

/// Whether `file`, a `what` the manifest names, is a regular file; if not, what it is.
fn named_file(file: &Path, what: &str) -> Result<(), String> {
    match user_file::check_regular(file) {
        Ok(_) => Ok(()),
        Err(e) if e.is_missing() => Err(format!("{what} `{}` does not exist", file.display())),
        Err(e) => Err(format!("{what} `{}`: {e}", file.display())),
    }
}

pub(crate) fn check_models(
    doc: &Document,
    base_dir: &Path,
    models: &IndexMap<String, ModelDecl>,
    can: &crate::check::Capabilities,
    diagnostics: &mut Vec<Diagnostic>,
) -> IndexMap<String, ModelConfig> {
    let mut architectures = IndexMap::new();
    for (name, model) in models {
        let errors_before = diagnostics.iter().filter(|d| d.is_error()).count();
        // The rank and modules of a well-formed `adapter:`, checked against the weights
        // once the architecture is known.
        let mut adapter_shape: Option<(usize, Vec<String>)> = None;
        let mut at = At {
            doc,
            path: YamlPath::root().key("models").key(name.as_str()),
            what: format!("model `{name}`"),
            diagnostics,
        };
        at.ensure(
            model.preset.is_some() != model.path.is_some(),
            "",
            "give exactly one of `preset` (fresh weights) or `path` (a checkpoint directory)",
            "e.g. `preset: tiny`, or `path: checkpoints/qwen2.5-0.5b`",
        );
        for (field, value) in [
            ("hidden_size", model.hidden_size),
            ("num_hidden_layers", model.num_hidden_layers),
            ("num_attention_heads", model.num_attention_heads),
            ("num_key_value_heads", model.num_key_value_heads),
            ("intermediate_size", model.intermediate_size),
            ("max_position_embeddings", model.max_position_embeddings),
        ] {
            at.ensure(
                value != Some(0),
                field,
                format!("`{field}` must be at least 1"),
                "sizes are positive",
            );
            if let (Some(value), Some(limit)) = (value, architecture::dimension_limit(field)) {
                at.ensure(
                    value <= limit,
                    field,
                    format!("`{field}` must be at most {limit}, not {value}"),
                    DIMENSION_HELP,
                );
            }
        }
        if let (Some(hidden), Some(heads)) = (model.hidden_size, model.num_attention_heads) {
            at.ensure(
                heads == 0 || hidden % heads == 0,
                "num_attention_heads",
                format!("`hidden_size` {hidden} is not divisible by `num_attention_heads` {heads}"),
                "each head gets hidden_size / num_attention_heads dimensions",
            );
        }
        if let (Some(heads), Some(kv)) = (model.num_attention_heads, model.num_key_value_heads) {
            at.ensure(kv == 0 || heads % kv == 0, "num_key_value_heads", format!("`num_attention_heads` {heads} is not divisible by `num_key_value_heads` {kv}"), "grouped-query attention shares each key/value head among a whole number of query heads");
        }
        if let Some(theta) = model.rope_theta {
            at.ensure(
                theta.is_finite() && theta > 0.0,
                "rope_theta",
                format!("`rope_theta` must be greater than 0, not {theta}"),
                "Qwen2 uses 1000000, Llama 500000",
            );
        }
        if let Some(path) = &model.path {
            let dir = base_dir.join(path);
            if !dir.is_dir() {
                at.ensure(
                    false,
                    "path",
                    format!("checkpoint directory `{}` does not exist", dir.display()),
                    "paths are relative to the manifest's directory",
                );
            } else {
                at.ensure(
                    dir.join("config.json").is_file(),
                    "path",
                    format!("`{}` has no config.json", dir.display()),
                    "a HuggingFace checkpoint directory holds config.json, *.safetensors and tokenizer.json",
                );
            }
        }
        if let Some(adapter) = &model.adapter {
            if model.path.is_none() {
                at.ensure(
                    false,
                    "adapter",
                    "`adapter` is merged into a checkpoint: give `path` too",
                    "a PEFT adapter is trained on a checkpoint, e.g. `path: checkpoints/qwen2.5-0.5b` with `adapter: adapters/grpo-lora`",
                );
            } else {
                match check_adapter_dir(&base_dir.join(adapter)) {
                    Ok(shape) => adapter_shape = Some(shape),
                    Err(problem) => at.ensure(
                        false,
                        "adapter",
                        problem,
                        "name a PEFT LoRA adapter directory (adapter_config.json and adapter_model.safetensors, as `save_pretrained` or an export with `merge: false` writes it), relative to the manifest's directory",
                    ),
                }
            }
        }
        if let Some(tokenizer) = &model.tokenizer {
            at.ensure_named_file(
                &base_dir.join(tokenizer),
                "tokenizer file",
                "tokenizer",
                "name a tokenizer.json, relative to the manifest's directory",
            );
        }
        // What the model layer will build: anything it would refuse is refused here.
        if at.diagnostics.iter().filter(|d| d.is_error()).count() == errors_before {
            match architecture::of_decl(model, base_dir) {
                Ok(config) => {
                    check_model_memory(&mut at, model, &config, can.memory_bytes);
                    // The weights' headers against config.json: a file cut short, a tensor
                    // missing or of another shape fails here, not when a stage loads it.
                    if let Some(path) = &model.path {
                        if let Err(problem) =
                            architecture::check_weight_headers(&base_dir.join(path), &config)
                        {
                            at.ensure(
                                false,
                                "path",
                                format!("r1flow cannot load this checkpoint: {problem}"),
                                "a checkpoint's weights must be whole and of the model its config.json describes",
                            );
                        } else if let (Some(adapter), Some((rank, modules))) =
                            (&model.adapter, &adapter_shape)
                        {
                            // The adapter's tensors against the checkpoint it is merged into.
                            let modules: Vec<&str> = modules.iter().map(String::as_str).collect();
                            if let Err(problem) = architecture::check_adapter_headers(
                                &base_dir.join(adapter).join(ADAPTER_WEIGHTS_FILE),
                                &config,
                                *rank,
                                &modules,
                            ) {
                                at.ensure(
                                    false,
                                    "adapter",
                                    problem,
                                    "an adapter loads onto the checkpoint it was trained on: name that checkpoint in `path`, or the adapter trained on this one",
                                );
                            }
                        }
                    }
                    architectures.insert(name.clone(), config);
                }
                Err(error) if model.path.is_some() && error.0.ends_with(architecture::BEYOND_LIMIT) => at.ensure(
                    false,
                    "path",
                    format!("r1flow cannot run this checkpoint: its config.json's {error}"),
                    DIMENSION_HELP,
                ),
                Err(error) if model.path.is_some() => at.ensure(
                    false,
                    "path",
                    format!("r1flow cannot run this checkpoint: {error}"),
                    "r1flow runs Qwen2 and Llama decoders (model_type qwen2 or llama, SiLU, no rope scaling or sliding window)",
                ),
                Err(error) => at.ensure(
                    false,
                    "",
                    format!("the architecture is invalid: {error}"),
                    "change the overrides so that the heads divide the width and the head dimension is even",
                ),
            }
        }
    }
    architectures
}

/// The most bytes of an adapter_config.json read (PEFT writes about one KiB).
const MAX_ADAPTER_CONFIG_BYTES: u64 = 1 << 20;

/// What `validate` can tell of a PEFT adapter directory without the model: its two files
/// are there, and its configuration is a plain LoRA on modules r1flow adapts. Returns the
/// rank and the modules (PEFT's short names, `all-linear` spelt out), against which the
/// weights' shapes are checked once the checkpoint's architecture is known.
fn check_adapter_dir(dir: &Path) -> Result<(usize, Vec<String>), String> {
    if !dir.is_dir() {
        return Err(format!(
            "adapter directory `{}` does not exist",
            dir.display()
        ));
    }
    named_file(
        &dir.join(ADAPTER_WEIGHTS_FILE),
        "the adapter's weights file",
    )?;
    let config = dir.join(ADAPTER_CONFIG_FILE);
    named_file(&config, "the adapter's configuration")?;
    let bytes = user_file::read(&config, MAX_ADAPTER_CONFIG_BYTES)
        .map_err(|e| format!("`{}`: {e}", config.display()))?;
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| format!("`{}` is not JSON: {e}", config.display()))?;
    let fail = |what: String| Err(format!("`{}`: {what}", config.display()));
    let get = |key: &str| value.get(key).filter(|v| !v.is_null());
    if get("peft_type").and_then(serde_json::Value::as_str) != Some("LORA") {
        return fail("`peft_type` is not \"LORA\": r1flow reads LoRA adapters".into());
    }
    let rank = get("r").and_then(serde_json::Value::as_u64);
    if !rank.is_some_and(|r| (1..=MAX_LORA_RANK as u64).contains(&r)) {
        return fail(format!("`r` must be an integer in 1..={MAX_LORA_RANK}"));
    }
    let names: Vec<&str> = match get("target_modules") {
        Some(serde_json::Value::String(name)) => vec![name.as_str()],
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(serde_json::Value::as_str)
            .collect::<Option<_>>()
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    if names.is_empty() {
        return fail("`target_modules` must list the modules the adapter is on".into());
    }
    // PEFT saves `all-linear` expanded to full names (`model.layers.0.mlp.up_proj`) and
    // matches an entry by its last components.
    let last = |name: &str| name.rsplit('.').next().unwrap_or(name).to_string();
    if let Some(unknown) = names.iter().find(|n| {
        let module = last(n);
        !LORA_TARGET_MODULES.contains(&module.as_str()) && **n != LORA_ALL_LINEAR
    }) {
        let shown: String = unknown.chars().take(64).collect();
        return fail(format!(
            "target module `{shown}` is not one r1flow adapts ({}, or {LORA_ALL_LINEAR})",
            LORA_TARGET_MODULES.join(", ")
        ));
    }
    let modules: Vec<String> = if names.contains(&LORA_ALL_LINEAR) {
        LORA_TARGET_MODULES.iter().map(|m| m.to_string()).collect()
    } else {
        let mut modules: Vec<String> = names.iter().map(|n| last(n)).collect();
        modules.sort();
        modules.dedup();
        modules
    };
    let rank = rank.unwrap_or_default() as usize;
    Ok((rank, modules))
}

/// The help under a model dimension above its sanity bound.
const DIMENSION_HELP: &str = "a sanity bound several times the largest published decoder's \
     (Llama 3.1 405B: 126 layers, hidden_size 16384, intermediate_size 53248)";

/// The most memory the weights of one model may take, whatever the machine: 1 TiB of f32
/// weights (about 275 billion parameters), whose training state (16 bytes a parameter)
/// no single machine holds. r1flow trains one model on one machine, unsharded.
const MAX_WEIGHT_BYTES: u128 = 1 << 40;

/// A model whose weights cannot be held is refused here, with the figure, instead of
/// aborting the stage that loads it on a multi-terabyte allocation: its f32 weights must
/// fit in [`MAX_WEIGHT_BYTES`] and in the memory of the machine that runs the stages.
fn check_model_memory(
    at: &mut At<'_>,
    model: &ModelDecl,
    config: &ModelConfig,
    memory_bytes: Option<u64>,
) {
    let params = config.param_count();
    let weights = params.saturating_mul(architecture::WEIGHT_BYTES);
    let training = params.saturating_mul(architecture::TRAINING_BYTES);
    // Past the absolute bound the machine does not matter (and the message does not
    // depend on where `validate` runs).
    let (limit, whose) = match memory_bytes {
        Some(memory) if weights <= MAX_WEIGHT_BYTES => {
            (u128::from(memory), "this machine's memory")
        }
        _ => (MAX_WEIGHT_BYTES, "the most r1flow holds for one model"),
    };
    if weights <= limit {
        return;
    }
    let (field, help) = if model.path.is_some() {
        (
            "path",
            "choose a smaller checkpoint, or run on a machine with more memory",
        )
    } else {
        (
            "",
            "make the model smaller (num_hidden_layers, hidden_size, intermediate_size), \
             or run on a machine with more memory",
        )
    };
    at.ensure(
        false,
        field,
        format!(
            "its {} parameters take {} as f32 weights alone, more than {whose} ({}); \
             training it takes about {} (weights, gradients and AdamW's two moments: 16 \
             bytes a parameter)",
            count(params),
            size(weights),
            size(limit),
            size(training),
        ),
        help,
    );
}

/// A parameter count as people say it: `494.0 million`, `7.6 billion`.
pub(crate) fn count(params: u128) -> String {
    let units = [(1e12, "trillion"), (1e9, "billion"), (1e6, "million")];
    let x = params as f64;
    units.iter().find(|(size, _)| x >= *size).map_or_else(
        || params.to_string(),
        |(size, unit)| format!("{:.1} {unit}", x / size),
    )
}

/// A byte count in binary units: `1.8 GiB`, `25.0 TiB`.
pub(crate) fn size(bytes: u128) -> String {
    user_file::binary_size(bytes, "bytes")
}

/// The project a manifest belongs to: the git work tree that holds `base_dir` (the
/// manifest's directory), else `base_dir` itself — as for the store's default place.
fn project_root(base_dir: &Path) -> PathBuf {
    let start = if base_dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        base_dir
    };
    let start = start.canonicalize().unwrap_or_else(|_| start.to_path_buf());
    start
        .ancestors()
        .find(|dir| dir.join(".git").exists())
        .unwrap_or(&start)
        .to_path_buf()
}

/// Whether the file a manifest names as `written` (found at `file`) lies inside `root`:
/// a relative path that never climbs (`data/train.jsonl`) stays in the manifest's
/// directory, whatever links the project itself holds there (a linked data folder);
/// any other path must resolve inside `root`.
fn inside(written: &Path, file: &Path, root: &Path) -> bool {
    let descends = written.is_relative()
        && written
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    descends || file.canonicalize().is_ok_and(|f| f.starts_with(root))
}

/// A generated dataset is held in memory and stored whole: its size has a sanity bound.
fn check_dataset_size(at: &mut At<'_>, num_samples: usize) {
    at.ensure(
        num_samples <= MAX_GENERATED_SAMPLES,
        "num_samples",
        format!("`num_samples` must be at most {MAX_GENERATED_SAMPLES}, not {num_samples}"),
        "a generated dataset is held in memory and stored whole; TinyZero's Countdown set has about 500000 items",
    );
}

/// Each share of a task's `noise:` is a probability.
fn check_noise(at: &mut At<'_>, noise: &SolutionNoise) {
    let mut inner = At {
        doc: at.doc,
        path: at.path.key("noise"),
        what: at.what.clone(),
        diagnostics: at.diagnostics,
    };
    for (field, share) in [
        ("wrong", noise.wrong),
        ("shortcut", noise.shortcut),
        ("unformatted", noise.unformatted),
        ("mixed_language", noise.mixed_language),
    ] {
        inner.ensure(
            (0.0..=1.0).contains(&share),
            field,
            format!("`noise.{field}` must be a share in [0, 1], not {share}"),
            "e.g. 0.3 flaws about 3 solutions in 10",
        );
    }
}

pub(crate) fn check_datasets(
    doc: &Document,
    base_dir: &Path,
    datasets: &IndexMap<String, DatasetDecl>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    for (name, dataset) in datasets {
        let path = YamlPath::root().key("datasets").key(name.as_str());
        let mut at = At {
            doc,
            path: path.clone(),
            what: format!("dataset `{name}`"),
            diagnostics,
        };
        match dataset {
            DatasetDecl::Countdown(task) => {
                at.ensure(
                    task.num_samples >= 1,
                    "num_samples",
                    "`num_samples` must be at least 1",
                    "items generated in all",
                );
                check_dataset_size(&mut at, task.num_samples);
                at.ensure(
                    task.min_numbers >= 2,
                    "min_numbers",
                    format!("`min_numbers` must be at least 2, not {}", task.min_numbers),
                    "an equation combines two numbers or more",
                );
                at.ensure(
                    task.max_numbers <= 6,
                    "max_numbers",
                    format!("`max_numbers` must be at most 6, not {}", task.max_numbers),
                    "the search for a reachable target grows factorially with the count",
                );
                at.ensure(
                    task.min_numbers <= task.max_numbers,
                    "max_numbers",
                    format!(
                        "`max_numbers` ({}) is below `min_numbers` ({})",
                        task.max_numbers, task.min_numbers
                    ),
                    "swap them or make them equal",
                );
                at.ensure(
                    task.min_value >= 1,
                    "min_value",
                    "`min_value` must be at least 1",
                    "TinyZero draws numbers in 1..=100",
                );
                at.ensure(
                    task.min_value <= task.max_value,
                    "max_value",
                    format!(
                        "`max_value` ({}) is below `min_value` ({})",
                        task.max_value, task.min_value
                    ),
                    "swap them or make them equal",
                );
                at.ensure(
                    task.max_target >= 1,
                    "max_target",
                    "`max_target` must be at least 1",
                    "targets are positive whole numbers",
                );
                check_noise(&mut at, &task.noise);
            }
            DatasetDecl::Arithmetic(task) => {
                at.ensure(
                    task.num_samples >= 1,
                    "num_samples",
                    "`num_samples` must be at least 1",
                    "items generated in all",
                );
                check_dataset_size(&mut at, task.num_samples);
                at.ensure(
                    !task.operations.is_empty(),
                    "operations",
                    "`operations` is empty",
                    "list at least one of `add`, `sub`, `mul`",
                );
                at.ensure(
                    task.min_digits >= 1,
                    "min_digits",
                    "`min_digits` must be at least 1",
                    "operands have one digit or more",
                );
                at.ensure(
                    task.min_digits <= task.max_digits,
                    "max_digits",
                    format!(
                        "`max_digits` ({}) is below `min_digits` ({})",
                        task.max_digits, task.min_digits
                    ),
                    "swap them or make them equal",
                );
                at.ensure(
                    (2..=8).contains(&task.num_terms),
                    "num_terms",
                    format!("`num_terms` must be in 2..=8, not {}", task.num_terms),
                    "operands per expression",
                );
                at.ensure(
                    task.max_digits as usize * task.num_terms <= 36,
                    "max_digits",
                    format!(
                        "{} terms of up to {} digits can exceed 36-digit results",
                        task.num_terms, task.max_digits
                    ),
                    "lower `max_digits` or `num_terms` (max_digits × num_terms ≤ 36)",
                );
                let not_added: Vec<&str> = task
                    .operations
                    .iter()
                    .filter(|&&op| op != Operation::Add)
                    .map(|op| match op {
                        Operation::Add => "add",
                        Operation::Sub => "sub",
                        Operation::Mul => "mul",
                    })
                    .collect();
                at.ensure(
                    task.scratchpad != Scratchpad::Columns || not_added.is_empty(),
                    "scratchpad",
                    format!(
                        "the `columns` scratchpad works additions only, and `operations` has `{}`",
                        not_added.join("`, `")
                    ),
                    "set `operations: [add]`, or use `scratchpad: steps`",
                );
                check_noise(&mut at, &task.noise);
            }
            DatasetDecl::Jsonl(source) => {
                let file = base_dir.join(&source.path);
                if !at.ensure_named_file(
                    &file,
                    "JSONL file",
                    "path",
                    "paths are relative to the manifest's directory",
                ) {
                    continue;
                }
                let root = project_root(base_dir);
                if !inside(&source.path, &file, &root) {
                    at.ensure(
                        false,
                        "path",
                        format!(
                            "JSONL file `{}` is outside the project (`{}`)",
                            file.display(),
                            root.display()
                        ),
                        "dataset files must lie in the git work tree that holds the manifest (or in the manifest's directory): copy the file there",
                    );
                    continue;
                }
                for (record_field, _) in &source.fields {
                    let known = records::fields_of(source.format);
                    at.ensure(
                        known.contains(&record_field.as_str()),
                        "fields",
                        format!(
                            "`{record_field}` is not a field of `{:?}` records",
                            source.format
                        )
                        .to_lowercase(),
                        format!("mappable fields: {}", known.join(", ")),
                    );
                }
                let checked = records::validate_file(&file, source.format, &source.fields);
                let empty = checked.records == 0 && checked.diagnostics.is_empty();
                let readable = checked.diagnostics.is_empty();
                diagnostics.extend(checked.diagnostics);
                if let (Some(extractor), true) = (source.extract_answer, readable) {
                    check_reference_answers(
                        doc,
                        &path,
                        name,
                        &file,
                        source,
                        extractor,
                        diagnostics,
                    );
                }
                let mut at = At {
                    doc,
                    path,
                    what: format!("dataset `{name}`"),
                    diagnostics,
                };
                at.ensure(
                    !empty,
                    "path",
                    format!("JSONL file `{}` holds no records", file.display()),
                    "a JSONL dataset has one JSON object per line",
                );
            }
        }
    }
}

/// Every record of a JSONL source with `extract_answer:` must hold an answer the
/// extractor finds, so that no prompt reaches training without its reference.
fn check_reference_answers(
    doc: &Document,
    path: &YamlPath,
    name: &str,
    file: &Path,
    source: &crate::manifest::JsonlSource,
    extractor: crate::manifest::AnswerExtractor,
    diagnostics: &mut Vec<Diagnostic>,
) {
    const SHOWN: usize = 5;
    let Ok(read) = records::read_file(file, source.format, &source.fields) else {
        return; // reported by the line-by-line validation
    };
    let failures: Vec<String> = read
        .iter()
        .enumerate()
        .filter_map(|(i, record)| {
            let problem = match &record.answer {
                None => "has no `answer`".to_string(),
                Some(answer) => crate::tasks::extract_reference(extractor, answer).err()?,
            };
            let mut question: String = record.prompt.chars().take(40).collect();
            if question.len() < record.prompt.len() {
                question.push('…');
            }
            Some(format!("record {} (\"{question}\") {problem}", i + 1))
        })
        .collect();
    if failures.is_empty() {
        return;
    }
    let mut message = format!(
        "dataset `{name}`: {} of {} records in `{}` have no answer `extract_answer` can find: {}",
        failures.len(),
        read.len(),
        file.display(),
        failures[..failures.len().min(SHOWN)].join("; ")
    );
    if failures.len() > SHOWN {
        message.push_str(&format!("; and {} more", failures.len() - SHOWN));
    }
    diagnostics.push(
        Diagnostic::error(message)
            .at(Some(doc.value_location(&path.key("extract_answer"))))
            .with_help(
                "`gsm8k` reads the text after the last `####` of `answer`, `boxed` the last \
                 `\\boxed{…}`; map the field holding the worked solution to `answer` with \
                 `fields: {answer: YOUR_FIELD}`, or fix or drop those records",
            ),
    );
}

pub(crate) fn check_rewards(
    doc: &Document,
    base_dir: &Path,
    rewards: &IndexMap<String, RewardDecl>,
    reward_model_stages: &[&str],
    can: &crate::check::Capabilities,
    diagnostics: &mut Vec<Diagnostic>,
) {
    for (name, reward) in rewards {
        let mut at = At {
            doc,
            path: YamlPath::root().key("rewards").key(name.as_str()),
            what: format!("reward `{name}`"),
            diagnostics,
        };
        match reward {
            RewardDecl::Accuracy(acc) => {
                at.ensure(
                    acc.correct_score.is_finite(),
                    "correct_score",
                    "`correct_score` must be a finite number",
                    "TinyZero uses 1.0",
                );
                at.ensure(
                    acc.format_score.is_finite(),
                    "format_score",
                    "`format_score` must be a finite number",
                    "TinyZero uses 0.1",
                );
            }
            RewardDecl::Format(_) => {}
            RewardDecl::Language(lang) => match lang.detection {
                LanguageDetection::Script => at.ensure(
                    matches!(lang.language.as_str(), "en" | "zh"),
                    "language",
                    format!(
                        "script detection knows `en` and `zh`, not `{}`",
                        lang.language
                    ),
                    "for another language, use `detection: word_list` with `words` or `word_list`",
                ),
                LanguageDetection::WordList => {
                    at.ensure(
                        !lang.words.is_empty() || lang.word_list.is_some(),
                        "detection",
                        "word-list detection needs `words` or `word_list`",
                        "list the target language's words inline or in a file, one per line",
                    );
                    if let Some(list) = &lang.word_list {
                        at.ensure_named_file(
                            &base_dir.join(list),
                            "word list",
                            "word_list",
                            "paths are relative to the manifest's directory",
                        );
                    }
                }
            },
            RewardDecl::Length(len) => {
                at.ensure(
                    len.max_length >= 1,
                    "max_length",
                    "`max_length` must be at least 1",
                    "tokens",
                );
                at.ensure(
                    len.buffer <= len.max_length,
                    "buffer",
                    format!(
                        "`buffer` ({}) exceeds `max_length` ({})",
                        len.buffer, len.max_length
                    ),
                    "the penalty ramps over the last `buffer` tokens before `max_length`",
                );
                at.ensure(
                    len.penalty.is_finite() && len.penalty >= 0.0,
                    "penalty",
                    "`penalty` must be a finite number ≥ 0",
                    "the reward falls to −penalty",
                );
            }
            RewardDecl::Command(cmd) => {
                at.ensure(
                    cmd.timeout_s.is_finite()
                        && cmd.timeout_s > 0.0
                        && cmd.timeout_s <= MAX_VERIFIER_TIMEOUT_S,
                    "timeout_s",
                    format!(
                        "`timeout_s` must be greater than 0 and at most {MAX_VERIFIER_TIMEOUT_S} \
                         (a day), not {}",
                        seconds(cmd.timeout_s)
                    ),
                    "seconds one call (one batch of completions) may take, e.g. 60",
                );
                match cmd.command.first() {
                    None => at.ensure(
                        false,
                        "command",
                        "`command` is empty",
                        "give the program and its arguments, e.g. `[python3, verify.py]`",
                    ),
                    Some(program) => {
                        let found = find_program(base_dir, program);
                        at.ensure(found.is_some(), "command", format!("program `{program}` not found"), "give a path relative to the manifest's directory, or a program on PATH");
                    }
                }
            }
            RewardDecl::Code(code) => {
                for (field, problem) in code.problems() {
                    at.ensure(false, field, problem, code_field_help(field));
                }
                if code.sandbox == CodeSandbox::Bwrap && can.probe_sandbox {
                    if let Err(why) = crate::rewards::sandbox::probe() {
                        at.ensure(
                            false,
                            "",
                            format!("the code sandbox does not work here: {why}"),
                            "install bubblewrap (Debian and Ubuntu: `apt-get install bubblewrap`; \
                             Fedora: `dnf install bubblewrap`), or, only for code you trust, \
                             run it unsandboxed with `sandbox: none`",
                        );
                    }
                }
            }
            RewardDecl::Model(model) => at.ensure(
                reward_model_stages.contains(&model.model.as_str()),
                "model",
                format!("`{}` is not a `reward_model` stage", model.model),
                crate::check::suggest::help_for(
                    &model.model,
                    reward_model_stages,
                    "reward_model stage",
                ),
            ),
        }
    }
}

/// The longest a `command` verifier's call may take: a day. One call scores one batch;
/// a verifier slower than that stalls the run rather than scoring it, and a bound keeps
/// the call's deadline (now + timeout) far inside what a clock can represent — an
/// unbounded `timeout_s: 1e300` overflowed it and panicked at run time.
const MAX_VERIFIER_TIMEOUT_S: f64 = 86_400.0;

/// A number of seconds as written in a message: `1e300`, not three hundred digits.
fn seconds(x: f64) -> String {
    if x.abs() >= 1e15 {
        format!("{x:e}")
    } else {
        x.to_string()
    }
}

/// The help under an out-of-bounds field of a `code` reward.
fn code_field_help(field: &str) -> &'static str {
    match field {
        "timeout_s" => "seconds one completion's program and tests may run, e.g. 10",
        "memory_mb" => "the address space of each process, e.g. 512",
        "max_processes" => "processes and threads at once, e.g. 8",
        _ => "completions run at once; leave it out for the number of CPUs",
    }
}

/// Where `program` would be run from: a path (relative to the manifest) or a name on PATH.
pub fn find_program(base_dir: &Path, program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let path = base_dir.join(program);
        return path.is_file().then_some(path);
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// The fields a custom prompt template may use for records of `dataset`.
fn template_fields(dataset: &DatasetDecl) -> &'static [&'static str] {
    match dataset {
        DatasetDecl::Countdown(_) => &["question", "task", "numbers", "target"],
        DatasetDecl::Arithmetic(_) => &["question", "task"],
        DatasetDecl::Jsonl(_) => &["question", "system"],
    }
}

/// Checks custom prompt templates of `dataset` stages against their source's fields, so
/// a misspelt `{field}` fails here, not after the data is generated.
pub(crate) fn check_templates(
    doc: &Document,
    stages: &IndexMap<String, crate::check::CheckedStage>,
    datasets: &IndexMap<String, DatasetDecl>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    for (name, stage) in stages {
        let crate::stages::StageDecl::Dataset(config) = &stage.decl else {
            continue;
        };
        let crate::manifest::PromptTemplate::Custom { user } = &config.template else {
            continue;
        };
        let Some(source) = datasets.get(&config.source) else {
            continue;
        };
        if let Err(error) = crate::tasks::template::check_custom(user, template_fields(source)) {
            let path = YamlPath::root()
                .key("stages")
                .key(name.as_str())
                .key("template")
                .key("user");
            diagnostics.push(
                Diagnostic::error(format!("stage `{name}`: {error}"))
                    .at(Some(doc.value_location(&path)))
                    .with_help("a template writes `{question}` and other record fields in braces; `{{` and `}}` write braces"),
            );
        }
    }
}
