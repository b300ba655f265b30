//! Execute (rewards): the `language` reward — the share of the words in the reasoning
//! (inside `<think>`) that are in the target language, the reward R1 added against
//! language mixing.
//!
//! Words: a maximal run of letters is one word; each CJK ideograph is one word (Chinese
//! has no spaces, and a character is the unit a reader sees); digits and punctuation are
//! not words. The reasoning is the text after the first `<think>` up to the next
//! `</think>`, or to the end when it is never closed (a truncated completion). A
//! completion without `<think>`, or whose reasoning has no words, scores 0: an empty
//! reasoning must not earn a consistency bonus.
//!
//! Detection: `script` knows `en` (words of Latin letters) and `zh` (CJK ideographs);
//! `word_list` counts words found (case-insensitively) in the given list, for any language.

use std::collections::HashSet;
use std::path::Path;

use crate::manifest::{LanguageDetection, LanguageReward};

use super::error::RewardErrorKind;
use super::format::{THINK_CLOSE, THINK_OPEN};

/// The `language` reward, ready to score.
#[derive(Debug, Clone, PartialEq)]
pub struct LanguageConsistency {
    target: Target,
}

#[derive(Debug, Clone, PartialEq)]
enum Target {
    Script(Script),
    Words(HashSet<String>),
}

/// The writing system a word is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Script {
    Latin,
    Han,
    Other,
}

/// The largest word-list file read: 16 MiB (a language's dictionary is a few).
pub const MAX_WORD_LIST_BYTES: u64 = 16 << 20;

impl LanguageConsistency {
    /// Builds the reward; word-list files are read relative to `base_dir`.
    pub fn new(decl: &LanguageReward, base_dir: &Path) -> Result<Self, RewardErrorKind> {
        let target = match decl.detection {
            LanguageDetection::Script => match decl.language.as_str() {
                "en" => Target::Script(Script::Latin),
                "zh" => Target::Script(Script::Han),
                other => {
                    return Err(RewardErrorKind::Config(format!(
                        "script detection knows `en` and `zh`, not `{other}`; use \
                         `detection: word_list` with `words` or `word_list` for other languages"
                    )))
                }
            },
            LanguageDetection::WordList => {
                let mut words: HashSet<String> =
                    decl.words.iter().map(|w| w.trim().to_lowercase()).collect();
                if let Some(file) = &decl.word_list {
                    let path = base_dir.join(file);
                    let word_list_error = |message: String| RewardErrorKind::WordList {
                        path: path.clone(),
                        message,
                    };
                    let bytes = crate::user_file::read(&path, MAX_WORD_LIST_BYTES)
                        .map_err(|e| word_list_error(e.to_string()))?;
                    let text = String::from_utf8(bytes)
                        .map_err(|_| word_list_error("it is not UTF-8 text".into()))?;
                    words.extend(text.lines().map(|w| w.trim().to_lowercase()));
                }
                words.remove("");
                if words.is_empty() {
                    return Err(RewardErrorKind::Config(
                        "`detection: word_list` needs words: give `words: [...]` or a \
                         `word_list` file"
                            .into(),
                    ));
                }
                Target::Words(words)
            }
        };
        Ok(Self { target })
    }

    /// The share of reasoning words in the target language, in [0, 1].
    pub fn score(&self, completion: &str) -> f64 {
        let Some(reasoning) = reasoning(completion) else {
            return 0.0;
        };
        let (mut total, mut matching) = (0usize, 0usize);
        for_each_word(reasoning, |word, script| {
            total += 1;
            let hit = match &self.target {
                Target::Script(target) => script == *target,
                Target::Words(words) => words.contains(&word.to_lowercase()),
            };
            matching += usize::from(hit);
        });
        if total == 0 {
            0.0
        } else {
            matching as f64 / total as f64
        }
    }
}

/// The text inside `<think>`, per the module documentation.
pub fn reasoning(completion: &str) -> Option<&str> {
    let start = completion.find(THINK_OPEN)? + THINK_OPEN.len();
    let rest = &completion[start..];
    Some(rest.find(THINK_CLOSE).map_or(rest, |end| &rest[..end]))
}

