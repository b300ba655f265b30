//! Model layer (used by execute): the backend a run uses, chosen at run time among the
//! ones compiled in (cargo features `flex`/`ndarray` for the CPU, `wgpu`, `cuda`).

use super::kernels::TrainBackend;
use super::{ModelError, ModelErrorKind};
use crate::check::Capabilities;
use crate::manifest::{Backend, Dtype};

#[cfg(not(any(feature = "flex", feature = "ndarray")))]
compile_error!("r1flow needs a CPU backend: enable the `flex` (default) or `ndarray` feature");

/// burn's pure-Rust SIMD CPU backend (the default; faster than ndarray here).
#[cfg(feature = "flex")]
pub type FlexBackend = burn::backend::Flex;
/// burn's ndarray CPU backend.
#[cfg(feature = "ndarray")]
pub type NdArrayBackend = burn::backend::NdArray;

/// The CPU backend a `cpu` run uses: flex when compiled in, else ndarray.
#[cfg(feature = "flex")]
pub type CpuBackend = FlexBackend;
/// The CPU backend a `cpu` run uses: flex when compiled in, else ndarray.
#[cfg(all(not(feature = "flex"), feature = "ndarray"))]
pub type CpuBackend = NdArrayBackend;
/// wgpu without burn's fusion: every burn op its own kernel. No stage runs on it; the
/// `bench_launches` benchmark counts what fusion saves against it.
#[cfg(feature = "wgpu")]
pub type WgpuUnfused =
    burn::backend::wgpu::CubeBackend<burn::backend::wgpu::WgpuRuntime, f32, i32, u32>;

/// Where tensors live. Parsed from `cpu`, `wgpu` or `cuda`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// The CPU (always available).
    Cpu,
    /// Any GPU through WebGPU/Vulkan/Metal (cargo feature `wgpu`).
    Wgpu,
    /// NVIDIA GPUs through CUDA (cargo feature `cuda`).
    Cuda,
}

impl std::str::FromStr for BackendKind {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cpu" => Ok(Self::Cpu),
            "wgpu" => Ok(Self::Wgpu),
            "cuda" => Ok(Self::Cuda),
            other => Err(ModelError::new(
                ModelErrorKind::Backend,
                format!("unknown backend `{other}` (expected cpu, wgpu or cuda)"),
            )),
        }
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Cpu => "cpu",
            Self::Wgpu => "wgpu",
            Self::Cuda => "cuda",
        })
    }
}

/// The precisions training runs in on `backend`, `f32` first. The low precisions are
/// those of the matrix products (weights, optimizer moments and losses stay f32:
/// `kernels::precision`): none on the CPU, whose kernels are f32; `f16` on wgpu, whose
/// shading language (WGSL) has no bf16 type (and a device without the `shader-f16`
/// feature is refused when the stage starts); both on CUDA.
pub fn trains_in(backend: Backend) -> &'static [Dtype] {
    match backend {
        Backend::Cpu => &[Dtype::F32],
        Backend::Wgpu => &[Dtype::F32, Dtype::F16],
        Backend::Cuda => &[Dtype::F32, Dtype::Bf16, Dtype::F16],
    }
}

/// What this binary can run: the backends compiled into it, the precisions each trains in
/// ([`trains_in`]); and, on this machine, the `code` reward's sandbox (tried when a
/// manifest declares one) and the memory a model's weights must fit in. `check` refuses a
/// manifest that asks for more.
pub fn capabilities() -> Capabilities {
    let all = [Backend::Cpu, Backend::Wgpu, Backend::Cuda];
    let backends = all
        .into_iter()
        .filter(|b| BackendKind::from(*b).is_compiled())
        .collect();
    Capabilities {
        backends,
        dtypes: all.map(|b| (b, trains_in(b).to_vec())).into(),
        backend_override: None,
        probe_sandbox: true,
        memory_bytes: crate::check::physical_memory(),
    }
}

impl From<Backend> for BackendKind {
    fn from(backend: Backend) -> Self {
        match backend {
            Backend::Cpu => Self::Cpu,
            Backend::Wgpu => Self::Wgpu,
            Backend::Cuda => Self::Cuda,
        }
    }
}

/// Runs `f` on a thread of the CPU backend's thread pool (rayon's global pool), waiting
/// for it.
///
/// The CPU kernels and gemm split large operations across that pool. Called from a thread
/// outside it, every such operation hands its work to the pool and puts the caller to
/// sleep until the pool is done: two thread switches per operation, thousands per step
/// of a small model. From a thread of the pool, the caller works on its share itself
/// and only idle threads are woken (measured: a tiny model's training step 18 % faster).
/// The results are the same bits: operations are split the same way either way.
pub fn on_cpu_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        return f();
    }
    let mut out = None;
    rayon::scope(|_| out = Some(f()));
    out.expect("rayon::scope runs its closure before returning")
}

/// Work that runs on whichever backend is chosen: training code is written once as
/// `run::<B>` and [`BackendKind::run`] picks `B`.
pub trait BackendTask: Send {
    /// What the task returns.
    type Output: Send;
    /// Runs on backend `B` (autodiff; `B::InnerBackend` for forward-only work).
    fn run<B: TrainBackend>(self, device: B::Device) -> Self::Output;
}

impl BackendKind {
    /// Whether this backend was compiled in.
    pub fn is_compiled(self) -> bool {
        match self {
            Self::Cpu => true,
            Self::Wgpu => cfg!(feature = "wgpu"),
            Self::Cuda => cfg!(feature = "cuda"),
        }
    }

    /// Checks the backend is compiled in; the error names the cargo feature to enable.
    pub fn ensure_compiled(self) -> Result<(), ModelError> {
        if self.is_compiled() {
            Ok(())
        } else {
            Err(ModelError::new(
                ModelErrorKind::Backend,
                format!(
                    "backend `{self}` is not compiled into this binary; rebuild with \
                     `cargo build --release --features {self}`"
                ),
            ))
        }
    }

    /// Runs `task` on this backend's default device.
    pub fn run<T: BackendTask>(self, task: T) -> Result<T::Output, ModelError> {
        self.ensure_compiled()?;
        match self {
            Self::Cpu => Ok(on_cpu_pool(|| {
                task.run::<burn::backend::Autodiff<CpuBackend>>(Default::default())
            })),
            #[cfg(feature = "wgpu")]
            Self::Wgpu => {
                Ok(task.run::<burn::backend::Autodiff<burn::backend::Wgpu>>(Default::default()))
            }
            #[cfg(feature = "cuda")]
            Self::Cuda => {
                Ok(task.run::<burn::backend::Autodiff<burn::backend::Cuda>>(Default::default()))
            }
            #[allow(unreachable_patterns)]
            _ => Err(ModelError::new(
                ModelErrorKind::Backend,
                "backend not compiled in",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_names_missing_features() {
        assert_eq!("cpu".parse::<BackendKind>().ok(), Some(BackendKind::Cpu));
        assert!("tpu".parse::<BackendKind>().is_err());
        if !cfg!(feature = "cuda") {
            let err = BackendKind::Cuda
                .ensure_compiled()
                .err()
                .map(|e| e.to_string());
            assert!(err.unwrap_or_default().contains("--features cuda"));
        }
    }
}
