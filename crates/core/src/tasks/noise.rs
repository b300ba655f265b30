//! Execute (the `dataset` stage): writing flaws into generated worked solutions — a wrong
//! answer, skipped steps, a broken format, reasoning in mixed languages — each with the share the
//! dataset's `noise:` gives, drawn from a stream of its own so that the items themselves
//! (questions and reference answers) are the same with and without noise.

use crate::manifest::SolutionNoise;

use super::error::TaskError;
use super::example::Example;
use super::rng::SeededRng;
use super::solution::{Layout, Sentence, WorkedSolution};

/// The purpose name of the noise stream (see [`SeededRng::for_purpose`]).
pub const PURPOSE: &str = "solution-noise";

/// `count` items, each drawn by `item` from the task's own stream (purpose `task`) and
/// from the noise stream: every generated task draws its items so, so that noise never
/// moves the items themselves.
pub fn generate_items(
    count: usize,
    seed: u64,
    task: &str,
    mut item: impl FnMut(&mut SeededRng, &mut SeededRng) -> Result<Example, TaskError>,
) -> Result<Vec<Example>, TaskError> {
    let mut rng = SeededRng::for_purpose(seed, task);
    let mut noise_rng = SeededRng::for_purpose(seed, PURPOSE);
    (0..count).map(|_| item(&mut rng, &mut noise_rng)).collect()
}

/// The text of one item's worked solution under `noise`. `wrong` makes the flawed
/// solution a task can write instead (it may return `None` when it cannot make one, and
/// the solution then stays right). The draws are made for every item whatever the
/// shares, so each share moves only its own flaw.
pub fn write(
    noise: &SolutionNoise,
    clean: &WorkedSolution,
    wrong: impl FnOnce(&mut SeededRng) -> Option<WorkedSolution>,
    rng: &mut SeededRng,
) -> String {
    let is_wrong = rng.chance(noise.wrong);
    let is_shortcut = rng.chance(noise.shortcut);
    let is_unformatted = rng.chance(noise.unformatted);
    let is_mixed = rng.chance(noise.mixed_language);
    let layout_draw = rng.below(2);
    let language_seed = rng.next_u64();

    let flawed = if is_wrong { wrong(rng) } else { None };
    let solution = flawed.as_ref().unwrap_or(clean);
    let short;
    let solution = if is_shortcut {
        short = solution.without_steps();
        &short
    } else {
        solution
    };
    let layout = match (is_unformatted, layout_draw) {
        (false, _) => Layout::Tagged,
        (true, 0) => Layout::UntaggedAnswer,
        (true, _) => Layout::UnclosedThink,
    };
    let chinese = if is_mixed {
        chinese_sentences(&solution.sentences, language_seed)
    } else {
        Vec::new()
    };
    solution.render_with(layout, &chinese)
}

/// Which of `sentences` are written in Chinese: [`mixed_languages`] over the sentences
/// that have a language (a sentence written alike in both, such as the opening of the
/// `columns` scratchpad, has none and is left as it is), so that a mixed solution mixes
/// languages the reader can see.
fn chinese_sentences(sentences: &[Sentence], seed: u64) -> Vec<bool> {
    let worded: Vec<usize> = (0..sentences.len())
        .filter(|&i| sentences[i].en != sentences[i].zh)
        .collect();
    let mut chinese = vec![false; sentences.len()];
    for (&i, is_chinese) in worded.iter().zip(mixed_languages(worded.len(), seed)) {
        chinese[i] = is_chinese;
    }
    chinese
}

/// Which sentences are in Chinese: each with even odds, and at least one of each language
/// when there are two sentences or more (one sentence alone is in Chinese).
fn mixed_languages(sentences: usize, seed: u64) -> Vec<bool> {
    let mut rng = SeededRng::new(seed);
    let mut chinese: Vec<bool> = (0..sentences).map(|_| rng.chance(0.5)).collect();
    if sentences == 1 {
        chinese[0] = true;
    } else if sentences > 1 {
        if chinese.iter().all(|&c| !c) {
            chinese[rng.index(sentences)] = true;
        }
        if chinese.iter().all(|&c| c) {
            chinese[rng.index(sentences)] = false;
        }
    }
    chinese
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::solution::Sentence;

    fn wrong(_: &mut SeededRng) -> Option<WorkedSolution> {
        let mut w = WorkedSolution::example();
        w.answer = "52".into();
        Some(w)
    }

    fn noise(wrong: f64, unformatted: f64, mixed_language: f64) -> SolutionNoise {
        SolutionNoise {
            wrong,
            shortcut: 0.0,
            unformatted,
            mixed_language,
        }
    }

    fn shares(noise: &SolutionNoise) -> (f64, f64, f64) {
        let mut rng = SeededRng::for_purpose(3, PURPOSE);
        let n = 4000;
        let (mut w, mut u, mut m) = (0, 0, 0);
        for _ in 0..n {
            let text = write(noise, &WorkedSolution::example(), wrong, &mut rng);
            w += usize::from(text.contains("52"));
            u += usize::from(!text.contains("<answer>"));
            m += usize::from(text.contains('得') || text.contains("所以"));
        }
        let f = |c: usize| c as f64 / n as f64;
        (f(w), f(u), f(m))
    }

    #[test]
    fn no_noise_is_the_clean_solution() {
        let mut rng = SeededRng::new(1);
        for _ in 0..20 {
            assert_eq!(
                write(
                    &SolutionNoise::default(),
                    &WorkedSolution::example(),
                    wrong,
                    &mut rng
                ),
                WorkedSolution::example().render()
            );
        }
    }

    #[test]
    fn each_flaw_comes_with_its_share() {
        let (w, u, m) = shares(&noise(0.3, 0.5, 0.2));
        assert!((w - 0.3).abs() < 0.03, "wrong share {w}");
        assert!((u - 0.5).abs() < 0.03, "unformatted share {u}");
        assert!((m - 0.2).abs() < 0.03, "mixed share {m}");
        let (w, u, m) = shares(&noise(1.0, 0.0, 1.0));
        assert_eq!((w, u, m), (1.0, 0.0, 1.0));
    }

    #[test]
    fn shortcuts_state_the_result_without_the_steps() {
        let shortcut = SolutionNoise {
            shortcut: 1.0,
            ..SolutionNoise::default()
        };
        let mut rng = SeededRng::new(4);
        assert_eq!(
            write(&shortcut, &WorkedSolution::example(), wrong, &mut rng),
            "<think> So 12 + 30 = 42. </think> <answer> 42 </answer>"
        );
    }

    #[test]
    fn mixed_reasoning_has_both_languages() {
        for seed in 0..50 {
            let chinese = mixed_languages(3, seed);
            assert!(chinese.contains(&true) && chinese.contains(&false));
        }
        assert_eq!(mixed_languages(1, 9), vec![true]);
        assert!(mixed_languages(0, 9).is_empty());
    }

    #[test]
    fn sentences_alike_in_both_languages_are_not_counted_as_either() {
        let neutral = Sentence {
            en: "4567 + 9123:".into(),
            zh: "4567 + 9123:".into(),
        };
        let mut sentences = vec![neutral];
        sentences.extend(WorkedSolution::example().sentences);
        for seed in 0..50 {
            let chinese = chinese_sentences(&sentences, seed);
            assert!(!chinese[0]);
            assert!(chinese[1..].contains(&true) && chinese[1..].contains(&false));
            // Sentences that all have a language are drawn as before.
            assert_eq!(
                chinese_sentences(&WorkedSolution::example().sentences, seed),
                mixed_languages(2, seed)
            );
        }
    }
}
