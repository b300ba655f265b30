//! Model layer (used by execute): the one error type of the model code.

use std::fmt;

/// The largest JSON file of a checkpoint read (config.json, tokenizer.json, the
/// safetensors index): 256 MiB.
pub const MAX_JSON_BYTES: u64 = 256 << 20;

/// The largest weights file read (one safetensors shard, an r1flow model file): 64 GiB.
pub const MAX_WEIGHTS_BYTES: u64 = 64 << 30;

/// What went wrong in the model layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelErrorKind {
    /// An architecture that is inconsistent or unsupported.
    Config,
    /// Reading or writing a file.
    Io,
    /// A checkpoint with missing, misshapen or unreadable tensors.
    Checkpoint,
    /// tokenizer.json could not be read, or text could not be encoded.
    Tokenizer,
    /// A backend that is not compiled in, or failed.
    Backend,
    /// Invalid sampling parameters or inputs.
    Generation,
    /// A LoRA configuration, or an adapter file (PEFT's `adapter_config.json` and
    /// `adapter_model.safetensors`), that is invalid or does not fit the model.
    Adapter,
}

/// An error from the model layer, with its kind and a message meant for the user.
#[derive(Debug, Clone)]
pub struct ModelError {
    kind: ModelErrorKind,
    message: String,
}

impl ModelError {
    pub(crate) fn new(kind: ModelErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::new(ModelErrorKind::Config, message)
    }
    pub(crate) fn checkpoint(message: impl Into<String>) -> Self {
        Self::new(ModelErrorKind::Checkpoint, message)
    }
    pub(crate) fn io(path: &std::path::Path, err: std::io::Error) -> Self {
        Self::new(ModelErrorKind::Io, format!("{}: {err}", path.display()))
    }

    /// Reads a file a user named (a checkpoint, a tokenizer): a regular file only, at most
    /// `limit` bytes (`r1flow::user_file`).
    pub(crate) fn read_file(path: &std::path::Path, limit: u64) -> Result<Vec<u8>, Self> {
        crate::user_file::read(path, limit)
            .map_err(|e| Self::new(ModelErrorKind::Io, format!("{}: {e}", path.display())))
    }

    /// `read_file` as UTF-8 text.
    pub(crate) fn read_text(path: &std::path::Path, limit: u64) -> Result<String, Self> {
        String::from_utf8(Self::read_file(path, limit)?).map_err(|_| {
            Self::new(
                ModelErrorKind::Io,
                format!("{}: not UTF-8 text", path.display()),
            )
        })
    }
    pub(crate) fn tokenizer(message: impl Into<String>) -> Self {
        Self::new(ModelErrorKind::Tokenizer, message)
    }
    pub(crate) fn adapter(message: impl Into<String>) -> Self {
        Self::new(ModelErrorKind::Adapter, message)
    }
    pub(crate) fn generation(message: impl Into<String>) -> Self {
        Self::new(ModelErrorKind::Generation, message)
    }

    /// The category of the failure.
    pub fn kind(&self) -> ModelErrorKind {
        self.kind
    }
    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ModelError {}

impl From<crate::architecture::ArchitectureError> for ModelError {
    fn from(error: crate::architecture::ArchitectureError) -> Self {
        Self::config(error.0)
    }
}
