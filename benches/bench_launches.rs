//! Model layer benchmark (not a test): how many GPU kernels each fused operation of
//! `r1flow::model::kernels` launches on a GPU backend, with burn's fusion (what r1flow runs
//! on wgpu and cuda) and without it (`wgpu-unfused`: burn's CubeCL backend alone), forward
//! alone and forward with backward, and a whole training step of a preset. The figures
//! behind docs/src/gpu.md's "Fused operations on a GPU": what dedicated CubeCL kernels
//! could still save over what burn's fusion already does.
//!
//! `cargo run --release --features bench,wgpu --bin bench_launches -- [--backend
//! wgpu|wgpu-unfused|cuda]... [--preset tiny|small] [--names] [--json]`
//! (scripts/gpu-check.sh runs it on cuda). Launches are counted from CubeCL's own execution
//! log (profiling level `minimal`: one line per kernel launched, no timing, no extra
//! synchronisation), which this program turns on with a `cubecl.toml` in a scratch
//! directory it then works in. Each figure is the third run of its operation: the first
//! compiles and autotunes, and burn's fusion settles its plan for a stream it has seen.
//! The shapes are SmolLM2-135M's (hidden 576, 9 heads of 64, MLP 1536, vocabulary 49152)
//! for one sequence of 128 tokens; how many kernels an operation launches does not depend
//! on its size.
// Without a GPU backend compiled in, nothing calls the measurement: `main` says what to build.
#![cfg_attr(not(any(feature = "wgpu", feature = "cuda")), allow(dead_code))]

use std::path::PathBuf;
use std::time::Duration;

use r1flow::model::burn_prelude::*;
use r1flow::model::kernels::{self, KernelBackend};
use r1flow::model::{token_logprobs, Preset, TokenBatch, Transformer};

/// SmolLM2-135M's dimensions, for one sequence of `tokens`.
struct Dims {
    tokens: usize,
    hidden: usize,
    heads: usize,
    head_dim: usize,
    mlp: usize,
    vocab: usize,
}

const DIMS: Dims = Dims {
    tokens: 128,
    hidden: 576,
    heads: 9,
    head_dim: 64,
    mlp: 1536,
    vocab: 49152,
};
const TOKENS: usize = DIMS.tokens;

/// The operations measured, in the order they are reported: `identity` (the final sum
/// alone, subtracted from the others), then [`kernels::OPERATIONS`].
fn operations() -> impl Iterator<Item = &'static str> {
    std::iter::once("identity").chain(kernels::OPERATIONS)
}

struct Args {
    backends: Vec<String>,
    preset: String,
    names: bool,
    json: bool,
}

fn parse_args() -> Args {
    let mut args = Args {
        backends: Vec::new(),
        preset: "small".into(),
        names: false,
        json: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--backend" => args.backends.extend(it.next()),
            "--preset" => args.preset = it.next().unwrap_or(args.preset),
            "--names" => args.names = true,
            "--json" => args.json = true,
            other => eprintln!("ignoring unknown argument {other}"),
        }
    }
    if args.backends.is_empty() {
        if cfg!(feature = "wgpu") {
            args.backends = vec!["wgpu".into(), "wgpu-unfused".into()];
        } else if cfg!(feature = "cuda") {
            args.backends = vec!["cuda".into()];
        }
    }
    args
}

/// CubeCL's execution log: one `Executing NAME` line per kernel launched. Its scratch
/// directory goes when the log does.
struct LaunchLog {
    path: PathBuf,
}