fn is_han(c: char) -> bool {
    matches!(c,
        '\u{4E00}'..='\u{9FFF}'
        | '\u{3400}'..='\u{4DBF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{20000}'..='\u{2A6DF}'
        | '\u{2A700}'..='\u{2EBEF}'
        | '\u{30000}'..='\u{3134F}')
}

fn is_latin(c: char) -> bool {
    // U+00D7 and U+00F7 (× and ÷) sit inside Latin-1 but are not letters.
    c.is_ascii_alphabetic()
        || (matches!(c, '\u{00C0}'..='\u{024F}' | '\u{1E00}'..='\u{1EFF}')
            && c != '\u{00D7}'
            && c != '\u{00F7}')
}

/// Calls `visit` with each word of `text` and its script.
fn for_each_word(text: &str, mut visit: impl FnMut(&str, Script)) {
    let mut start: Option<usize> = None;
    let mut latin = true;
    for (i, c) in text.char_indices() {
        let letter = c.is_alphabetic() && !is_han(c);
        if letter {
            if start.is_none() {
                start = Some(i);
                latin = true;
            }
            latin &= is_latin(c);
            continue;
        }
        if let Some(s) = start.take() {
            visit(
                &text[s..i],
                if latin { Script::Latin } else { Script::Other },
            );
        }
        if is_han(c) {
            visit(&text[i..i + c.len_utf8()], Script::Han);
        }
    }
    if let Some(s) = start {
        visit(
            &text[s..],
            if latin { Script::Latin } else { Script::Other },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::LanguageReward;

    fn script(language: &str) -> LanguageConsistency {
        let decl = LanguageReward {
            language: language.into(),
            ..LanguageReward::default()
        };
        LanguageConsistency::new(&decl, Path::new(".")).expect("known language")
    }

    #[test]
    fn counts_latin_words_and_han_characters() {
        let en = script("en");
        let zh = script("zh");
        assert_eq!(
            en.score("<think>add the numbers</think><answer>3</answer>"),
            1.0
        );
        // 2 English words, 2 Chinese characters.
        let mixed = "<think>first 我们 then</think>";
        assert_eq!(en.score(mixed), 0.5);
        assert_eq!(zh.score(mixed), 0.5);
        assert_eq!(zh.score("<think>我们先算 12 + 3。</think>"), 1.0);
        // Cyrillic counts for neither.
        assert_eq!(en.score("<think>one два</think>"), 0.5);
        // Accented Latin is Latin.
        assert_eq!(en.score("<think>café naïve</think>"), 1.0);
    }

    #[test]
    fn no_reasoning_or_no_words_scores_zero() {
        let en = script("en");
        assert_eq!(en.score(""), 0.0);
        assert_eq!(en.score("plain text"), 0.0);
        assert_eq!(en.score("<think>12 + 3 = 15</think>"), 0.0);
        // Unclosed reasoning (truncated) still counts.
        assert_eq!(en.score("<think>still going"), 1.0);
    }

    #[test]
    fn word_lists_and_bad_declarations() {
        let decl = LanguageReward {
            language: "fr".into(),
            detection: LanguageDetection::WordList,
            words: vec!["le".into(), "Chat".into()],
            word_list: None,
        };
        let fr = LanguageConsistency::new(&decl, Path::new(".")).expect("words given");
        assert_eq!(fr.score("<think>Le chat the cat</think>"), 0.5);

        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("fr.txt"), "le\n  Chat \n\nest\n").expect("write");
        let from_file = LanguageReward {
            language: "fr".into(),
            detection: LanguageDetection::WordList,
            words: vec!["noir".into()],
            word_list: Some("fr.txt".into()),
        };
        let fr = LanguageConsistency::new(&from_file, dir.path()).expect("file read");
        assert_eq!(
            fr.score("<think>Le chat est noir, the end</think>"),
            4.0 / 6.0
        );

        let unknown = LanguageReward {
            language: "fr".into(),
            ..LanguageReward::default()
        };
        assert!(matches!(
            LanguageConsistency::new(&unknown, Path::new(".")),
            Err(RewardErrorKind::Config(_))
        ));
        let missing = LanguageReward {
            detection: LanguageDetection::WordList,
            word_list: Some("no/such/file.txt".into()),
            ..LanguageReward::default()
        };
        assert!(matches!(
            LanguageConsistency::new(&missing, Path::new(".")),
            Err(RewardErrorKind::WordList { .. })
        ));
    }
}
