//! Check: decoding each section of a manifest (`defaults`, `models`, `datasets`,
//! `rewards`, `stages`) entry by entry, so that one bad entry does not hide the others.
//! Stage entries get their defaults filled here: the stage's own value, else the
//! manifest's `defaults:`, else the kind's built-in default.

use indexmap::IndexMap;
use serde_yaml::{Mapping, Value};

use super::decode::{
    all_finite, decode, describe, keys_of, mapping, schema_keys, serde_error, unknown_keys,
};
use super::suggest;
use crate::diag::Diagnostic;
use crate::manifest::{
    AccuracyReward, ArithmeticTask, CommandReward, CountdownTask, DatasetDecl, Defaults,
    FormatReward, JsonlSource, LanguageReward, LengthReward, ModelDecl, ModelReward, RewardDecl,
};
use crate::stages::StageDecl;
use crate::syntax::{Document, YamlPath};

/// Decodes a named section (`models:` …) entry by entry.
pub(crate) fn named_entries<T>(
    doc: &Document,
    section: &str,
    diagnostics: &mut Vec<Diagnostic>,
    mut decode_entry: impl FnMut(&YamlPath, &str, &Value, &mut Vec<Diagnostic>) -> Option<T>,
) -> IndexMap<String, T> {
    let path = YamlPath::root().key(section);
    let mut entries = IndexMap::new();
    let Some(value) = doc.root.get(section) else {
        return entries;
    };
    if value.is_null() {
        return entries;
    }
    let Some(map) = mapping(doc, &path, value, &format!("`{section}`"), diagnostics) else {
        return entries;
    };
    for (key, value) in map {
        let Some(name) = key.as_str() else {
            diagnostics.push(
                Diagnostic::error(format!(
                    "`{section}`: names must be strings, not {}",
                    describe(key)
                ))
                .at(Some(doc.value_location(&path))),
            );
            continue;
        };
        let entry_path = path.key(name);
        if let Some(decoded) = decode_entry(&entry_path, name, value, diagnostics) {
            entries.insert(name.to_string(), decoded);
        }
    }
    entries
}

/// Splits `kind:` from a tagged entry; reports a missing or unknown kind.
fn kind_of<'v>(
    doc: &Document,
    path: &YamlPath,
    map: &'v Mapping,
    kinds: &[&str],
    what: &str,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<&'v str> {
    let name = path.last_key().unwrap_or("?");
    let Some(kind) = map.get("kind") else {
        diagnostics.push(
            Diagnostic::error(format!("{what} `{name}` has no `kind`"))
                .at(Some(doc.key_location(path)))
                .with_help(suggest::help_for("", kinds, "kind")),
        );
        return None;
    };
    let kind_path = path.key("kind");
    let Some(kind) = kind.as_str() else {
        diagnostics.push(
            Diagnostic::error(format!(
                "{what} `{name}`: `kind` must be a string, not {}",
                describe(kind)
            ))
            .at(Some(doc.value_location(&kind_path))),
        );
        return None;
    };
    if !kinds.contains(&kind) {
        diagnostics.push(
            Diagnostic::error(format!("{what} `{name}`: unknown kind `{kind}`"))
                .at(Some(doc.value_location(&kind_path)))
                .with_help(suggest::help_for(kind, kinds, "kind")),
        );
        return None;
    }
    Some(kind)
}