impl Drop for LaunchLog {
    fn drop(&mut self) {
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl LaunchLog {
    /// Turns the log on for this process: a `cubecl.toml` in a fresh scratch directory,
    /// which becomes the working directory (CubeCL reads its configuration from the working
    /// directory once, when the first device starts).
    fn start() -> std::io::Result<Self> {
        let dir = std::env::temp_dir().join(format!("r1flow-launches-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("launches.log");
        std::fs::write(
            dir.join("cubecl.toml"),
            format!(
                "[profiling]\nlogger = {{ level = \"minimal\", file = {:?}, append = true }}\n",
                path.display().to_string()
            ),
        )?;
        std::env::set_current_dir(&dir)?;
        Ok(Self { path })
    }

    fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.path)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.strip_prefix("Executing "))
            .map(str::to_string)
            .collect()
    }

    /// The lines once the logger (a thread fed through a channel) has written all it was
    /// sent: the count is read until it holds still for 200 ms.
    fn settled(&self) -> Vec<String> {
        let mut last = self.lines();
        loop {
            std::thread::sleep(Duration::from_millis(200));
            let now = self.lines();
            if now.len() == last.len() {
                return now;
            }
            last = now;
        }
    }
}

/// The kernels `f` launches on `device`, from its third run.
fn launches<B: Backend, R>(
    log: &LaunchLog,
    device: &B::Device,
    mut f: impl FnMut() -> R,
) -> Vec<String> {
    for _ in 0..2 {
        let kept = f();
        let _ = B::sync(device);
        drop(kept);
    }
    let before = log.settled().len();
    let kept = f();
    let _ = B::sync(device);
    let after = log.settled();
    drop(kept);
    after[before.min(after.len())..].to_vec()
}

/// Values in [-2, 2) that differ from element to element (what they are does not change
/// which kernels run).
fn values(n: usize, seed: u64) -> Vec<f32> {
    (0..n as u64)
        .map(|i| ((i * 2_654_435_761 + seed * 40_503) % 4096) as f32 / 1024.0 - 2.0)
        .collect()
}

fn tensor<B: Backend, const D: usize>(
    dims: [usize; D],
    seed: u64,
    device: &B::Device,
) -> Tensor<B, D> {
    let n = dims.iter().product();
    Tensor::from_data(TensorData::new(values(n, seed), dims), device)
}

/// The inputs of `op`, made on the host before anything is counted.
struct Inputs<B: Backend> {
    a: Tensor<B, 2>,
    b: Tensor<B, 2>,
    c: Tensor<B, 2>,
    gamma: Tensor<B, 1>,
    x4: Tensor<B, 4>,
    lhs: Tensor<B, 3>,
    rhs: Tensor<B, 3>,
    targets: Tensor<B, 1, Int>,
}

/// Shapes per operation: `(rows, cols)` of its 2-d operands.
fn shape(op: &str) -> (usize, usize) {
    match op {
        "masked_softmax" => (DIMS.heads * TOKENS, TOKENS),
        "swiglu" => (TOKENS, DIMS.mlp),
        "rotary" => (DIMS.heads * TOKENS, DIMS.head_dim),
        "target_logprobs" => (TOKENS, DIMS.vocab),
        _ => (TOKENS, DIMS.hidden),
    }
}

fn inputs<B: Backend>(op: &str, device: &B::Device) -> Inputs<B> {
    let (rows, cols) = shape(op);
    let c = if op == "masked_softmax" {
        let mask: Vec<f32> = (0..rows * cols)
            .map(|i| {
                if i % cols > (i / cols) % TOKENS {
                    -1.0e9
                } else {
                    0.0
                }
            })
            .collect();
        Tensor::from_data(TensorData::new(mask, [rows, cols]), device)
    } else {
        tensor([rows, cols], 3, device)
    };
    let targets: Vec<i32> = (0..rows).map(|r| ((r * 7919) % cols) as i32).collect();
    Inputs {
        a: tensor([rows, cols], 1, device),
        b: tensor([rows, cols], 2, device),
        c,
        gamma: tensor([cols], 4, device),
        x4: tensor([1, TOKENS, DIMS.heads, DIMS.head_dim], 5, device),
        lhs: tensor([DIMS.heads, TOKENS, DIMS.head_dim], 6, device),
        rhs: tensor([DIMS.heads, DIMS.head_dim, TOKENS], 7, device),
        targets: Tensor::from_data(TensorData::new(targets, [rows]), device),
    }
}

/// The sum of every element, `[1]`, through a 1-d view (so that the sum launches the same
/// kernels whatever the rank of the operation's output; a view that is not contiguous, as
/// the swap's, is copied first, which is what a dedicated swap kernel costs too).
fn total<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, 1> {
    let n = x.shape().num_elements();
    x.reshape([n]).sum()
}

/// `op` forward on `B`, its output summed into one scalar of `B` (what a backward pass
/// starts from; the counts reported subtract `identity`'s, which is this sum alone).
fn forward<B: KernelBackend>(op: &str, x: &Inputs<B>) -> Tensor<B, 1> {
    match op {
        "identity" => total(x.a.clone()),
        "masked_softmax" => total(B::masked_softmax(x.a.clone(), x.c.clone(), 0.125)),
        "swiglu" => total(B::swiglu(x.a.clone(), x.b.clone())),
        "rms_norm" => total(B::rms_norm(x.a.clone(), x.gamma.clone(), 1e-5)),
        "rotary" => total(B::rotary(x.a.clone(), x.b.clone(), x.c.clone())),
        "swap_middle" => total(B::swap_middle(x.x4.clone())),
        "target_logprobs" => {
            total(B::target_logprobs(x.a.clone(), x.targets.clone(), false).logprobs)
        }
        "matmul" => total(B::matmul(x.lhs.clone(), x.rhs.clone())),
        other => panic!("no operation {other}"),
    }
}

/// The inputs as leaves of the autodiff graph (rotary's cos and sin tables, like the
/// mask, carry no gradient).
fn leaves<B: AutodiffBackend>(op: &str, x: &Inputs<B>) -> Inputs<B> {
    let b = x.b.clone();
    Inputs {
        a: x.a.clone().require_grad(),
        b: if op == "rotary" { b } else { b.require_grad() },
        c: x.c.clone(),
        gamma: x.gamma.clone().require_grad(),
        x4: x.x4.clone().require_grad(),
        lhs: x.lhs.clone().require_grad(),
        rhs: x.rhs.clone().require_grad(),
        targets: x.targets.clone(),
    }
}

struct Row {
    backend: String,
    what: String,
    forward: usize,
    backward: usize,
    /// The kernels of the forward run, then those of the run with backward.
    names: (Vec<String>, Vec<String>),
}

fn measure<B: TrainBackend>(backend: &str, args: &Args, log: &LaunchLog) -> Vec<Row>
where
    B::InnerBackend: KernelBackend,
{
    let device = B::Device::default();
    let mut rows = Vec::new();
    for op in operations() {
        let inner = inputs::<B::InnerBackend>(op, &device);
        let forward_names =
            launches::<B::InnerBackend, _>(log, &device, || forward::<B::InnerBackend>(op, &inner));
        let outer = inputs::<B>(op, &device);
        let both_names = launches::<B, _>(log, &device, || {
            let graph = leaves(op, &outer);
            let grads = forward::<B>(op, &graph).backward();
            (graph, grads)
        });
        rows.push(Row {
            backend: backend.to_string(),
            what: op.to_string(),
            forward: forward_names.len(),
            backward: both_names.len().saturating_sub(forward_names.len()),
            names: (forward_names, both_names),
        });
    }

    // One training step of a preset: next-token loss, backward, AdamW.
    let Ok(preset) = args.preset.parse::<Preset>() else {
        eprintln!("unknown preset {}", args.preset);
        return rows;
    };
    let config = preset.config();
    let vocab = config.vocab_size as u32;
    let sequences: Vec<Vec<u32>> = (0..8)
        .map(|r| {
            (0..TOKENS)
                .map(|t| ((r * 31 + t * 7) as u32) % (vocab - 8) + 7)
                .collect()
        })
        .collect();
    let batch = TokenBatch::right_padded(&sequences, 0);
    let mut model = match Transformer::<B>::init(&config, 0, &device) {
        Ok(model) => Some(model),
        Err(e) => {
            eprintln!("{e}");
            return rows;
        }
    };
    let mut optim = AdamWConfig::new().init();
    let forward_names = launches::<B::InnerBackend, _>(log, &device, || {
        let valid = model.as_ref().map(|m| m.valid());
        valid.map(|m| token_logprobs(&m, &batch, &device).map(|lp| kernels::mean(lp.logprobs)))
    });
    let step_names = launches::<B, _>(log, &device, || {
        if let Some(current) = model.take() {
            let lp = token_logprobs(&current, &batch, &device).expect("forward");
            let loss = kernels::mean(lp.logprobs).neg();
            let grads = GradientsParams::from_grads(loss.backward(), &current);
            model = Some(optim.step(1e-3, current, grads));
        }
    });
    rows.push(Row {
        backend: backend.to_string(),
        what: format!("training step ({}, 8x{TOKENS})", args.preset),
        forward: forward_names.len(),
        backward: step_names.len().saturating_sub(forward_names.len()),
        names: (forward_names, step_names),
    });
    rows
}

fn report(rows: &[Row], args: &Args) {
    let identity = |backend: &str| {
        rows.iter()
            .find(|r| r.backend == backend && r.what == "identity")
            .map(|r| (r.forward, r.backward))
            .unwrap_or((0, 0))
    };
    if !args.json {
        println!(
            "{:14} {:32} {:>8} {:>18}",
            "backend", "operation", "forward", "backward (+AdamW)"
        );
    }
    for row in rows {
        // The operations' rows count the final sum and its backward as well: shown net of
        // `identity`, which is that sum alone. The training step is shown whole.
        let (sum_forward, sum_backward) = if kernels::OPERATIONS.contains(&row.what.as_str()) {
            identity(&row.backend)
        } else {
            (0, 0)
        };
        let forward = row.forward.saturating_sub(sum_forward);
        let backward = row.backward.saturating_sub(sum_backward);
        if args.json {
            println!(
                "{}",
                serde_json::json!({
                    "backend": row.backend,
                    "operation": row.what,
                    "forward_launches": forward,
                    "backward_launches": backward,
                    "forward_kernels": if args.names { row.names.0.clone() } else { Vec::new() },
                    "kernels_with_backward": if args.names { row.names.1.clone() } else { Vec::new() },
                })
            );
        } else {
            println!(
                "{:14} {:32} {forward:>8} {backward:>18}",
                row.backend, row.what
            );
            if args.names {
                for (what, names) in [("forward", &row.names.0), ("with backward", &row.names.1)] {
                    println!("  {what}:");
                    for name in names {
                        println!("    {name}");
                    }
                }
            }
        }
    }
}

#[cfg(not(any(feature = "wgpu", feature = "cuda")))]
fn main() {
    eprintln!(
        "bench_launches counts GPU kernels: build it with --features bench,wgpu or bench,cuda"
    );
    std::process::exit(2);
}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
fn main() {
    let args = parse_args();
    let log = match LaunchLog::start() {
        Ok(log) => log,
        Err(e) => {
            eprintln!("cannot write CubeCL's configuration: {e}");
            std::process::exit(1);
        }
    };
    let mut rows = Vec::new();
    for backend in &args.backends {
        match backend.as_str() {
            #[cfg(feature = "wgpu")]
            "wgpu" => rows.extend(measure::<burn::backend::Autodiff<burn::backend::Wgpu>>(
                backend, &args, &log,
            )),
            #[cfg(feature = "wgpu")]
            "wgpu-unfused" => rows.extend(measure::<
                burn::backend::Autodiff<r1flow::model::backend::WgpuUnfused>,
            >(backend, &args, &log)),
            #[cfg(feature = "cuda")]
            "cuda" => rows.extend(measure::<burn::backend::Autodiff<burn::backend::Cuda>>(
                backend, &args, &log,
            )),
            other => eprintln!("{other}: not compiled in (wgpu, wgpu-unfused, cuda)"),
        }
    }
    report(&rows, &args);
}
