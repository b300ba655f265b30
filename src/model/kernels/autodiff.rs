//! Model layer (used by execute): [`KernelBackend`] under burn's autodiff. Each fused
//! operation is one node of the graph: its forward runs the inner backend's kernel and
//! keeps what the backward needs; its backward runs the inner backend's backward kernel.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::Autodiff;
use burn::tensor::{Int, Tensor, TensorPrimitive};

use super::{KernelBackend, TargetLogprobs};

type FloatPrimitive<B> = <B as burn::tensor::backend::BackendTypes>::FloatTensorPrimitive;
type IntPrimitive<B> = <B as burn::tensor::backend::BackendTypes>::IntTensorPrimitive;

/// The inner backend's view of an autodiff tensor's value.
fn inner<B: KernelBackend, const D: usize>(p: &FloatPrimitive<B>) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(p.clone()))
}

fn primitive<B: KernelBackend, const D: usize>(t: Tensor<B, D>) -> FloatPrimitive<B> {
    t.into_primitive().tensor()
}

fn wrap<B: KernelBackend, C: CheckpointStrategy, const D: usize>(
    p: FloatPrimitive<Autodiff<B, C>>,
) -> Tensor<Autodiff<B, C>, D> {
    Tensor::from_primitive(TensorPrimitive::Float(p))
}

/// `out`, the inner backend's result of `op` on `parents`, as a node of the graph. When a
/// parent is tracked, the node keeps for its backward the state `state` builds from the
/// parents' values and `out`.
fn record<B, C, O, const N: usize, const D: usize>(
    op: O,
    parents: [FloatPrimitive<Autodiff<B, C>>; N],
    state: impl FnOnce([FloatPrimitive<B>; N], &FloatPrimitive<B>) -> O::State,
    out: FloatPrimitive<B>,
) -> Tensor<Autodiff<B, C>, D>
where
    B: KernelBackend,
    C: CheckpointStrategy,
    O: Backward<B, N>,
{
    let nodes = parents.each_ref().map(|p| p.node.clone());
    wrap(match op.prepare::<C>(nodes).compute_bound().stateful() {
        OpsKind::Tracked(prep) => {
            let state = state(parents.map(|p| p.primitive), &out);
            prep.finish(state, out)
        }
        OpsKind::UnTracked(prep) => prep.finish(out),
    })
}

/// The backward of a node with one parent: the node's gradient is consumed, and `d` of it
/// and the node's state is the parent's gradient when the parent is tracked.
fn backward_one<B: KernelBackend, S, const G: usize, const D: usize>(
    ops: Ops<S, 1>,
    grads: &mut Gradients,
    d: impl FnOnce(Tensor<B, G>, S) -> Tensor<B, D>,
) {
    let [parent] = ops.parents;
    let grad = grads.consume::<B>(&ops.node);
    if let Some(node) = parent {
        grads.register::<B>(node.id, primitive(d(inner(&grad), ops.state)));
    }
}

/// The backward of a node with two parents whose gradients `d` computes together, from the
/// node's gradient and state: each is registered when its parent is tracked.
fn backward_two<B: KernelBackend, S, const G: usize, const D1: usize, const D2: usize>(
    ops: Ops<S, 2>,
    grads: &mut Gradients,
    d: impl FnOnce(Tensor<B, G>, S) -> (Tensor<B, D1>, Tensor<B, D2>),
) {
    let [first, second] = ops.parents;
    let grad = grads.consume::<B>(&ops.node);
    let (d_first, d_second) = d(inner(&grad), ops.state);
    if let Some(node) = first {
        grads.register::<B>(node.id, primitive(d_first));
    }
    if let Some(node) = second {
        grads.register::<B>(node.id, primitive(d_second));
    }
}

#[derive(Debug)]
struct Matmul<const D: usize>;

impl<B: KernelBackend, const D: usize> Backward<B, 2> for Matmul<D> {
    /// Both operands.
    type State = (FloatPrimitive<B>, FloatPrimitive<B>);

    /// As burn's own matmul node: `grad · rhsᵀ` for the left operand, registered first,
    /// then `lhsᵀ · grad` for the right one.
    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [lhs_node, rhs_node] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (lhs, rhs) = ops.state;
        if let Some(node) = lhs_node {
            let rhs_t = inner::<B, D>(&rhs).swap_dims(D - 2, D - 1);
            grads.register::<B>(node.id, primitive(B::matmul(inner::<B, D>(&grad), rhs_t)));
        }
        if let Some(node) = rhs_node {
            let lhs_t = inner::<B, D>(&lhs).swap_dims(D - 2, D - 1);
            grads.register::<B>(node.id, primitive(B::matmul(lhs_t, inner::<B, D>(&grad))));
        }
    }
}

