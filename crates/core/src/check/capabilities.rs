//! Check: what the binary that will run a pipeline can do — the backends compiled into it,
//! the precisions each of them trains in, and whether the machine can sandbox a `code` reward's
//! programs — so that a manifest it cannot run is refused at its `backend:`, `dtype:` or
//! `sandbox:` line, before any stage starts.

use crate::manifest::{Backend, Dtype};

/// The backends and precisions a run can use. The model layer knows them
/// (`r1flow::model::capabilities()`); the front end only checks against them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// Backends compiled into the binary.
    pub backends: Vec<Backend>,
    /// The precisions each backend trains in (`f32` first); a backend absent from the
    /// list trains in none. The CPU trains in f32 only; a GPU backend also in the low
    /// precisions its shaders have.
    pub dtypes: Vec<(Backend, Vec<Dtype>)>,
    /// The backend every pipeline runs on whatever its manifest says (`run --backend`):
    /// `dtype:` is checked against it instead of the manifest's `backend:`.
    pub backend_override: Option<Backend>,
    /// Whether check tries the `code` reward's sandbox (`bwrap`) here, once, and refuses a
    /// sandboxed `code` reward where it does not work: true for a binary about to run the
    /// pipeline on this machine, false for one that only reads or plans it.
    pub probe_sandbox: bool,
    /// The memory of the machine that runs the stages, in bytes (`physical_memory()`):
    /// a model whose weights alone do not fit is refused at validate, with the figure,
    /// instead of aborting at load. `None` where this process will not run the pipeline.
    pub memory_bytes: Option<u64>,
}

impl Capabilities {
    /// Every backend and precision: for reading and planning manifests that this process
    /// will not run (comparing, computing keys).
    pub fn any() -> Self {
        Self {
            backends: vec![Backend::Cpu, Backend::Wgpu, Backend::Cuda],
            dtypes: [Backend::Cpu, Backend::Wgpu, Backend::Cuda]
                .into_iter()
                .map(|b| (b, vec![Dtype::F32, Dtype::Bf16, Dtype::F16]))
                .collect(),
            backend_override: None,
            probe_sandbox: false,
            memory_bytes: None,
        }
    }

    /// The precisions `backend` trains in.
    pub fn dtypes_of(&self, backend: Backend) -> &[Dtype] {
        self.dtypes
            .iter()
            .find(|(b, _)| *b == backend)
            .map_or(&[], |(_, dtypes)| dtypes.as_slice())
    }
}

/// The memory this process can use, in bytes: the machine's physical memory
/// (`MemTotal` of /proc/meminfo), or its control group's limit where that is lower (a
/// container sees the host's `MemTotal`). `None` where neither can be read (not Linux).
pub fn physical_memory() -> Option<u64> {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| mem_total(&text));
    let limit = [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]
    .iter()
    .filter_map(|file| std::fs::read_to_string(file).ok())
    .filter_map(|text| text.trim().parse::<u64>().ok())
    .filter(|&bytes| bytes > 0)
    .min();
    match (total, limit) {
        (Some(total), Some(limit)) => Some(total.min(limit)),
        (total, limit) => total.or(limit),
    }
}