/// The entry without its `kind` key and without the unknown keys (already reported), so
/// that decoding goes on to report the other errors of the entry.
fn known_part(map: &Mapping, allowed: &[String]) -> Mapping {
    map.iter()
        .filter(|(k, _)| k.as_str().is_some_and(|k| allowed.iter().any(|a| a == k)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Decodes a struct-shaped entry: unknown keys first (all of them), then the values.
fn decode_struct<T: serde::de::DeserializeOwned + schemars::JsonSchema>(
    doc: &Document,
    path: &YamlPath,
    map: &Mapping,
    what: &str,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<T> {
    let mut allowed = keys_of::<T>();
    allowed.push("kind".to_string());
    unknown_keys(doc, path, map, &allowed, what, diagnostics);
    let mut known = known_part(map, &allowed);
    known.remove("kind");
    decode(doc, path, Value::Mapping(known), what, diagnostics)
}

pub(crate) fn defaults(doc: &Document, diagnostics: &mut Vec<Diagnostic>) -> ManifestDefaults {
    let path = YamlPath::root().key("defaults");
    let map = match doc.root.get("defaults") {
        None | Some(Value::Null) => return ManifestDefaults::default(),
        Some(value) => match mapping(doc, &path, value, "`defaults`", diagnostics) {
            Some(map) => map,
            None => return ManifestDefaults::default(),
        },
    };
    // `defaults: {grpo: {...}}` holds one kind's defaults; the other keys are shared ones.
    let mut shared = Mapping::new();
    let mut by_kind = IndexMap::new();
    for (key, value) in map {
        let Some(kind) = key.as_str().filter(|k| StageDecl::KINDS.contains(k)) else {
            shared.insert(key.clone(), value.clone());
            continue;
        };
        let kind_path = path.key(kind);
        let what = format!("`defaults.{kind}`");
        let Some(entries) = mapping(doc, &kind_path, value, &what, diagnostics) else {
            continue;
        };
        let mut allowed = StageDecl::schema_of(kind)
            .map(|schema| schema_keys(&schema))
            .unwrap_or_default();
        allowed.retain(|k| k != "kind");
        unknown_keys(doc, &kind_path, entries, &allowed, &what, diagnostics);
        by_kind.insert(kind.to_string(), known_part(entries, &allowed));
    }
    let shared = decode_struct(doc, &path, &shared, "`defaults`", diagnostics).unwrap_or_default();
    ManifestDefaults { shared, by_kind }
}

/// A manifest's `defaults:`: the shared parameters every stage that has them takes, and
/// per kind (`defaults: {eval: {...}}`) any parameter of that kind. A stage's own value
/// wins over its kind's default, which wins over the shared one, which wins over the
/// kind's built-in default.
#[derive(Debug, Clone, Default)]
pub(crate) struct ManifestDefaults {
    pub shared: Defaults,
    pub by_kind: IndexMap<String, Mapping>,
}

impl ManifestDefaults {
    /// What these defaults give a stage of `kind` that allows `allowed` keys, in order of
    /// precedence, each with where it was written.
    fn for_kind(&self, kind: &str, allowed: &[String]) -> Vec<(String, Value, YamlPath)> {
        let at = YamlPath::root().key("defaults");
        let mut entries = Vec::new();
        if let Some(own) = self.by_kind.get(kind) {
            for (key, value) in own {
                if let Some(key) = key.as_str() {
                    entries.push((key.to_string(), value.clone(), at.key(kind).key(key)));
                }
            }
        }
        for (key, value) in defaults_entries(&self.shared) {
            if allowed.contains(&key) {
                let source = at.key(key.as_str());
                entries.push((key, value, source));
            }
        }
        entries
    }
}

/// Writes `defaults` into the stage at `path` of `doc` (a mapping with a valid `kind`),
/// for the keys it leaves out, and records where each came from: an included file's stages
/// are completed by that file's defaults before they join the including manifest.
pub(crate) fn write_defaults_into(
    doc: &mut Document,
    path: &YamlPath,
    defaults: &ManifestDefaults,
) {
    let Some(Value::Mapping(map)) = get_mut(&mut doc.root, path) else {
        return;
    };
    let Some(kind) = map.get("kind").and_then(Value::as_str).map(str::to_string) else {
        return;
    };
    let Some(schema) = StageDecl::schema_of(&kind) else {
        return;
    };
    let allowed = schema_keys(&schema);
    let mut redirects = Vec::new();
    for (key, value, source) in defaults.for_kind(&kind, &allowed) {
        if !map.contains_key(key.as_str()) {
            map.insert(Value::from(key.as_str()), value);
            redirects.push((path.key(key.as_str()), source));
        }
    }
    for (target, source) in redirects {
        doc.spans.redirect(target, source);
    }
}

/// The node at `path` of `root`, for writing (`None` past a sequence or a scalar).
pub(crate) fn get_mut<'v>(root: &'v mut Value, path: &YamlPath) -> Option<&'v mut Value> {
    let mut node = root;
    for segment in path.segments() {
        let crate::syntax::Segment::Key(key) = segment else {
            return None;
        };
        node = node.as_mapping_mut()?.get_mut(key.as_str())?;
    }
    Some(node)
}

pub(crate) fn model(
    doc: &Document,
    path: &YamlPath,
    name: &str,
    value: &Value,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<ModelDecl> {
    let what = format!("model `{name}`");
    let map = mapping(doc, path, value, &what, diagnostics)?;
    decode_struct(doc, path, map, &what, diagnostics)
}

pub(crate) fn dataset(
    doc: &Document,
    path: &YamlPath,
    name: &str,
    value: &Value,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<DatasetDecl> {
    let what = format!("dataset `{name}`");
    let map = mapping(doc, path, value, &what, diagnostics)?;
    let kind = kind_of(doc, path, map, DatasetDecl::KINDS, "dataset", diagnostics)?;
    let what = format!("`{kind}` dataset `{name}`");
    match kind {
        "countdown" => decode_struct::<CountdownTask>(doc, path, map, &what, diagnostics)
            .map(DatasetDecl::Countdown),
        "arithmetic" => decode_struct::<ArithmeticTask>(doc, path, map, &what, diagnostics)
            .map(DatasetDecl::Arithmetic),
        _ => {
            decode_struct::<JsonlSource>(doc, path, map, &what, diagnostics).map(DatasetDecl::Jsonl)
        }
    }
}

pub(crate) fn reward(
    doc: &Document,
    path: &YamlPath,
    name: &str,
    value: &Value,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<RewardDecl> {
    let what = format!("reward `{name}`");
    let map = mapping(doc, path, value, &what, diagnostics)?;
    let kind = kind_of(doc, path, map, RewardDecl::KINDS, "reward", diagnostics)?;
    let what = format!("`{kind}` reward `{name}`");
    match kind {
        "accuracy" => decode_struct::<AccuracyReward>(doc, path, map, &what, diagnostics)
            .map(RewardDecl::Accuracy),
        "format" => decode_struct::<FormatReward>(doc, path, map, &what, diagnostics)
            .map(RewardDecl::Format),
        "language" => decode_struct::<LanguageReward>(doc, path, map, &what, diagnostics)
            .map(RewardDecl::Language),
        "length" => decode_struct::<LengthReward>(doc, path, map, &what, diagnostics)
            .map(RewardDecl::Length),
        "command" => decode_struct::<CommandReward>(doc, path, map, &what, diagnostics)
            .map(RewardDecl::Command),
        "code" => decode_struct::<crate::manifest::CodeReward>(doc, path, map, &what, diagnostics)
            .map(RewardDecl::Code),
        _ => {
            decode_struct::<ModelReward>(doc, path, map, &what, diagnostics).map(RewardDecl::Model)
        }
    }
}

/// What fills the parameters a stage leaves out.
pub(crate) struct StageDefaults<'a> {
    pub manifest: &'a ManifestDefaults,
    pub seed: u64,
}

/// Decodes one stage: its kind, unknown keys, defaults filled (with spans redirected to
/// where each default was written), then its typed config.
pub(crate) fn stage(
    doc: &mut Document,
    path: &YamlPath,
    name: &str,
    value: &Value,
    fill: &StageDefaults<'_>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<StageDecl> {
    let what = format!("stage `{name}`");
    let map = mapping(doc, path, value, &what, diagnostics)?;
    let kind = kind_of(doc, path, map, StageDecl::KINDS, "stage", diagnostics)?;
    let schema = StageDecl::schema_of(kind)?;
    let mut allowed = schema_keys(&schema);
    allowed.push("kind".to_string());
    let what = format!("`{kind}` stage `{name}`");
    unknown_keys(doc, path, map, &allowed, &what, diagnostics);
    let mut known = known_part(map, &allowed);
    known.remove("kind");

    // A stage an included file declared was completed by that file's defaults; this
    // manifest's defaults are not its own.
    let own_stage = doc.including(&doc.spans.resolve(path)).is_none();
    let seed_source = doc
        .spans
        .contains(&YamlPath::root().key("seed"))
        .then(|| YamlPath::root().key("seed"));
    let mut fill_from = |key: &str, value: Value, source: Option<YamlPath>, known: &mut Mapping| {
        if allowed.iter().any(|a| a == key) && !known.contains_key(key) {
            known.insert(Value::from(key), value);
            if let Some(source) = source {
                doc.spans.redirect(path.key(key), source);
            }
        }
    };
    if own_stage {
        for (key, value, source) in fill.manifest.for_kind(kind, &allowed) {
            fill_from(&key, value, Some(source), &mut known);
        }
    }
    if let Some(builtin) = StageDecl::builtin_defaults(kind) {
        for (key, value) in defaults_entries(&builtin) {
            fill_from(&key, value, None, &mut known);
        }
    }
    // Clip-higher defaults to a symmetric clip range.
    if let Some(epsilon) = known.get("epsilon").cloned() {
        fill_from(
            "epsilon_high",
            epsilon,
            Some(path.key("epsilon")),
            &mut known,
        );
    }
    fill_from("seed", Value::from(fill.seed), seed_source, &mut known);

    let known = Value::Mapping(known);
    if !all_finite(doc, path, &known, diagnostics) {
        return None;
    }
    match StageDecl::from_value(kind, known)? {
        Ok(decl) => Some(decl),
        Err(error) => {
            diagnostics.push(serde_error(doc, path, &error, &what));
            None
        }
    }
}

/// The fields `defaults` sets, as YAML values.
fn defaults_entries(defaults: &Defaults) -> Vec<(String, Value)> {
    let Ok(Value::Mapping(map)) = serde_yaml::to_value(defaults) else {
        return Vec::new();
    };
    map.into_iter()
        .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v)))
        .collect()
}
