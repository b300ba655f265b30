//! Check: expanding `ablations:` into variants. Each axis maps arm names to overrides
//! (`dotted.path: value`); the variants are every combination of one arm per axis, each a
//! copy of the manifest with its overrides applied, checked like any manifest. Spans of
//! overridden values point at the override, so errors show where the arm set them.

use indexmap::IndexMap;
use serde_yaml::Value;

use super::decode::{describe, mapping};
use super::pipeline::Variant;
use super::suggest;
use crate::diag::Diagnostic;
use crate::schema::Manifest;
use crate::syntax::{Document, YamlPath};

/// More variants than this is almost certainly a mistake (and a lot of compute).
pub const MAX_VARIANTS: usize = 256;

struct Override {
    dotted: String,
    target: YamlPath,
    source: YamlPath,
    value: Value,
}

struct Arm {
    axis: String,
    name: String,
    overrides: Vec<Override>,
}

/// The variants of `doc`: one per combination of arms, or the manifest itself.
pub(crate) fn expand(
    doc: &Document,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<(Variant, Document)> {
    let errors_before = diagnostics.len();
    let axes = read_axes(doc, diagnostics);
    if diagnostics.len() > errors_before {
        return Vec::new();
    }
    if axes.is_empty() {
        return vec![(Variant::default_variant(), doc.clone())];
    }
    let count = axes.iter().map(Vec::len).product::<usize>();
    if count > MAX_VARIANTS {
        diagnostics.push(
            Diagnostic::error(format!(
                "the ablation axes make {count} variants; at most {MAX_VARIANTS} are allowed"
            ))
            .at(Some(doc.key_location(&YamlPath::root().key("ablations"))))
            .with_help("split the study into several manifests, or drop arms"),
        );
        return Vec::new();
    }
    let mut variants = Vec::with_capacity(count);
    let mut choice = vec![0usize; axes.len()];
    loop {
        let arms: Vec<&Arm> = choice
            .iter()
            .zip(&axes)
            .map(|(i, axis)| &axis[*i])
            .collect();
        let mut variant_doc = doc.clone();
        let mut overrides = IndexMap::new();
        for arm in &arms {
            for o in &arm.overrides {
                set(&mut variant_doc.root, &o.target, o.value.clone());
                variant_doc
                    .spans
                    .redirect(o.target.clone(), o.source.clone());
                overrides.insert(
                    o.dotted.clone(),
                    serde_json::to_value(&o.value).unwrap_or(serde_json::Value::Null),
                );
            }
        }
        let variant = Variant {
            name: arms
                .iter()
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>()
                .join("+"),
            arms: arms
                .iter()
                .map(|a| (a.axis.clone(), a.name.clone()))
                .collect(),
            overrides,
        };
        variants.push((variant, variant_doc));
        // Advance the odometer, last axis fastest.
        let mut axis = axes.len();
        loop {
            if axis == 0 {
                return variants;
            }
            axis -= 1;
            choice[axis] += 1;
            if choice[axis] < axes[axis].len() {
                break;
            }
            choice[axis] = 0;
        }
    }
}

fn read_axes(doc: &Document, diagnostics: &mut Vec<Diagnostic>) -> Vec<Vec<Arm>> {
    let root = YamlPath::root().key("ablations");
    let Some(value) = doc.root.get("ablations") else {
        return Vec::new();
    };
    if value.is_null() {
        return Vec::new();
    }
    let Some(axes_map) = mapping(doc, &root, value, "`ablations`", diagnostics) else {
        return Vec::new();
    };
    let mut axes = Vec::new();
    let mut arm_names: IndexMap<String, YamlPath> = IndexMap::new();
    for (axis_key, arms_value) in axes_map {
        let Some(axis) = axis_key.as_str() else {
            diagnostics.push(
                Diagnostic::error(format!(
                    "ablation axes are named by strings, not {}",
                    describe(axis_key)
                ))
                .at(Some(doc.value_location(&root))),
            );
            continue;
        };
        let axis_path = root.key(axis);
        let Some(arms_map) = mapping(
            doc,
            &axis_path,
            arms_value,
            &format!("ablation axis `{axis}`"),
            diagnostics,
        ) else {
            continue;
        };
        if arms_map.len() < 2 {
            diagnostics.push(
                Diagnostic::error(format!(
                    "ablation axis `{axis}` has {} arm(s); an axis compares two or more",
                    arms_map.len()
                ))
                .at(Some(doc.key_location(&axis_path)))
                .with_help("add an arm, e.g. a baseline with `{}` (no overrides)"),
            );
        }
        let mut arms = Vec::new();
        for (arm_key, overrides_value) in arms_map {
            let Some(arm) = arm_key.as_str() else {
                continue;
            };
            let arm_path = axis_path.key(arm);
            if let Some(first) = arm_names.get(arm) {
                diagnostics.push(
                    Diagnostic::error(format!("arm name `{arm}` is used on two axes"))
                        .at(Some(doc.key_location(&arm_path)))
                        .with_related("first used here", Some(doc.key_location(first)))
                        .with_help(
                            "variant names join arm names with `+`, so arm names must be unique",
                        ),
                );
            }
            arm_names.insert(arm.to_string(), arm_path.clone());
            let mut overrides = Vec::new();
            match overrides_value {
                Value::Null => {}
                value => {
                    let Some(map) = mapping(
                        doc,
                        &arm_path,
                        value,
                        &format!("ablation arm `{arm}`"),
                        diagnostics,
                    ) else {
                        continue;
                    };
                    for (key, value) in map {
                        let Some(dotted) = key.as_str() else { continue };
                        let source = arm_path.key(dotted);
                        if let Some(target) = check_target(doc, dotted, &source, diagnostics) {
                            overrides.push(Override {
                                dotted: dotted.to_string(),
                                target,
                                source,
                                value: value.clone(),
                            });
                        }
                    }
                }
            }
            arms.push(Arm {
                axis: axis.to_string(),
                name: arm.to_string(),
                overrides,
            });
        }
        axes.push(arms);
    }
    axes
}

/// The path an override sets, if its parent exists in the manifest as a mapping.
fn check_target(
    doc: &Document,
    dotted: &str,
    source: &YamlPath,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<YamlPath> {
    let target = YamlPath::from_dotted(dotted);
    let top = target.segments().first().and_then(|s| match s {
        crate::syntax::Segment::Key(k) => Some(k.as_str()),
        crate::syntax::Segment::Index(_) => None,
    })?;
    let settable: Vec<&str> = Manifest::KEYS
        .iter()
        .copied()
        .filter(|k| !matches!(*k, "ablations" | "name"))
        .collect();
    if !settable.contains(&top) {
        let stage_shorthand = doc.root.get("stages").and_then(|s| s.get(top)).is_some();
        let help = if stage_shorthand {
            format!("did you mean `stages.{dotted}`?")
        } else {
            suggest::help_for(top, &settable, "top-level key")
        };
        diagnostics.push(
            Diagnostic::error(format!(
                "ablation override `{dotted}` does not start with a manifest key"
            ))
            .at(Some(doc.key_location(source)))
            .with_help(help),
        );
        return None;
    }
    let parent = target.parent()?;
    let mut node = &doc.root;
    let mut walked = YamlPath::root();
    for segment in parent.segments() {
        let crate::syntax::Segment::Key(key) = segment else {
            return None;
        };
        walked = walked.key(key.as_str());
        match node.get(key.as_str()) {
            Some(next) if next.is_mapping() => node = next,
            found => {
                let siblings: Vec<&str> = node
                    .as_mapping()
                    .map(|m| m.keys().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let what = if found.is_some() {
                    "is not a mapping"
                } else {
                    "does not exist"
                };
                diagnostics.push(
                    Diagnostic::error(format!(
                        "ablation override `{dotted}`: `{walked}` {what} in the manifest"
                    ))
                    .at(Some(doc.key_location(source)))
                    .with_help(suggest::help_for(key, &siblings, "key")),
                );
                return None;
            }
        }
    }
    Some(target)
}

fn set(root: &mut Value, path: &YamlPath, value: Value) {
    let (Some(parent), Some(key)) = (path.parent(), path.last_key()) else {
        return;
    };
    if let Some(Value::Mapping(map)) = super::sections::get_mut(root, &parent) {
        map.insert(Value::from(key), value);
    }
}
