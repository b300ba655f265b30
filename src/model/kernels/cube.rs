//! Model layer (used by execute): the fused operations written as CubeCL kernels for burn's
//! GPU backends (wgpu, cuda), where burn's fusion leaves an operation as several kernels
//! (docs/src/gpu.md, "what burn's fusion leaves", counts them with `bench_launches`).
//!
//! Two layers, as burn's own GPU backends are built:
//! - `CubeBackend<R, …>` (burn's CubeCL backend, any runtime) runs the kernel;
//! - `Fusion<B>` (what `burn::backend::Wgpu` and `Cuda` are) enters it into its stream as
//!   one custom operation, so that the element-wise chains before and after it still fuse,
//!   and hands it `B`'s tensors when the stream executes.
//!
//! The operations without a kernel here keep [`super::KernelBackend`]'s compositions, which
//! burn's fusion compiles. `tests/model_wgpu.rs` checks every operation, forward and
//! backward, against the CPU backend's kernels on wgpu.
//!
//! Kernels: rotary position embedding (one kernel forward, one backward, where the
//! composition launched four and six) and RMSNorm (one forward, two backward: the rows'
//! gradient, then γ's as a sum over rows; the composition launched three and five).

use burn::tensor::{DType, Shape, Tensor, TensorMetadata, TensorPrimitive};
use burn_cubecl::cubecl::{calculate_cube_count_elemwise, CubeCount, CubeDim};
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{BoolElement, CubeBackend, CubeRuntime, FloatElement, IntElement};
use burn_fusion::stream::{Operation, OperationStreams};
use burn_fusion::{Fusion, FusionBackend, FusionRuntime, FusionTensor};
use burn_ir::{CustomOpIr, HandleContainer, OperationIr, TensorIr};

use super::{composed, matmul_in_precision, KernelBackend};

/// Inner dimensions of a product that burn's CubeCL matrix product gets wrong on wgpu
/// (found by `tests/model_wgpu.rs` on lavapipe, burn 0.21 / CubeCL 0.10): above 512 and 8
/// more than a multiple of 16. 520, 600, 1032, 2056 and 4104 gave relative errors of 0.06
/// to 5; 504, 513, 516, 576, 604, 640, 1024 and 1536 were right, whatever the outer
/// dimensions. Such a product is computed with its inner dimension padded with zeros to a
/// multiple of 16: the same sums plus terms that are 0 · 0. Every product of a GPU stage
/// goes through here, the backward's too (`autodiff.rs` computes them with `B::matmul`),
/// so attention over 520 keys or a 600-wide projection is right on every GPU backend.
fn inner_padding(inner: usize) -> usize {
    if inner > 512 && inner % 16 == 8 {
        8
    } else {
        0
    }
}

/// `lhs · rhs` with [`inner_padding`] applied.
fn padded_matmul<B: burn::tensor::backend::Backend, const D: usize>(
    lhs: Tensor<B, D>,
    rhs: Tensor<B, D>,
) -> Tensor<B, D> {
    let pad = inner_padding(lhs.dims()[D - 1]);
    if pad == 0 {
        return matmul_in_precision(lhs, rhs);
    }
    let zeros_like = |x: &Tensor<B, D>, axis: usize| {
        let mut dims = x.dims();
        dims[axis] = pad;
        Tensor::<B, D>::zeros(dims, &x.device()).cast(x.dtype())
    };
    let (lhs_zeros, rhs_zeros) = (zeros_like(&lhs, D - 1), zeros_like(&rhs, D - 2));
    matmul_in_precision(
        Tensor::cat(vec![lhs, lhs_zeros], D - 1),
        Tensor::cat(vec![rhs, rhs_zeros], D - 2),
    )
}

/// The kernels, in CubeCL's language (its `Tensor` is a kernel argument, not burn's).
mod device {
    use burn_cubecl::cubecl;
    use burn_cubecl::cubecl::prelude::*;

