//! Execute (the `dataset` stage): TinyZero's Countdown task — combine the given numbers,
//! each exactly once, with `+ - * /` and parentheses to reach the target. Items are drawn
//! from the seed alone (same seed, same items, on every platform), and every target is
//! reachable because it is computed from an equation built first, which is kept as the
//! reference answer and in the worked solution.

use crate::manifest::CountdownTask;

use super::error::TaskError;
use super::example::{format_list, CountdownItem, Example};
use super::noise;
use super::rng::SeededRng;
use super::solution::{Sentence, WorkedSolution};

/// The task's name in records and reports.
pub const TASK: &str = "countdown";

/// Attempts at a target in range before the settings are declared unreachable.
const MAX_ATTEMPTS: usize = 10_000;

/// The Countdown question for `numbers` and `target`, worded as TinyZero's.
pub fn question(numbers: &[u64], target: u64) -> String {
    format!(
        "Using the numbers {}, create an equation that equals {target}. You can use basic \
         arithmetic operations (+, -, *, /) and each number can only be used once. Show your \
         work in <think> </think> tags. And return the final answer in <answer> </answer> \
         tags, for example <answer> (1 + 2) / 3 </answer>.",
        format_list(numbers)
    )
}

/// Checks the settings the generator depends on.
pub fn check(task: &CountdownTask) -> Result<(), TaskError> {
    let setting = |field, message: String| {
        Err(TaskError::Setting {
            task: TASK,
            field,
            message,
        })
    };
    // The low end of a range set above its high end.
    let inverted = |field, low: u64, high_field: &str, high: u64| {
        setting(field, format!("{low} is more than `{high_field}` ({high})"))
    };
    if task.min_numbers < 2 {
        return setting(
            "min_numbers",
            "at least 2 numbers are needed for an equation".into(),
        );
    }
    if task.max_numbers > 6 {
        return setting(
            "max_numbers",
            format!("at most 6 numbers, not {}", task.max_numbers),
        );
    }
    if task.min_numbers > task.max_numbers {
        let (low, high) = (task.min_numbers as u64, task.max_numbers as u64);
        return inverted("min_numbers", low, "max_numbers", high);
    }
    if task.min_value > task.max_value {
        return inverted("min_value", task.min_value, "max_value", task.max_value);
    }
    if task.max_value > 1_000_000 {
        return setting(
            "max_value",
            format!("at most 1000000, not {}", task.max_value),
        );
    }
    if task.max_target == 0 {
        return setting("max_target", "targets are at least 1".into());
    }
    Ok(())
}

/// `task.num_samples` items from `seed`.
pub fn generate(task: &CountdownTask, seed: u64) -> Result<Vec<Example>, TaskError> {
    check(task)?;
    noise::generate_items(task.num_samples, seed, TASK, |rng, noise_rng| {
        generate_one(task, rng, noise_rng)
    })
}

/// A partial equation: its value, its text, and whether the text needs parentheses when
/// it becomes an operand.
struct Node {
    value: i128,
    text: String,
    compound: bool,
}

impl Node {
    fn operand(&self) -> String {
        if self.compound {
            format!("({})", self.text)
        } else {
            self.text.clone()
        }
    }
}

fn generate_one(
    task: &CountdownTask,
    rng: &mut SeededRng,
    noise_rng: &mut SeededRng,
) -> Result<Example, TaskError> {
    for _ in 0..MAX_ATTEMPTS {
        let count = rng.in_range(task.min_numbers as u64, task.max_numbers as u64);
        let numbers: Vec<u64> = (0..count)
            .map(|_| rng.in_range(task.min_value, task.max_value))
            .collect();
        let Some((equation, steps)) = random_equation(&numbers, rng) else {
            continue;
        };
        let Ok(target) = u64::try_from(equation.value) else {
            continue;
        };
        if target == 0 || target > task.max_target {
            continue;
        }
        let clean = worked(&numbers, target, &equation, steps);
        let wrong = |rng: &mut SeededRng| {
            // A failed attempt: another combination of the numbers, which misses the
            // target, written up as if it were the answer.
            (0..WRONG_ATTEMPTS).find_map(|_| {
                let (miss, steps) = random_equation(&numbers, rng)?;
                (miss.value != equation.value).then(|| worked(&numbers, target, &miss, steps))
            })
        };
        let solution = noise::write(&task.noise, &clean, wrong, noise_rng);
        return Ok(Example {
            task: TASK.to_string(),
            question: question(&numbers, target),
            answer: equation.text,
            solution,
            countdown: Some(CountdownItem { numbers, target }),
        });
    }
    Err(TaskError::Unreachable {
        task: TASK,
        message: format!(
            "no target between 1 and `max_target` ({}) came up in {MAX_ATTEMPTS} attempts; \
             raise `max_target` or lower the number values",
            task.max_target
        ),
    })
}

