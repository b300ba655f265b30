//! Check (tests): the rule rewards against adversarial completions — each with its exact
//! expected score — a reference check on generated Countdown items, and a fuzz pass that
//! no completion string can make them panic or leave [0, 1].

use std::path::Path;

use crate::manifest::{AccuracyMode, AccuracyReward, FormatMode, LanguageReward};
use crate::manifest::{PromptTemplate, TemplateName};
use crate::records::Answer;
use crate::tasks::countdown;
use crate::tasks::template::{render, R1_ZERO_PREFILL};
use crate::tasks::SeededRng;

use super::expr::evaluate;
use super::format::{format_score, tag_count};
use super::rational::Rational;
use super::{AccuracyVerifier, LanguageConsistency, RewardOutcome};

fn verifier(mode: AccuracyMode) -> AccuracyVerifier {
    AccuracyVerifier::new(&AccuracyReward {
        mode,
        ..AccuracyReward::default()
    })
}

fn accuracy(mode: AccuracyMode, completion: &str, gold: &Answer) -> RewardOutcome {
    let v = verifier(mode);
    v.score(&v.verdict(completion, Some(gold)))
}

/// Gold: `(44 + 19) + 35` — numbers 44, 19, 35; target 98.
fn countdown_gold() -> Answer {
    Answer::Text("(44 + 19) + 35".into())
}

#[test]
fn countdown_hacks_get_their_documented_scores() {
    let gold = countdown_gold();
    let huge = format!("<answer>{}</answer>", "9".repeat(5000));
    let cases: &[(&str, &str, f64)] = &[
        ("right", "<think>ok</think> <answer>44 + 19 + 35</answer>", 1.0),
        ("right, reordered, with prefill", "Let me solve this step by step.\n<think> x </think>\n<answer> (35 + 44) + 19 </answer>", 1.0),
        ("right, text after the answer", "<think>ok</think><answer>44+19+35</answer> Hope that helps!", 1.0),
        ("right, answer inside think", "<think><answer>44+19+35</answer></think>", 1.0),
        ("exact rational arithmetic", "<answer>(44 * 19 - 44 * 19) / 35 + 98</answer>", 0.1),
        ("two answers, wrong then right", "<answer>1</answer> <answer>44+19+35</answer>", 0.0),
        ("two answers, right then wrong", "<answer>44+19+35</answer> <answer>1</answer>", 0.0),
        ("repeated </answer>", "<answer>44+19+35</answer></answer>", 0.0),
        ("nested <answer>", "<answer><answer>44+19+35</answer>", 0.0),
        ("unclosed answer", "<think>ok</think><answer>44 + 19 + 35", 0.0),
        ("close before open", "</answer>44 + 19 + 35<answer>", 0.0),
        ("upper-case tags", "<ANSWER>44 + 19 + 35</ANSWER>", 0.0),
        ("no tags", "44 + 19 + 35", 0.0),
        ("empty completion", "", 0.0),
        ("empty answer", "<answer></answer>", 0.1),
        ("blank answer", "<answer>   </answer>", 0.1),
        ("reused number", "<answer>44 + 44 + 10</answer>", 0.1),
        ("reused number reaching the target", "<answer>35 + 35 + 19 + 9</answer>", 0.1),
        ("missing number", "<answer>44 + 54</answer>", 0.1),
        ("number left out", "<answer>44 + 19</answer>", 0.1),
        ("extra number", "<answer>44 + 19 + 35 + 0</answer>", 0.1),
        ("wrong value, right numbers", "<answer>44 - 19 + 35</answer>", 0.1),
        ("bare target", "<answer>98</answer>", 0.1),
        ("equation with = target", "<answer>44 + 19 + 35 = 98</answer>", 0.1),
        ("decimal literal", "<answer>44.0 + 19 + 35</answer>", 0.1),
        ("unicode digits", "<answer>٤٤ + ١٩ + ٣٥</answer>", 0.1),
        ("unicode times sign", "<answer>(44 + 19) × 35</answer>", 0.1),
        ("division by zero", "<answer>44 / (19 - 19) + 35</answer>", 0.1),
        ("unbalanced parentheses", "<answer>(44 + 19 + 35</answer>", 0.1),
        ("code injection", "<answer>__import__('os').system('ls')</answer>", 0.1),
        ("power operator", "<answer>44 ** 19 + 35</answer>", 0.1),
        ("enormous number", &huge, 0.1),
    ];
    for (name, completion, expected) in cases {
        assert_eq!(
            accuracy(AccuracyMode::Auto, completion, &gold),
            RewardOutcome::Score(*expected),
            "{name}: {completion:?}"
        );
    }
}

