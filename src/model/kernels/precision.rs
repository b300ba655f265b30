//! Model layer (used by execute): the precision of the matrix products on the thread that
//! runs a stage (`dtype:`). Mixed precision as autocast does it: parameters, optimizer
//! moments, norms, softmax, log-probs and losses stay f32; each product casts its f32
//! operands to the low precision and its output back to f32, forward and backward (the
//! autodiff node keeps the f32 operands and runs the same product on the gradient), so
//! projection and attention code does not change.
//!
//! Like the numeric profile ([`super::profile`]) it belongs to the thread that runs a
//! stage's model code, set for as long as the stage runs ([`scoped`]). Only the GPU
//! backends read it (the default [`super::KernelBackend::matmul`]); the CPU's kernels are
//! f32, and `check` refuses a low precision there.

use std::cell::Cell;

use burn::tensor::backend::Backend;
use burn::tensor::{DType, FloatDType};

use super::thread_setting::{scope, SettingGuard};
use crate::manifest::Dtype;

thread_local! {
    static COMPUTE: Cell<Dtype> = const { Cell::new(Dtype::F32) };
}

/// The precision of this thread's matrix products.
pub fn compute_dtype() -> Dtype {
    COMPUTE.with(Cell::get)
}

/// The low precision products are cast to, or `None` in f32.
pub fn low_precision() -> Option<FloatDType> {
    match compute_dtype() {
        Dtype::F32 => None,
        Dtype::Bf16 => Some(FloatDType::BF16),
        Dtype::F16 => Some(FloatDType::F16),
    }
}

/// Whether `device` of backend `B` computes in `dtype` (a wgpu device without the
/// `shader-f16` feature does not in f16).
pub fn device_supports<B: Backend>(device: &B::Device, dtype: Dtype) -> bool {
    let dtype = match dtype {
        Dtype::F32 => return true,
        Dtype::Bf16 => DType::BF16,
        Dtype::F16 => DType::F16,
    };
    B::supports_dtype(device, dtype)
}

/// The precision of this thread's products until the guard is dropped (the previous one
/// is restored then), as [`super::profile::scoped`].
pub fn scoped(dtype: Dtype) -> SettingGuard<Dtype> {
    scope(&COMPUTE, dtype)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_precision_is_scoped_to_the_thread() {
        assert_eq!(low_precision(), None);
        {
            let _outer = scoped(Dtype::F16);
            assert_eq!(low_precision(), Some(FloatDType::F16));
            {
                let _inner = scoped(Dtype::Bf16);
                assert_eq!(compute_dtype(), Dtype::Bf16);
            }
            assert_eq!(compute_dtype(), Dtype::F16);
            let other = std::thread::spawn(compute_dtype).join().expect("thread");
            assert_eq!(other, Dtype::F32);
        }
        assert_eq!(compute_dtype(), Dtype::F32);
    }
}