    /// `x ⊙ cos + rotate_half(x) ⊙ sin` (forward) or its gradient `g ⊙ cos + [v, −u]` for
    /// `g ⊙ sin = [u, v]` (backward), one element per unit, on contiguous `[rows, 2·half]`
    /// operands of one float type.
    #[cube(launch)]
    pub(super) fn rotary_kernel<F: Float>(
        x: &Tensor<F>,
        cos: &Tensor<F>,
        sin: &Tensor<F>,
        out: &mut Tensor<F>,
        #[comptime] half: u32,
        #[comptime] backward: bool,
        #[define(F)] _dtype: StorageType,
    ) {
        let pos = ABSOLUTE_POS;
        if pos >= out.len() {
            terminate!();
        }
        let half = half as usize;
        let col = pos % (2 * half);
        // The element's partner in the other half of its row, and the sign rotate_half
        // gives it: [a, b] → [−b, a].
        let mut partner = pos + half;
        let mut sign = F::new(-1.0);
        if col >= half {
            partner = pos - half;
            sign = F::new(1.0);
        }
        if backward {
            out[pos] = x[pos] * cos[pos] - sign * x[partner] * sin[partner];
        } else {
            out[pos] = x[pos] * cos[pos] + sign * x[partner] * sin[pos];
        }
    }

    /// `Σ a ⊙ b` over one row of `cols` elements starting at `base`, by the `block` units of
    /// the cube (each adds a strided share, then [`block_sum`]); every unit gets the sum.
    #[cube]
    fn row_dot<F: Float>(
        a: &Tensor<F>,
        b: &Tensor<F>,
        base: usize,
        cols: usize,
        #[comptime] block: u32,
    ) -> F {
        let mut acc = F::new(0.0);
        let mut c = UNIT_POS_X as usize;
        while c < cols {
            acc += a[base + c] * b[base + c];
            c += block as usize;
        }
        block_sum::<F>(acc, block)
    }

    /// `1 / sqrt(mean(x²) + eps)` of the row of `cols` elements starting at `base`; every
    /// unit of the cube gets it.
    #[cube]
    fn row_inv_rms<F: Float>(
        x: &Tensor<F>,
        base: usize,
        cols: usize,
        eps: f32,
        #[comptime] block: u32,
    ) -> F {
        let squares = row_dot::<F>(x, x, base, cols, block);
        F::new(1.0) / F::sqrt(squares / F::cast_from(cols as u32) + F::cast_from(eps))
    }

    /// RMSNorm of one row per cube: `x / sqrt(mean(x²) + eps) ⊙ γ`.
    #[cube(launch)]
    pub(super) fn rms_norm_kernel<F: Float>(
        x: &Tensor<F>,
        gamma: &Tensor<F>,
        out: &mut Tensor<F>,
        eps: f32,
        #[comptime] cols: u32,
        #[comptime] block: u32,
        #[define(F)] _dtype: StorageType,
    ) {
        let cols = cols as usize;
        let base = CUBE_POS_X as usize * cols;
        let r = row_inv_rms::<F>(x, base, cols, eps, block);
        let mut c = UNIT_POS_X as usize;
        while c < cols {
            out[base + c] = x[base + c] * r * gamma[c];
            c += block as usize;
        }
    }

    /// RMSNorm's gradient with respect to one row per cube, `r (g ⊙ γ − x r² mean(g ⊙ γ ⊙
    /// x))` with `r = 1 / sqrt(mean(x²) + eps)`; writes the row's `r` for γ's gradient.
    #[cube(launch)]
    pub(super) fn rms_norm_rows_backward_kernel<F: Float>(
        x: &Tensor<F>,
        gamma: &Tensor<F>,
        grad: &Tensor<F>,
        d_x: &mut Tensor<F>,
        r_rows: &mut Tensor<F>,
        eps: f32,
        #[comptime] cols: u32,
        #[comptime] block: u32,
        #[define(F)] _dtype: StorageType,
    ) {
        let cols = cols as usize;
        let row = CUBE_POS_X as usize;
        let base = row * cols;
        let r = row_inv_rms::<F>(x, base, cols, eps, block);
        let mut acc = F::new(0.0);
        let mut c = UNIT_POS_X as usize;
        while c < cols {
            acc += grad[base + c] * gamma[c] * x[base + c];
            c += block as usize;
        }
        let weighted = block_sum::<F>(acc, block);
        let mean = weighted * r * r / F::cast_from(cols as u32);
        let mut c = UNIT_POS_X as usize;
        while c < cols {
            d_x[base + c] = (grad[base + c] * gamma[c] - x[base + c] * mean) * r;
            c += block as usize;
        }
        if UNIT_POS_X == 0 {
            r_rows[row] = r;
        }
    }

