//! Model layer (used by execute): how the CPU kernels run in this process — the numeric
//! profile a stage asked for (`numerics:`), and the instruction-set cap of r1flow's own
//! kernels (`R1FLOW_MAX_SIMD`, read by `r1flow_kernels::simd` and re-exported here).
//!
//! The profile belongs to the thread that runs a stage's model code: the stage sets it from
//! its spec for as long as it runs ([`scoped`]), so two stages in one process (tests, a
//! library user) cannot mix profiles. The cap is how a test proves on one machine that the
//! portable profile's bits do not depend on the vector width; the `gemm` crate behind the
//! native profile cannot be capped.

use std::cell::Cell;

pub use r1flow_kernels::simd::{set_simd_cap, simd_cap, simd_cap_from_env, SimdCap, MAX_SIMD_VAR};

use super::thread_setting::{scope, SettingGuard};
use crate::manifest::Numerics;

thread_local! {
    static NUMERICS: Cell<Numerics> = const { Cell::new(Numerics::Portable) };
}

/// The numeric profile of what this thread computes: read where a kernel starts, on the
/// thread that calls it (the threads it splits work onto are handed the decision).
pub fn numerics() -> Numerics {
    NUMERICS.with(Cell::get)
}

/// The profile of this thread until the guard is dropped (the previous one is restored
/// then): a stage's model code runs inside one, on the pool thread that runs the stage.
pub fn scoped(numerics: Numerics) -> SettingGuard<Numerics> {
    scope(&NUMERICS, numerics)
}
