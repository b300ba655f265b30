//! Check: resolving the names stages use — other stages, models, datasets, rewards — and
//! type-checking each link (a `grpo` stage's `from` must produce a model, …). Also finds
//! dependency cycles and names the whole loop.

use indexmap::IndexMap;
use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

use super::pipeline::{Binding, CheckedStage, Target};
use super::suggest;
use crate::diag::Diagnostic;
use crate::manifest::{
    DatasetDecl, ModelDecl, PromptTemplate, RecordShape, RewardDecl, TemplateName, TestSize,
};
use crate::stages::{DatasetStage, InputField, Need, Output, ResolvedStage, RewardRole, StageDecl};
use crate::syntax::{Document, YamlPath};

/// The declarations names can refer to.
pub(crate) struct Scope<'a> {
    pub models: &'a IndexMap<String, ModelDecl>,
    pub datasets: &'a IndexMap<String, DatasetDecl>,
    pub rewards: &'a IndexMap<String, RewardDecl>,
    pub stages: &'a IndexMap<String, StageDecl>,
    /// The stages whose settings resolved (the others were reported).
    pub resolved: &'a IndexMap<String, ResolvedStage>,
    pub seed: u64,
}

fn stage_path(name: &str) -> YamlPath {
    YamlPath::root().key("stages").key(name)
}

/// Reports a name used in two sections (stages, models and datasets share one namespace).
pub(crate) fn check_unique_names(
    doc: &Document,
    scope: &Scope<'_>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let sections: [(&str, Vec<&String>); 3] = [
        ("models", scope.models.keys().collect()),
        ("datasets", scope.datasets.keys().collect()),
        ("stages", scope.stages.keys().collect()),
    ];
    let mut seen: IndexMap<&str, &str> = IndexMap::new();
    for (section, names) in &sections {
        for name in names {
            if let Some(first) = seen.get(name.as_str()) {
                let first_path = YamlPath::root().key(*first).key(name.as_str());
                diagnostics.push(
                    Diagnostic::error(format!(
                        "the name `{name}` is used by both `{first}` and `{section}`"
                    ))
                    .at(Some(doc.key_location(
                        &YamlPath::root().key(*section).key(name.as_str()),
                    )))
                    .with_related("first used here", Some(doc.key_location(&first_path)))
                    .with_help(
                        "stages, models and datasets share one namespace: rename one of them",
                    ),
                );
            } else {
                seen.insert(name.as_str(), section);
            }
            let valid = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !valid {
                let why = match name.chars().find(|c| !c.is_ascii()) {
                    Some(c) => format!(": `{c}` is not an ASCII letter"),
                    None => String::new(),
                };
                diagnostics.push(
                    Diagnostic::error(format!("`{name}` is not a valid name{why}"))
                        .at(Some(doc.key_location(
                            &YamlPath::root().key(*section).key(name.as_str()),
                        )))
                        .with_help(NAME_HELP),
                );
            }
        }
    }
}

/// What names may be made of. ASCII only, on purpose: a name becomes a directory (the
/// TensorBoard logs), a file name in reports, a Slurm job comment and a `RUN/STAGE`
/// argument, and Unicode letters have look-alikes and several encodings of one letter
/// (macOS file names decompose `é`), so the name typed on a command line would not find
/// the stage.
const NAME_HELP: &str = "names use ASCII letters (a-z, A-Z), digits, `_` and `-`: they \
     appear in file names, keys, Slurm jobs and command lines";