#[test]
fn format_rewards_on_the_same_hacks() {
    let cases: &[(&str, f64, f64)] = &[
        ("<think>ok</think> <answer>44 + 19 + 35</answer>", 1.0, 1.0),
        (
            "Let me solve this step by step.\n<think> x </think>\n<answer> 7 </answer>\n",
            1.0,
            1.0,
        ),
        (
            "<think>ok</think><answer>7</answer> Hope that helps!",
            0.0,
            1.0,
        ),
        ("<think>ok</think><answer>7</answer></answer>", 0.0, 0.75),
        (
            "<think>ok</think><answer>1</answer><answer>7</answer>",
            0.0,
            0.5,
        ),
        ("<think><answer>7</answer></think>", 0.0, 1.0),
        ("<answer>7</answer>", 0.0, 0.5),
        ("", 0.0, 0.0),
        ("<think>ok</think><answer></answer>", 0.0, 1.0),
    ];
    for (completion, strict, tags) in cases {
        assert_eq!(
            format_score(FormatMode::Strict, completion),
            *strict,
            "strict {completion:?}"
        );
        assert_eq!(tag_count(completion), *tags, "tag_count {completion:?}");
    }
}

#[test]
fn numeric_and_exact_modes() {
    let half = Answer::Text("0.5".into());
    let thousand = Answer::Number(1000.into());
    let twelve = Answer::Text("12".into());
    let paris = Answer::Text("Paris".into());
    for (mode, reference, given, expected) in [
        (AccuracyMode::Numeric, &half, "1/2", 1.0),
        (AccuracyMode::Numeric, &half, "5e-1", 1.0),
        (AccuracyMode::Numeric, &half, "0.50", 1.0),
        (AccuracyMode::Numeric, &half, ".5", 1.0),
        (AccuracyMode::Numeric, &half, " 0.5 ", 1.0),
        (AccuracyMode::Numeric, &half, "0.6", 0.1),
        (AccuracyMode::Numeric, &half, "one half", 0.1),
        (AccuracyMode::Numeric, &half, "1/0", 0.1),
        (AccuracyMode::Auto, &thousand, "1,000", 1.0),
        (AccuracyMode::Auto, &thousand, "1e3", 1.0),
        (AccuracyMode::Auto, &thousand, "1000.0", 1.0),
        (AccuracyMode::Auto, &thousand, "1,00", 0.1),
        (AccuracyMode::Auto, &thousand, "10 00", 0.1),
        (AccuracyMode::Auto, &twelve, "١٢", 0.1),
        (AccuracyMode::Auto, &twelve, "12 apples", 0.1),
        (AccuracyMode::Exact, &paris, " Paris ", 1.0),
        (AccuracyMode::Exact, &paris, "paris", 0.1),
    ] {
        let completion = format!("<answer>{given}</answer>");
        assert_eq!(
            accuracy(mode, &completion, reference),
            RewardOutcome::Score(expected),
            "{mode:?} {given}"
        );
    }
    let huge = format!("<answer>{}</answer>", "9".repeat(100_000));
    assert_eq!(
        accuracy(AccuracyMode::Auto, &huge, &twelve),
        RewardOutcome::Score(0.1)
    );
    assert_eq!(
        accuracy(AccuracyMode::Exact, "Paris", &paris),
        RewardOutcome::Score(0.0)
    );
}

#[test]
fn unreadable_references_are_skipped_not_rewarded() {
    let right_looking = "<answer>Paris</answer>";
    for (mode, gold) in [
        (AccuracyMode::Auto, Some(Answer::Text("Paris".into()))),
        (AccuracyMode::Auto, Some(Answer::Text("".into()))),
        (AccuracyMode::Auto, Some(Answer::Text("(1 + ".into()))),
        (AccuracyMode::Numeric, Some(Answer::Text("Paris".into()))),
        (
            AccuracyMode::Numeric,
            Some(Answer::Text("\\frac{1}{2}".into())),
        ),
        (AccuracyMode::Exact, Some(Answer::Text("  ".into()))),
        (AccuracyMode::Auto, None),
    ] {
        let v = verifier(mode);
        let outcome = v.score(&v.verdict(right_looking, gold.as_ref()));
        assert!(
            matches!(outcome, RewardOutcome::Skipped(_)),
            "{mode:?} {gold:?}: {outcome:?}"
        );
    }
}

#[test]
fn scores_are_configurable() {
    let v = AccuracyVerifier::new(&AccuracyReward {
        mode: AccuracyMode::Auto,
        correct_score: 2.0,
        format_score: 0.0,
        ..AccuracyReward::default()
    });
    let gold = countdown_gold();
    assert_eq!(
        v.score(&v.verdict("<answer>44+19+35</answer>", Some(&gold))),
        RewardOutcome::Score(2.0)
    );
    assert_eq!(
        v.score(&v.verdict("<answer>44+19</answer>", Some(&gold))),
        RewardOutcome::Score(0.0)
    );
}

#[test]
fn mixed_language_reasoning() {
    let en = LanguageConsistency::new(&LanguageReward::default(), Path::new(".")).expect("en");
    let zh = LanguageConsistency::new(
        &LanguageReward {
            language: "zh".into(),
            ..LanguageReward::default()
        },
        Path::new("."),
    )
    .expect("zh");
    // 3 English words and 6 Chinese characters; the answer is outside the reasoning.
    let mixed = "<think>So first 我们先把数字 add</think><answer>单词 words</answer>";
    assert_eq!(en.score(mixed), 3.0 / 9.0);
    assert_eq!(zh.score(mixed), 6.0 / 9.0);
    assert_eq!(en.score("<think>١٢ + ٣ = ١٥</think>"), 0.0);
    assert_eq!(en.score(""), 0.0);
}

