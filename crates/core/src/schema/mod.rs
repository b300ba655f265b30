//! Report (of the types): the JSON Schemas r1flow publishes in `schemas/` — the pipeline
//! manifest and the JSONL records — generated from the Rust types as draft-07, the draft
//! yaml-language-server reads best.

use schemars::generate::SchemaSettings;
use schemars::JsonSchema;

mod manifest;

pub use manifest::Manifest;

use crate::records::{PreferenceRecord, PromptRecord, SftRecord};

/// A published schema: its file name under `schemas/` and its generator.
pub struct PublishedSchema {
    pub name: &'static str,
    pub file: &'static str,
    generate: fn() -> serde_json::Value,
}

impl PublishedSchema {
    /// The schema as pretty JSON with a trailing newline (the committed file's text).
    pub fn render(&self) -> String {
        let value = (self.generate)();
        let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
        text.push('\n');
        text
    }
}

fn draft07<T: JsonSchema>() -> serde_json::Value {
    let schema = SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<T>();
    schema.to_value()
}

/// Every schema r1flow publishes.
pub const SCHEMAS: &[PublishedSchema] = &[
    PublishedSchema {
        name: "pipeline",
        file: "pipeline.schema.json",
        generate: manifest::pipeline_schema,
    },
    PublishedSchema {
        name: "prompt",
        file: "prompt.schema.json",
        generate: draft07::<PromptRecord>,
    },
    PublishedSchema {
        name: "sft",
        file: "sft.schema.json",
        generate: draft07::<SftRecord>,
    },
    PublishedSchema {
        name: "preference",
        file: "preference.schema.json",
        generate: draft07::<PreferenceRecord>,
    },
];

/// The schema called `name`.
pub fn find(name: &str) -> Option<&'static PublishedSchema> {
    SCHEMAS.iter().find(|s| s.name == name)
}
