//! CLI `schema`: print the JSON Schemas generated from the manifest and record types.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use r1flow::schema::{find, SCHEMAS};

#[derive(Debug, clap::Args)]
pub(crate) struct SchemaArgs {
    /// Which schema: pipeline (default), prompt, sft or preference.
    #[arg(default_value = "pipeline")]
    name: String,
    /// Write every schema into this directory instead of printing one.
    #[arg(long, value_name = "DIR")]
    write: Option<PathBuf>,
}

pub(crate) fn run(args: &SchemaArgs) -> anyhow::Result<ExitCode> {
    if let Some(dir) = &args.write {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for schema in SCHEMAS {
            let path = dir.join(schema.file);
            std::fs::write(&path, schema.render())
                .with_context(|| format!("writing {}", path.display()))?;
            super::terminal::print_text(&format!("wrote {}\n", path.display()))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let Some(schema) = find(&args.name) else {
        let names: Vec<&str> = SCHEMAS.iter().map(|s| s.name).collect();
        bail!(
            "no schema `{}`; the schemas are: {}",
            args.name,
            names.join(", ")
        );
    };
    super::terminal::print_text(&schema.render())?;
    Ok(ExitCode::SUCCESS)
}
