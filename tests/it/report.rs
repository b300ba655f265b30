//! `report` and `compare` through the real binary: a tiny ablation (two reward weights ×
//! two seeds) is trained once, then reported, compared from the manifest and from the
//! run, with seeds grouped and not; and their error messages.

use std::path::Path;

use serde_json::Value;

use crate::support::{compare_json, micro_pipeline, Test};

/// Two arms of the language-consistency reward's weight × two GRPO seeds, on a micro model: seconds.
fn ablation() -> String {
    micro_pipeline("report-test", 1)
        .lengths(32, 16)
        .reward("short: {kind: length, max_length: 16, buffer: 14}")
        .stages(
            r#"  base: {kind: pretrain, from: micro, data: tasks, max_seq_length: 48, max_steps: 4, per_device_train_batch_size: 4, logging_steps: 1}
  zero:
    kind: grpo
    from: base
    prompts: tasks
    rewards: {accuracy: 1.0, format: 0.5, short: 1.0, language: 0.0}
    learning_rate: 1.0e-3
    num_generations: 4
    per_device_train_batch_size: 8
    max_steps: 3
  eval: {kind: eval, from: zero, prompts: tasks, num_samples: 2, k: [1, 2], limit: 4, rewards: {accuracy: 1.0, format: 1.0, language: 1.0}}
ablations:
  language_weight:
    plain: {}
    lang: {stages.zero.rewards.language: 1.0}
  seed:
    s1: {stages.zero.seed: 1}
    s2: {stages.zero.seed: 2}
"#,
        )
}

/// The id of the store's last run.
fn from_run_id(test: &Test) -> String {
    crate::support::last_run_json(test)["run"]
        .as_str()
        .expect("run id")
        .to_string()
}

/// Checks that an HTML page fetches nothing: no URL, no external file, no script.
fn assert_self_contained_text(html: &str) {
    for forbidden in [
        "http://", "https://", "src=", "<link", "<script", "url(", "@import", "<img",
    ] {
        assert!(!html.contains(forbidden), "`{forbidden}` in the report");
    }
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<style>"), "inline CSS");
}

/// A self-contained page with its plots inline.
fn assert_self_contained(html: &str) {
    assert_self_contained_text(html);
    assert!(html.contains("<svg "), "plots are inline SVG");
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("plot directory")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Asserts that `plots` (file names) hold each of `names` drawn both as SVG and as PNG.
fn assert_plotted_as_svg_and_png(plots: &[String], names: &[&str]) {
    for name in names {
        for extension in ["svg", "png"] {
            assert!(
                plots.contains(&format!("{name}.{extension}")),
                "{name}.{extension} in {plots:?}"
            );
        }
    }
}

fn assert_png(path: &Path) {
    let bytes = std::fs::read(path).expect("PNG written");
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{}",
        path.display()
    );
    assert!(bytes.len() > 5_000, "{} is a real picture", path.display());
}

/// The ablation, run and reported into `rep/`.
fn ablation_reported() -> Test {
    let test = Test::new().write("m.yaml", ablation());
    test.run_in_store().run().assert_success();
    test.clone_args(["report", "last", "--out", "rep", "--store", "store"])
        .run()
        .assert_success();
    test
}

