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

pub(crate) fn defaults(doc: &Document, diagnostics: &mut Vec<Diagnostic>) -> Defaults {
    let path = YamlPath::root().key("defaults");
    match doc.root.get("defaults") {
        None | Some(Value::Null) => Defaults::default(),
        Some(value) => mapping(doc, &path, value, "`defaults`", diagnostics)
            .and_then(|map| decode_struct(doc, &path, map, "`defaults`", diagnostics))
            .unwrap_or_default(),
    }
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
    pub manifest: &'a Defaults,
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
    for (key, value) in defaults_entries(fill.manifest) {
        let source = YamlPath::root().key("defaults").key(key.as_str());
        fill_from(&key, value, Some(source), &mut known);
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
