//! Execute (rewards): the `length` reward — DAPO's soft overlong punishment. 0 up to
//! `max_length − buffer` tokens, then falling linearly to `−penalty` at `max_length`, and
//! `−penalty` beyond. A `buffer` of 0 makes it a step at `max_length`.

use crate::manifest::LengthReward;

/// The `length` reward, ready to score.
#[derive(Debug, Clone, PartialEq)]
pub struct OverlongPenalty {
    max_length: usize,
    buffer: usize,
    penalty: f64,
}

impl OverlongPenalty {
    pub fn new(decl: &LengthReward) -> Self {
        Self {
            max_length: decl.max_length,
            // A buffer longer than the budget starts the slope at length 0.
            buffer: decl.buffer.min(decl.max_length),
            penalty: decl.penalty,
        }
    }

    /// The reward of a completion `length` tokens long.
    pub fn score(&self, length: usize) -> f64 {
        let start = self.max_length - self.buffer;
        if length <= start {
            0.0
        } else if length > self.max_length || self.buffer == 0 {
            -self.penalty
        } else {
            -self.penalty * (length - start) as f64 / self.buffer as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn penalty(max_length: usize, buffer: usize) -> OverlongPenalty {
        OverlongPenalty::new(&LengthReward {
            max_length,
            buffer,
            penalty: 1.0,
        })
    }

    #[test]
    fn follows_dapo_soft_punishment() {
        let p = penalty(512, 128);
        assert_eq!(p.score(0), 0.0);
        assert_eq!(p.score(384), 0.0);
        assert_eq!(p.score(448), -0.5);
        assert_eq!(p.score(512), -1.0);
        assert_eq!(p.score(10_000), -1.0);
    }

    #[test]
    fn degenerate_buffers_do_not_divide_by_zero() {
        let step = penalty(100, 0);
        assert_eq!(step.score(100), 0.0);
        assert_eq!(step.score(101), -1.0);
        let all = penalty(10, 50);
        assert_eq!(all.score(0), 0.0);
        assert_eq!(all.score(5), -0.5);
    }
}