#[test]
fn an_ablation_is_reported_and_compared() {
    // --- report -------------------------------------------------------------------
    let test = ablation_reported();
    let html = std::fs::read_to_string(test.path("rep/report.html")).expect("report.html");
    assert_self_contained(&html);
    for text in [
        "pass@1",
        "cons@2",
        "format_rate",
        "language_consistency",
        "zero [plain+s1]: total reward",
        "base: loss",
    ] {
        assert!(html.contains(text), "`{text}` in the report");
    }
    assert_plotted_as_svg_and_png(
        &files(&test.path("rep/plots")),
        &[
            "base-loss",
            "zero-plain-s1-reward",
            "zero-plain-s1-rewards",
            "zero-lang-s2-completion-length",
            "zero-plain-s1-worked-mode",
        ],
    );
    assert_png(&test.path("rep/plots/zero-plain-s1-reward.png"));
    let svg = std::fs::read_to_string(test.path("rep/plots/base-loss.svg")).expect("svg");
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    // Every eval instance's metrics, as stored in its metrics.json.
    assert_eq!(html.matches("<td>eval [").count(), 4, "four eval rows");

    // --- compare a manifest: seeds grouped -------------------------------------------
    let grouped = compare_json(&test, &["m.yaml"]);
    let rows = grouped["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 2, "{grouped}");
    assert_eq!(rows[0]["variant"], "plain");
    assert_eq!(rows[1]["variant"], "lang");
    assert_eq!(
        rows[0]["params"],
        serde_json::json!({"stages.zero.rewards.language": 0.0})
    );
    assert_eq!(
        rows[1]["params"],
        serde_json::json!({"stages.zero.rewards.language": 1.0})
    );
    assert_eq!(rows[0]["seeds"], 2);
    assert_eq!(
        rows[0]["members"],
        serde_json::json!(["plain+s1", "plain+s2"])
    );
    for metric in [
        "pass@1",
        "pass@2",
        "cons@2",
        "format_rate",
        "language_consistency",
        "completion_len_mean",
        "worked_share",
        "truncated_ratio",
        "reward/accuracy",
        "reward/language",
    ] {
        assert!(
            rows[0]["metrics"][metric].is_number(),
            "{metric}: {}",
            rows[0]
        );
        assert!(
            rows[0]["std"][metric].is_number(),
            "{metric} std: {}",
            rows[0]
        );
    }

    // --- one row per seed: the grouped row is their mean ------------------------------
    let per_seed = compare_json(&test, &["m.yaml", "--per-seed"]);
    let seeds = per_seed["rows"].as_array().expect("rows");
    assert_eq!(seeds.len(), 4);
    assert_eq!(
        seeds[1]["params"],
        serde_json::json!({"stages.zero.rewards.language": 0.0, "stages.zero.seed": 2})
    );
    assert!(seeds[0].get("std").is_none(), "no std without grouping");
    let len = |row: &Value| {
        row["metrics"]["completion_len_mean"]
            .as_f64()
            .unwrap_or(f64::NAN)
    };
    let mean = (len(&seeds[0]) + len(&seeds[1])) / 2.0;
    assert!(
        (len(&rows[0]) - mean).abs() < 1e-9,
        "{} vs {mean}",
        len(&rows[0])
    );
    let sd = (len(&seeds[0]) - len(&seeds[1])).abs() / 2f64.sqrt();
    let grouped_sd = rows[0]["std"]["completion_len_mean"]
        .as_f64()
        .unwrap_or(f64::NAN);
    assert!((grouped_sd - sd).abs() < 1e-9, "{grouped_sd} vs {sd}");

    // --- compare the run: the same rows as from the manifest ---------------------------
    let from_run = compare_json(&test, &["last"]);
    assert_eq!(from_run, grouped, "a run and its manifest compare alike");

    // --- a manifest and a run together: rows prefixed, parameters aligned ------------
    let mixed = compare_json(&test, &["m.yaml", "last", "--per-seed"]);
    let mixed = mixed["rows"].as_array().expect("rows");
    assert_eq!(mixed.len(), 8);
    assert_eq!(mixed[0]["variant"], "m.yaml:plain+s1");
    let run_id = from_run_id(&test);
    assert_eq!(mixed[4]["variant"], format!("{run_id}:plain+s1"));
    assert_eq!(
        mixed[0]["params"], mixed[4]["params"],
        "the same variant from both sources"
    );
    assert_eq!(mixed[0]["metrics"], mixed[4]["metrics"]);

    // --- text, markdown, csv ---------------------------------------------------------
    let text = test
        .clone_args(["compare", "m.yaml", "--store", "store"])
        .run();
    text.assert_success();
    let header = text.stdout.lines().next().unwrap_or_default();
    let columns: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(
        columns[..5],
        [
            "variant",
            "seeds",
            "stages.zero.rewards.language",
            "pass@1",
            "pass@2"
        ],
        "{}",
        text.stdout
    );
    text.assert_stdout_says(" ± ");
    let markdown = test
        .clone_args([
            "compare", "m.yaml", "--format", "markdown", "--store", "store",
        ])
        .run();
    markdown
        .assert_stdout_starts_with("| variant | seeds | stages.zero.rewards.language | pass@1 |");
    let csv = test
        .clone_args([
            "compare",
            "last",
            "--format",
            "csv",
            "--per-seed",
            "--store",
            "store",
        ])
        .run();
    let csv_lines: Vec<&str> = csv.stdout.lines().collect();
    assert_eq!(csv_lines.len(), 5, "{}", csv.stdout);
    assert!(
        csv_lines[0].starts_with("variant,stages.zero.rewards.language,stages.zero.seed,pass@1,"),
        "{}",
        csv.stdout
    );
    assert!(csv_lines[4].starts_with("lang+s2,1.0,2,"), "{}", csv.stdout);

    let one_stage = compare_json(&test, &["last", "--stage", "eval"]);
    assert_eq!(one_stage, grouped, "`eval` is the only eval stage");
    let no_stage = test
        .clone_args(["compare", "m.yaml", "--stage", "final", "--store", "store"])
        .run();
    insta::assert_snapshot!(no_stage.failure_stderr(), @"error: no eval stage `final` in m.yaml; its eval stages: eval");

    // --- curves and the HTML page ------------------------------------------------------
    let drawn = test
        .clone_args([
            "compare",
            "m.yaml",
            "--plots",
            "cmp",
            "--html",
            "cmp/compare.html",
            "--store",
            "store",
        ])
        .run();
    drawn.assert_success();
    let plots = files(&test.path("cmp"));
    assert_plotted_as_svg_and_png(
        &plots,
        &[
            "zero-reward",
            "zero-accuracy",
            "zero-language-consistency",
            "zero-completion-length",
            "zero-worked-share",
        ],
    );
    // `base` is shared by every variant: no comparison curve for it.
    assert!(!plots.iter().any(|p| p.starts_with("base")), "{plots:?}");
    let reward = std::fs::read_to_string(test.path("cmp/zero-reward.svg")).expect("svg");
    assert!(
        reward.contains("plain (mean ± std, n=2)"),
        "one line per row"
    );
    assert!(reward.contains("lang (mean ± std, n=2)"));
    assert_png(&test.path("cmp/zero-accuracy.png"));
    let page = std::fs::read_to_string(test.path("cmp/compare.html")).expect("html");
    assert_self_contained(&page);
    assert!(page.contains("stages.zero.rewards.language"));
}

/// A store holding one finished run of the ablation's dataset stage only.
fn store_with_data_only() -> Test {
    let test = Test::new().write("m.yaml", ablation());
    let ran = test
        .clone_args(["run", "m.yaml", "--until", "tasks", "--store", "store"])
        .run();
    ran.assert_success();
    test
}

/// Replaces 12-hex-digit key prefixes, which change with any key-format change.
fn redact_keys(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("key ") {
        out.push_str(&rest[..i + 4]);
        rest = &rest[i + 4..];
        let hex = rest.chars().take_while(|c| c.is_ascii_hexdigit()).count();
        if hex == 12 {
            out.push_str("[KEY]");
            rest = &rest[12..];
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn errors_say_what_is_missing_and_what_to_do() {
    let test = store_with_data_only();

    let unknown = test
        .clone_args(["report", "nope", "--store", "store"])
        .run();
    insta::assert_snapshot!(unknown.failure_stderr(), @"error: no run `nope` in this store (see `r1flow runs`)");

    let unknown = test
        .clone_args(["compare", "nope", "--store", "store"])
        .run();
    insta::assert_snapshot!(unknown.failure_stderr(), @"error: no run `nope` in this store (see `r1flow runs`)");

    let not_run = test
        .clone_args(["compare", "m.yaml", "--store", "store"])
        .run();
    insta::assert_snapshot!(redact_keys(&not_run.failure_stderr()), @r"
    error: no results to compare: no eval stage of m.yaml has results in the store at store; missing:
      base (key [KEY]) for plain+s1, plain+s2, lang+s1, lang+s2
      zero (key [KEY]) for plain+s1
      eval (key [KEY]) for plain+s1
      zero (key [KEY]) for plain+s2
      eval (key [KEY]) for plain+s2
      zero (key [KEY]) for lang+s1
      eval (key [KEY]) for lang+s1
      zero (key [KEY]) for lang+s2
      eval (key [KEY]) for lang+s2
    run them first (r1flow run m.yaml); compare runs nothing
    ");

    // The run itself: its eval stages were skipped (`--until tasks`).
    let skipped = test
        .clone_args(["compare", "last", "--store", "store"])
        .run();
    assert!(!skipped.success);
    let skipped = redact_keys(&skipped.stderr);
    assert!(
        skipped.starts_with("error: no results to compare: no eval stage of run "),
        "{skipped}"
    );
    assert!(
        skipped
            .lines()
            .any(|l| l.starts_with("  eval (key [KEY], skipped in run ")
                && l.ends_with(") for plain+s1")),
        "{skipped}"
    );
    assert_eq!(
        skipped.matches("  base (key [KEY]").count(),
        1,
        "a stage shared by the variants is listed once: {skipped}"
    );
    assert!(
        skipped.ends_with("the run did not finish them: run its manifest again to complete it\n"),
        "{skipped}"
    );

    // A run that stopped early is still reported, saying what is missing.
    let partial = test
        .clone_args(["report", "last", "--out", "partial", "--store", "store"])
        .run();
    partial.assert_success();
    let html = std::fs::read_to_string(test.path("partial/report.html")).expect("report.html");
    assert_self_contained_text(&html);
    assert!(
        html.contains("Eval stage eval [plain+s1]: skipped in this run, so it has no metrics."),
        "{html}"
    );
    assert!(html.contains("No stage of this run logged a metric series."));
    assert_eq!(files(&test.path("partial/plots")), Vec::<String>::new());

    let no_file = test
        .clone_args(["compare", "missing.yaml", "--store", "store"])
        .run();
    insta::assert_snapshot!(no_file.stderr, @"error: manifest missing.yaml does not exist");

    let no_store = test
        .clone_args(["report", "last", "--store", "elsewhere"])
        .run();
    insta::assert_snapshot!(no_store.stderr, @"error: no store at elsewhere (run a pipeline first, or pass --store)");

    let invalid = test
        .write("bad.yaml", "name: bad\nstages:\n  x: {kind: nope}\n")
        .clone_args(["compare", "bad.yaml", "--store", "store"])
        .run();
    assert!(!invalid.success);
    assert!(
        invalid
            .stderr
            .ends_with("error: bad.yaml has errors (above): compare reads a manifest's results only once it is valid\n"),
        "{}",
        invalid.stderr
    );
}

/// Takes a screenshot of `page` in headless Chromium.
fn screenshot(browser: &str, page: &Path, shot: &Path) {
    let profile = tempfile::tempdir().expect("profile directory");
    let url = format!("file://{}", page.canonicalize().expect("page").display());
    let output = std::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1200,2000")
        .arg(&url)
        .output()
        .unwrap_or_else(|e| panic!("cannot start {browser}: {e}"));
    assert!(
        shot.is_file(),
        "{browser} wrote no screenshot of {url}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// RGBA pixels of a PNG (8-bit RGB or RGBA).
fn decode_png(path: &Path) -> (usize, usize, Vec<[u8; 3]>) {
    let file = std::fs::File::open(path).expect("screenshot");
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .expect("a PNG");
    let mut buffer = vec![0; reader.output_buffer_size().expect("size")];
    let frame = reader.next_frame(&mut buffer).expect("a frame");
    let channels = match frame.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("unexpected colour type {other:?}"),
    };
    assert_eq!(frame.bit_depth, png::BitDepth::Eight);
    let pixels = buffer[..frame.buffer_size()]
        .chunks_exact(channels)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    (frame.width as usize, frame.height as usize, pixels)
}

/// Renders the `report` and `compare` pages in headless Chromium and checks that the
/// screenshots show a page: text (dark pixels), plot lines in the series colours, and
/// not one flat colour. Needs Chromium (`CHROMIUM`, default `chromium`); CI installs it
/// and runs this through `scripts/check_report_renders.sh`, which keeps the screenshots.
#[test]
#[ignore = "needs Chromium: run scripts/check_report_renders.sh"]
fn reports_render_in_headless_chromium() {
    let browser = std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".to_string());
    let test = ablation_reported();
    let compare = test
        .clone_args([
            "compare",
            "m.yaml",
            "--html",
            "compare.html",
            "--store",
            "store",
        ])
        .run();
    compare.assert_success();

    let keep = std::env::var_os("R1FLOW_SCREENSHOT_DIR").map(std::path::PathBuf::from);
    for (page, name) in [
        ("rep/report.html", "report.png"),
        ("compare.html", "compare.png"),
    ] {
        let shot = match &keep {
            Some(dir) => {
                std::fs::create_dir_all(dir).expect("screenshot directory");
                dir.join(name)
            }
            None => test.path(name),
        };
        let _ = std::fs::remove_file(&shot);
        screenshot(&browser, &test.path(page), &shot);
        let (width, height, pixels) = decode_png(&shot);
        assert_eq!((width, height), (1200, 2000), "{name}");
        let white = pixels
            .iter()
            .filter(|p| p.iter().all(|c| *c >= 0xf0))
            .count();
        let dark = pixels
            .iter()
            .filter(|p| p.iter().all(|c| *c < 0x60))
            .count();
        // Tableau blue (#4e79a7), the first series' colour, give or take anti-aliasing.
        let blue = pixels
            .iter()
            .filter(|p| {
                p[0].abs_diff(0x4e) < 12 && p[1].abs_diff(0x79) < 12 && p[2].abs_diff(0xa7) < 12
            })
            .count();
        let total = pixels.len();
        assert!(
            white < total * 99 / 100,
            "{name} is blank: {white} of {total} pixels white"
        );
        assert!(dark > 2_000, "{name} shows text: {dark} dark pixels");
        assert!(blue > 200, "{name} shows plot lines: {blue} blue pixels");
    }
}
