//! Check (tests): unit tests of the math grader, one group per answer form, and the
//! bounds on hostile input.

use std::time::Instant;

use super::{equivalent, parse_answer, MathAnswer, MathError};

fn same(reference: &str, given: &str) -> bool {
    let r = parse_answer(reference).unwrap_or_else(|e| panic!("reference {reference:?}: {e}"));
    let g = parse_answer(given).unwrap_or_else(|e| panic!("given {given:?}: {e}"));
    equivalent(&r, &g)
}

fn assert_same(pairs: &[(&str, &str)]) {
    for (r, g) in pairs {
        assert!(same(r, g), "{r:?} should equal {g:?}");
    }
}

fn assert_different(pairs: &[(&str, &str)]) {
    for (r, g) in pairs {
        assert!(!same(r, g), "{r:?} should not equal {g:?}");
    }
}

#[test]
fn numbers_in_every_common_spelling() {
    assert_same(&[
        ("1000", "1,000"),
        ("1000", "1{,}000"),
        ("1000", "1\\,000"),
        ("1000", "1 000"),
        ("1000", "1,\\!000"),
        ("1234567", "1,234,567"),
        ("0.5", ".5"),
        ("1500", "1.5e3"),
        ("1500", "1.5 \\times 10^{3}"),
        ("-5", "$-5$"),
        ("-5", "\\(-5\\)"),
        ("-5", "−5"),
        ("28\\%", "28"),
        ("28\\%", "0.28"),
        ("28", "28\\%"),
        ("30^\\circ", "30"),
        ("30", "30^{\\circ}"),
        ("18.90", "\\$18.90"),
        ("5", "5 \\text{ cm}"),
        ("5", "5 cm"),
        ("5", "\\text{5}"),
    ]);
    assert_different(&[
        ("1000", "1001"),
        ("1000000", "1000001"),
        ("0.5", "5"),
        ("-5", "5"),
        ("28\\%", "2.8"),
    ]);
}

#[test]
fn fractions_exactly() {
    assert_same(&[
        ("\\frac{1}{3}", "1/3"),
        ("\\frac{1}{3}", "\\dfrac{1}{3}"),
        ("\\frac{1}{3}", "\\tfrac{1}{3}"),
        ("\\frac{1}{3}", "\\cfrac{1}{3}"),
        ("\\frac{1}{2}", "\\frac12"),
        ("\\frac{1}{2}", "0.5"),
        ("\\frac{2}{4}", "\\frac{1}{2}"),
        ("-\\frac{3}{4}", "\\frac{-3}{4}"),
        ("-\\frac{3}{4}", "-0.75"),
        ("\\frac{7}{2}", "3\\frac{1}{2}\\cdot 1"),
    ]);
    assert_different(&[
        ("\\frac{1}{3}", "0.333"),
        ("\\frac{1}{3}", "0.3333333"),
        ("\\frac{1}{3}", "\\frac{1}{4}"),
        ("\\frac{3}{4}", "-\\frac{3}{4}"),
    ]);
}

#[test]
fn roots_pi_and_powers_with_tolerance() {
    assert_same(&[
        ("\\sqrt{2}/2", "\\frac{1}{\\sqrt{2}}"),
        ("\\sqrt{12}", "2\\sqrt{3}"),
        ("\\sqrt[3]{8}", "2"),
        ("\\sqrt[3]{16}", "2\\sqrt[3]{2}"),
        ("\\sqrt{9}", "3"),
        ("\\pi/2", "\\frac{\\pi}{2}"),
        ("\\pi/2", "1.5707963267948966"),
        ("2\\pi", "2 \\cdot \\pi"),
        ("2^{10}", "1024"),
        ("2^10", "1024"),
        ("2^{-1}", "0.5"),
        ("e^{2}", "e^2"),
        ("\\ln e", "1"),
        ("\\log_2 8", "3"),
        ("5!", "120"),
        ("\\binom{5}{2}", "10"),
        ("|-3|", "3"),
        ("\\sin^2 x + \\cos^2 x", "1"),
    ]);
    assert_different(&[
        ("\\pi/2", "1.5708"),
        ("\\sqrt{3}/2", "0.866"),
        ("\\sqrt{2}", "1.414"),
        ("\\sqrt{2}", "2"),
        ("2^{10}", "2^{11}"),
    ]);
}

