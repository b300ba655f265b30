//! Execute (the `dataset` stage): the train/test split. Records are deduplicated by
//! prompt first — so the same question can never sit in both splits — then shuffled by
//! seed, cut to `limit`, and split per `test_size`.
//!
//! Two prompts are the same when they are equal after trimming and collapsing every run
//! of whitespace to one space; the first occurrence is kept. A fractional `test_size`
//! rounds to the nearest count, but at least 1 and leaving at least 1 for training; a
//! count must leave at least 1 for training.

use std::collections::HashSet;

use crate::manifest::TestSize;

use super::error::TaskError;
use super::rng::SeededRng;

/// Records split into disjoint train and test sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split<T> {
    pub train: Vec<T>,
    pub test: Vec<T>,
    /// Records dropped because an earlier record had the same prompt.
    pub duplicates_dropped: usize,
}

/// Deduplicates `records` by `prompt_of`, shuffles them with `seed` (when `shuffle`),
/// keeps the first `limit`, and takes the test set from the front.
pub fn split<T>(
    records: Vec<T>,
    prompt_of: impl Fn(&T) -> &str,
    test_size: TestSize,
    shuffle: bool,
    seed: u64,
    limit: Option<usize>,
) -> Result<Split<T>, TaskError> {
    let total = records.len();
    let mut seen = HashSet::new();
    let mut unique: Vec<T> = records
        .into_iter()
        .filter(|r| seen.insert(normalize_prompt(prompt_of(r))))
        .collect();
    let duplicates_dropped = total - unique.len();
    if shuffle {
        SeededRng::for_purpose(seed, "split").shuffle(&mut unique);
    }
    if let Some(limit) = limit {
        unique.truncate(limit);
    }
    let n = unique.len();
    let test_n = test_count(test_size, n)?;
    let train = unique.split_off(test_n);
    Ok(Split {
        train,
        test: unique,
        duplicates_dropped,
    })
}

/// The number of test records for `n` records.
pub fn test_count(test_size: TestSize, n: usize) -> Result<usize, TaskError> {
    let TestSize::Number(size) = test_size;
    let wanted = if size > 0.0 && size < 1.0 {
        // Rounded, then kept within 1..=n−1.
        let rounded = (size * n as f64).round() as usize;
        rounded.clamp(1, n.saturating_sub(1).max(1))
    } else {
        // A whole count (validated at check time); saturating on absurd values.
        size.max(0.0) as usize
    };
    if wanted == 0 || wanted >= n {
        return Err(TaskError::TooFewRecords {
            records: n,
            test: wanted.max(1),
        });
    }
    Ok(wanted)
}

/// The form in which prompts are compared for duplicates.
fn normalize_prompt(prompt: &str) -> String {
    prompt.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompts(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("question {i}")).collect()
    }

    #[test]
    fn splits_never_overlap_and_cover_every_record() {
        for (size, expected_test) in [(0.1, 10), (0.25, 25), (7.0, 7), (0.001, 1), (0.999, 99)] {
            let s =
                split(prompts(100), |p| p, TestSize::Number(size), true, 1, None).expect("splits");
            assert_eq!(s.test.len(), expected_test, "test_size {size}");
            assert_eq!(s.train.len() + s.test.len(), 100);
            let train: HashSet<&String> = s.train.iter().collect();
            assert!(s.test.iter().all(|t| !train.contains(t)));
        }
    }

    #[test]
    fn duplicate_prompts_cannot_land_in_both_splits() {
        let mut records = prompts(50);
        // Every question twice more, once with different spacing.
        records.extend(prompts(50));
        records.extend(
            prompts(50)
                .into_iter()
                .map(|p| format!("  {}  ", p.replace(' ', "\t"))),
        );
        for seed in 0..20 {
            let s = split(
                records.clone(),
                |p| p,
                TestSize::Number(0.2),
                true,
                seed,
                None,
            )
            .expect("splits");
            assert_eq!(s.duplicates_dropped, 100);
            assert_eq!(s.train.len() + s.test.len(), 50);
            let train: HashSet<String> = s.train.iter().map(|p| normalize_prompt(p)).collect();
            assert!(s.test.iter().all(|t| !train.contains(&normalize_prompt(t))));
        }
    }

    #[test]
    fn the_seed_fixes_the_split_and_shuffle_can_be_off() {
        let a = split(prompts(30), |p| p, TestSize::Number(0.2), true, 9, None).expect("ok");
        let b = split(prompts(30), |p| p, TestSize::Number(0.2), true, 9, None).expect("ok");
        let c = split(prompts(30), |p| p, TestSize::Number(0.2), true, 10, None).expect("ok");
        assert_eq!(a, b);
        assert_ne!(a.test, c.test);
        let fixed = split(prompts(30), |p| p, TestSize::Number(0.2), false, 9, None).expect("ok");
        assert_eq!(fixed.test, prompts(6));
        let limited =
            split(prompts(30), |p| p, TestSize::Number(2.0), true, 9, Some(10)).expect("ok");
        assert_eq!((limited.train.len(), limited.test.len()), (8, 2));
    }

    #[test]
    fn too_few_records_is_an_error() {
        assert!(split(prompts(1), |p| p, TestSize::Number(0.5), true, 0, None).is_err());
        assert!(split(prompts(5), |p| p, TestSize::Number(5.0), true, 0, None).is_err());
        assert!(split(
            Vec::<String>::new(),
            |p| p,
            TestSize::Number(0.1),
            true,
            0,
            None
        )
        .is_err());
        assert_eq!(test_count(TestSize::Number(0.5), 2), Ok(1));
    }
}