    /// The sum of every unit's `value` over the cube's `block` units; every unit gets it.
    #[cube]
    fn block_sum<F: Float>(value: F, #[comptime] block: u32) -> F {
        let step = block as usize;
        let unit = UNIT_POS_X as usize;
        let mut partial = SharedMemory::<F>::new(step);
        partial[unit] = value;
        sync_cube();
        // Halving strides, unrolled: `block` is a power of two known when compiling.
        #[unroll]
        for level in 1..comptime!(block.trailing_zeros() + 1) {
            let stride = step >> level;
            if unit < stride {
                partial[unit] = partial[unit] + partial[unit + stride];
            }
            sync_cube();
        }
        let total = partial[0];
        sync_cube();
        total
    }

    /// γ's gradient, one column per unit: `Σ_rows g ⊙ x ⊙ r`.
    #[cube(launch)]
    pub(super) fn rms_norm_gamma_backward_kernel<F: Float>(
        x: &Tensor<F>,
        grad: &Tensor<F>,
        r_rows: &Tensor<F>,
        d_gamma: &mut Tensor<F>,
        rows: u32,
        #[define(F)] _dtype: StorageType,
    ) {
        let col = ABSOLUTE_POS;
        let cols = d_gamma.len();
        if col >= cols {
            terminate!();
        }
        let mut acc = F::new(0.0);
        for row in 0..rows as usize {
            acc += grad[row * cols + col] * x[row * cols + col] * r_rows[row];
        }
        d_gamma[col] = acc;
    }
}

/// Units per cube of the row kernels: the row's length rounded up to a power of two,
/// within 32..=256. (The row's length is a compile-time constant of those kernels: a
/// model's width, so one kernel per model; the row count, which changes with every batch,
/// is a run-time argument, so that a new batch size compiles nothing.)
fn row_block(cols: usize) -> u32 {
    cols.next_power_of_two().clamp(32, 256) as u32
}

/// The most cubes one axis of a launch may have (wgpu's limit, and the smallest).
const MAX_CUBES: usize = 65_535;

/// An empty tensor of `shape` next to `like`.
fn empty_like<R: CubeRuntime>(like: &CubeTensor<R>, shape: Shape) -> CubeTensor<R> {
    empty_device_dtype(like.client.clone(), like.device.clone(), shape, like.dtype)
}

/// Launches [`device::rotary_kernel`] on burn's CubeCL tensors.
fn rotary_cube<R: CubeRuntime>(
    x: CubeTensor<R>,
    cos: CubeTensor<R>,
    sin: CubeTensor<R>,
    backward: bool,
) -> CubeTensor<R> {
    let (x, cos, sin) = (
        into_contiguous(x),
        into_contiguous(cos),
        into_contiguous(sin),
    );
    let shape = x.shape();
    let half = shape[shape.num_dims() - 1] / 2;
    let dtype = x.dtype;
    let client = x.client.clone();
    let out = empty_like(&x, shape.clone());
    let elements = shape.num_elements();
    let cube_dim = CubeDim::new(&client, elements);
    let cube_count = calculate_cube_count_elemwise(&client, elements, cube_dim);
    device::rotary_kernel::launch::<R>(
        &client,
        cube_count,
        cube_dim,
        x.into_tensor_arg(),
        cos.into_tensor_arg(),
        sin.into_tensor_arg(),
        out.clone().into_tensor_arg(),
        half as u32,
        backward,
        dtype.into(),
    );
    out
}

/// Launches [`device::rms_norm_kernel`]: one cube per row.
fn rms_norm_cube<R: CubeRuntime>(
    x: CubeTensor<R>,
    gamma: CubeTensor<R>,
    eps: f32,
) -> CubeTensor<R> {
    let (x, gamma) = (into_contiguous(x), into_contiguous(gamma));
    let shape = x.shape();
    let (rows, cols) = (shape[0], shape[1]);
    let block = row_block(cols);
    let dtype = x.dtype;
    let client = x.client.clone();
    let out = empty_like(&x, shape);
    device::rms_norm_kernel::launch::<R>(
        &client,
        CubeCount::Static(rows as u32, 1, 1),
        CubeDim::new_1d(block),
        x.into_tensor_arg(),
        gamma.into_tensor_arg(),
        out.clone().into_tensor_arg(),
        eps,
        cols as u32,
        block,
        dtype.into(),
    );
    out
}

