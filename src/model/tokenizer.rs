//! Model layer (used by execute): text ↔ token ids through HuggingFace `tokenizers`
//! (tokenizer.json), including the built-in byte-level tokenizer for generated tasks.
//!
//! The built-in tokenizer is itself a tokenizer.json (a byte-level BPE with no merges:
//! one token per byte, plus special tokens), so every exported model carries it and
//! `transformers` reads it like any other.

use std::path::Path;

use super::ModelError;

/// Special tokens of the built-in tokenizer, in id order (ids 0..7).
pub const BUILTIN_SPECIAL_TOKENS: [(&str, bool); 7] = [
    ("<pad>", true),
    ("<s>", true),
    ("</s>", true),
    ("<think>", false),
    ("</think>", false),
    ("<answer>", false),
    ("</answer>", false),
];

/// Names under which tokenizers commonly spell end-of-sequence.
const EOS_NAMES: [&str; 5] = [
    "</s>",
    "<|endoftext|>",
    "<|im_end|>",
    "<|end_of_text|>",
    "<eos>",
];

/// A tokenizer with the ids generation needs, and the chat template (Jinja source) a
/// checkpoint's tokenizer carries, which export writes back.
#[derive(Debug, Clone)]
pub struct TextTokenizer {
    inner: tokenizers::Tokenizer,
    eos_ids: Vec<u32>,
    pad_id: u32,
    bos_id: Option<u32>,
    chat_template: Option<String>,
}

/// GPT-2's byte → printable character map used by byte-level BPE.
fn byte_to_char() -> Vec<char> {
    let mut direct: Vec<u32> = (b'!' as u32..=b'~' as u32).collect();
    direct.extend(0xA1..=0xAC);
    direct.extend(0xAE..=0xFF);
    let mut map = vec!['\0'; 256];
    let mut extra = 0;
    for b in 0..256u32 {
        let c = if direct.contains(&b) {
            b
        } else {
            extra += 1;
            255 + extra
        };
        map[b as usize] = char::from_u32(c).unwrap_or('?');
    }
    map
}

/// The built-in tokenizer.json: 7 special tokens then the 256 bytes (263 ids).
pub fn builtin_tokenizer_json() -> String {
    let mut vocab = serde_json::Map::new();
    let mut added = Vec::new();
    for (id, (content, special)) in BUILTIN_SPECIAL_TOKENS.iter().enumerate() {
        vocab.insert((*content).to_string(), id.into());
        added.push(serde_json::json!({
            "id": id, "content": content, "single_word": false, "lstrip": false,
            "rstrip": false, "normalized": false, "special": special
        }));
    }
    for (b, c) in byte_to_char().into_iter().enumerate() {
        vocab.insert(c.to_string(), (BUILTIN_SPECIAL_TOKENS.len() + b).into());
    }
    let byte_level = serde_json::json!({
        "type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false
    });
    let json = serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": byte_level,
        "post_processor": null,
        "decoder": byte_level,
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null,
            "continuing_subword_prefix": null, "end_of_word_suffix": null,
            "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab, "merges": []
        }
    });
    serde_json::to_string_pretty(&json).unwrap_or_default()
}

impl TextTokenizer {
    /// The built-in byte-level tokenizer (`<pad>`=0, `<s>`=1, `</s>`=2 is EOS).
    pub fn builtin() -> Self {
        // The JSON is generated above and always parses; a failure is a bug caught by tests.
        let mut t = Self::from_json(&builtin_tokenizer_json())
            .unwrap_or_else(|e| panic!("built-in tokenizer.json is invalid: {e}"));
        t.eos_ids = vec![2];
        t.pad_id = 0;
        t.bos_id = Some(1);
        t
    }

    /// Reads a tokenizer.json text; EOS/PAD are guessed from its special tokens
    /// (checkpoint loading overrides them from config files).
    pub fn from_json(json: &str) -> Result<Self, ModelError> {
        let inner: tokenizers::Tokenizer = json
            .parse()
            .map_err(|e| ModelError::tokenizer(format!("invalid tokenizer.json: {e}")))?;
        let eos_ids: Vec<u32> = EOS_NAMES
            .iter()
            .filter_map(|n| inner.token_to_id(n))
            .take(1)
            .collect();
        let pad_id = ["<pad>", "<|pad|>", "<|endoftext|>"]
            .iter()
            .find_map(|n| inner.token_to_id(n))
            .or_else(|| eos_ids.first().copied())
            .unwrap_or(0);
        let bos_id = ["<s>", "<|begin_of_text|>", "<bos>"]
            .iter()
            .find_map(|n| inner.token_to_id(n));
        Ok(Self {
            inner,
            eos_ids,
            pad_id,
            bos_id,
            chat_template: None,
        })
    }

    /// Reads a tokenizer.json file.
    pub fn from_file(path: &Path) -> Result<Self, ModelError> {
        let json = ModelError::read_text(path, super::error::MAX_JSON_BYTES)?;
        Self::from_json(&json)
            .map_err(|e| ModelError::tokenizer(format!("{}: {e}", path.display())))
    }

