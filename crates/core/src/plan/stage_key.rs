//! Plan: a stage instance's cache key — 64 hex digits of blake3 over its key material —
//! as a type of its own, so that a key is never mistaken for a name or a fingerprint, and
//! its 12-digit abbreviation (what tables and messages show) is written in one place.

use serde::{Deserialize, Serialize};

/// The cache key of a stage instance.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StageKey(String);

impl StageKey {
    /// Digits shown where a whole key would not fit (tables, progress lines).
    pub const SHORT: usize = 12;

    /// A key from its hex digits (as `KeyMaterial::hash` or the store wrote them).
    pub fn new(hex: impl Into<String>) -> Self {
        Self(hex.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The first 12 digits.
    pub fn short(&self) -> &str {
        self.0.get(..Self::SHORT).unwrap_or(&self.0)
    }
}

impl std::fmt::Display for StageKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for StageKey {
    fn from(hex: &str) -> Self {
        Self::new(hex)
    }
}

impl AsRef<[u8]> for StageKey {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl AsRef<str> for StageKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_is_the_first_twelve_digits_and_never_panics() {
        let key = StageKey::new("0123456789abcdef");
        assert_eq!(key.short(), "0123456789ab");
        assert_eq!(StageKey::new("abc").short(), "abc");
        assert_eq!(
            serde_json::to_string(&key).expect("json"),
            "\"0123456789abcdef\""
        );
    }
}
