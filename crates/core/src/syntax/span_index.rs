//! Parse: where each node of a YAML document was written. serde_yaml gives values without
//! positions, so a second, position-keeping pass over yaml-rust2's events records the span
//! of every key and value by path. Aliases are not expanded here (a path through an alias
//! falls back to the alias's own span), so an alias bomb costs nothing in this pass; but a
//! merge (`<<: *anchor`) is remembered, so that a value a mapping got from its anchor is
//! located where the anchor wrote it, not at the merging key.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::path::YamlPath;
use crate::diag::Span;

/// Spans of one node: its key (for mapping entries) and its value.
#[derive(Debug, Clone, Copy)]
pub struct NodeSpans {
    pub key: Option<Span>,
    pub value: Span,
}

/// A mapping key written twice.
#[derive(Debug, Clone)]
pub struct DuplicateKey {
    pub path: YamlPath,
    pub first: Span,
    pub second: Span,
}

/// Path → span table of a document, with redirections for values that were copied from
/// elsewhere in the document (defaults and ablation overrides).
#[derive(Debug, Default, Clone)]
pub struct SpanIndex {
    nodes: HashMap<YamlPath, NodeSpans>,
    duplicates: Vec<DuplicateKey>,
    redirects: Vec<(YamlPath, YamlPath)>,
    /// `(mapping, anchor)`: the mapping at `mapping` merges (`<<:`) the one anchored at
    /// `anchor`, in the order written.
    merges: Vec<(YamlPath, YamlPath)>,
}

impl SpanIndex {
    /// Indexes `source`. A document yaml-rust2 cannot read yields the nodes seen before the
    /// failure; serde_yaml reports the syntax error itself.
    pub fn build(source: &str) -> Self {
        let mut builder = Builder {
            first_content: first_content_line(source),
            ..Builder::default()
        };
        let mut parser = Parser::new_from_str(source);
        let _ = parser.load(&mut builder, false);
        Self {
            nodes: builder.nodes,
            duplicates: builder.duplicates,
            redirects: Vec::new(),
            merges: builder.merges,
        }
    }

    /// Keys written twice in one mapping.
    pub fn duplicates(&self) -> &[DuplicateKey] {
        &self.duplicates
    }

    /// From now on, spans asked for under `target` are looked up under `source`: the value
    /// at `target` was copied from `source`.
    pub fn redirect(&mut self, target: YamlPath, source: YamlPath) {
        self.redirects.push((target, source));
    }

    /// Where the node at `path` was written, following redirections: a value copied from a
    /// copy (a stage extending one that got a default) is located at the original.
    pub fn resolve(&self, path: &YamlPath) -> YamlPath {
        let mut path = path.clone();
        // Each step follows one redirection; a chain is at most as long as their number.
        for _ in 0..=self.redirects.len() {
            let next = self
                .redirects
                .iter()
                .rev()
                .find_map(|(target, source)| path.rebase(target, source));
            match next {
                Some(next) if next != path => path = next,
                _ => break,
            }
        }
        path
    }

    /// Where the node at `path` was written when a merge brought it: the anchored
    /// mapping's node (merges nest: an anchor may merge another).
    fn merged(&self, path: &YamlPath) -> Option<YamlPath> {
        let mut path = path.clone();
        for _ in 0..self.merges.len() {
            if self.nodes.contains_key(&path) {
                return Some(path);
            }
            let rebased = self.merges.iter().find_map(|(mapping, anchor)| {
                let candidate = path.rebase(mapping, anchor)?;
                (candidate != path).then_some(candidate)
            })?;
            path = rebased;
        }
        self.nodes.contains_key(&path).then_some(path)
    }

    /// The spans of the node at `path`, or of its nearest written ancestor.
    pub fn node(&self, path: &YamlPath) -> Option<NodeSpans> {
        let resolved = self.resolve(path);
        if !self.merges.is_empty() && !self.nodes.contains_key(&resolved) {
            if let Some(spans) = self.merged(&resolved).and_then(|p| self.nodes.get(&p)) {
                return Some(*spans);
            }
        }
        let mut current = Some(resolved);
        while let Some(p) = current {
            if let Some(spans) = self.nodes.get(&p) {
                return Some(*spans);
            }
            current = p.parent();
        }
        None
    }

    /// Whether the node at exactly `path` was written in the document.
    pub fn contains(&self, path: &YamlPath) -> bool {
        self.nodes.contains_key(&self.resolve(path))
    }