    /// The tokenizer.json text (what export writes).
    pub fn to_json(&self) -> Result<String, ModelError> {
        self.inner
            .to_string(true)
            .map_err(|e| ModelError::tokenizer(format!("serialising tokenizer.json: {e}")))
    }

    /// Token ids of `text`; `add_special` applies the tokenizer's post-processor (e.g. BOS).
    pub fn encode(&self, text: &str, add_special: bool) -> Result<Vec<u32>, ModelError> {
        let enc = self
            .inner
            .encode(text, add_special)
            .map_err(|e| ModelError::tokenizer(format!("encoding text: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Text of `ids`; `skip_special` drops special tokens (pad, bos, eos).
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String, ModelError> {
        self.inner
            .decode(ids, skip_special)
            .map_err(|e| ModelError::tokenizer(format!("decoding ids: {e}")))
    }

    /// Number of ids, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Id of a token spelled `token`, if any.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// End-of-sequence ids (generation stops on any).
    pub fn eos_ids(&self) -> &[u32] {
        &self.eos_ids
    }

    /// Id used to pad batches.
    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// Beginning-of-sequence id, if the tokenizer has one.
    pub fn bos_id(&self) -> Option<u32> {
        self.bos_id
    }

    /// The chat template (Jinja source) of the checkpoint this tokenizer came from.
    pub fn chat_template(&self) -> Option<&str> {
        self.chat_template.as_deref()
    }

    /// Sets the chat template (from the checkpoint's tokenizer files).
    pub fn set_chat_template(&mut self, template: Option<String>) {
        self.chat_template = template;
    }

    /// What tokenizer.json alone does not say about this tokenizer — special ids that
    /// differ from those [`TextTokenizer::from_json`] guesses (a checkpoint's, from its
    /// config files) and the chat template — as JSON; `None` when there is nothing (the
    /// built-in tokenizer). Model artifacts store it beside tokenizer.json.
    pub fn settings_json(&self) -> Result<Option<String>, ModelError> {
        let guessed = Self::from_json(&self.to_json()?)?;
        let same_ids = guessed.eos_ids == self.eos_ids
            && guessed.pad_id == self.pad_id
            && guessed.bos_id == self.bos_id;
        if same_ids && self.chat_template.is_none() {
            return Ok(None);
        }
        let mut json = serde_json::json!({
            "eos_token_id": self.eos_ids,
            "pad_token_id": self.pad_id,
            "bos_token_id": self.bos_id,
        });
        if let (Some(template), Some(map)) = (&self.chat_template, json.as_object_mut()) {
            map.insert("chat_template".into(), template.clone().into());
        }
        serde_json::to_string_pretty(&json)
            .map(Some)
            .map_err(|e| ModelError::tokenizer(format!("serialising tokenizer settings: {e}")))
    }

    /// Applies what [`TextTokenizer::settings_json`] wrote.
    pub fn apply_settings_json(&mut self, json: &str) -> Result<(), ModelError> {
        #[derive(serde::Deserialize)]
        struct Settings {
            eos_token_id: Vec<u32>,
            pad_token_id: u32,
            bos_token_id: Option<u32>,
            chat_template: Option<String>,
        }
        let settings: Settings = serde_json::from_str(json)
            .map_err(|e| ModelError::tokenizer(format!("tokenizer settings: {e}")))?;
        self.eos_ids = settings.eos_token_id;
        self.pad_id = settings.pad_token_id;
        self.bos_id = settings.bos_token_id;
        self.chat_template = settings.chat_template;
        Ok(())
    }

    /// Overrides the special ids (from config.json / generation_config.json).
    pub fn set_special_ids(&mut self, eos_ids: Vec<u32>, pad_id: Option<u32>, bos_id: Option<u32>) {
        if !eos_ids.is_empty() {
            self.eos_ids = eos_ids;
        }
        if let Some(p) = pad_id {
            self.pad_id = p;
        }
        if bos_id.is_some() {
            self.bos_id = bos_id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_round_trips_text_and_keeps_tags() {
        let t = TextTokenizer::builtin();
        assert_eq!(t.vocab_size(), 263);
        let text = "<think>3+4 = 7, héllo\n</think><answer>7</answer>";
        let ids = t.encode(text, false).expect("encodes");
        assert_eq!(ids[0], 3);
        assert_eq!(*ids.last().expect("non-empty"), 6);
        assert_eq!(t.decode(&ids, true).expect("decodes"), text);
        let with_eos = [ids.clone(), vec![2, 0]].concat();
        assert_eq!(t.decode(&with_eos, true).expect("decodes"), text);
    }

    #[test]
    fn builtin_json_reloads_identically() {
        let t = TextTokenizer::builtin();
        let again = TextTokenizer::from_json(&t.to_json().expect("serialises")).expect("parses");
        assert_eq!(again.encode("a b", false).ok(), t.encode("a b", false).ok());
        assert_eq!(again.eos_ids(), &[2]);
    }
}