/// What a name refers to.
enum Referent<'a> {
    Stage(Output),
    Model(&'a ModelDecl),
    Dataset(&'a DatasetDecl),
    Reward,
    Unknown,
}

/// The output of every stage, before any reference is checked (a `dataset` stage's output
/// follows its source; every other kind's is fixed).
fn outputs(scope: &Scope<'_>) -> IndexMap<String, Output> {
    scope
        .stages
        .iter()
        .map(|(name, decl)| {
            let inputs: Vec<Output> = decl
                .inputs()
                .iter()
                .map(|input| match scope.datasets.get(input.name) {
                    Some(d) if input.need == Need::Source => Output::Dataset(d.shape()),
                    _ => Output::Dataset(RecordShape::Prompts),
                })
                .collect();
            (name.clone(), decl.output(&inputs))
        })
        .collect()
}

/// A `dataset` stage for a stage that names an entry of `datasets:` directly.
fn implicit_dataset_stage(source: &str, seed: u64) -> StageDecl {
    StageDecl::Dataset(DatasetStage {
        source: source.to_string(),
        template: PromptTemplate::Named(TemplateName::R1Zero),
        test_size: TestSize::Number(0.1),
        limit: None,
        shuffle: true,
        seed: Some(seed),
        chat_template: None,
        resources: None,
    })
}

/// Resolves every reference of every stage; returns the stages with their bindings
/// (implicit dataset stages first).
pub(crate) fn resolve(
    doc: &Document,
    scope: &Scope<'_>,
    diagnostics: &mut Vec<Diagnostic>,
) -> IndexMap<String, CheckedStage> {
    let outputs = outputs(scope);
    let referent = |name: &str| -> Referent<'_> {
        if let Some(output) = outputs.get(name) {
            Referent::Stage(*output)
        } else if let Some(model) = scope.models.get(name) {
            Referent::Model(model)
        } else if let Some(dataset) = scope.datasets.get(name) {
            Referent::Dataset(dataset)
        } else if scope.rewards.contains_key(name) {
            Referent::Reward
        } else {
            Referent::Unknown
        }
    };
    let mut implicit: IndexMap<String, CheckedStage> = IndexMap::new();
    let mut checked: IndexMap<String, CheckedStage> = IndexMap::new();

    for (name, decl) in scope.stages {
        let path = stage_path(name);
        let mut bindings = Vec::new();
        for input in decl.inputs() {
            let field_path = path.key(input.field.as_str());
            let at = Some(doc.value_location(&field_path));
            let mismatch = |found: String| {
                Diagnostic::error(format!(
                    "stage `{name}`: `{}` needs {}, but `{}` is {found}",
                    input.field,
                    input.need.describe(),
                    input.name
                ))
                .at(at.clone())
            };
            match referent(input.name) {
                Referent::Stage(output) if input.need.accepts(output) => {
                    bindings.push(Binding { field: input.field.to_string(), target: Target::Stage(input.name.to_string()) });
                }
                Referent::Stage(output) => {
                    let kind = scope.stages.get(input.name).map(StageDecl::kind).unwrap_or("?");
                    diagnostics.push(
                        mismatch(format!("a `{kind}` stage, which produces {}", output.describe()))
                            .with_related("defined here", Some(doc.key_location(&stage_path(input.name))))
                            .with_help(help_for_need(input.need)),
                    );
                }
                Referent::Model(model) => match input.need {
                    Need::ModelInit => bindings.push(Binding { field: input.field.to_string(), target: Target::Model(input.name.to_string()) }),
                    Need::Model if model.path.is_some() => bindings.push(Binding { field: input.field.to_string(), target: Target::Model(input.name.to_string()) }),
                    Need::ChatTemplate if model.path.is_some() => bindings.push(Binding { field: input.field.to_string(), target: Target::Model(input.name.to_string()) }),
                    Need::ChatTemplate => diagnostics.push(
                        mismatch("a preset, whose built-in tokenizer has no chat template".to_string())
                            .with_help("`template: chat` renders r1flow's own turns for built-in tokenizers: remove `chat_template:`"),
                    ),
                    Need::Model => diagnostics.push(
                        mismatch("a model preset without trained weights".to_string())
                            .with_related("declared here", Some(doc.key_location(&YamlPath::root().key("models").key(input.name))))
                            .with_help(format!("train it first with a `pretrain` stage (`from: {}`) and name that stage here", input.name)),
                    ),
                    _ => diagnostics.push(
                        mismatch("an entry of `models:`".to_string()).with_help(help_for_need(input.need)),
                    ),
                },
                Referent::Dataset(dataset) => match input.need {
                    Need::Source => bindings.push(Binding { field: input.field.to_string(), target: Target::Source(input.name.to_string()) }),
                    Need::Prompts | Need::Completions | Need::Preferences => {
                        let output = Output::Dataset(dataset.shape());
                        if input.need.accepts(output) {
                            if !implicit.contains_key(input.name) {
                                let decl = implicit_dataset_stage(input.name, scope.seed);
                                match decl.resolve() {
                                    Ok(resolved) => {
                                        implicit.insert(input.name.to_string(), CheckedStage {
                                            name: input.name.to_string(),
                                            decl,
                                            resolved,
                                            implicit: true,
                                            bindings: vec![Binding { field: InputField::Source.to_string(), target: Target::Source(input.name.to_string()) }],
                                            output,
                                        });
                                    }
                                    Err(unset) => diagnostics.push(
                                        mismatch(format!("a dataset whose implicit `dataset` stage has no `{}`", unset.field))
                                            .with_help("declare a `dataset` stage for it and name that stage here"),
                                    ),
                                }
                            }
                            bindings.push(Binding { field: input.field.to_string(), target: Target::Stage(input.name.to_string()) });
                        } else {
                            diagnostics.push(
                                mismatch(format!("a dataset of {}", dataset.shape().describe()))
                                    .with_related("declared here", Some(doc.key_location(&YamlPath::root().key("datasets").key(input.name))))
                                    .with_help(help_for_need(input.need)),
                            );
                        }
                    }
                    _ => diagnostics.push(
                        mismatch("an entry of `datasets:`".to_string()).with_help(help_for_need(input.need)),
                    ),
                },
                Referent::Reward => diagnostics.push(
                    mismatch("a reward".to_string())
                        .with_help("rewards are listed with weights under the stage's `rewards:`"),
                ),
                Referent::Unknown => {
                    let candidates = candidates(scope, input.need);
                    let what = match input.need {
                        Need::Source => "dataset",
                        Need::Model | Need::ModelInit => "model or stage",
                        Need::ChatTemplate => "model",
                        _ => "stage",
                    };
                    // `chat_template: ""` names nothing; "unknown model ``" would hide that.
                    let message = if input.name.trim().is_empty() {
                        format!("stage `{name}`: `{}` is empty: it names no {what}", input.field)
                    } else {
                        format!("stage `{name}`: unknown {what} `{}` in `{}`", input.name, input.field)
                    };
                    diagnostics.push(
                        Diagnostic::error(message)
                            .at(at.clone())
                            .with_help(suggest::help_for(input.name, &candidates, what)),
                    );
                }
            }
        }
        check_rewards(doc, scope, name, decl, &mut bindings, diagnostics);
        let output = outputs.get(name).copied().unwrap_or(Output::Metrics);
        // A stage whose settings did not resolve was reported where it was decoded.
        let Some(resolved) = scope.resolved.get(name) else {
            continue;
        };
        checked.insert(
            name.clone(),
            CheckedStage {
                name: name.clone(),
                decl: decl.clone(),
                resolved: resolved.clone(),
                implicit: false,
                bindings,
                output,
            },
        );
    }
    check_cycles(doc, &checked, diagnostics);
    implicit.extend(checked);
    implicit
}

