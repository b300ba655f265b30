//! Execute (the `dataset` stage): the `columns` scratchpad of the `arithmetic` task —
//! addition worked column by column, least significant digit first. The reasoning opens
//! with the expression as the question writes it; each column is then one sentence: what
//! is left of the operands (each without the columns already done, so that the column's
//! digits are the last ones written; the first column uses the opening), the column's
//! digits and the carry in, their sum (two digits at least), the carry out and the
//! running result. A conclusion then states the last running result in words, and the
//! answer copies it. For 4567 + 9123:
//!
//! ```text
//! <think> 4567 + 9123: 7+3+0=10 c1 r0. 456 + 912: 6+2+1=09 c0 r90. 45 + 91: 5+1+0=06 c0
//! r690. 4 + 9: 4+9+0=13 c1 r3690. 0 + 0: 0+0+1=01 c0 r13690. The sum is 13690. </think>
//! <answer> 13690 </answer>
//! ```
//!
//! An operand with no digits left is written `0`; a carry left after the last column gets
//! a column of zeros of its own. Without the steps (a shortcut) the reasoning is the
//! opening and the conclusion, which must then state the sum at once:
//! `<think> 4567 + 9123: The sum is 13690. </think> <answer> 13690 </answer>`.
//!
//! Why this shape (Lee et al. 2023, "Teaching Arithmetic to Small Transformers", the
//! detailed scratchpad): every step is a copy from the sentence before, a lookup of the
//! last digits just written, or a sum of a few digits — what a tiny model learns — whereas
//! finding the k-th digit from the end of a number in the question, or stating a
//! multi-digit sum at once, is not. Both ways open with the same copy of the question, so
//! every item of a corpus trains it. (Measured on a 1M-parameter model pretrained for 600
//! steps: without the operands restated it found the units digits, anchored by `+` and
//! `.`, and no others; with them, it worked every column but the first copy of the
//! question, which only the worked items trained.)
//!
//! A slip ([`Slip`]) makes one column wrong — its sum off by one, or its carry wrong —
//! and the later columns work on from the wrong carry, as a learner's would, so the
//! running result and the stated answer are wrong.

use super::solution::{Sentence, WorkedSolution};

/// One mistake in a worked column addition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slip {
    /// Column `column` (0 = units) writes its sum off by `delta` (±1); its digit and
    /// carry follow from the wrong sum.
    Sum { column: usize, delta: i8 },
    /// Column `column` writes the right sum but a wrong carry: 1 instead of 0, or one
    /// less than the right carry otherwise.
    Carry { column: usize },
}

/// The worked column addition of `operands` (all non-negative), `expression` being how
/// the question writes them (`4567 + 9123`), with at most one `slip`.
pub fn work(expression: &str, operands: &[u128], slip: Option<Slip>) -> WorkedSolution {
    let digits: Vec<Vec<u8>> = operands.iter().map(|&x| digits_lsb_first(x)).collect();
    let columns = digits.iter().map(Vec::len).max().unwrap_or(1);
    let opening = format!("{expression}:");
    // The opening is in neither language: the same text in both.
    let mut sentences = vec![Sentence {
        en: opening.clone(),
        zh: opening,
    }];
    let mut carry: u32 = 0;
    // Digits of the running result, most significant first.
    let mut running = String::new();
    let mut column = 0;
    while column < columns || carry > 0 {
        let column_digits: Vec<u8> = digits
            .iter()
            .map(|d| d.get(column).copied().unwrap_or(0))
            .collect();
        let carry_in = carry;
        let mut sum = column_digits.iter().map(|&d| u32::from(d)).sum::<u32>() + carry_in;
        let mut carry_out = sum / 10;
        match slip {
            Some(Slip::Sum { column: at, delta }) if at == column => {
                // A sum of 0 cannot go lower: the slip goes up instead.
                sum = if delta < 0 && sum > 0 {
                    sum - 1
                } else {
                    sum + 1
                };
                carry_out = sum / 10;
            }
            Some(Slip::Carry { column: at }) if at == column => {
                carry_out = if carry_out == 0 { 1 } else { carry_out - 1 };
            }
            _ => {}
        }
        running.insert(0, char::from(b'0' + (sum % 10) as u8));
        // What is left of each operand: its digits up to this column (`0` when none).
        let left: Vec<String> = operands
            .iter()
            .map(|&x| {
                let place = u32::try_from(column)
                    .ok()
                    .and_then(|c| 10u128.checked_pow(c));
                place.map_or(0, |place| x / place).to_string()
            })
            .collect();
        let terms: Vec<String> = column_digits
            .iter()
            .map(u8::to_string)
            .chain(std::iter::once(carry_in.to_string()))
            .collect();
        let equation = if column == 0 {
            format!("{}={sum:02}", terms.join("+"))
        } else {
            format!("{}: {}={sum:02}", left.join(" + "), terms.join("+"))
        };
        sentences.push(Sentence {
            en: format!("{equation} c{carry_out} r{running}."),
            zh: format!("{equation} 进{carry_out} 得{running}。"),
        });
        carry = carry_out;
        column += 1;
    }
    let steps = 1..sentences.len();
    // The conclusion states the result in words, in both modes: worked, it copies the last
    // running result; in a shortcut, it is the whole reasoning after the opening.
    sentences.push(Sentence {
        en: format!("The sum is {running}."),
        zh: format!("和为 {running}。"),
    });
    WorkedSolution {
        sentences,
        steps,
        answer: running,
    }
}