/// Launches RMSNorm's two backward kernels: the rows' gradient (one cube per row), then
/// γ's (one unit per column).
fn rms_norm_backward_cube<R: CubeRuntime>(
    x: CubeTensor<R>,
    gamma: CubeTensor<R>,
    grad: CubeTensor<R>,
    eps: f32,
) -> (CubeTensor<R>, CubeTensor<R>) {
    let (x, gamma, grad) = (
        into_contiguous(x),
        into_contiguous(gamma),
        into_contiguous(grad),
    );
    let shape = x.shape();
    let (rows, cols) = (shape[0], shape[1]);
    let block = row_block(cols);
    let dtype = x.dtype;
    let client = x.client.clone();
    let d_x = empty_like(&x, shape);
    let r_rows = empty_like(&x, Shape::new([rows]));
    let d_gamma = empty_like(&x, Shape::new([cols]));
    device::rms_norm_rows_backward_kernel::launch::<R>(
        &client,
        CubeCount::Static(rows as u32, 1, 1),
        CubeDim::new_1d(block),
        x.clone().into_tensor_arg(),
        gamma.into_tensor_arg(),
        grad.clone().into_tensor_arg(),
        d_x.clone().into_tensor_arg(),
        r_rows.clone().into_tensor_arg(),
        eps,
        cols as u32,
        block,
        dtype.into(),
    );
    let cube_dim = CubeDim::new(&client, cols);
    let cube_count = calculate_cube_count_elemwise(&client, cols, cube_dim);
    device::rms_norm_gamma_backward_kernel::launch::<R>(
        &client,
        cube_count,
        cube_dim,
        x.into_tensor_arg(),
        grad.into_tensor_arg(),
        r_rows.into_tensor_arg(),
        d_gamma.clone().into_tensor_arg(),
        rows as u32,
        dtype.into(),
    );
    (d_x, d_gamma)
}

/// burn's tensor of a `CubeBackend` as the backend's own, and back.
fn cube_tensor<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement, const D: usize>(
    t: Tensor<CubeBackend<R, F, I, BT>, D>,
) -> CubeTensor<R> {
    t.into_primitive().tensor()
}

fn from_cube<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement, const D: usize>(
    t: CubeTensor<R>,
) -> Tensor<CubeBackend<R, F, I, BT>, D> {
    Tensor::from_primitive(TensorPrimitive::Float(t))
}

/// Whether the operands are floats of one type (a kernel is compiled for one).
fn one_float_type(dtypes: &[DType]) -> bool {
    dtypes.iter().all(|d| d.is_float() && *d == dtypes[0])
}

impl<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement> KernelBackend
    for CubeBackend<R, F, I, BT>
{
    fn matmul<const D: usize>(lhs: Tensor<Self, D>, rhs: Tensor<Self, D>) -> Tensor<Self, D> {
        padded_matmul(lhs, rhs)
    }

    fn rotary(x: Tensor<Self, 2>, cos: Tensor<Self, 2>, sin: Tensor<Self, 2>) -> Tensor<Self, 2> {
        if !rotary_fits(&x, &cos, &sin) {
            return composed::rotary(x, cos, sin);
        }
        from_cube(rotary_cube(
            cube_tensor(x),
            cube_tensor(cos),
            cube_tensor(sin),
            false,
        ))
    }

    fn rotary_backward(
        grad: Tensor<Self, 2>,
        cos: Tensor<Self, 2>,
        sin: Tensor<Self, 2>,
    ) -> Tensor<Self, 2> {
        if !rotary_fits(&grad, &cos, &sin) {
            return composed::rotary_backward(grad, cos, sin);
        }
        from_cube(rotary_cube(
            cube_tensor(grad),
            cube_tensor(cos),
            cube_tensor(sin),
            true,
        ))
    }

    fn rms_norm(x: Tensor<Self, 2>, gamma: Tensor<Self, 1>, eps: f32) -> Tensor<Self, 2> {
        let [rows, cols] = x.dims();
        let fits = one_float_type(&[x.dtype(), gamma.dtype()])
            && rows <= MAX_CUBES
            && gamma.dims() == [cols];
        if !fits {
            return composed::rms_norm(x, gamma, eps);
        }
        from_cube(rms_norm_cube(cube_tensor(x), cube_tensor(gamma), eps))
    }

    fn rms_norm_backward(
        x: Tensor<Self, 2>,
        gamma: Tensor<Self, 1>,
        grad: Tensor<Self, 2>,
        eps: f32,
    ) -> (Tensor<Self, 2>, Tensor<Self, 1>) {
        let [rows, cols] = x.dims();
        let fits = one_float_type(&[x.dtype(), gamma.dtype(), grad.dtype()])
            && rows <= MAX_CUBES
            && gamma.dims() == [cols]
            && grad.dims() == [rows, cols];
        if !fits {
            return composed::rms_norm_backward(x, gamma, grad, eps);
        }
        let (d_x, d_gamma) =
            rms_norm_backward_cube(cube_tensor(x), cube_tensor(gamma), cube_tensor(grad), eps);
        (from_cube(d_x), from_cube(d_gamma))
    }
}

