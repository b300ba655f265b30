//! Execute (training): the objective of `distill` in `logits` mode — token-level KL
//! divergence between the teacher's and the student's next-token distributions, averaged
//! over the positions that predict completion tokens.

use burn::tensor::Tensor;

use crate::model::kernels::{self, log_softmax, sum_last, KernelBackend};

use crate::stages::KlDirection;

/// Mean KL divergence per masked position, `[1]`.
///
/// `student` and `teacher` are logits `[batch, positions, vocab]`, `mask` is 1.0 where a
/// position counts, `[batch, positions]`. `Forward` is KL(teacher ‖ student) =
/// Σ p_t (log p_t − log p_s), mass-covering; `Reverse` is KL(student ‖ teacher) =
/// Σ p_s (log p_s − log p_t), mode-seeking. Gradients flow through the student only when
/// the teacher's logits carry none.
pub fn token_kl<B: KernelBackend>(
    student: Tensor<B, 3>,
    teacher: Tensor<B, 3>,
    mask: Tensor<B, 2>,
    direction: KlDirection,
) -> Tensor<B, 1> {
    let [batch, positions, _] = student.dims();
    let log_student = log_softmax(student);
    let log_teacher = log_softmax(teacher);
    let per_position = sum_last(match direction {
        KlDirection::Forward => log_teacher.clone().exp() * (log_teacher - log_student),
        KlDirection::Reverse => log_student.clone().exp() * (log_student - log_teacher),
    })
    .reshape([batch, positions]);
    let count = kernels::sum(mask.clone()).clamp_min(1.0);
    kernels::sum(per_position * mask) / count
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CpuBackend;
    use burn::tensor::TensorData;

    fn tensor<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> Tensor<CpuBackend, D> {
        Tensor::from_data(TensorData::new(values, shape), &Default::default())
    }

    fn scalar(t: Tensor<CpuBackend, 1>) -> f64 {
        let v: Vec<f32> = t.into_data().into_vec().expect("f32");
        f64::from(v[0])
    }

    #[test]
    fn forward_and_reverse_kl_match_hand_computed_values() {
        let (half, quarter) = (0.5f32.ln(), 0.25f32.ln());
        // Three positions of one row, vocabulary of 3:
        //   0: teacher (1/2, 1/4, 1/4), student uniform — counted;
        //   1: very different distributions — masked out (a prompt position);
        //   2: equal distributions — counted, KL 0.
        let teacher = tensor(
            vec![half, quarter, quarter, 5.0, 0.0, 0.0, 1.0, 2.0, 3.0],
            [1, 3, 3],
        );
        let student = tensor(vec![0.0, 0.0, 0.0, 0.0, 0.0, 9.0, 1.0, 2.0, 3.0], [1, 3, 3]);
        let mask = tensor(vec![1.0, 0.0, 1.0], [1, 3]);
        let third = 1.0f64 / 3.0;
        // KL(t ‖ s) = ½ ln(½ / ⅓) + 2 · ¼ ln(¼ / ⅓); KL(s ‖ t) = ⅓ ln(⅓ / ½) + 2 · ⅓ ln(⅓ / ¼).
        let forward_0 = 0.5 * (0.5 / third).ln() + 0.5 * (0.25 / third).ln();
        let reverse_0 = third * (third / 0.5).ln() + 2.0 * third * (third / 0.25).ln();
        assert!((forward_0 - 0.058_891_517_828_191_7).abs() < 1e-12);
        assert!((reverse_0 - 0.056_633_012_265_132_4).abs() < 1e-12);
        let forward = scalar(token_kl(
            student.clone(),
            teacher.clone(),
            mask.clone(),
            KlDirection::Forward,
        ));
        let reverse = scalar(token_kl(student, teacher, mask, KlDirection::Reverse));
        assert!((forward - forward_0 / 2.0).abs() < 1e-6, "{forward}");
        assert!((reverse - reverse_0 / 2.0).abs() < 1e-6, "{reverse}");
    }
}
