//! Model layer (used by execute): which instruction set the kernels of this crate run in.
//! Each kernel is compiled for every level pulp dispatches to and picks the widest the CPU
//! has, within the cap read once from `R1FLOW_MAX_SIMD` (`avx512`, `avx2` or `scalar`):
//! how a test proves on one machine that the kernels' bits do not depend on the vector
//! width. (The `gemm` crate behind r1flow's native profile cannot be capped.)

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

/// The environment variable that caps the kernels' instruction set.
pub const MAX_SIMD_VAR: &str = "R1FLOW_MAX_SIMD";

/// The widest instruction set the kernels may dispatch to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SimdCap {
    /// Plain scalar code (`f32::mul_add` stays a fused multiply-add, in software or not).
    Scalar,
    /// AVX2 with FMA (x86-64-v3) at most.
    Avx2,
    /// Whatever the CPU has (AVX-512 where it has it).
    Widest,
}

impl SimdCap {
    /// `R1FLOW_MAX_SIMD`'s value, or why it is not one.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "" | "avx512" | "native" => Ok(Self::Widest),
            "avx2" => Ok(Self::Avx2),
            "scalar" | "none" => Ok(Self::Scalar),
            other => Err(format!(
                "{MAX_SIMD_VAR}={other}: not an instruction-set cap; use avx512, avx2 or scalar"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scalar => "scalar",
            Self::Avx2 => "avx2",
            Self::Widest => "avx512",
        }
    }
}

const CAP_UNSET: u8 = u8::MAX;

static CAP: AtomicU8 = AtomicU8::new(CAP_UNSET);
static CAP_FROM_ENV: OnceLock<Result<SimdCap, String>> = OnceLock::new();

/// The cap `R1FLOW_MAX_SIMD` asks for (the widest when it is unset), or why its value is
/// not one: the CLI refuses to start on an invalid value instead of ignoring it.
pub fn simd_cap_from_env() -> Result<SimdCap, String> {
    CAP_FROM_ENV
        .get_or_init(|| match std::env::var(MAX_SIMD_VAR) {
            Ok(text) => SimdCap::parse(&text),
            Err(_) => Ok(SimdCap::Widest),
        })
        .clone()
}

/// The cap in force: the one set by [`set_simd_cap`], else the environment's (the widest
/// where its value is invalid; the CLI has refused that already).
pub fn simd_cap() -> SimdCap {
    match CAP.load(Ordering::Relaxed) {
        0 => SimdCap::Scalar,
        1 => SimdCap::Avx2,
        2 => SimdCap::Widest,
        _ => simd_cap_from_env().unwrap_or(SimdCap::Widest),
    }
}

/// Caps the kernels' instruction set for this process (tests compare the paths; every
/// path gives the same bits, so a test that races another one only changes its speed).
pub fn set_simd_cap(cap: SimdCap) {
    let value = match cap {
        SimdCap::Scalar => 0,
        SimdCap::Avx2 => 1,
        SimdCap::Widest => 2,
    };
    CAP.store(value, Ordering::Relaxed);
}

/// The work of one kernel on one chunk of rows.
pub trait RowKernel: Sized {
    /// Does the work; implementations are `#[inline(always)]`.
    fn run(self);

    /// Does the work with the instruction set's token in hand, for a kernel that writes
    /// its registers out by hand (the ordered product's tile); the others let LLVM
    /// vectorise [`RowKernel::run`].
    #[inline(always)]
    fn run_in<S: pulp::Simd>(self, simd: S) {
        let _ = simd;
        self.run()
    }
}

/// Adapts a [`RowKernel`] to pulp's run-time SIMD dispatch.
struct Dispatch<K>(K);

impl<K: RowKernel> pulp::WithSimd for Dispatch<K> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        self.0.run_in(simd)
    }
}

/// Runs `kernel` compiled for the widest SIMD instruction set the CPU supports, within
/// the cap of [`simd_cap`]. Every kernel of [`crate::cpu`] and of
/// [`crate::ordered_matmul`] accumulates in an order its source fixes (lanes it names,
/// never the register width), so each path gives the same bits; only the speed differs.
pub fn vectorized<K: RowKernel>(kernel: K) {
    match simd_cap() {
        SimdCap::Widest => pulp::Arch::new().dispatch(Dispatch(kernel)),
        SimdCap::Avx2 => {
            #[cfg(target_arch = "x86_64")]
            if let Some(simd) = pulp::x86::V3::try_new() {
                return pulp::Simd::vectorize(simd, Dispatch(kernel));
            }
            pulp::Simd::vectorize(pulp::Scalar::new(), Dispatch(kernel))
        }
        SimdCap::Scalar => pulp::Simd::vectorize(pulp::Scalar::new(), Dispatch(kernel)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_reads_its_values_and_refuses_others() {
        assert_eq!(SimdCap::parse("avx2"), Ok(SimdCap::Avx2));
        assert_eq!(SimdCap::parse("scalar"), Ok(SimdCap::Scalar));
        assert_eq!(SimdCap::parse("avx512"), Ok(SimdCap::Widest));
        assert_eq!(
            SimdCap::parse("sse9"),
            Err(
                "R1FLOW_MAX_SIMD=sse9: not an instruction-set cap; use avx512, avx2 or scalar"
                    .to_string()
            )
        );
    }
}
