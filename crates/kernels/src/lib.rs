//! Model layer (used by execute): r1flow's CPU kernels on `f32` slices — the decoder's
//! fused operations and the ordered sums ([`cpu`]), the portable profile's matrix product
//! ([`ordered_matmul`]), and the instruction-set dispatch they share ([`simd`]). A crate of
//! its own so that test builds compile it optimised (`[profile.dev.package.r1flow-kernels]`)
//! like the dependencies, while the rest of r1flow stays quick to build; the model layer
//! (`src/model/kernels`) calls it on burn's flex tensors.

pub mod cpu;
pub mod ordered_matmul;
pub mod simd;