/// Whether rotary's kernel takes these operands: one float type, one shape, rows split in
/// halves.
fn rotary_fits<B: burn::tensor::backend::Backend>(
    x: &Tensor<B, 2>,
    cos: &Tensor<B, 2>,
    sin: &Tensor<B, 2>,
) -> bool {
    one_float_type(&[x.dtype(), cos.dtype(), sin.dtype()])
        && x.dims()[1].is_multiple_of(2)
        && cos.dims() == x.dims()
        && sin.dims() == x.dims()
}

/// The body of a custom operation: `B`'s float tensors in, `B`'s float tensors out, in the
/// order of the operation's inputs and outputs.
type Body<B> = Box<dyn Fn(Vec<FloatOf<B>>) -> Vec<FloatOf<B>> + Send + Sync>;
type FloatOf<B> = <B as burn::tensor::backend::BackendTypes>::FloatTensorPrimitive;

/// One custom operation of the fusion stream: its description and its body.
struct Custom<B: FusionBackend> {
    desc: CustomOpIr,
    body: Body<B>,
}

impl<B: FusionBackend> std::fmt::Debug for Custom<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Custom").field("desc", &self.desc).finish()
    }
}

impl<B: FusionBackend> Operation<B::FusionRuntime> for Custom<B> {
    fn execute(
        &self,
        handles: &mut HandleContainer<<B::FusionRuntime as FusionRuntime>::FusionHandle>,
    ) {
        let inputs = self
            .desc
            .inputs
            .iter()
            .map(|ir| handles.get_float_tensor::<B>(ir))
            .collect();
        for (ir, tensor) in self.desc.outputs.iter().zip((self.body)(inputs)) {
            handles.register_float_tensor::<B>(&ir.id, tensor);
        }
    }
}

/// Enters `body` into the fusion stream as one operation named `name`, of `inputs`, with
/// outputs of the given shapes and types (each output has an input's).
fn custom_op<B: FusionBackend>(
    name: &'static str,
    inputs: Vec<FusionTensor<B::FusionRuntime>>,
    outputs: Vec<(Shape, DType)>,
    body: Body<B>,
) -> Vec<FusionTensor<B::FusionRuntime>> {
    let client = inputs[0].client.clone();
    let streams = OperationStreams::with_inputs(inputs.iter());
    let outputs: Vec<TensorIr> = outputs
        .into_iter()
        .map(|(shape, dtype)| TensorIr::uninit(client.create_empty_handle(), shape, dtype))
        .collect();
    let inputs: Vec<TensorIr> = inputs.into_iter().map(FusionTensor::into_ir).collect();
    let desc = CustomOpIr::new(name, &inputs, &outputs);
    client.register(
        streams,
        OperationIr::Custom(desc.clone()),
        Custom::<B> { desc, body },
    )
}

/// Exactly the `N` operands a body was entered with (`custom_op` hands it exactly its inputs).
fn exactly<T, const N: usize>(inputs: Vec<T>, name: &str) -> [T; N] {
    match inputs.try_into() {
        Ok(operands) => operands,
        Err(inputs) => unreachable!("{name} is entered with {N} inputs, got {}", inputs.len()),
    }
}