/// The decimal digits of `x`, units first (`[0]` for 0).
fn digits_lsb_first(mut x: u128) -> Vec<u8> {
    let mut digits = vec![(x % 10) as u8];
    x /= 10;
    while x > 0 {
        digits.push((x % 10) as u8);
        x /= 10;
    }
    digits
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The expected texts below were written by hand, column by column.
    #[test]
    fn golden_two_operands_with_a_final_carry() {
        let w = work("4567 + 9123", &[4567, 9123], None);
        assert_eq!(w.answer, "13690");
        assert_eq!(
            w.render(),
            "<think> 4567 + 9123: 7+3+0=10 c1 r0. 456 + 912: 6+2+1=09 c0 r90. \
             45 + 91: 5+1+0=06 c0 r690. 4 + 9: 4+9+0=13 c1 r3690. \
             0 + 0: 0+0+1=01 c0 r13690. The sum is 13690. </think> <answer> 13690 </answer>"
        );
        assert_eq!(w.steps, 1..6);
        assert_eq!(
            w.without_steps().render(),
            "<think> 4567 + 9123: The sum is 13690. </think> <answer> 13690 </answer>"
        );
    }

    #[test]
    fn golden_unequal_lengths_and_three_operands() {
        let w = work("99999 + 1", &[99_999, 1], None);
        assert_eq!(w.answer, "100000");
        let en: Vec<&str> = w.sentences.iter().map(|s| s.en.as_str()).collect();
        assert_eq!(
            en,
            [
                "99999 + 1:",
                "9+1+0=10 c1 r0.",
                "9999 + 0: 9+0+1=10 c1 r00.",
                "999 + 0: 9+0+1=10 c1 r000.",
                "99 + 0: 9+0+1=10 c1 r0000.",
                "9 + 0: 9+0+1=10 c1 r00000.",
                "0 + 0: 0+0+1=01 c0 r100000.",
                "The sum is 100000.",
            ]
        );
        let w = work("98 + 97 + 99", &[98, 97, 99], None);
        assert_eq!(w.answer, "294");
        let en: Vec<&str> = w.sentences.iter().map(|s| s.en.as_str()).collect();
        assert_eq!(
            en,
            [
                "98 + 97 + 99:",
                "8+7+9+0=24 c2 r4.",
                "9 + 9 + 9: 9+9+9+2=29 c2 r94.",
                "0 + 0 + 0: 0+0+0+2=02 c0 r294.",
                "The sum is 294.",
            ]
        );
        let w = work("1000 + 2000", &[1000, 2000], None);
        assert_eq!(w.answer, "3000");
        assert_eq!(w.steps, 1..5, "no column for a carry of 0");
    }

    #[test]
    fn chinese_sentences_carry_the_same_numbers() {
        let w = work("15 + 7", &[15, 7], None);
        let zh: Vec<&str> = w.sentences.iter().map(|s| s.zh.as_str()).collect();
        assert_eq!(
            zh,
            [
                "15 + 7:",
                "5+7+0=12 进1 得2。",
                "1 + 0: 1+0+1=02 进0 得22。",
                "和为 22。",
            ]
        );
    }

    #[test]
    fn slips_propagate_to_the_answer() {
        // The units sum written one too high: 10 → 11, so digit 1 and carry 1.
        let w = work(
            "4567 + 9123",
            &[4567, 9123],
            Some(Slip::Sum {
                column: 0,
                delta: 1,
            }),
        );
        assert_eq!(w.answer, "13691");
        // The carry of the second column dropped (it has none: it becomes 1), so the
        // third column adds one more.
        let w = work(
            "4567 + 9123",
            &[4567, 9123],
            Some(Slip::Carry { column: 1 }),
        );
        assert_eq!(w.sentences[2].en, "456 + 912: 6+2+1=09 c1 r90.");
        assert_eq!(w.sentences[3].en, "45 + 91: 5+1+1=07 c0 r790.");
        assert_eq!(w.answer, "13790");
        // A carry slip on the last column adds a column; a sum of 0 slips upwards.
        let w = work("10 + 10", &[10, 10], Some(Slip::Carry { column: 1 }));
        assert_eq!(w.answer, "120");
        let w = work(
            "10 + 10",
            &[10, 10],
            Some(Slip::Sum {
                column: 0,
                delta: -1,
            }),
        );
        assert_eq!(w.answer, "21");
    }
}