#[derive(Debug)]
struct Sum<const D: usize>;

impl<B: KernelBackend, const D: usize> Backward<B, 1> for Sum<D> {
    /// The input's shape.
    type State = [usize; D];

    /// The gradient of a sum is its own, at every element (a copy: no arithmetic).
    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        backward_one(ops, grads, |grad: Tensor<B, 1>, dims| {
            grad.reshape([1usize; D]).expand(dims)
        });
    }
}

#[derive(Debug)]
struct SumRows;

impl<B: KernelBackend> Backward<B, 1> for SumRows {
    /// The rows' width.
    type State = usize;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        backward_one(ops, grads, B::expand_rows);
    }
}

#[derive(Debug)]
struct ExpandRows;

impl<B: KernelBackend> Backward<B, 1> for ExpandRows {
    type State = ();

    /// Each row's gradient summed by the backend's ordered row sum.
    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        backward_one(ops, grads, |grad, ()| B::sum_rows(grad));
    }
}

#[derive(Debug)]
struct MaskedSoftmax;

impl<B: KernelBackend> Backward<B, 1> for MaskedSoftmax {
    /// The probabilities and the scale.
    type State = (FloatPrimitive<B>, f32);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        backward_one(ops, grads, |grad, (probs, scale)| {
            B::masked_softmax_backward(inner(&probs), grad, scale)
        });
    }
}

#[derive(Debug)]
struct Swiglu;

impl<B: KernelBackend> Backward<B, 2> for Swiglu {
    /// The gate and up projections.
    type State = (FloatPrimitive<B>, FloatPrimitive<B>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        backward_two(ops, grads, |grad, (gate, up)| {
            B::swiglu_backward(inner(&gate), inner(&up), grad)
        });
    }
}

#[derive(Debug)]
struct RmsNorm;

impl<B: KernelBackend> Backward<B, 2> for RmsNorm {
    /// The input, the weight and epsilon.
    type State = (FloatPrimitive<B>, FloatPrimitive<B>, f32);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        backward_two(ops, grads, |grad, (x, gamma, eps)| {
            B::rms_norm_backward(inner(&x), inner(&gamma), grad, eps)
        });
    }
}

#[derive(Debug)]
struct Rotary;

impl<B: KernelBackend> Backward<B, 1> for Rotary {
    /// The cos and sin tables.
    type State = (FloatPrimitive<B>, FloatPrimitive<B>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        backward_one(ops, grads, |grad, (cos, sin)| {
            B::rotary_backward(grad, inner(&cos), inner(&sin))
        });
    }
}

#[derive(Debug)]
struct SwapMiddle;

impl<B: KernelBackend> Backward<B, 1> for SwapMiddle {
    type State = ();

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        backward_one(ops, grads, |grad, ()| B::swap_middle(grad));
    }
}

#[derive(Debug)]
struct TargetLogprob;

impl<B: KernelBackend> Backward<B, 1> for TargetLogprob {
    /// The logits, the targets and the rows' log-sum-exps.
    type State = (FloatPrimitive<B>, IntPrimitive<B>, FloatPrimitive<B>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        backward_one(ops, grads, |grad, (logits, targets, lse)| {
            B::target_logprobs_backward(
                inner(&logits),
                Tensor::<B, 1, Int>::from_primitive(targets),
                inner(&lse),
                grad,
            )
        });
    }
}

impl<B: KernelBackend, C: CheckpointStrategy> KernelBackend for Autodiff<B, C> {
    fn matmul<const D: usize>(lhs: Tensor<Self, D>, rhs: Tensor<Self, D>) -> Tensor<Self, D> {
        if lhs.dims()[..D - 2] != rhs.dims()[..D - 2] {
            // Broadcast batch axes, expanded first: the product is the backend's own, and
            // burn's expand node sums the gradient over those axes (a sum over a leading
            // axis adds element by element, in order).
            let (l, r) = (lhs.dims(), rhs.dims());
            let mut lhs_dims = l;
            let mut rhs_dims = r;
            for axis in 0..D - 2 {
                let size = l[axis].max(r[axis]);
                lhs_dims[axis] = size;
                rhs_dims[axis] = size;
            }
            return Self::matmul(lhs.expand(lhs_dims), rhs.expand(rhs_dims));
        }
        let lhs = lhs.into_primitive().tensor();
        let rhs = rhs.into_primitive().tensor();
        let out = primitive(B::matmul(
            inner::<B, D>(&lhs.primitive),
            inner::<B, D>(&rhs.primitive),
        ));
        record(Matmul::<D>, [lhs, rhs], |[l, r], _| (l, r), out)
    }