fn help_for_need(need: Need) -> String {
    match need {
        Need::Model => "name a stage that trains a model (pretrain, sft, grpo, rlhf, distill) or a checkpoint under `models:`".into(),
        Need::ModelInit => "name an entry of `models:` or a stage that trains a model".into(),
        Need::RewardModel => "name a `reward_model` stage".into(),
        Need::Source => "name an entry of `datasets:`".into(),
        Need::Prompts => "name a dataset stage or an entry of `datasets:`".into(),
        Need::Completions => "name a dataset of completions: a `rejection_sampling` stage, generated tasks, or a JSONL file with `format: sft`".into(),
        Need::Preferences => "name a dataset of preference pairs: a JSONL file with `format: preferences`, or a `rejection_sampling` stage with `emit: preferences`".into(),
        Need::ChatTemplate => "name the checkpoint under `models:` whose chat template the prompts are for (the one the consuming stages start from)".into(),
    }
}

/// Names that could fill a need, for suggestions.
fn candidates<'a>(scope: &'a Scope<'_>, need: Need) -> Vec<&'a str> {
    let stages = scope.stages.keys().map(String::as_str);
    let models = scope.models.keys().map(String::as_str);
    let datasets = scope.datasets.keys().map(String::as_str);
    match need {
        Need::Source => datasets.collect(),
        Need::Model | Need::ModelInit => stages.chain(models).collect(),
        Need::ChatTemplate => models.collect(),
        Need::RewardModel => stages.collect(),
        _ => stages.chain(datasets).collect(),
    }
}

