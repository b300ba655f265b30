//! Execute (the `dataset` stage): the `arithmetic` task — chains of additions,
//! subtractions and multiplications of multi-digit numbers, small enough for a tiny CPU
//! model to learn. Difficulty grows with `max_digits` and `num_terms`. The answer is the
//! exact integer under the usual precedence (multiplication first), computed in `i128`.

use crate::manifest::{ArithmeticTask, Operation};

use super::error::TaskError;
use super::example::Example;
use super::noise;
use super::rng::SeededRng;
use super::solution::{Sentence, WorkedSolution};

/// The task's name in records and reports.
pub const TASK: &str = "arithmetic";

/// `i128` holds every integer of 38 digits, so operands × terms must stay below that.
const MAX_RESULT_DIGITS: u32 = 38;

/// The question for an expression written as `12 + 34 * 5`: `Calculate 12 + 34 * 5.`
/// It is kept short for the tiny models this task is for; the output format comes from
/// the prompt template (`r1_zero` asks for `<think>` and `<answer>`).
pub fn question(expression: &str) -> String {
    format!("Calculate {expression}.")
}

/// Checks the settings the generator depends on.
pub fn check(task: &ArithmeticTask) -> Result<(), TaskError> {
    let setting = |field, message: String| {
        Err(TaskError::Setting {
            task: TASK,
            field,
            message,
        })
    };
    if task.operations.is_empty() {
        return setting("operations", "give at least one of add, sub, mul".into());
    }
    if task.num_terms < 2 {
        return setting(
            "num_terms",
            format!("at least 2 terms, not {}", task.num_terms),
        );
    }
    if task.min_digits == 0 || task.min_digits > task.max_digits {
        return setting(
            "min_digits",
            format!(
                "must be between 1 and `max_digits` ({}), not {}",
                task.max_digits, task.min_digits
            ),
        );
    }
    let terms = u32::try_from(task.num_terms).unwrap_or(u32::MAX);
    let result_digits = if task.operations.contains(&Operation::Mul) {
        task.max_digits.saturating_mul(terms)
    } else {
        task.max_digits.saturating_add(terms)
    };
    if result_digits > MAX_RESULT_DIGITS {
        return setting(
            "max_digits",
            format!(
                "{} digits × {} terms can exceed {MAX_RESULT_DIGITS} digits, beyond exact \
                 arithmetic; lower `max_digits` or `num_terms`",
                task.max_digits, task.num_terms
            ),
        );
    }
    Ok(())
}

/// `task.num_samples` items from `seed`.
pub fn generate(task: &ArithmeticTask, seed: u64) -> Result<Vec<Example>, TaskError> {
    check(task)?;
    let mut rng = SeededRng::for_purpose(seed, TASK);
    let mut noise_rng = SeededRng::for_purpose(seed, noise::PURPOSE);
    (0..task.num_samples)
        .map(|_| generate_one(task, &mut rng, &mut noise_rng))
        .collect()
}

fn symbol(op: Operation) -> char {
    match op {
        Operation::Add => '+',
        Operation::Sub => '-',
        Operation::Mul => '*',
    }
}

fn overflow() -> TaskError {
    // `check` bounds the digits so that this cannot happen; it is an error, not a panic,
    // in case the bound is ever loosened.
    TaskError::Unreachable {
        task: TASK,
        message: "an intermediate result exceeded exact i128 arithmetic".into(),
    }
}

