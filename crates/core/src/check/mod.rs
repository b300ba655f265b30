//! Check: from a parsed YAML document to checked `Pipeline`s (one per ablation variant).
//! Like a good compiler front end it never stops at the first problem: it returns what it
//! could check plus every diagnostic, each with `path:line:col`, a caret and a hint.
//! The only IO here is reading the files the manifest names (to check they exist and that
//! JSONL records are well-formed).

mod ablation;
mod capabilities;
mod chat;
mod compose;
mod context;
mod declarations;
mod decode;
mod dynamic_sampling;
mod export_adapter;
mod fields;
mod lora;
pub mod numerics;
mod pipeline;
mod references;
mod sections;
pub mod suggest;

use std::path::Path;

use indexmap::IndexMap;
use serde_yaml::Value;

pub use ablation::MAX_VARIANTS;
pub use capabilities::{physical_memory, Capabilities};
pub use compose::MAX_INCLUDED_FILES;
pub use declarations::find_program;
pub use pipeline::{Binding, CheckedStage, Pipeline, Target, Variant};

use crate::diag::{sort_dedup, Diagnostic};
use crate::manifest::{Backend, Dtype, Numerics, RewardDecl};
use crate::schema::Manifest;
use crate::stages::{FieldChecks, Output, ResolvedStage, StageDecl};
use crate::syntax::{self, Document, YamlPath};

