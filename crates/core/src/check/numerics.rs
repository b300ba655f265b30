//! Check: a pipeline's numeric profile (`numerics:`) resolved against its backend, and the
//! machine that a native profile's results depend on.
//!
//! The decision (ARCHITECTURE.md, "Numeric profiles"): the profile enters the key of
//! every stage that computes with a model. A portable result is the same bytes on every
//! x86-64 machine with AVX2, so its key is `portable` and any machine may reuse or resume
//! it. A native result depends on the instruction set and the caches the matrix routine
//! adapts to, so its key names them ([`native_machine`]): a store shared between an
//! AVX-512 and an AVX2 machine keeps one result for each, and a Slurm job whose node
//! differs from the machine that planned it refuses to run instead of writing other bits
//! under the planned key.

use crate::diag::Diagnostic;
use crate::manifest::{Backend, Numerics};
use crate::syntax::{Document, YamlPath};

/// The profile a pipeline runs in on `backend`: on the CPU as written (or chosen with
/// `--numerics`), portable when nothing says; on a GPU, whose kernels r1flow does not own,
/// native. `Pipeline::numeric_profile` derives it, so that `--backend` and `--numerics`
/// given after check need no rule of their own.
pub fn profile(written: Option<Numerics>, backend: Backend) -> Numerics {
    match backend {
        Backend::Cpu => written.unwrap_or(Numerics::Portable),
        Backend::Wgpu | Backend::Cuda => Numerics::Native,
    }
}

/// `numerics:` as written: portable on a GPU backend is refused at the value.
pub(crate) fn check_written(
    doc: &Document,
    written: Option<Numerics>,
    backend: Backend,
    diagnostics: &mut Vec<Diagnostic>,
) {
    if let (Some(Numerics::Portable), Backend::Wgpu | Backend::Cuda) = (written, backend) {
        diagnostics.push(
            refuse_portable(backend)
                .at(Some(doc.value_location(&YamlPath::root().key("numerics")))),
        );
    }
}

/// Why `numerics: portable` cannot run on `backend`.
pub fn refuse_portable(backend: Backend) -> Diagnostic {
    Diagnostic::error(format!(
        "`numerics: portable` is a profile of the CPU kernels; backend `{}` runs its own",
        backend.as_str()
    ))
    .with_help("remove `numerics:` (a GPU backend is native), or use `backend: cpu`")
}

/// The version of the GPU backends' own kernels (`src/model/kernels/cube.rs`), bumped
/// whenever they change the bits a stage writes on wgpu or cuda: it enters the keys of
/// stages that run there, so that a store's earlier GPU results are recomputed rather
/// than served as if the new kernels had made them. (The CPU's kernels change bits only
/// with a kind's `IMPLEMENTATION`.)
/// 1: rotary embedding and RMSNorm as CubeCL kernels; matrix products whose inner
/// dimension CubeCL's product gets wrong computed padded.
pub const GPU_KERNELS: u32 = 1;

/// What a stage that computes with a model depends on besides its inputs, as its key
/// writes it: `portable`, or `native` and the machine (on the CPU) or the GPU kernels'
/// version (on wgpu and cuda).
pub fn key_numerics(numerics: Numerics, backend: Backend) -> String {
    match (numerics, backend) {
        (Numerics::Portable, _) => "portable".to_string(),
        (Numerics::Native, Backend::Cpu) => format!("native {}", native_machine()),
        (Numerics::Native, Backend::Wgpu | Backend::Cuda) => {
            format!("native gpu-kernels {GPU_KERNELS}")
        }
    }
}

/// What the native CPU profile's bits depend on, on this machine: the instruction set the
/// matrix routine and burn's kernels dispatch to (AVX-512 or AVX2 on x86-64) and the
/// cache geometry the routine blocks its products by. Two machines with the same string
/// compute the same native bits.
pub fn native_machine() -> String {
    static MACHINE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    MACHINE
        .get_or_init(|| {
            let mut parts = vec![instruction_set().to_string()];
            parts.extend(caches());
            parts.join(" ")
        })
        .clone()
}

/// The widest instruction-set level the CPU kernels of the native profile use.
fn instruction_set() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        let v4 = std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512cd")
            && std::arch::is_x86_feature_detected!("avx512dq")
            && std::arch::is_x86_feature_detected!("avx512vl");
        let v3 = std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma");
        if v4 {
            "x86-64-v4"
        } else if v3 {
            "x86-64-v3"
        } else {
            "x86-64"
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        std::env::consts::ARCH
    }
}

/// The data caches of CPU 0 as Linux describes them (`L1d 32K/8`: size and ways), in
/// level order; empty where sysfs does not say.
fn caches() -> Vec<String> {
    let base = std::path::Path::new("/sys/devices/system/cpu/cpu0/cache");
    let read = |dir: &std::path::Path, file: &str| {
        std::fs::read_to_string(dir.join(file))
            .ok()
            .map(|s| s.trim().to_string())
    };
    let mut found: Vec<(String, String)> = (0..8)
        .filter_map(|i| {
            let dir = base.join(format!("index{i}"));
            let cache_type = read(&dir, "type")?;
            if cache_type == "Instruction" {
                return None;
            }
            let level = read(&dir, "level")?;
            let size = read(&dir, "size")?;
            let ways = read(&dir, "ways_of_associativity").unwrap_or_default();
            let name = if cache_type == "Data" {
                format!("L{level}d")
            } else {
                format!("L{level}")
            };
            Some((name.clone(), format!("{name} {size}/{ways}")))
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, text)| text).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On the CPU the profile is what was written, portable by default; a GPU is native
    /// whatever was written (a manifest's portable is refused there by check, `--numerics
    /// portable` by the CLI).
    #[test]
    fn the_profile_follows_what_was_written_and_the_backend() {
        assert_eq!(profile(None, Backend::Cpu), Numerics::Portable);
        assert_eq!(
            profile(Some(Numerics::Native), Backend::Cpu),
            Numerics::Native
        );
        assert_eq!(
            profile(Some(Numerics::Portable), Backend::Cpu),
            Numerics::Portable
        );
        assert_eq!(profile(None, Backend::Wgpu), Numerics::Native);
        assert_eq!(
            profile(Some(Numerics::Portable), Backend::Cuda),
            Numerics::Native
        );
    }

    #[test]
    fn a_key_names_the_profile_and_a_native_one_the_machine_or_the_gpu_kernels() {
        assert_eq!(key_numerics(Numerics::Portable, Backend::Cpu), "portable");
        assert_eq!(
            key_numerics(Numerics::Native, Backend::Cuda),
            format!("native gpu-kernels {GPU_KERNELS}")
        );
        let native = key_numerics(Numerics::Native, Backend::Cpu);
        assert!(native.starts_with("native "), "{native}");
        assert!(native.ends_with(&native_machine()), "{native}");
        if cfg!(target_arch = "x86_64") {
            assert!(
                native_machine().starts_with("x86-64"),
                "{}",
                native_machine()
            );
        }
    }
}
