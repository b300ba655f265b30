//! Parse: a path to a node of a YAML document (`stages.rl.rewards.format`), used to
//! find where a value was written and to name it in messages.

use std::fmt;

/// One step into a YAML node: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// A path from the document root to a node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct YamlPath(Vec<Segment>);

impl YamlPath {
    pub fn root() -> Self {
        Self(Vec::new())
    }

    /// Builds a path from dotted keys (`"stages.rl.beta"`); numeric parts stay keys.
    pub fn from_dotted(dotted: &str) -> Self {
        Self(
            dotted
                .split('.')
                .filter(|s| !s.is_empty())
                .map(|s| Segment::Key(s.to_string()))
                .collect(),
        )
    }

    pub fn key(&self, key: impl Into<String>) -> Self {
        let mut next = self.clone();
        next.0.push(Segment::Key(key.into()));
        next
    }

    pub fn index(&self, index: usize) -> Self {
        let mut next = self.clone();
        next.0.push(Segment::Index(index));
        next
    }

    /// Appends the segments of `other`.
    pub fn join(&self, other: &YamlPath) -> Self {
        let mut next = self.clone();
        next.0.extend(other.0.iter().cloned());
        next
    }

    pub fn segments(&self) -> &[Segment] {
        &self.0
    }

    pub fn parent(&self) -> Option<Self> {
        let (_, rest) = self.0.split_last()?;
        Some(Self(rest.to_vec()))
    }

    pub fn last_key(&self) -> Option<&str> {
        match self.0.last()? {
            Segment::Key(k) => Some(k),
            Segment::Index(_) => None,
        }
    }

    pub fn starts_with(&self, prefix: &YamlPath) -> bool {
        self.0.starts_with(&prefix.0)
    }

    /// `self` with `prefix` replaced by `replacement`; `None` when `prefix` is not a prefix.
    pub fn rebase(&self, prefix: &YamlPath, replacement: &YamlPath) -> Option<Self> {
        let rest = self.0.strip_prefix(prefix.0.as_slice())?;
        let mut next = replacement.0.clone();
        next.extend(rest.iter().cloned());
        Some(Self(next))
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for YamlPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(document root)");
        }
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(k) if i == 0 => write!(f, "{k}")?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

impl From<&serde_path_to_error::Path> for YamlPath {
    fn from(path: &serde_path_to_error::Path) -> Self {
        use serde_path_to_error::Segment as S;
        Self(
            path.iter()
                .filter_map(|segment| match segment {
                    S::Seq { index } => Some(Segment::Index(*index)),
                    S::Map { key } => Some(Segment::Key(key.clone())),
                    S::Enum { .. } | S::Unknown => None,
                })
                .collect(),
        )
    }
}