fn generate_one(
    task: &ArithmeticTask,
    rng: &mut SeededRng,
    noise_rng: &mut SeededRng,
) -> Result<Example, TaskError> {
    let operand = |rng: &mut SeededRng| -> i128 {
        // 10^(d−1) ..= 10^d − 1, with 1 ..= 9 for one digit; d ≤ 38 per `check`.
        let digits = rng.in_range(u64::from(task.min_digits), u64::from(task.max_digits)) as u32;
        let lo = 10u128.pow(digits - 1);
        let hi = 10u128.pow(digits) - 1;
        let span = hi - lo + 1;
        // Two draws cover spans beyond 64 bits; the small bias there is irrelevant.
        let draw = (u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64())) % span;
        (lo + draw) as i128
    };
    let operands: Vec<i128> = (0..task.num_terms).map(|_| operand(rng)).collect();
    let ops: Vec<Operation> = (1..task.num_terms)
        .map(|_| task.operations[rng.index(task.operations.len())])
        .collect();

    let mut expression = operands[0].to_string();
    for (op, x) in ops.iter().zip(&operands[1..]) {
        expression.push_str(&format!(" {} {x}", symbol(*op)));
    }
    let clean = work(&expression, &operands, &ops, None)?;
    let answer = clean.answer.clone();
    let wrong = |rng: &mut SeededRng| {
        // A slip a learner makes: a digit or a carry off in one step, carried forward.
        let step = rng.index(ops.len());
        let delta = SLIPS[rng.index(SLIPS.len())];
        work(&expression, &operands, &ops, Some((step, delta)))
            .ok()
            .filter(|w| w.answer != answer)
    };
    let solution = noise::write(&task.noise, &clean, wrong, noise_rng);
    Ok(Example {
        task: TASK.to_string(),
        question: question(&expression),
        answer,
        solution,
        countdown: None,
    })
}

/// The amounts by which a slipped step is off: a unit digit or a carry.
const SLIPS: [i128; 6] = [-10, -2, -1, 1, 2, 10];

/// Works `expression` out step by step: multiplications first, left to right, then
/// additions and subtractions. With `slip = (i, d)`, step `i`'s result is off by `d` and
/// the later steps use the wrong value, as a learner's would.
fn work(
    expression: &str,
    operands: &[i128],
    ops: &[Operation],
    slip: Option<(usize, i128)>,
) -> Result<WorkedSolution, TaskError> {
    let mut sentences = Vec::new();
    let slipped = |result: i128, step: usize| -> Result<i128, TaskError> {
        match slip {
            Some((at, delta)) if at == step => result.checked_add(delta).ok_or_else(overflow),
            _ => Ok(result),
        }
    };
    let mut sums: Vec<(Operation, i128)> = vec![(Operation::Add, operands[0])];
    for (op, &x) in ops.iter().zip(&operands[1..]) {
        match op {
            Operation::Mul => {
                let step = sentences.len();
                let last = sums.last_mut().expect("sums starts non-empty");
                let product = slipped(last.1.checked_mul(x).ok_or_else(overflow)?, step)?;
                sentences.push(step_sentence(last.1, Operation::Mul, x, product));
                last.1 = product;
            }
            Operation::Add | Operation::Sub => sums.push((*op, x)),
        }
    }
    let mut total = sums[0].1;
    for &(op, x) in &sums[1..] {
        let next = match op {
            Operation::Sub => total.checked_sub(x),
            _ => total.checked_add(x),
        }
        .ok_or_else(overflow)?;
        let next = slipped(next, sentences.len())?;
        sentences.push(step_sentence(total, op, x, next));
        total = next;
    }
    let answer = total.to_string();
    let steps = 0..sentences.len();
    sentences.push(Sentence {
        en: format!("So {expression} = {answer}."),
        zh: format!("所以 {expression} = {answer}。"),
    });
    Ok(WorkedSolution {
        sentences,
        steps,
        answer,
    })
}