/// A fusion tensor of `Fusion<B>`, and back.
fn fusion_tensor<B: FusionBackend, const D: usize>(
    t: Tensor<Fusion<B>, D>,
) -> FusionTensor<B::FusionRuntime> {
    t.into_primitive().tensor()
}

fn from_fusion<B: FusionBackend, const D: usize>(
    t: FusionTensor<B::FusionRuntime>,
) -> Tensor<Fusion<B>, D> {
    Tensor::from_primitive(TensorPrimitive::Float(t))
}

/// `B`'s tensor from a primitive the stream handed a body, and back.
fn tensor<B: FusionBackend, const D: usize>(t: FloatOf<B>) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(t))
}

fn primitive<B: FusionBackend, const D: usize>(t: Tensor<B, D>) -> FloatOf<B> {
    t.into_primitive().tensor()
}

/// Rotary forward or backward as one operation of the stream.
fn rotary_op<B: FusionBackend + KernelBackend>(
    name: &'static str,
    operands: [Tensor<Fusion<B>, 2>; 3],
    op: fn(Tensor<B, 2>, Tensor<B, 2>, Tensor<B, 2>) -> Tensor<B, 2>,
) -> Tensor<Fusion<B>, 2> {
    let like = (operands[0].shape(), operands[0].dtype());
    let inputs = operands.into_iter().map(fusion_tensor).collect();
    let body: Body<B> = Box::new(move |inputs: Vec<FloatOf<B>>| {
        let [x, cos, sin] = exactly(inputs, name);
        vec![primitive(op(tensor(x), tensor(cos), tensor(sin)))]
    });
    let mut out = custom_op::<B>(name, inputs, vec![like], body);
    from_fusion(out.remove(0))
}

impl<B: FusionBackend + KernelBackend> KernelBackend for Fusion<B> {
    fn matmul<const D: usize>(lhs: Tensor<Self, D>, rhs: Tensor<Self, D>) -> Tensor<Self, D> {
        padded_matmul(lhs, rhs)
    }

    fn rotary(x: Tensor<Self, 2>, cos: Tensor<Self, 2>, sin: Tensor<Self, 2>) -> Tensor<Self, 2> {
        rotary_op("r1flow_rotary", [x, cos, sin], B::rotary)
    }

    fn rotary_backward(
        grad: Tensor<Self, 2>,
        cos: Tensor<Self, 2>,
        sin: Tensor<Self, 2>,
    ) -> Tensor<Self, 2> {
        rotary_op(
            "r1flow_rotary_backward",
            [grad, cos, sin],
            B::rotary_backward,
        )
    }

    fn rms_norm(x: Tensor<Self, 2>, gamma: Tensor<Self, 1>, eps: f32) -> Tensor<Self, 2> {
        let like = (x.shape(), x.dtype());
        let inputs = vec![fusion_tensor(x), fusion_tensor(gamma)];
        let body: Body<B> = Box::new(move |inputs: Vec<FloatOf<B>>| {
            let [x, gamma] = exactly(inputs, "r1flow_rms_norm");
            vec![primitive(B::rms_norm(tensor(x), tensor(gamma), eps))]
        });
        let mut out = custom_op::<B>("r1flow_rms_norm", inputs, vec![like], body);
        from_fusion(out.remove(0))
    }

    fn rms_norm_backward(
        x: Tensor<Self, 2>,
        gamma: Tensor<Self, 1>,
        grad: Tensor<Self, 2>,
        eps: f32,
    ) -> (Tensor<Self, 2>, Tensor<Self, 1>) {
        let outputs = vec![(x.shape(), x.dtype()), (gamma.shape(), gamma.dtype())];
        let inputs = vec![fusion_tensor(x), fusion_tensor(gamma), fusion_tensor(grad)];
        let body: Body<B> = Box::new(move |inputs: Vec<FloatOf<B>>| {
            let [x, gamma, grad] = exactly(inputs, "r1flow_rms_norm_backward");
            let (d_x, d_gamma) = B::rms_norm_backward(tensor(x), tensor(gamma), tensor(grad), eps);
            vec![primitive(d_x), primitive(d_gamma)]
        });
        let mut out = custom_op::<B>("r1flow_rms_norm_backward", inputs, outputs, body);
        let d_gamma = from_fusion(out.remove(1));
        (from_fusion(out.remove(0)), d_gamma)
    }
}
