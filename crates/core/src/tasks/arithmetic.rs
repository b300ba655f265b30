//! Execute (the `dataset` stage): the `arithmetic` task — chains of additions,
//! subtractions and multiplications of multi-digit numbers, small enough for a tiny CPU
//! model to learn. Difficulty grows with `max_digits` and `num_terms`. The answer is the
//! exact integer under the usual precedence (multiplication first), computed in `i128`.
//! The worked solution is one sentence per operation (`scratchpad: steps`), or for
//! additions the column-by-column scratchpad of [`super::columns`] (`scratchpad: columns`).

use crate::manifest::{ArithmeticTask, Operation, Scratchpad};

use super::columns::{self, Slip};
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
    if task.scratchpad == Scratchpad::Columns
        && task.operations.iter().any(|&o| o != Operation::Add)
    {
        return setting(
            "scratchpad",
            "the `columns` scratchpad works additions only: set `operations: [add]`".into(),
        );
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
    noise::generate_items(task.num_samples, seed, TASK, |rng, noise_rng| {
        generate_one(task, rng, noise_rng)
    })
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
    if task.scratchpad == Scratchpad::Columns {
        return columns_example(task, &expression, &operands, noise_rng);
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

/// An item of the `columns` scratchpad (`check` made every operation an addition).
fn columns_example(
    task: &ArithmeticTask,
    expression: &str,
    operands: &[i128],
    noise_rng: &mut SeededRng,
) -> Result<Example, TaskError> {
    // Operands are drawn positive; a negative one would be a bug, reported as such.
    let operands: Vec<u128> = operands
        .iter()
        .map(|&x| {
            u128::try_from(x).map_err(|_| TaskError::Unreachable {
                task: TASK,
                message: format!("the columns scratchpad got a negative operand {x}"),
            })
        })
        .collect::<Result<_, _>>()?;
    let clean = columns::work(expression, &operands, None);
    let answer = clean.answer.clone();
    let wrong = |rng: &mut SeededRng| {
        // A slip a learner makes in one column: a sum off by one, or a wrong carry.
        let column = rng.index(clean.steps.len());
        let first = match rng.below(3) {
            0 => Slip::Sum { column, delta: -1 },
            1 => Slip::Sum { column, delta: 1 },
            _ => Slip::Carry { column },
        };
        // A slip that would start the result with a zero becomes a sum one too high
        // (which always changes the result and never starts it with 0).
        [first, Slip::Sum { column, delta: 1 }]
            .into_iter()
            .map(|slip| columns::work(expression, &operands, Some(slip)))
            .find(|w| w.answer != answer && !(w.answer.len() > 1 && w.answer.starts_with('0')))
    };
    let solution = noise::write(&task.noise, &clean, wrong, noise_rng);
    Ok(Example {
        task: TASK.to_string(),
        question: question(expression),
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
    use crate::rewards::answer::extract_answer;
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
            let tagged = extract_answer(&w.solution).text().expect("tagged answer");
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
        for (settings, field) in [
            (
                serde_json::json!({"num_terms": 3, "max_digits": 13}),
                "max_digits",
            ),
            (serde_json::json!({"operations": []}), "operations"),
            (serde_json::json!({"num_terms": 1}), "num_terms"),
            (serde_json::json!({"min_digits": 0}), "min_digits"),
        ] {
            assert_eq!(
                TaskError::refused_setting(check(&task(settings.clone()))),
                Some(field),
                "{settings}"
            );
        }
    }

    fn columns_task(noise: serde_json::Value) -> ArithmeticTask {
        task(serde_json::json!({
            "num_samples": 300, "operations": ["add"], "min_digits": 4, "max_digits": 5,
            "scratchpad": "columns", "noise": noise,
        }))
    }

    /// The numbers of `text` between `separator`s, if each parses.
    fn numbers<T: std::str::FromStr>(text: &str, separator: &str) -> Option<Vec<T>> {
        text.split(separator).map(|t| t.parse().ok()).collect()
    }

    /// A column step `A + B: a+b+c=ss cK rR.` read back: (what is left of the operands,
    /// terms, sum, carry out, running).
    #[allow(clippy::type_complexity)]
    fn parse_column(sentence: &str) -> Option<(Vec<u128>, Vec<u32>, u32, u32, String)> {
        let (left, sentence) = sentence.split_once(": ")?;
        let left = numbers(left, " + ")?;
        let (equation, rest) = sentence.split_once(' ')?;
        let (terms, sum) = equation.split_once('=')?;
        let terms = numbers(terms, "+")?;
        let (carry, running) = rest.split_once(' ')?;
        let carry = carry.strip_prefix('c')?.parse().ok()?;
        let running = running.strip_prefix('r')?.strip_suffix('.')?.to_string();
        Some((left, terms, sum.parse().ok()?, carry, running))
    }

    /// The column steps of a solution's reasoning, how many of them are wrong (a sum that
    /// is not the terms' sum, a carry that is not the sum's tens, a carry in that is not
    /// the previous carry, or a running result that is not the digit prepended), and the
    /// last running result, which the conclusion must state. The operands are read from
    /// the first step, and each step's remaining operands must be the operands without
    /// the columns done.
    fn audit(solution: &str) -> (usize, usize, String) {
        let reasoning = solution
            .trim_start_matches("<think> ")
            .split(" </think>")
            .next()
            .expect("reasoning");
        let (reasoning, stated) = reasoning
            .rsplit_once(" The sum is ")
            .expect("the conclusion");
        let mut steps = 0;
        let mut errors = 0;
        let (mut carry, mut running) = (0, String::new());
        let mut operands: Vec<u128> = Vec::new();
        for sentence in reasoning.split(". ").filter(|s| !s.is_empty()) {
            let sentence = if sentence.ends_with('.') {
                sentence.to_string()
            } else {
                format!("{sentence}.")
            };
            let (left, terms, sum, carry_out, written) =
                parse_column(&sentence).expect("a column step");
            if operands.is_empty() {
                operands = left.clone();
            }
            let place = 10u128.pow(steps as u32);
            let expected_left: Vec<u128> = operands.iter().map(|x| x / place).collect();
            let expected_digits: Vec<u32> = expected_left.iter().map(|x| (x % 10) as u32).collect();
            assert_eq!(left, expected_left, "{sentence}");
            assert_eq!(
                &terms[..terms.len() - 1],
                expected_digits.as_slice(),
                "{sentence}"
            );
            steps += 1;
            let expected_sum: u32 = terms.iter().sum();
            let wrong_carry_in = *terms.last().expect("carry in") != carry;
            let expected_running = format!("{}{running}", sum % 10);
            if sum != expected_sum
                || carry_out != sum / 10
                || wrong_carry_in
                || written != expected_running
            {
                errors += 1;
            }
            carry = carry_out;
            running = written;
        }
        assert_eq!(
            stated.trim_end_matches('.'),
            running,
            "the conclusion states the result"
        );
        (steps, errors, running)
    }

    fn expression_of(question: &str) -> &str {
        question
            .trim_start_matches("Calculate ")
            .trim_end_matches('.')
    }

    #[test]
    fn columns_scratchpad_is_exact_column_arithmetic() {
        let items = generate(&columns_task(serde_json::json!({})), 8).expect("generates");
        assert_eq!(items.len(), 300);
        for item in &items {
            let (steps, errors, running) = audit(&item.solution);
            assert_eq!(errors, 0, "{item:?}");
            assert!(steps >= 4, "{item:?}");
            assert_eq!(running, item.answer);
            let expression = expression_of(&item.question);
            let value = evaluate(expression).expect("parses").value;
            assert_eq!(
                value,
                Rational::integer(item.answer.parse().expect("integer"))
            );
            assert!(item
                .solution
                .starts_with(&format!("<think> {expression}: ")));
            assert!(item.solution.ends_with(&format!(
                "r{0}. The sum is {0}. </think> <answer> {0} </answer>",
                item.answer
            )));
        }
    }

    #[test]
    fn columns_noise_kinds() {
        let clean = generate(&columns_task(serde_json::json!({})), 9).expect("generates");
        // wrong: exactly one column slips, the rest work on from it, and the stated
        // answer is the (wrong) running result.
        let wrong =
            generate(&columns_task(serde_json::json!({"wrong": 1.0})), 9).expect("generates");
        for (c, w) in clean.iter().zip(&wrong) {
            assert_eq!((&c.question, &c.answer), (&w.question, &w.answer));
            let (_, errors, running) = audit(&w.solution);
            assert_eq!(errors, 1, "{w:?}");
            assert_ne!(running, w.answer, "{w:?}");
            assert!(!running.starts_with('0'), "{w:?}");
            assert!(
                w.solution.ends_with(&format!(
                    "r{running}. The sum is {running}. </think> <answer> {running} </answer>"
                )),
                "{w:?}"
            );
        }
        // shortcut: the opening, then the result at once.
        let short =
            generate(&columns_task(serde_json::json!({"shortcut": 1.0})), 9).expect("generates");
        for (c, s) in clean.iter().zip(&short) {
            let expression = expression_of(&c.question);
            assert_eq!(
                s.solution,
                format!(
                    "<think> {expression}: The sum is {0}. </think> <answer> {0} </answer>",
                    c.answer
                )
            );
        }
        // unformatted: no answer tags, or the reasoning never closed.
        let loose =
            generate(&columns_task(serde_json::json!({"unformatted": 1.0})), 9).expect("generates");
        for (c, s) in clean.iter().zip(&loose) {
            assert!(!crate::rewards::format::is_strict_r1(&s.solution), "{s:?}");
            // The same columns, whichever way the end is written.
            let unclosed = s.solution.replace(" </think>", "");
            let reasoning = unclosed
                .strip_suffix(&format!(" The answer is {}.", s.answer))
                .expect("the answer stated in words");
            assert_eq!(audit(reasoning), audit(&c.solution), "{s:?}");
        }
        // mixed_language: both languages among the columns and the conclusion (the
        // opening is in neither).
        let mixed = generate(&columns_task(serde_json::json!({"mixed_language": 1.0})), 9)
            .expect("generates");
        for m in &mixed {
            assert!(
                m.solution.contains('进') || m.solution.contains("和为"),
                "{m:?}"
            );
            assert!(
                m.solution.contains(" c") || m.solution.contains("The sum is"),
                "{m:?}"
            );
        }
    }

    #[test]
    fn columns_need_additions_only() {
        let mixed =
            task(serde_json::json!({"scratchpad": "columns", "operations": ["add", "mul"]}));
        assert_eq!(
            TaskError::refused_setting(check(&mixed)),
            Some("scratchpad")
        );
        let added = task(serde_json::json!({"scratchpad": "columns", "operations": ["add"]}));
        assert!(check(&added).is_ok());
    }
}
