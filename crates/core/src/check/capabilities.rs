//! Check: what the binary that will run a pipeline can do — the backends compiled into it
//! and the precisions it trains in — so that a manifest it cannot run is refused at its
//! `backend:` or `dtype:` line, before any stage starts.

use crate::manifest::{Backend, Dtype};

/// The backends and precisions a run can use. The model layer knows them
/// (`r1flow::model::capabilities()`); the front end only checks against them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// Backends compiled into the binary.
    pub backends: Vec<Backend>,
    /// Precisions the training code supports.
    pub dtypes: Vec<Dtype>,
}

impl Capabilities {
    /// Every backend and precision: for reading and planning manifests that this process
    /// will not run (comparing, computing keys).
    pub fn any() -> Self {
        Self {
            backends: vec![Backend::Cpu, Backend::Wgpu, Backend::Cuda],
            dtypes: vec![Dtype::F32, Dtype::Bf16, Dtype::F16],
        }
    }
}