    /// The span of the value at `path` (or of its nearest ancestor).
    pub fn value(&self, path: &YamlPath) -> Span {
        self.node(path)
            .map(|n| n.value)
            .unwrap_or_else(Span::file_start)
    }

    /// The span of the key that introduces `path`, falling back to its value's span.
    pub fn key(&self, path: &YamlPath) -> Span {
        self.node(path)
            .map(|n| n.key.unwrap_or(n.value))
            .unwrap_or_else(Span::file_start)
    }
}

enum Frame {
    Mapping {
        path: YamlPath,
        pending_key: Option<(String, Span)>,
        seen: HashMap<String, Span>,
    },
    Sequence {
        path: YamlPath,
        next: usize,
    },
    /// A complex (non-scalar) mapping key: skipped with its whole subtree.
    Skipped {
        depth: usize,
    },
}

/// The first line that is neither blank nor a comment (where the document "is").
fn first_content_line(source: &str) -> Span {
    source
        .lines()
        .position(|l| {
            let t = l.trim();
            !t.is_empty() && !t.starts_with('#') && t != "---"
        })
        .map(|i| Span::new(i + 1, 1, 1))
        .unwrap_or_else(Span::file_start)
}

#[derive(Default)]
struct Builder {
    first_content: Span,
    nodes: HashMap<YamlPath, NodeSpans>,
    duplicates: Vec<DuplicateKey>,
    stack: Vec<Frame>,
    /// Where each anchor (yaml-rust2's id) was written.
    anchors: HashMap<usize, YamlPath>,
    merges: Vec<(YamlPath, YamlPath)>,
}

fn span_at(mark: Marker, len: usize) -> Span {
    // yaml-rust2 counts lines from 1 and columns from 0.
    Span::new(mark.line(), mark.col() + 1, len)
}

enum NodeKind {
    Scalar(String, TScalarStyle),
    Collection {
        mapping: bool,
    },
    /// An alias to the anchor with this id.
    Alias(usize),
}

impl Builder {
    fn node(&mut self, kind: NodeKind, mark: Marker) {
        self.node_anchored(kind, mark, 0);
    }

    /// A node; `anchor` is its anchor's id (0: none).
    fn node_anchored(&mut self, kind: NodeKind, mark: Marker, anchor: usize) {
        if let Some(Frame::Skipped { depth }) = self.stack.last_mut() {
            if let NodeKind::Collection { .. } = kind {
                *depth += 1;
            }
            return;
        }
        let scalar_len = |value: &str, style: TScalarStyle| match style {
            TScalarStyle::Plain => value.chars().count(),
            TScalarStyle::SingleQuoted | TScalarStyle::DoubleQuoted => value.chars().count() + 2,
            _ => 1,
        };
        // A mapping expecting a key takes this node as its key.
        if let Some(Frame::Mapping {
            pending_key,
            seen,
            path,
            ..
        }) = self.stack.last_mut()
        {
            if pending_key.is_none() {
                match kind {
                    NodeKind::Scalar(value, style) => {
                        let span = span_at(mark, scalar_len(&value, style));
                        if let Some(first) = seen.get(&value) {
                            self.duplicates.push(DuplicateKey {
                                path: path.key(value.clone()),
                                first: *first,
                                second: span,
                            });
                        } else {
                            seen.insert(value.clone(), span);
                        }
                        *pending_key = Some((value, span));
                    }
                    NodeKind::Collection { .. } => {
                        *pending_key = Some((String::from("?"), span_at(mark, 1)));
                        self.stack.push(Frame::Skipped { depth: 1 });
                    }
                    NodeKind::Alias(_) => {
                        *pending_key = Some((String::from("*"), span_at(mark, 1)));
                    }
                }
                return;
            }
        }
        let (path, key_span) = match self.stack.last_mut() {
            None => (YamlPath::root(), None),
            Some(Frame::Mapping {
                path, pending_key, ..
            }) => match pending_key.take() {
                Some((key, span)) => (path.key(key), Some(span)),
                None => return,
            },
            Some(Frame::Sequence { path, next }) => {
                let p = path.index(*next);
                *next += 1;
                (p, None)
            }
            Some(Frame::Skipped { .. }) => return,
        };
        let value_span = match &kind {
            NodeKind::Scalar(value, style) => span_at(mark, scalar_len(value, *style)),
            // yaml-rust2 marks a block collection where it detects it (after the first
            // key), so a collection is located by the key that introduces it.
            NodeKind::Collection { .. } => match key_span {
                Some(span) => span,
                None if path.is_root() => self.first_content,
                None => span_at(mark, 1),
            },
            NodeKind::Alias(_) => span_at(mark, 1),
        };
        // `<<: *anchor`, or one alias of `<<: [*a, *b]`: the mapping holding the `<<`
        // key merges the anchored one.
        if let NodeKind::Alias(id) = &kind {
            let merge_key = |p: &YamlPath| p.last_key() == Some("<<");
            let mapping = if merge_key(&path) {
                path.parent()
            } else {
                path.parent().filter(merge_key).and_then(|p| p.parent())
            };
            if let (Some(mapping), Some(anchor)) = (mapping, self.anchors.get(id)) {
                self.merges.push((mapping, anchor.clone()));
            }
        }
        if anchor != 0 {
            self.anchors.insert(anchor, path.clone());
        }
        self.nodes.insert(
            path.clone(),
            NodeSpans {
                key: key_span,
                value: value_span,
            },
        );
        if let NodeKind::Collection { mapping } = kind {
            self.stack.push(if mapping {
                Frame::Mapping {
                    path,
                    pending_key: None,
                    seen: HashMap::new(),
                }
            } else {
                Frame::Sequence { path, next: 0 }
            });
        }
    }

