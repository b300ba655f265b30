//! Plan: canonical JSON — object keys sorted at every level, compact — so that equal
//! values hash equally whatever order or formatting the manifest used.

use serde_json::Value;

/// `value` with every object's keys sorted.
pub fn canonicalize(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), canonicalize(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(canonicalize).collect()),
        other => other.clone(),
    }
}

/// The canonical compact text of `value`.
pub fn to_canonical_string(value: &Value) -> String {
    canonicalize(value).to_string()
}

/// blake3 of the canonical text, as 64 hex digits.
pub fn hash(value: &Value) -> String {
    blake3::hash(to_canonical_string(value).as_bytes())
        .to_hex()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_order_does_not_matter() {
        let a: Value =
            serde_json::from_str(r#"{"b": 1, "a": {"y": 2, "x": [3, {"q": 1, "p": 2}]}}"#)
                .expect("json");
        let b: Value =
            serde_json::from_str(r#"{"a": {"x": [3, {"p": 2, "q": 1}], "y": 2}, "b": 1}"#)
                .expect("json");
        assert_eq!(hash(&a), hash(&b));
        assert_eq!(
            to_canonical_string(&a),
            r#"{"a":{"x":[3,{"p":2,"q":1}],"y":2},"b":1}"#
        );
    }
}