#[test]
fn expressions_in_variables_by_evaluation() {
    assert_same(&[
        ("(a+b)^2", "a^2+2ab+b^2"),
        ("x^2-1", "(x-1)(x+1)"),
        ("x+1", "\\frac{x^2-1}{x-1}"),
        ("\\frac{x}{2}", "0.5x"),
        ("2x+3", "3+2x"),
        ("\\sqrt{x^2}", "|x|"),
        ("x_1 + x_2", "x_2 + x_1"),
        ("\\alpha + \\beta", "\\beta+\\alpha"),
    ]);
    assert_different(&[
        ("(a+b)^2", "a^2+b^2"),
        ("x+1", "y+1"),
        ("\\sqrt{x^2}", "x"),
        ("x^2", "x^3"),
        ("2x", "2"),
    ]);
}

#[test]
fn equations_and_relations() {
    assert_same(&[
        ("x = 11", "11"),
        ("11", "x = 11"),
        ("x = 11", "x=11"),
        ("y = 2x + 1", "2x+1"),
        ("y = 2x + 1", "y - 2x = 1"),
        ("2x + 3y = 6", "y = -\\frac{2}{3}x + 2"),
        ("x \\le 3", "3 \\ge x"),
        ("x > 5", "5 < x"),
        ("-1 < x \\le 2", "2 \\ge x > -1"),
        ("x \\le 3", "(-\\infty, 3]"),
        ("x \\geq 0", "[0, \\infty)"),
        ("-1 < x \\le 2", "(-1, 2]"),
    ]);
    assert_different(&[
        ("x = 5", "y = 5"),
        ("x < 3", "x \\le 3"),
        ("x \\le 3", "x \\ge 3"),
        ("(-\\infty, 3]", "x \\le 3"),
        ("x = 11", "12"),
    ]);
}

#[test]
fn intervals_and_unions() {
    assert_same(&[
        ("[0,1)", "[0, 1)"),
        ("[0,1)", "\\left[0, 1\\right)"),
        (
            "(-\\infty, 2] \\cup (3, \\infty)",
            "(3, \\infty) \\cup (-\\infty, 2]",
        ),
        (
            "(-\\infty, 2] \\cup (3, \\infty)",
            "(-\\infty,2]\\cup(3,\\infty)",
        ),
        ("[0, 2]", "[0, 1] \\cup [1, 2]"),
        ("x \\in [0, 1)", "[0,1)"),
        ("[0,100]", "[0, 100]"),
        ("(\\frac{1}{2}, 3]", "(0.5, 3]"),
    ]);
    assert_different(&[
        ("[0,1)", "[0,1]"),
        ("[0,1)", "(0,1)"),
        ("(1, 2)", "[1, 2]"),
        (
            "(-\\infty, 2] \\cup (3, \\infty)",
            "(-\\infty, 2) \\cup (3, \\infty)",
        ),
        ("[0, 100]", "[0, 10]"),
    ]);
}

#[test]
fn sets_tuples_and_multiple_answers() {
    assert_same(&[
        ("\\{1,2\\}", "\\{2,1\\}"),
        ("\\{1,2\\}", "1, 2"),
        ("\\{1,2\\}", "2, 1"),
        ("1, 2", "\\{1, 2, 2\\}"),
        ("1, 3", "x = 1 \\text{ or } x = 3"),
        ("1, 3", "x = 1, x = 3"),
        ("\\{3\\}", "3"),
        ("3", "\\{3\\}"),
        ("(1, 2)", "(1,2)"),
        ("(1, -2, 3)", "\\left(1, -2, 3\\right)"),
        ("(\\frac12, \\sqrt{2})", "(0.5, \\frac{2}{\\sqrt2})"),
        ("1 \\pm \\sqrt{2}", "1 + \\sqrt{2}, 1 - \\sqrt{2}"),
        ("\\{(1,2), (3,4)\\}", "\\{(3,4), (1,2)\\}"),
        ("\\emptyset", "\\{\\}"),
    ]);
    assert_different(&[
        ("(1, 2)", "(2, 1)"),
        ("\\{1,2\\}", "(1,2)"),
        ("1, 2", "1"),
        ("1, 2", "1, 2, 3"),
        ("(1, 2, 3)", "(1, 2)"),
        ("\\{1, 2\\}", "\\{1, 3\\}"),
    ]);
}

