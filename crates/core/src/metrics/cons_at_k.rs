//! Report (the `eval` stage): cons@k — is the majority answer of the first k samples
//! correct? Answers are compared in their normalised form
//! ([`crate::rewards::answer::normalize_answer`]); samples without an answer do not vote.
//!
//! Ties are broken by first appearance: among the answers with the most votes, the one
//! that appears earliest in sample order wins. That keeps the result deterministic and
//! independent of hashing, and favours nothing but the order samples were drawn in.

/// One sample's vote: its normalised answer (if any) and whether it is correct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vote {
    pub answer: Option<String>,
    pub correct: bool,
}

/// The winning answer among the first `k` votes and whether it is correct; `None` when
/// `k` is 0 or more than the votes, and `Some(None)` when none of the k has an answer.
pub fn majority(votes: &[Vote], k: usize) -> Option<Option<(&str, bool)>> {
    if k == 0 || k > votes.len() {
        return None;
    }
    // (answer, count, correct), in order of first appearance; k is small (≤ a few
    // hundred), so a linear scan beats hashing and keeps the order for free.
    let mut tally: Vec<(&str, usize, bool)> = Vec::new();
    for vote in &votes[..k] {
        let Some(answer) = vote.answer.as_deref() else {
            continue;
        };
        match tally.iter_mut().find(|(a, _, _)| *a == answer) {
            Some(entry) => entry.1 += 1,
            None => tally.push((answer, 1, vote.correct)),
        }
    }
    let mut best: Option<(&str, usize, bool)> = None;
    for entry in tally {
        // Strictly greater: an equal count later in order does not replace the earlier.
        if best.is_none_or(|b| entry.1 > b.1) {
            best = Some(entry);
        }
    }
    Some(best.map(|(answer, _, correct)| (answer, correct)))
}

/// cons@k as 1.0 or 0.0 (no answer among the k counts as wrong); `None` when `k` is 0 or
/// more than the votes.
pub fn cons_at_k(votes: &[Vote], k: usize) -> Option<f64> {
    majority(votes, k).map(|winner| match winner {
        Some((_, true)) => 1.0,
        _ => 0.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vote(answer: &str, correct: bool) -> Vote {
        Vote {
            answer: (!answer.is_empty()).then(|| answer.to_string()),
            correct,
        }
    }

    #[test]
    fn the_majority_answer_decides() {
        let votes = [
            vote("3", false),
            vote("4", true),
            vote("4", true),
            vote("", false),
            vote("3", false),
            vote("3", false),
        ];
        assert_eq!(cons_at_k(&votes, 3), Some(1.0));
        assert_eq!(cons_at_k(&votes, 6), Some(0.0));
        assert_eq!(majority(&votes, 6), Some(Some(("3", false))));
    }

    #[test]
    fn ties_go_to_the_first_answer_seen() {
        let votes = [
            vote("7", true),
            vote("8", false),
            vote("8", false),
            vote("7", true),
        ];
        assert_eq!(majority(&votes, 4), Some(Some(("7", true))));
        assert_eq!(majority(&votes, 2), Some(Some(("7", true))));
        let swapped = [
            vote("8", false),
            vote("7", true),
            vote("7", true),
            vote("8", false),
        ];
        assert_eq!(cons_at_k(&swapped, 4), Some(0.0));
    }

    #[test]
    fn no_answers_and_bad_k() {
        let votes = [vote("", false), vote("", false)];
        assert_eq!(majority(&votes, 2), Some(None));
        assert_eq!(cons_at_k(&votes, 2), Some(0.0));
        assert_eq!(cons_at_k(&votes, 3), None);
        assert_eq!(cons_at_k(&votes, 0), None);
    }
}
