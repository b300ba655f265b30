//! Execute: where this process runs, recorded with every artifact it produces — the host,
//! the backend, and the device whose arithmetic decides the bits (a CPU's vector
//! extensions, a GPU's model).

use crate::manifest::Backend;
use crate::store::Provenance;

/// This process's provenance for an artifact computed on `backend`.
pub fn here(backend: Backend) -> Provenance {
    Provenance {
        host: host_name(),
        backend: backend.as_str().to_string(),
        device: match backend {
            Backend::Cpu => cpu_description(),
            Backend::Cuda => nvidia_gpu().unwrap_or_else(|| "an NVIDIA GPU".to_string()),
            Backend::Wgpu => "a wgpu adapter".to_string(),
        },
        version: env!("CARGO_PKG_VERSION").to_string(),
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown host".to_string())
}

/// The architecture and the vector extensions that change floating-point results.
fn cpu_description() -> String {
    let mut parts = vec![std::env::consts::ARCH.to_string()];
    #[cfg(target_arch = "x86_64")]
    {
        let features: [(&str, bool); 5] = [
            ("sse4.2", std::arch::is_x86_feature_detected!("sse4.2")),
            ("avx2", std::arch::is_x86_feature_detected!("avx2")),
            ("fma", std::arch::is_x86_feature_detected!("fma")),
            ("avx512f", std::arch::is_x86_feature_detected!("avx512f")),
            ("avx512bw", std::arch::is_x86_feature_detected!("avx512bw")),
        ];
        parts.extend(
            features
                .into_iter()
                .filter(|(_, on)| *on)
                .map(|(name, _)| name.to_string()),
        );
    }
    #[cfg(target_arch = "aarch64")]
    {
        if std::arch::is_aarch64_feature_detected!("neon") {
            parts.push("neon".to_string());
        }
        if std::arch::is_aarch64_feature_detected!("sve") {
            parts.push("sve".to_string());
        }
    }
    parts.join(" ")
}

/// The first NVIDIA GPU's model, as the driver reports it.
fn nvidia_gpu() -> Option<String> {
    let entries = std::fs::read_dir("/proc/driver/nvidia/gpus").ok()?;
    for entry in entries.flatten() {
        let text = std::fs::read_to_string(entry.path().join("information")).ok()?;
        if let Some(model) = text
            .lines()
            .find_map(|l| l.strip_prefix("Model:"))
            .map(|m| m.trim().to_string())
        {
            return Some(model);
        }
    }
    None
}