#[test]
fn matrices() {
    assert_same(&[
        (
            "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
            "\\begin{bmatrix}1&2\\\\3&4\\end{bmatrix}",
        ),
        (
            "\\begin{pmatrix} \\frac12 \\\\ -1 \\end{pmatrix}",
            "\\begin{pmatrix} 0.5 \\\\ -1 \\\\ \\end{pmatrix}",
        ),
    ]);
    assert_different(&[
        (
            "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
            "\\begin{pmatrix} 1 & 3 \\\\ 2 & 4 \\end{pmatrix}",
        ),
        (
            "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}",
            "\\begin{pmatrix} 1 & 2 \\end{pmatrix}",
        ),
        ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "(1, 2)"),
    ]);
}

#[test]
fn presentation_and_free_text_are_ignored() {
    assert_same(&[
        ("\\frac{1}{2}", "\\left(\\frac{1}{2}\\right)"),
        ("\\frac{1}{2}", "\\displaystyle\\frac{1}{2}"),
        ("1000", "1\\!000"),
        ("12", "\\; 12 \\,"),
        ("12", "The answer is 12."),
        ("12", "\\boxed{12}"),
        ("12", "$\\boxed{12}$"),
        ("\\frac{1}{2}", "so the answer is $\\frac{1}{2}$"),
        ("\\text{(C)}", "C"),
        ("\\text{Monday}", "monday"),
    ]);
    assert_different(&[("\\text{Monday}", "Tuesday"), ("\\text{(C)}", "(B)")]);
}

#[test]
fn words_only_are_text_and_unreadable_answers_are_errors() {
    assert_eq!(parse_answer("Paris"), Ok(MathAnswer::Text("paris".into())));
    for bad in [
        "",
        "(1 + ",
        "\\frac{1}",
        "\\unknown{3}",
        "\\begin{cases} x \\end{cases}",
        "1 +* 2",
        "\\boxed{1",
    ] {
        assert!(parse_answer(bad).is_err(), "{bad:?} should not parse");
    }
}

/// Hostile answers end quickly with an error or a verdict: the bounds are structural.
#[test]
fn hostile_answers_are_bounded() {
    let started = Instant::now();
    let deep = format!("{}1{}", "(".repeat(5000), ")".repeat(5000));
    assert!(parse_answer(&deep).is_err());
    let deep_braces = format!("{}1{}", "{".repeat(400), "}".repeat(400));
    assert_eq!(parse_answer(&deep_braces), Err(MathError::TooDeep));
    let huge = "9".repeat(1_000_000);
    assert_eq!(parse_answer(&huge), Err(MathError::TooLong));
    let tower = parse_answer("2^{2^{2^{99}}}").expect("parses");
    assert!(!equivalent(&tower, &tower), "no value, so equal to nothing");
    assert!(parse_answer(&"-".repeat(3000)).is_err());
    let many = vec!["1"; 2000].join(",");
    assert_eq!(parse_answer(&many), Err(MathError::TooLong));
    let big_set = format!(
        "\\{{{}\\}}",
        (0..64)
            .map(|i| format!("x^{i}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let a = parse_answer(&big_set).expect("parses");
    assert!(equivalent(&a, &a));
    let factorials = parse_answer("((((170!)!)!)!)").expect("parses");
    assert!(!equivalent(&factorials, &factorials));
    // Not a timed assertion (machines differ); the figure is for whoever reads the log.
    eprintln!("hostile answers: {:?}", started.elapsed());
}