    fn end(&mut self) {
        if let Some(Frame::Skipped { depth }) = self.stack.last_mut() {
            *depth -= 1;
            if *depth > 0 {
                return;
            }
        }
        self.stack.pop();
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        match event {
            Event::Scalar(value, style, anchor, _) => {
                self.node_anchored(NodeKind::Scalar(value, style), mark, anchor)
            }
            Event::SequenceStart(anchor, _) => {
                self.node_anchored(NodeKind::Collection { mapping: false }, mark, anchor)
            }
            Event::MappingStart(anchor, _) => {
                self.node_anchored(NodeKind::Collection { mapping: true }, mark, anchor)
            }
            Event::Alias(anchor) => self.node(NodeKind::Alias(anchor), mark),
            Event::SequenceEnd | Event::MappingEnd => self.end(),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_key_and_value_positions() {
        let index = SpanIndex::build("name: demo\nstages:\n  rl:\n    beta: 0.04\n");
        let beta = YamlPath::from_dotted("stages.rl.beta");
        assert_eq!(index.key(&beta), Span::new(4, 5, 4));
        assert_eq!(index.value(&beta), Span::new(4, 11, 4));
        // A path that was not written falls back to its nearest ancestor.
        let missing = YamlPath::from_dotted("stages.rl.epsilon");
        assert_eq!(index.value(&missing), Span::new(3, 3, 2));
    }

    #[test]
    fn finds_duplicate_keys() {
        let index = SpanIndex::build("a: 1\nb: 2\na: 3\n");
        let dups = index.duplicates();
        assert_eq!(dups.len(), 1);
        assert_eq!(dups[0].first, Span::new(1, 1, 1));
        assert_eq!(dups[0].second, Span::new(3, 1, 1));
    }

    #[test]
    fn a_merged_value_is_located_where_its_anchor_wrote_it() {
        let source = "base: &base\n  beta: 0.1\n  lr: 2\nstages:\n  rl:\n    <<: *base\n    lr: 3\n  two:\n    <<: [*base]\n";
        let index = SpanIndex::build(source);
        // From the anchor: where `base` wrote it.
        assert_eq!(
            index.value(&YamlPath::from_dotted("stages.rl.beta")),
            Span::new(2, 9, 3)
        );
        assert_eq!(
            index.value(&YamlPath::from_dotted("stages.two.beta")),
            Span::new(2, 9, 3)
        );
        // Written on the merging mapping itself: there.
        assert_eq!(
            index.value(&YamlPath::from_dotted("stages.rl.lr")),
            Span::new(7, 9, 1)
        );
    }

    #[test]
    fn redirects_copied_values() {
        let mut index = SpanIndex::build("defaults:\n  beta: 0.1\nstages:\n  rl: {}\n");
        index.redirect(
            YamlPath::from_dotted("stages.rl.beta"),
            YamlPath::from_dotted("defaults.beta"),
        );
        assert_eq!(
            index.value(&YamlPath::from_dotted("stages.rl.beta")),
            Span::new(2, 9, 3)
        );
    }
}
