//! Execute (training): which next-token positions a loss counts. Every objective here
//! scores column `t` of a `[rows, seq]` batch as the prediction of token `t + 1`; this is
//! the one place that turns "is token `t + 1` of row `r` a target?" into that mask.

/// Weights of a `[rows, seq - 1]` next-token mask, row-major: 1.0 where
/// `is_target(row, token)` holds for the token (`1..seq`) the column predicts, else 0.0.
pub(super) fn next_token_weights(
    rows: usize,
    seq: usize,
    is_target: impl Fn(usize, usize) -> bool,
) -> Vec<f32> {
    let mut weights = Vec::with_capacity(rows * seq.saturating_sub(1));
    for row in 0..rows {
        for token in 1..seq {
            weights.push(if is_target(row, token) { 1.0 } else { 0.0 });
        }
    }
    weights
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_t_is_about_token_t_plus_one() {
        // Row 0: tokens 2 and 3 are targets; row 1: only token 1.
        let weights = next_token_weights(2, 4, |row, token| match row {
            0 => token >= 2,
            _ => token == 1,
        });
        assert_eq!(weights, vec![0.0, 1.0, 1.0, 1.0, 0.0, 0.0]);
    }
}
