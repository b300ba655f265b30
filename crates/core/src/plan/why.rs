//! Plan: why a stage would run again — the fields of its key material that differ from the
//! last time a stage of the same name ran (old → new), like cargo's `DirtyReason`.

use serde_json::Value;

use super::StageKey;

/// Differences between two key materials, as `path: old → new` lines.
pub fn explain_miss(old: &Value, new: &Value) -> Vec<String> {
    let mut changes = Vec::new();
    diff(&mut changes, String::new(), old, new);
    changes
}

fn short(value: &Value) -> String {
    match value {
        // A stage key (or a content hash like one) shows as keys do everywhere.
        Value::String(s) if s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit()) => {
            StageKey::new(s.as_str()).short().to_string()
        }
        Value::String(s) if s.len() > 60 => format!(
            "{}…",
            &s[..s.char_indices().nth(57).map_or(s.len(), |(i, _)| i)]
        ),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn diff(changes: &mut Vec<String>, path: String, old: &Value, new: &Value) {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, va) in a {
                match b.get(key) {
                    Some(vb) => diff(changes, join(key), va, vb),
                    None => changes.push(format!("{}: {} → (removed)", join(key), short(va))),
                }
            }
            for (key, vb) in b {
                if !a.contains_key(key) {
                    changes.push(format!("{}: (new) → {}", join(key), short(vb)));
                }
            }
        }
        (a, b) if a != b => {
            let label = if path.starts_with("inputs.") {
                format!("{path} (upstream changed)")
            } else {
                path
            };
            changes.push(format!("{label}: {} → {}", short(a), short(b)));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_each_changed_field() {
        let old = serde_json::json!({"params": {"learning_rate": 1e-5, "beta": 0.0}, "inputs": {"from": "a".repeat(64)}});
        let new = serde_json::json!({"params": {"learning_rate": 2e-5, "beta": 0.0}, "inputs": {"from": "b".repeat(64)}});
        assert_eq!(
            explain_miss(&old, &new),
            vec![
                "params.learning_rate: 0.00001 → 0.00002".to_string(),
                "inputs.from (upstream changed): aaaaaaaaaaaa → bbbbbbbbbbbb".to_string(),
            ]
        );
    }
}
