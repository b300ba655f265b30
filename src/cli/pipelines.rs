//! CLI: reading a manifest into a plan, with the options `plan` and `run` share
//! (`--variant`, `--backend`, `--numerics`), printing diagnostics on the way.

use std::path::PathBuf;

use anyhow::bail;
use r1flow::check::numerics::refuse_portable;
use r1flow::check::{check_file, Capabilities};
use r1flow::diag::render_all;
use r1flow::manifest::{Backend, Numerics};
use r1flow::plan::{plan, Plan};

#[derive(Debug, clap::Args)]
pub(crate) struct PipelineArgs {
    /// The manifest.
    pub(crate) file: PathBuf,
    /// Only this variant (arm names joined with `+`, as `plan` lists them).
    #[arg(long)]
    pub(crate) variant: Option<String>,
    /// Run on this backend instead of the manifest's (`cpu`, `wgpu`, `cuda`).
    #[arg(long, value_parser = parse_backend)]
    pub(crate) backend: Option<Backend>,
    /// Run in this numeric profile instead of the manifest's `numerics:` (`portable`: the
    /// same bytes on every x86-64 machine with AVX2; `native`: faster, bits and keys that
    /// depend on the machine).
    #[arg(long, value_parser = parse_numerics)]
    pub(crate) numerics: Option<Numerics>,
}

/// Where stages run (`run --executor`, and `validate --executor` to check as it will).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ExecutorKind {
    Local,
    Slurm,
}

impl ExecutorKind {
    /// What a manifest is checked against when its stages run this way. As Slurm jobs
    /// they run on compute nodes: this machine's memory and sandbox say nothing about
    /// theirs, so neither bounds the check (a stage's job memory is its `resources.mem`,
    /// checked against its models wherever it runs).
    pub(crate) fn capabilities(self) -> Capabilities {
        let can = r1flow::model::capabilities();
        match self {
            Self::Local => can,
            Self::Slurm => Capabilities {
                memory_bytes: None,
                probe_sandbox: false,
                ..can
            },
        }
    }
}

fn parse_numerics(text: &str) -> Result<Numerics, String> {
    match text {
        "portable" => Ok(Numerics::Portable),
        "native" => Ok(Numerics::Native),
        other => Err(format!(
            "unknown numeric profile `{other}`; use portable or native"
        )),
    }
}

fn parse_backend(text: &str) -> Result<Backend, String> {
    match text {
        "cpu" => Ok(Backend::Cpu),
        "wgpu" => Ok(Backend::Wgpu),
        "cuda" => Ok(Backend::Cuda),
        other => Err(format!("unknown backend `{other}`; use cpu, wgpu or cuda")),
    }
}

/// Checks the manifest and plans it; `None` (after printing the errors) when it is invalid.
pub(crate) fn load_plan(
    args: &PipelineArgs,
    executor: ExecutorKind,
) -> anyhow::Result<Option<Plan>> {
    let can = Capabilities {
        backend_override: args.backend,
        ..executor.capabilities()
    };
    if let Some(backend) = args.backend {
        if !can.backends.contains(&backend) {
            let name = backend.as_str();
            bail!(
                "--backend {name}: this r1flow was built without it; rebuild with \
                 `cargo build --release --features {name}`"
            );
        }
    }
    let checked = check_file(&args.file, &can);
    if !checked.diagnostics.is_empty() {
        super::terminal::eprint_text(&render_all(&checked.diagnostics));
    }
    if checked.has_errors() {
        return Ok(None);
    }
    let mut pipelines = checked.pipelines;
    if let Some(wanted) = &args.variant {
        let names: Vec<String> = pipelines.iter().map(|p| p.variant.name.clone()).collect();
        pipelines.retain(|p| &p.variant.name == wanted);
        if pipelines.is_empty() {
            bail!(
                "no variant `{wanted}`; the variants are: {}",
                names.join(", ")
            );
        }
    }
    for pipeline in &mut pipelines {
        if let Some(backend) = args.backend {
            pipeline.backend = backend;
        }
        if let Some(numerics) = args.numerics {
            if let (Numerics::Portable, backend @ (Backend::Wgpu | Backend::Cuda)) =
                (numerics, pipeline.backend)
            {
                bail!("--numerics portable: {}", refuse_portable(backend).message);
            }
            pipeline.numerics = Some(numerics);
        }
    }
    Ok(Some(plan(pipelines)))
}