/// `MemTotal` of /proc/meminfo's text, in bytes.
fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut words = line["MemTotal:".len()..].split_whitespace();
    let kib: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") | None => kib.checked_mul(1024),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_total_reads_kibibytes() {
        let text = "MemTotal:       24524468 kB\nMemFree:        22000000 kB\n";
        assert_eq!(mem_total(text), Some(24_524_468 * 1024));
        assert_eq!(mem_total("MemFree: 1 kB\n"), None);
        assert_eq!(mem_total("MemTotal: lots kB\n"), None);
    }

    /// The memory a check is given bounds each model's weights; without it, only the
    /// absolute bound applies.
    #[test]
    fn models_must_fit_the_memory_of_the_machine() {
        use crate::diag::{render_all, SourceFile};
        // About 1.4 billion parameters: 5.3 GiB of f32 weights.
        let manifest = "name: fits\nmodels:\n  big: {preset: small, hidden_size: 4096, \
                        num_hidden_layers: 8, num_attention_heads: 32, \
                        num_key_value_heads: 8, intermediate_size: 11008}\n\
                        datasets:\n  arith: {kind: arithmetic}\n\
                        stages:\n  tasks: {kind: dataset, source: arith}\n  \
                        base: {kind: pretrain, from: big, data: tasks, max_steps: 1}\n";
        let doc = crate::syntax::parse(SourceFile::new("m.yaml", manifest))
            .unwrap_or_else(|d| panic!("{}", render_all(&d)));
        let check = |memory_bytes| {
            let can = Capabilities {
                memory_bytes,
                ..Capabilities::any()
            };
            render_all(&crate::check::check_document(&doc, &can).diagnostics)
        };
        let small = check(Some(4 << 30));
        assert!(
            small.contains("model `big`: its 1.4 billion parameters take 5.3 GiB")
                && small.contains("more than this machine's memory (4.0 GiB)")
                && small.contains("training it takes about 21."),
            "{small}"
        );
        assert_eq!(check(Some(64 << 30)), "");
        assert_eq!(check(None), "");
    }

    /// Under `--executor slurm` (no memory for this machine: the stages run elsewhere) a
    /// model larger than this machine is not refused; a stage's job memory request
    /// (`resources.mem`) bounds its models wherever the manifest runs.
    #[test]
    fn slurm_jobs_are_bounded_by_their_memory_request_not_this_machine() {
        use crate::diag::{render_all, SourceFile};
        // About 1.4 billion parameters: 5.3 GiB of f32 weights.
        let manifest = |mem: &str| {
            format!(
                "name: fits\nmodels:\n  big: {{preset: small, hidden_size: 4096, \
                 num_hidden_layers: 8, num_attention_heads: 32, \
                 num_key_value_heads: 8, intermediate_size: 11008}}\n\
                 datasets:\n  arith: {{kind: arithmetic}}\n\
                 stages:\n  tasks: {{kind: dataset, source: arith}}\n  \
                 base: {{kind: pretrain, from: big, data: tasks, max_steps: 1, \
                 resources: {{mem: {mem}}}}}\n  \
                 tuned: {{kind: sft, from: base, data: tasks, max_steps: 1}}\n"
            )
        };
        let check = |mem: &str, memory_bytes| {
            let doc = crate::syntax::parse(SourceFile::new("m.yaml", manifest(mem)))
                .unwrap_or_else(|d| panic!("{}", render_all(&d)));
            let can = Capabilities {
                memory_bytes,
                ..Capabilities::any()
            };
            render_all(&crate::check::check_document(&doc, &can).diagnostics)
        };
        // As Slurm jobs: the 4 GiB of this machine do not matter, the job's 64G does.
        assert_eq!(check("64G", None), "");
        // A job asking for less than the weights is refused at its `mem:`.
        let short = check("4096M", None);
        insta::assert_snapshot!(short, @r"
error: stage `base`: its Slurm job asks for 4.0 GiB (`mem: 4096M`), less than the f32 weights alone of model `big` (1.4 billion parameters: 5.3 GiB); training it takes about 21.2 GiB (weights, gradients and AdamW's two moments: 16 bytes a parameter)
 --> m.yaml:8:81
  |
8 |   base: {kind: pretrain, from: big, data: tasks, max_steps: 1, resources: {mem: 4096M}}
  |                                                                                 ^^^^^
  = help: ask for more memory (`mem: 6G` or more), or choose a smaller model

1 error
");
        // Locally, this machine's memory still bounds the model.
        let local = check("64G", Some(4 << 30));
        assert!(
            local.contains("more than this machine's memory (4.0 GiB)"),
            "{local}"
        );
    }

    #[test]
    fn this_machine_has_some_memory() {
        if cfg!(target_os = "linux") {
            assert!(physical_memory().is_some_and(|bytes| bytes > 0));
        }
    }
}