fn step_sentence(a: i128, op: Operation, b: i128, result: i128) -> Sentence {
    let verb = match op {
        Operation::Add => "加",
        Operation::Sub => "减",
        Operation::Mul => "乘",
    };
    Sentence {
        en: format!("{a} {} {b} = {result}.", symbol(op)),
        zh: format!("{a} {verb} {b} 得 {result}。"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rewards::expr::evaluate;
    use crate::rewards::rational::Rational;

    fn task(json: serde_json::Value) -> ArithmeticTask {
        serde_json::from_value(json).expect("valid settings")
    }

    #[test]
    fn answers_are_exact_under_precedence() {
        let items = generate(
            &task(serde_json::json!({"num_samples": 300, "num_terms": 4, "max_digits": 3})),
            3,
        )
        .expect("generates");
        for item in &items {
            let expression = item
                .question
                .strip_prefix("Calculate ")
                .and_then(|q| q.strip_suffix('.'))
                .expect("question wording");
            let value = evaluate(expression).expect("parses").value;
            let answer: i128 = item.answer.parse().expect("integer answer");
            assert_eq!(value, Rational::integer(answer), "{item:?}");
            assert!(item
                .solution
                .ends_with(&format!("<answer> {answer} </answer>")));
        }
    }

    #[test]
    fn worked_steps_follow_precedence() {
        let items = generate(
            &task(serde_json::json!({"num_samples": 50, "operations": ["add", "mul"], "num_terms": 3})),
            11,
        )
        .expect("generates");
        let with_both = items
            .iter()
            .find(|i| i.question.contains('+') && i.question.contains('*'))
            .expect("some item mixes + and *");
        assert!(with_both.solution.contains(" * "));
    }

    #[test]
    fn noise_flaws_solutions_but_never_questions_or_answers() {
        let clean_task = task(serde_json::json!({"num_samples": 200, "num_terms": 3}));
        let clean = generate(&clean_task, 4).expect("generates");
        let mut noisy_task = clean_task.clone();
        noisy_task.noise.wrong = 1.0;
        let wrong = generate(&noisy_task, 4).expect("generates");
        for (c, w) in clean.iter().zip(&wrong) {
            assert_eq!((&c.question, &c.answer), (&w.question, &w.answer));
            // The slip is carried to the end: the stated result is the tagged answer, and
            // it is not the reference.
            let tagged = w
                .solution
                .rsplit("<answer> ")
                .next()
                .and_then(|a| a.strip_suffix(" </answer>"))
                .expect("tagged answer");
            assert_ne!(tagged, w.answer, "{w:?}");
            assert!(
                w.solution.contains(&format!("= {tagged}. </think>")),
                "{w:?}"
            );
        }
        noisy_task.noise = crate::manifest::SolutionNoise {
            shortcut: 1.0,
            ..Default::default()
        };
        let short = generate(&noisy_task, 4).expect("generates");
        for (c, s) in clean.iter().zip(&short) {
            let expression = c
                .question
                .trim_start_matches("Calculate ")
                .trim_end_matches('.');
            assert_eq!(
                s.solution,
                format!(
                    "<think> So {expression} = {}. </think> <answer> {} </answer>",
                    c.answer, c.answer
                )
            );
        }
    }

    #[test]
    fn the_largest_settings_do_not_overflow() {
        let items = generate(
            &task(serde_json::json!({"num_samples": 200, "operations": ["mul"], "num_terms": 2, "min_digits": 19, "max_digits": 19})),
            5,
        )
        .expect("38 digits fit");
        assert!(items.iter().all(|i| i.answer.len() >= 37));
    }

    #[test]
    fn settings_beyond_exact_arithmetic_are_errors() {
        let too_big = task(serde_json::json!({"num_terms": 3, "max_digits": 13}));
        assert!(matches!(
            check(&too_big),
            Err(TaskError::Setting {
                field: "max_digits",
                ..
            })
        ));
        let none = task(serde_json::json!({"operations": []}));
        assert!(matches!(
            check(&none),
            Err(TaskError::Setting {
                field: "operations",
                ..
            })
        ));
        let one = task(serde_json::json!({"num_terms": 1}));
        assert!(matches!(
            check(&one),
            Err(TaskError::Setting {
                field: "num_terms",
                ..
            })
        ));
        let zero = task(serde_json::json!({"min_digits": 0}));
        assert!(matches!(
            check(&zero),
            Err(TaskError::Setting {
                field: "min_digits",
                ..
            })
        ));
    }
}