/// The result of checking a manifest: a pipeline per variant when there are no errors,
/// and every diagnostic found.
#[derive(Debug)]
pub struct Checked {
    pub pipelines: Vec<Pipeline>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Reads, parses and checks the manifest at `path` for a binary that can do `can`.
pub fn check_file(path: &Path, can: &Capabilities) -> Checked {
    let document = syntax::read_source(path).and_then(syntax::parse);
    match document {
        Ok(doc) => check_document(&doc, can),
        Err(diagnostics) => Checked {
            pipelines: Vec::new(),
            diagnostics,
        },
    }
}

/// The rewards a manifest declares, checked, and the directory their files are found
/// from: what `r1flow score` grades with. A manifest with `stages:` is checked whole; one
/// without (`rewards:` alone, a file written for grading) has only its rewards checked.
pub fn check_rewards_file(
    path: &Path,
    can: &Capabilities,
) -> Result<(IndexMap<String, RewardDecl>, std::path::PathBuf), Vec<Diagnostic>> {
    let doc = syntax::read_source(path).and_then(syntax::parse)?;
    if doc.root.get("stages").is_some() {
        let checked = check_document(&doc, can);
        return match checked.pipelines.into_iter().next() {
            Some(pipeline) => Ok((pipeline.rewards, pipeline.base_dir)),
            None => Err(checked.diagnostics),
        };
    }
    let mut diagnostics = Vec::new();
    if !check_root(&doc, &mut diagnostics) {
        return Err(diagnostics);
    }
    let doc = compose::compose(&doc, &mut diagnostics);
    let rewards = sections::named_entries(&doc, "rewards", &mut diagnostics, |p, n, v, d| {
        sections::reward(&doc, p, n, v, d)
    });
    let base_dir = base_dir_of(&doc);
    declarations::check_rewards(&doc, &base_dir, &rewards, &[], can, &mut diagnostics);
    sort_dedup(&mut diagnostics);
    if diagnostics.iter().any(Diagnostic::is_error) {
        return Err(diagnostics);
    }
    Ok((rewards, base_dir))
}

/// The directory relative paths in the manifest `doc` are resolved against: its own.
fn base_dir_of(doc: &Document) -> std::path::PathBuf {
    doc.file
        .path()
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Checks a parsed manifest and every variant of its ablations, for a binary that can do
/// `can`.
pub fn check_document(doc: &Document, can: &Capabilities) -> Checked {
    let mut diagnostics = Vec::new();
    let mut pipelines = Vec::new();
    if check_root(doc, &mut diagnostics) {
        let doc = &compose::compose(doc, &mut diagnostics);
        let variants = ablation::expand(doc, &mut diagnostics);
        let count = variants.len();
        // rendered diagnostic → (diagnostic, the variants that report it)
        let mut found: IndexMap<String, (Diagnostic, Vec<String>)> = IndexMap::new();
        for (variant, variant_doc) in variants {
            let name = variant.name.clone();
            let mut own = Vec::new();
            if let Some(pipeline) = check_variant(variant_doc, variant, can, &mut own) {
                pipelines.push(pipeline);
            }
            for diagnostic in own {
                found
                    .entry(diagnostic.render())
                    .or_insert_with(|| (diagnostic, Vec::new()))
                    .1
                    .push(name.clone());
            }
        }
        for (_, (diagnostic, in_variants)) in found {
            diagnostics.push(if in_variants.len() < count {
                let names: Vec<String> = in_variants.iter().map(|v| format!("`{v}`")).collect();
                diagnostic.with_help(format!(
                    "this arises in ablation variant{} {} only",
                    if names.len() == 1 { "" } else { "s" },
                    names.join(", ")
                ))
            } else {
                diagnostic
            });
        }
    }
    sort_dedup(&mut diagnostics);
    if diagnostics.iter().any(Diagnostic::is_error) {
        pipelines.clear();
    }
    Checked {
        pipelines,
        diagnostics,
    }
}

/// The document must be a mapping with known top-level keys and no duplicate keys.
fn check_root(doc: &Document, diagnostics: &mut Vec<Diagnostic>) -> bool {
    for dup in doc.spans.duplicates() {
        diagnostics.push(
            Diagnostic::error(format!("`{}` is defined twice", dup.path))
                .at(Some(crate::diag::Location::new(&doc.file, dup.second)))
                .with_related(
                    "first defined here",
                    Some(crate::diag::Location::new(&doc.file, dup.first)),
                )
                .with_help("names must be unique: rename or remove one of them"),
        );
    }
    let root = YamlPath::root();
    match &doc.root {
        Value::Null => {
            diagnostics.push(
                Diagnostic::error("the manifest is empty")
                    .at(Some(doc.value_location(&root)))
                    .with_help("a manifest needs at least `name:` and `stages:`; see pipelines/quickstart.yaml"),
            );
            false
        }
        Value::Mapping(map) => {
            let keys: Vec<String> = Manifest::KEYS.iter().map(|k| k.to_string()).collect();
            decode::unknown_keys(doc, &root, map, &keys, "the manifest", diagnostics);
            true
        }
        other => {
            diagnostics.push(
                Diagnostic::error(format!(
                    "a manifest must be a mapping of keys (`name:`, `stages:` …), not {}",
                    decode::describe(other)
                ))
                .at(Some(doc.value_location(&root))),
            );
            false
        }
    }
}

/// The backend must be compiled in, and train in the precision (`--backend`'s, when
/// given).
fn check_numerics(
    doc: &Document,
    backend: Backend,
    dtype: Dtype,
    can: &Capabilities,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let at = |key: &str| Some(doc.value_location(&YamlPath::root().key(key)));
    // Under `--backend` the manifest's backend is not used (the flag's was checked).
    if can.backend_override.is_none() && !can.backends.contains(&backend) {
        let name = backend.as_str();
        diagnostics.push(
            Diagnostic::error(format!("backend `{name}` is not compiled into this r1flow"))
                .at(at("backend"))
                .with_help(format!(
                    "rebuild with `cargo build --release --features {name}`, or use `backend: cpu`"
                )),
        );
    }
    let (runs_on, how) = match can.backend_override {
        Some(forced) => (forced, "--backend "),
        None => (backend, "backend: "),
    };
    let supported = can.dtypes_of(runs_on);
    if !supported.contains(&dtype) {
        let ticked = |d: &Dtype| format!("`{}`", d.as_str());
        let trains_in = match supported {
            [] => "in no precision".to_string(),
            [only] => format!("in {} only", ticked(only)),
            [init @ .., last] => {
                let init: Vec<String> = init.iter().map(ticked).collect();
                format!("in {} and {}", init.join(", "), ticked(last))
            }
        };
        let others: Vec<String> = can
            .dtypes
            .iter()
            .filter(|(b, dtypes)| *b != runs_on && dtypes.contains(&dtype))
            .map(|(b, _)| format!("`{how}{}`", b.as_str()))
            .collect();
        let mut help = format!("`{}` trains {trains_in}", runs_on.as_str());
        if supported == [Dtype::F32] {
            help.push_str(" (remove `dtype:`)");
        }
        if !others.is_empty() {
            help.push_str(&format!(
                "; `{}` needs {}",
                dtype.as_str(),
                others.join(" or ")
            ));
        }
        let forced = if can.backend_override.is_some() {
            " (`--backend`)"
        } else {
            ""
        };
        diagnostics.push(
            Diagnostic::error(format!(
                "backend `{}`{forced} cannot train in `{}`",
                runs_on.as_str(),
                dtype.as_str()
            ))
            .at(at("dtype"))
            .with_help(help),
        );
    }
}

fn scalar<T: serde::de::DeserializeOwned + Default>(
    doc: &Document,
    key: &str,
    diagnostics: &mut Vec<Diagnostic>,
) -> T {
    match doc.root.get(key) {
        None => T::default(),
        Some(value) => decode::decode(
            doc,
            &YamlPath::root().key(key),
            value.clone(),
            "the manifest",
            diagnostics,
        )
        .unwrap_or_default(),
    }
}

fn check_variant(
    mut doc: Document,
    variant: Variant,
    can: &Capabilities,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<Pipeline> {
    let errors_before = diagnostics.iter().filter(|d| d.is_error()).count();
    let root = YamlPath::root();
    let name: String = match doc.root.get("name") {
        None => {
            diagnostics.push(
                Diagnostic::error("the manifest has no `name`")
                    .at(Some(doc.value_location(&root)))
                    .with_help("add e.g. `name: r1-zero-countdown` at the top"),
            );
            String::new()
        }
        Some(_) => scalar(&doc, "name", diagnostics),
    };
    let description: Option<String> = scalar(&doc, "description", diagnostics);
    let seed: u64 = scalar(&doc, "seed", diagnostics);
    let backend: Backend = scalar(&doc, "backend", diagnostics);
    let dtype: Dtype = scalar(&doc, "dtype", diagnostics);
    check_numerics(&doc, backend, dtype, can, diagnostics);
    let numerics: Option<Numerics> = scalar(&doc, "numerics", diagnostics);
    numerics::check_written(&doc, numerics, backend, diagnostics);
    let defaults = sections::defaults(&doc, diagnostics);
    let models = sections::named_entries(&doc, "models", diagnostics, |p, n, v, d| {
        sections::model(&doc, p, n, v, d)
    });
    let datasets = sections::named_entries(&doc, "datasets", diagnostics, |p, n, v, d| {
        sections::dataset(&doc, p, n, v, d)
    });
    let rewards = sections::named_entries(&doc, "rewards", diagnostics, |p, n, v, d| {
        sections::reward(&doc, p, n, v, d)
    });

    let stage_values: Vec<(String, Value)> = match doc.root.get("stages") {
        None => {
            diagnostics.push(
                Diagnostic::error("the manifest has no `stages`")
                    .at(Some(doc.value_location(&root)))
                    .with_help("add a `stages:` mapping; each stage has a `kind` (dataset, pretrain, sft, grpo, …)"),
            );
            Vec::new()
        }
        Some(value) => decode::mapping(&doc, &root.key("stages"), value, "`stages`", diagnostics)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.clone())))
                    .collect()
            })
            .unwrap_or_default(),
    };
    let fill = sections::StageDefaults {
        manifest: &defaults,
        seed,
    };
    let mut stages: IndexMap<String, StageDecl> = IndexMap::new();
    let mut resolved: IndexMap<String, ResolvedStage> = IndexMap::new();
    for (stage_name, value) in &stage_values {
        let path = root.key("stages").key(stage_name.as_str());
        if let Some(decl) = sections::stage(&mut doc, &path, stage_name, value, &fill, diagnostics)
        {
            let mut checks = FieldChecks::new(&doc, path.clone(), diagnostics);
            let config = decl.to_json();
            fields::check_shared(&config, &mut checks);
            lora::check(&config, &mut checks);
            decl.check(&mut checks);
            dynamic_sampling::check(&decl, &rewards, &mut checks);
            if let Some(resources) = decl.resources() {
                fields::check_resources(resources, &mut checks);
            }
            match decl.resolve() {
                Ok(settings) => {
                    resolved.insert(stage_name.clone(), settings);
                }
                Err(unset) => diagnostics.push(
                    Diagnostic::error(format!(
                        "stage `{stage_name}`: `{}` has no value",
                        unset.field
                    ))
                    .at(Some(doc.key_location(&path)))
                    .with_help(format!(
                        "set `{}:` on the stage or under `defaults:`",
                        unset.field
                    )),
                ),
            }
            stages.insert(stage_name.clone(), decl);
        }
    }

    let base_dir = base_dir_of(&doc);
    let scope = references::Scope {
        models: &models,
        datasets: &datasets,
        rewards: &rewards,
        stages: &stages,
        resolved: &resolved,
        seed,
    };
    references::check_unique_names(&doc, &scope, diagnostics);
    let mut checked = references::resolve(&doc, &scope, diagnostics);
    export_adapter::check(&doc, &mut checked, &models, diagnostics);
    let reward_model_stages: Vec<&str> = checked
        .values()
        .filter(|s| s.output == Output::RewardModel)
        .map(|s| s.name.as_str())
        .collect();
    let architectures = declarations::check_models(&doc, &base_dir, &models, can, diagnostics);
    let known = context::Models {
        decls: &models,
        architectures: &architectures,
    };
    context::check_lengths(&doc, &checked, &known, diagnostics);
    context::check_job_memory(&doc, &checked, &known, diagnostics);
    declarations::check_datasets(&doc, &base_dir, &datasets, diagnostics);
    declarations::check_rewards(
        &doc,
        &base_dir,
        &rewards,
        &reward_model_stages,
        can,
        diagnostics,
    );
    declarations::check_templates(&doc, &checked, &datasets, diagnostics);
    chat::check_chat_templates(&doc, &base_dir, &checked, &datasets, &known, diagnostics);

    if diagnostics.iter().filter(|d| d.is_error()).count() > errors_before {
        return None;
    }
    let mut all_rewards = rewards.clone();
    for stage in checked.values() {
        for refs in stage.decl.rewards() {
            for reward in refs.rewards.keys() {
                if !all_rewards.contains_key(reward) {
                    if let Some(builtin) = RewardDecl::builtin(reward) {
                        all_rewards.insert(reward.clone(), builtin);
                    }
                }
            }
        }
    }
    Some(Pipeline {
        name,
        description,
        file: doc.file.clone(),
        base_dir,
        variant,
        seed,
        backend,
        dtype,
        numerics,
        models,
        datasets,
        rewards: all_rewards,
        stages: checked,
    })
}