#[test]
fn generated_countdown_items_grade_as_documented() {
    let task = serde_json::from_value(serde_json::json!({"num_samples": 300})).expect("task");
    let items = countdown::generate(&task, 2024).expect("generates");
    let v = verifier(AccuracyMode::Auto);
    let template = PromptTemplate::Named(TemplateName::R1Zero);
    let score = |completion: &str, gold: &Answer| v.score(&v.verdict(completion, Some(gold)));
    let (mut wrong_values, mut reused) = (0, 0);
    for item in &items {
        let gold = item
            .to_prompt_record()
            .answer
            .expect("countdown items have answers");
        let meta = item.countdown.as_ref().expect("metadata");
        let target = Rational::integer(i128::from(meta.target));

        // The known solution, alone and as a prefilled R1-Zero response.
        assert_eq!(
            score(&item.solution, &gold),
            RewardOutcome::Score(1.0),
            "{item:?}"
        );
        let prompt = render(&template, &item.template_fields()).expect("renders");
        assert_eq!(prompt.response_prefix, R1_ZERO_PREFILL);
        let response = prompt.full_response(prompt.sft_target(&item.solution));
        assert_eq!(score(&response, &gold), RewardOutcome::Score(1.0));
        assert_eq!(
            format_score(FormatMode::Strict, &response),
            1.0,
            "{response}"
        );

        // Each kind of wrong answer.
        let answer = |text: &str| format!("<think>t</think> <answer>{text}</answer>");
        assert_eq!(
            score(&answer(&meta.target.to_string()), &gold),
            RewardOutcome::Score(0.1)
        );
        let all_but_last: Vec<String> = meta.numbers[..meta.numbers.len() - 1]
            .iter()
            .map(u64::to_string)
            .collect();
        assert_eq!(
            score(&answer(&all_but_last.join(" + ")), &gold),
            RewardOutcome::Score(0.1)
        );
        if meta.numbers.iter().any(|&n| n != meta.numbers[0]) {
            reused += 1;
            let same: Vec<String> = vec![meta.numbers[0].to_string(); meta.numbers.len()];
            assert_eq!(
                score(&answer(&same.join(" + ")), &gold),
                RewardOutcome::Score(0.1)
            );
        }
        let flipped = item.answer.replacen('+', "-", 1).replacen('*', "+", 1);
        if evaluate(&flipped).map(|e| e.value) != Ok(target) {
            wrong_values += 1;
            assert_eq!(
                score(&answer(&flipped), &gold),
                RewardOutcome::Score(0.1),
                "{flipped}"
            );
        }
        assert_eq!(
            score(&item.solution.replace("<answer>", ""), &gold),
            RewardOutcome::Score(0.0)
        );
        let hedged = format!("{} <answer> 0 </answer>", item.solution);
        assert_eq!(score(&hedged, &gold), RewardOutcome::Score(0.0));
    }
    assert!(
        wrong_values > 200 && reused > 250,
        "{wrong_values} {reused}"
    );
}

#[test]
fn no_completion_string_panics_or_leaves_the_unit_interval() {
    let mut rng = SeededRng::new(99);
    let alphabet: Vec<char> = "<>/answerthink0123456789+-*/() .,e١我 \n".chars().collect();
    let pieces = [
        "<think>",
        "</think>",
        "<answer>",
        "</answer>",
        "(",
        ")",
        "99999999999999999999",
    ];
    let golds = [
        countdown_gold(),
        Answer::Text("1/2".into()),
        Answer::Number(7.into()),
        Answer::Text("x".into()),
    ];
    let en = LanguageConsistency::new(&LanguageReward::default(), Path::new(".")).expect("en");
    for i in 0..3000 {
        let completion: String = if i % 3 == 0 {
            let bytes: Vec<u8> = (0..rng.below(64)).map(|_| rng.next_u64() as u8).collect();
            String::from_utf8_lossy(&bytes).into_owned()
        } else {
            (0..rng.below(80))
                .map(|_| {
                    if rng.below(4) == 0 {
                        pieces[rng.index(pieces.len())].to_string()
                    } else {
                        alphabet[rng.index(alphabet.len())].to_string()
                    }
                })
                .collect()
        };
        for mode in [
            AccuracyMode::Auto,
            AccuracyMode::Numeric,
            AccuracyMode::Exact,
        ] {
            for gold in &golds {
                if let RewardOutcome::Score(s) = accuracy(mode, &completion, gold) {
                    assert!((0.0..=1.0).contains(&s), "{completion:?}");
                }
            }
        }
        for value in [
            format_score(FormatMode::Strict, &completion),
            tag_count(&completion),
            en.score(&completion),
        ] {
            assert!((0.0..=1.0).contains(&value), "{completion:?}");
        }
    }
}