/// Tries at a combination that misses the target, for a wrong solution.
const WRONG_ATTEMPTS: usize = 20;

/// The worked solution that writes `equation` up: the goal, the steps, and the value the
/// equation really has (the target, unless it is a failed attempt).
fn worked(numbers: &[u64], target: u64, equation: &Node, steps: Vec<Sentence>) -> WorkedSolution {
    let given: Vec<String> = numbers.iter().map(u64::to_string).collect();
    let given = given.join(", ");
    let mut sentences = vec![Sentence {
        en: format!("We need {target} from {given}, each used once."),
        zh: format!("我们需要用 {given} 得到 {target}，每个数只用一次。"),
    }];
    let worked_steps = 1..1 + steps.len();
    sentences.extend(steps);
    let value = equation.value;
    sentences.push(Sentence {
        en: format!("So {} = {value}.", equation.text),
        zh: format!("所以 {} = {value}。", equation.text),
    });
    WorkedSolution {
        sentences,
        steps: worked_steps,
        answer: equation.text.clone(),
    }
}

/// Combines `numbers` pairwise at random until one equation remains, keeping every
/// intermediate value a non-negative integer (so the worked steps read naturally);
/// returns it with its steps, or `None` when a draw divides by zero.
fn random_equation(numbers: &[u64], rng: &mut SeededRng) -> Option<(Node, Vec<Sentence>)> {
    let mut pool: Vec<Node> = numbers
        .iter()
        .map(|&n| Node {
            value: i128::from(n),
            text: n.to_string(),
            compound: false,
        })
        .collect();
    let mut steps = Vec::new();
    while pool.len() > 1 {
        let a = pool.swap_remove(rng.index(pool.len()));
        let b = pool.swap_remove(rng.index(pool.len()));
        let (left, op, right, value) = match rng.below(4) {
            0 => (a, '+', b, None),
            1 => {
                // Larger minus smaller keeps intermediates non-negative.
                if a.value >= b.value {
                    (a, '-', b, None)
                } else {
                    (b, '-', a, None)
                }
            }
            2 => (a, '*', b, None),
            _ => {
                let (big, small) = if a.value >= b.value { (a, b) } else { (b, a) };
                if small.value != 0 && big.value % small.value == 0 {
                    let quotient = big.value / small.value;
                    (big, '/', small, Some(quotient))
                } else if small.value == 0 && big.value == 0 {
                    return None;
                } else {
                    (big, '+', small, None)
                }
            }
        };
        let value = match (value, op) {
            (Some(v), _) => v,
            (None, '+') => left.value.checked_add(right.value)?,
            (None, '-') => left.value.checked_sub(right.value)?,
            (None, _) => left.value.checked_mul(right.value)?,
        };
        let verb = match op {
            '+' => "加",
            '-' => "减",
            '*' => "乘",
            _ => "除以",
        };
        steps.push(Sentence {
            en: format!("{} {op} {} = {value}.", left.value, right.value),
            zh: format!("{} {verb} {} 得 {value}。", left.value, right.value),
        });
        pool.push(Node {
            value,
            text: format!("{} {op} {}", left.operand(), right.operand()),
            compound: true,
        });
    }
    pool.pop().map(|node| (node, steps))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rewards::answer::extract_answer;
    use crate::rewards::expr::evaluate;
    use crate::rewards::rational::Rational;

    fn task(num_samples: usize) -> CountdownTask {
        serde_json::from_value(serde_json::json!({ "num_samples": num_samples })).expect("defaults")
    }

    #[test]
    fn the_question_is_tinyzeros_wording() {
        assert_eq!(
            question(&[44, 19, 35], 98),
            "Using the numbers [44, 19, 35], create an equation that equals 98. You can use \
             basic arithmetic operations (+, -, *, /) and each number can only be used once. \
             Show your work in <think> </think> tags. And return the final answer in <answer> \
             </answer> tags, for example <answer> (1 + 2) / 3 </answer>."
        );
    }

    #[test]
    fn items_respect_the_settings_and_their_equations_reach_the_target() {
        let items = generate(&task(500), 7).expect("default settings work");
        assert_eq!(items.len(), 500);
        for item in &items {
            let meta = item.countdown.as_ref().expect("countdown metadata");
            assert!((3..=4).contains(&meta.numbers.len()), "{item:?}");
            assert!(meta.numbers.iter().all(|n| (1..=100).contains(n)));
            assert!((1..=1000).contains(&meta.target));
            let evaluated = evaluate(&item.answer).expect("the kept equation parses");
            assert_eq!(evaluated.value, Rational::integer(i128::from(meta.target)));
            let mut used: Vec<Rational> = evaluated.literals.iter().map(|l| l.value).collect();
            let mut given: Vec<Rational> = meta
                .numbers
                .iter()
                .map(|&n| Rational::integer(i128::from(n)))
                .collect();
            used.sort();
            given.sort();
            assert_eq!(used, given);
            assert!(item.solution.starts_with("<think>"));
            assert!(item
                .solution
                .ends_with(&format!("<answer> {} </answer>", item.answer)));
        }
    }

    #[test]
    fn wrong_solutions_answer_with_an_equation_that_misses() {
        let mut noisy = task(300);
        noisy.noise.wrong = 1.0;
        let clean = generate(&task(300), 2).expect("generates");
        let wrong = generate(&noisy, 2).expect("generates");
        let mut missed = 0;
        for (c, w) in clean.iter().zip(&wrong) {
            assert_eq!((&c.question, &c.answer), (&w.question, &w.answer));
            let tagged = extract_answer(&w.solution).text().expect("tagged answer");
            let value = evaluate(tagged).expect("parses").value;
            let target = w.countdown.as_ref().expect("metadata").target;
            if value != Rational::integer(i128::from(target)) {
                missed += 1;
                assert!(!w.solution.contains(&format!("= {target}. </think>")));
            }
        }
        // Only numbers whose every combination reaches the target keep a right solution.
        assert!(missed >= 290, "{missed} of 300 missed");
    }

    #[test]
    fn the_seed_fixes_the_items() {
        let a = generate(&task(20), 42).expect("generates");
        let b = generate(&task(20), 42).expect("generates");
        let c = generate(&task(20), 43).expect("generates");
        assert_eq!(a, b);
        assert_ne!(a, c);
        let first = &a[0];
        let meta = first.countdown.as_ref().expect("metadata");
        assert_eq!(
            (meta.numbers.as_slice(), meta.target, first.answer.as_str()),
            GOLDEN_SEED_42
        );
    }

    /// Changing this changes every Countdown dataset generated from a seed.
    const GOLDEN_SEED_42: (&[u64], u64, &str) = (&[58, 93, 91], 242, "(93 + 58) + 91");

    #[test]
    fn impossible_settings_are_errors() {
        let mut bad = task(1);
        bad.min_numbers = 1;
        assert_eq!(TaskError::refused_setting(check(&bad)), Some("min_numbers"));
        let mut bad = task(1);
        bad.min_value = 10;
        bad.max_value = 5;
        assert_eq!(TaskError::refused_setting(check(&bad)), Some("min_value"));
        let mut unreachable = task(1);
        // Three 1000s reach 1000, 999, 2 and the like, but never 1.
        unreachable.min_numbers = 3;
        unreachable.max_numbers = 3;
        unreachable.min_value = 1000;
        unreachable.max_value = 1000;
        unreachable.max_target = 1;
        assert!(matches!(
            generate(&unreachable, 1),
            Err(TaskError::Unreachable { .. })
        ));
    }
}
