//! Check: turning YAML values into typed declarations, with every serde error located at
//! its `path:line:col` and unknown keys reported all at once with suggestions.

use serde::de::DeserializeOwned;
use serde_yaml::{Mapping, Value};

use super::suggest;
use crate::diag::Diagnostic;
use crate::syntax::{Document, YamlPath};

/// The properties a JSON Schema object allows, in declaration order.
pub(crate) fn schema_keys(schema: &schemars::Schema) -> Vec<String> {
    schema
        .get("properties")
        .and_then(|p| p.as_object())
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

/// The property names of `T`'s schema.
pub(crate) fn keys_of<T: schemars::JsonSchema>() -> Vec<String> {
    schema_keys(&schemars::schema_for!(T))
}

/// Reports each key of `mapping` that is not in `allowed`; returns whether all were known.
pub(crate) fn unknown_keys(
    doc: &Document,
    path: &YamlPath,
    mapping: &Mapping,
    allowed: &[String],
    what: &str,
    diagnostics: &mut Vec<Diagnostic>,
) -> bool {
    let allowed_refs: Vec<&str> = allowed.iter().map(String::as_str).collect();
    let mut all_known = true;
    for key in mapping.keys() {
        let Some(key) = key.as_str() else {
            all_known = false;
            diagnostics.push(
                Diagnostic::error(format!("{what}: keys must be strings"))
                    .at(Some(doc.value_location(path))),
            );
            continue;
        };
        if !allowed_refs.contains(&key) {
            all_known = false;
            diagnostics.push(
                Diagnostic::error(format!("unknown field `{key}` in {what}"))
                    .at(Some(doc.key_location(&path.key(key))))
                    .with_help(suggest::help_for(key, &allowed_refs, "field")),
            );
        }
    }
    all_known
}

/// Reports every number in `value` (found at `path`) that is not finite — `.nan`, `.inf`,
/// `-.inf`, or a literal too large for f64 — where it was written; returns whether there
/// was none. No field of a manifest takes one: a NaN passes every range check (each
/// comparison is false) and JSON, hence the cache key, writes all three as `null`. So the
/// rule holds where values are decoded, for every field at once.
pub(crate) fn all_finite(
    doc: &Document,
    path: &YamlPath,
    value: &Value,
    diagnostics: &mut Vec<Diagnostic>,
) -> bool {
    match value {
        Value::Number(number) => match number.as_f64() {
            Some(x) if !x.is_finite() => {
                let written = if x.is_nan() {
                    ".nan"
                } else if x > 0.0 {
                    ".inf"
                } else {
                    "-.inf"
                };
                diagnostics.push(
                    Diagnostic::error(format!("`{path}`: {written} is not a finite number"))
                        .at(Some(doc.value_location(path)))
                        .with_help("write a finite number, e.g. 0.5 or 1.0e-4"),
                );
                false
            }
            _ => true,
        },
        Value::Sequence(items) => items.iter().enumerate().fold(true, |ok, (i, item)| {
            all_finite(doc, &path.index(i), item, diagnostics) && ok
        }),
        Value::Mapping(map) => map.iter().fold(true, |ok, (key, item)| match key.as_str() {
            Some(key) => all_finite(doc, &path.key(key), item, diagnostics) && ok,
            None => ok,
        }),
        Value::Tagged(tagged) => all_finite(doc, path, &tagged.value, diagnostics),
        Value::Null | Value::Bool(_) | Value::String(_) => true,
    }
}

/// Deserializes `value` (found at `path`) as `T`, reporting a failure as a diagnostic.
pub(crate) fn decode<T: DeserializeOwned>(
    doc: &Document,
    path: &YamlPath,
    value: Value,
    what: &str,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<T> {
    if !all_finite(doc, path, &value, diagnostics) {
        return None;
    }
    match serde_path_to_error::deserialize(value) {
        Ok(decoded) => Some(decoded),
        Err(error) => {
            diagnostics.push(serde_error(doc, path, &error, what));
            None
        }
    }
}

/// A serde error at `base` + the error's own path, rewritten for a person.
pub(crate) fn serde_error(
    doc: &Document,
    base: &YamlPath,
    error: &serde_path_to_error::Error<serde_yaml::Error>,
    what: &str,
) -> Diagnostic {
    let path = base.join(&YamlPath::from(error.path()));
    let raw = error.inner().to_string();
    let message = match raw.find(" at line ") {
        Some(cut) => raw[..cut].to_string(),
        None => raw,
    };
    if let Some(field) = between(&message, "missing field `", "`") {
        return Diagnostic::error(format!("{what}: missing field `{field}`"))
            .at(Some(doc.key_location(&path)))
            .with_help(format!("add `{field}: …` here"));
    }
    if let Some(field) = between(&message, "unknown field `", "`") {
        let expected = expected_list(&message);
        let expected_refs: Vec<&str> = expected.iter().map(String::as_str).collect();
        return Diagnostic::error(format!("unknown field `{field}` in {what}"))
            .at(Some(doc.key_location(&path.key(field))))
            .with_help(suggest::help_for(field, &expected_refs, "field"));
    }
    if let Some(variant) = between(&message, "unknown variant `", "`") {
        let expected = expected_list(&message);
        let expected_refs: Vec<&str> = expected.iter().map(String::as_str).collect();
        return Diagnostic::error(format!("`{path}`: unknown value `{variant}`"))
            .at(Some(doc.value_location(&path)))
            .with_help(suggest::help_for(variant, &expected_refs, "value"));
    }
    let mut diagnostic =
        Diagnostic::error(format!("`{path}`: {message}")).at(Some(doc.value_location(&path)));
    if let Some(expected) = message.rsplit("expected ").next() {
        let help = match expected {
            "u64" | "usize" | "u32" => Some("write a whole number, 0 or more"),
            "f64" | "f32" => Some("write a number, e.g. 0.5 or 1.0e-4"),
            "a boolean" => Some("write `true` or `false`"),
            "a string" => Some("write text; quote it if it looks like a number or boolean"),
            _ => None,
        };
        if let Some(help) = help {
            diagnostic = diagnostic.with_help(help);
        }
    }
    diagnostic
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(&text[from..from + len])
}

/// The names in serde's "expected one of `a`, `b`" (or "expected `a` or `b`").
fn expected_list(message: &str) -> Vec<String> {
    let Some(at) = message.find("expected") else {
        return Vec::new();
    };
    message[at..]
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// `value` as a mapping, or an error saying what was expected there.
pub(crate) fn mapping<'v>(
    doc: &Document,
    path: &YamlPath,
    value: &'v Value,
    what: &str,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<&'v Mapping> {
    match value {
        Value::Mapping(m) => Some(m),
        other => {
            diagnostics.push(
                Diagnostic::error(format!(
                    "{what} must be a mapping of `key: value` entries, not {}",
                    describe(other)
                ))
                .at(Some(doc.value_location(path))),
            );
            None
        }
    }
}

/// A short description of a YAML value's type, for messages.
pub(crate) fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing (null)",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}