    fn sum<const D: usize>(x: Tensor<Self, D>) -> Tensor<Self, 1> {
        let dims = x.dims();
        let x = x.into_primitive().tensor();
        let out = primitive(B::sum(inner::<B, D>(&x.primitive)));
        record(Sum::<D>, [x], |_, _| dims, out)
    }

    fn sum_rows(x: Tensor<Self, 2>) -> Tensor<Self, 1> {
        let [_, cols] = x.dims();
        let x = x.into_primitive().tensor();
        let out = primitive(B::sum_rows(inner(&x.primitive)));
        record(SumRows, [x], |_, _| cols, out)
    }

    fn expand_rows(x: Tensor<Self, 1>, cols: usize) -> Tensor<Self, 2> {
        let x = x.into_primitive().tensor();
        let out = primitive(B::expand_rows(inner(&x.primitive), cols));
        record(ExpandRows, [x], |_, _| (), out)
    }

    fn masked_softmax(
        scores: Tensor<Self, 2>,
        mask: Tensor<Self, 2>,
        scale: f32,
    ) -> Tensor<Self, 2> {
        let scores = scores.into_primitive().tensor();
        let mask = mask.into_primitive().tensor();
        let probs = primitive(B::masked_softmax(
            inner(&scores.primitive),
            inner(&mask.primitive),
            scale,
        ));
        record(
            MaskedSoftmax,
            [scores],
            |_, probs| (probs.clone(), scale),
            probs,
        )
    }

    fn swiglu(gate: Tensor<Self, 2>, up: Tensor<Self, 2>) -> Tensor<Self, 2> {
        let gate = gate.into_primitive().tensor();
        let up = up.into_primitive().tensor();
        let out = primitive(B::swiglu(inner(&gate.primitive), inner(&up.primitive)));
        record(Swiglu, [gate, up], |[gate, up], _| (gate, up), out)
    }

    fn rms_norm(x: Tensor<Self, 2>, gamma: Tensor<Self, 1>, eps: f32) -> Tensor<Self, 2> {
        let x = x.into_primitive().tensor();
        let gamma = gamma.into_primitive().tensor();
        let out = primitive(B::rms_norm(
            inner(&x.primitive),
            inner(&gamma.primitive),
            eps,
        ));
        record(RmsNorm, [x, gamma], |[x, gamma], _| (x, gamma, eps), out)
    }

    fn rotary(x: Tensor<Self, 2>, cos: Tensor<Self, 2>, sin: Tensor<Self, 2>) -> Tensor<Self, 2> {
        let x = x.into_primitive().tensor();
        let cos = cos.into_primitive().tensor().primitive;
        let sin = sin.into_primitive().tensor().primitive;
        let out = primitive(B::rotary(inner(&x.primitive), inner(&cos), inner(&sin)));
        record(Rotary, [x], |_, _| (cos, sin), out)
    }

    fn swap_middle(x: Tensor<Self, 4>) -> Tensor<Self, 4> {
        let x = x.into_primitive().tensor();
        let out = primitive(B::swap_middle(inner(&x.primitive)));
        record(SwapMiddle, [x], |_, _| (), out)
    }

    fn target_logprobs(
        logits: Tensor<Self, 2>,
        targets: Tensor<Self, 1, Int>,
        with_entropy: bool,
    ) -> TargetLogprobs<Self> {
        let logits = logits.into_primitive().tensor();
        let targets = targets.into_primitive();
        let out = B::target_logprobs(
            inner(&logits.primitive),
            Tensor::<B, 1, Int>::from_primitive(targets.clone()),
            with_entropy,
        );
        let lse = primitive(out.log_sum_exp);
        let logprobs = primitive(out.logprobs);
        TargetLogprobs {
            logprobs: record(
                TargetLogprob,
                [logits],
                |[logits], _| (logits, targets, lse.clone()),
                logprobs,
            ),
            log_sum_exp: Tensor::from_inner(inner(&lse)),
            entropy: out.entropy.map(Tensor::from_inner),
        }
    }
}