/// Checks a stage's reward maps: known names, weights ≥ 0 and not all zero; a `model`
/// reward adds a link to its reward-model stage.
fn check_rewards(
    doc: &Document,
    scope: &Scope<'_>,
    stage: &str,
    decl: &StageDecl,
    bindings: &mut Vec<Binding>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let path = stage_path(stage);
    let mut known: Vec<&str> = scope.rewards.keys().map(String::as_str).collect();
    for builtin in RewardDecl::BUILTIN_NAMES {
        if !known.contains(builtin) {
            known.push(builtin);
        }
    }
    for refs in decl.rewards() {
        let field_path = path.key(refs.field);
        for (reward, value) in refs.rewards {
            let reward_path = field_path.key(reward.as_str());
            let declared = scope.rewards.get(reward);
            if declared.is_none() && RewardDecl::builtin(reward).is_none() {
                diagnostics.push(
                    Diagnostic::error(format!(
                        "stage `{stage}`: unknown reward `{reward}` in `{}`",
                        refs.field
                    ))
                    .at(Some(doc.key_location(&reward_path)))
                    .with_help(suggest::help_for(reward, &known, "reward")),
                );
                continue;
            }
            if let Some(RewardDecl::Model(model)) = declared {
                bindings.push(Binding {
                    field: format!("{}.{reward}", refs.field),
                    target: Target::Stage(model.model.clone()),
                });
            }
            let is_weight = refs.role != RewardRole::Thresholds;
            if !value.is_finite() || (is_weight && *value < 0.0) {
                diagnostics.push(
                    Diagnostic::error(format!("stage `{stage}`: the weight of reward `{reward}` must be a finite number ≥ 0, not {value}"))
                        .at(Some(doc.value_location(&reward_path)))
                        .with_help("a weight of 0 turns the reward off (it is still logged); to penalise, use a reward whose score is negative"),
                );
            }
        }
        if refs.role == RewardRole::Weights
            && !refs.rewards.is_empty()
            && refs.rewards.values().all(|w| *w == 0.0)
        {
            diagnostics.push(
                Diagnostic::error(format!(
                    "stage `{stage}`: every reward weight in `{}` is 0, so the reward is always 0",
                    refs.field
                ))
                .at(Some(doc.value_location(&field_path)))
                .with_help("give at least one reward a positive weight"),
            );
        }
    }
}

/// Reports each dependency cycle among stages once, naming the whole loop.
fn check_cycles(
    doc: &Document,
    stages: &IndexMap<String, CheckedStage>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let mut graph: DiGraph<&str, &str> = DiGraph::new();
    let nodes: IndexMap<&str, NodeIndex> = stages
        .keys()
        .map(|n| (n.as_str(), graph.add_node(n.as_str())))
        .collect();
    for (name, stage) in stages {
        for binding in &stage.bindings {
            if let Target::Stage(upstream) = &binding.target {
                if let (Some(&from), Some(&to)) =
                    (nodes.get(name.as_str()), nodes.get(upstream.as_str()))
                {
                    graph.add_edge(from, to, binding.field.as_str());
                }
            }
        }
    }
    for component in tarjan_scc(&graph) {
        let looped = component.len() > 1 || graph.contains_edge(component[0], component[0]);
        if !looped {
            continue;
        }
        // Start at the component's first stage in manifest order and follow edges inside it.
        let Some(&start) = component.iter().min_by_key(|n| n.index()) else {
            continue;
        };
        let mut cycle = vec![start];
        let mut fields = Vec::new();
        let mut current = start;
        loop {
            let next = graph
                .edges(current)
                .filter(|e| component.contains(&petgraph::visit::EdgeRef::target(e)))
                .min_by_key(|e| petgraph::visit::EdgeRef::target(e).index());
            let Some(edge) = next else { break };
            let target = petgraph::visit::EdgeRef::target(&edge);
            fields.push((graph[current], *edge.weight()));
            if target == start || cycle.contains(&target) {
                cycle.push(target);
                break;
            }
            cycle.push(target);
            current = target;
        }
        let names: Vec<&str> = cycle.iter().map(|n| graph[*n]).collect();
        let (first_stage, first_field) = fields.first().copied().unwrap_or((graph[start], "from"));
        let mut diagnostic = Diagnostic::error(format!(
            "dependency cycle (each stage reads the next): {}",
            names.join(" -> ")
        ))
        .at(Some(doc.value_location(
            &stage_path(first_stage).key(first_field.split('.').next().unwrap_or(first_field)),
        )));
        for (stage, field) in fields.iter().skip(1) {
            let field_key = field.split('.').next().unwrap_or(field);
            diagnostic = diagnostic.with_related(
                format!("`{stage}` reads `{field_key}` here"),
                Some(doc.value_location(&stage_path(stage).key(field_key))),
            );
        }
        diagnostics.push(diagnostic.with_help("a stage cannot depend on its own output: break the loop by pointing one of these at an earlier stage"));
    }
}
