//! A small builder that writes files into a temporary directory and runs the real
//! `r1flow` binary there, in the spirit of just's and ripgrep's test harnesses.

use std::path::{Path, PathBuf};
use std::process::Command;

pub(crate) struct Test {
    dir: PathBuf,
    _temp: Option<std::rc::Rc<tempfile::TempDir>>,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

pub(crate) struct Outcome {
    pub(crate) success: bool,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Test {
    /// A test in a fresh temporary directory.
    pub(crate) fn new() -> Self {
        let temp = tempfile::tempdir().expect("create a temporary directory");
        Self {
            dir: temp.path().to_path_buf(),
            _temp: Some(std::rc::Rc::new(temp)),
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    /// A test run from an existing directory (for committed fixtures).
    pub(crate) fn in_dir(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            _temp: None,
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    pub(crate) fn write(self, name: &str, contents: impl AsRef<[u8]>) -> Self {
        let path = self.dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent directory");
        }
        std::fs::write(&path, contents).expect("write test file");
        self
    }

    pub(crate) fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// The same directory with other arguments (to run several commands in one project).
    pub(crate) fn clone_args<I, S>(&self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            dir: self.dir.clone(),
            _temp: self._temp.clone(),
            args: args.into_iter().map(Into::into).collect(),
            env: Vec::new(),
        }
    }

    pub(crate) fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// A path inside the test directory.
    pub(crate) fn path(&self, relative: &str) -> PathBuf {
        self.dir.join(relative)
    }

    /// The binary with this test's arguments and environment, in its directory.
    fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_r1flow"));
        command
            .args(&self.args)
            .current_dir(&self.dir)
            .env_remove("R1FLOW_STORE")
            .env_remove("RUST_LOG")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        command
    }

    /// Starts the command without waiting for it (its output goes to `log` in the test
    /// directory).
    pub(crate) fn spawn(&self, log: &str) -> std::process::Child {
        let log = std::fs::File::create(self.dir.join(log)).expect("create the log");
        let log_err = log.try_clone().expect("clone the log handle");
        self.command()
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .expect("start r1flow")
    }

    pub(crate) fn run(&self) -> Outcome {
        self.command().output().expect("run r1flow").into()
    }
}

/// Any finished command as an `Outcome` (the tools a test runs beside r1flow).
impl From<std::process::Output> for Outcome {
    fn from(output: std::process::Output) -> Self {
        Outcome {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Outcome {
    /// Asserts that the command succeeded, showing its stderr if it did not.
    #[track_caller]
    pub(crate) fn assert_success(&self) -> &Self {
        assert!(self.success, "{}", self.stderr);
        self
    }

    /// Asserts that the command failed and that its stderr says `needle`.
    #[track_caller]
    pub(crate) fn assert_failure_says(&self, needle: impl AsRef<str>) -> &Self {
        assert!(
            !self.success,
            "the command should have failed:\n{}",
            self.stderr
        );
        self.assert_stderr_says(needle)
    }

    /// Asserts that the command succeeded; its stdout, parsed as JSON.
    #[track_caller]
    pub(crate) fn stdout_json(&self) -> serde_json::Value {
        self.assert_success();
        serde_json::from_str(&self.stdout).expect("stdout is JSON")
    }

    /// Asserts that the command failed; its stderr, for a snapshot of the error.
    #[track_caller]
    pub(crate) fn failure_stderr(&self) -> String {
        assert!(
            !self.success,
            "the command should have failed:\n{}",
            self.stderr
        );
        self.stderr.clone()
    }

    /// Asserts that stderr says `needle`, showing stderr if it does not.
    #[track_caller]
    pub(crate) fn assert_stderr_says(&self, needle: impl AsRef<str>) -> &Self {
        assert!(self.stderr.contains(needle.as_ref()), "{}", self.stderr);
        self
    }

    /// Asserts that one line of stdout says every one of `words` (a stage and what `plan`
    /// says of it, say), showing stdout if none does.
    #[track_caller]
    pub(crate) fn assert_stdout_line_says(&self, words: &[&str]) -> &Self {
        assert!(
            self.stdout
                .lines()
                .any(|line| words.iter().all(|word| line.contains(word))),
            "no line says all of {words:?}:\n{}",
            self.stdout
        );
        self
    }

    /// Asserts that stdout starts with `prefix`, showing stdout if it does not.
    #[track_caller]
    pub(crate) fn assert_stdout_starts_with(&self, prefix: &str) -> &Self {
        assert!(self.stdout.starts_with(prefix), "{}", self.stdout);
        self
    }

    /// Asserts that stdout says `needle`, showing stdout if it does not.
    #[track_caller]
    pub(crate) fn assert_stdout_says(&self, needle: impl AsRef<str>) -> &Self {
        assert!(self.stdout.contains(needle.as_ref()), "{}", self.stdout);
        self
    }
}

impl Test {
    /// `r1flow run m.yaml --store store` in this test's directory: how most tests run
    /// their manifest.
    pub(crate) fn run_in_store(&self) -> Self {
        self.clone_args(["run", "m.yaml", "--store", "store"])
    }

    /// Runs `m.yaml` into the store `store` (`run_in_store`), asserts that it succeeded
    /// and returns the run's record (`last_run_json`).
    pub(crate) fn run_recorded(&self) -> serde_json::Value {
        self.run_in_store().run().assert_success();
        last_run_json(self)
    }

    /// `r1flow plan MANIFEST --json` of `manifest` in this test's directory, against a
    /// store that does not exist (the keys, with nothing looked up), asserted to succeed.
    pub(crate) fn plan_json(&self, manifest: &str) -> serde_json::Value {
        let planned = self
            .clone_args([
                "plan",
                manifest,
                "--json",
                "--store",
                "/nonexistent-r1flow-store",
            ])
            .run();
        assert!(planned.success, "{manifest}: {}", planned.stderr);
        serde_json::from_str(&planned.stdout).expect("plan --json is JSON")
    }

    /// `r1flow runs --store store` in this test's directory: the store's runs, listed.
    pub(crate) fn runs_in_store(&self) -> Self {
        self.clone_args(["runs", "--store", "store"])
    }

    /// `r1flow plan m.yaml --store store` in this test's directory.
    pub(crate) fn plan_in_store(&self) -> Self {
        self.clone_args(["plan", "m.yaml", "--store", "store"])
    }
}

/// The repository root (where Cargo.toml is).
pub(crate) fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shipped pipeline `pipelines/NAME` with each `(from, to)` replaced once, in order:
/// how a test runs a shipped pipeline at CI size. A `from` the pipeline no longer has
/// fails the test, so that an edit of the pipeline cannot silently undo the sizing.
pub(crate) fn shipped_pipeline_with(name: &str, replacements: &[(&str, &str)]) -> String {
    let mut manifest = std::fs::read_to_string(repo_root().join("pipelines").join(name))
        .expect("a shipped pipeline");
    for (from, to) in replacements {
        assert!(manifest.contains(from), "{name} no longer has {from:?}");
        manifest = manifest.replacen(from, to, 1);
    }
    manifest
}

/// The replacement that shrinks a shipped pipeline's `preset: tiny` model to a micro one.
pub(crate) const MICRO_MODEL: (&str, &str) = (
    "    preset: tiny\n",
    "    preset: tiny\n    hidden_size: 32\n    num_hidden_layers: 2\n    num_attention_heads: 4\n    num_key_value_heads: 2\n    intermediate_size: 64\n",
);

/// `runs show last --json` of the store `store` in the test directory.
pub(crate) fn last_run_json(test: &Test) -> serde_json::Value {
    let shown = test
        .clone_args(["runs", "show", "last", "--json", "--store", "store"])
        .run();
    assert!(shown.success, "{}", shown.stderr);
    serde_json::from_str(&shown.stdout).expect("runs show --json is JSON")
}

/// Stage `name` of a run record (`runs show --json`).
pub(crate) fn run_stage<'a>(run: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    run["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("stage {name} in {run}"))
}

/// The names of a stage record's outputs, in the record's order.
pub(crate) fn output_names(stage: &serde_json::Value) -> Vec<&str> {
    stage["outputs"]
        .as_array()
        .expect("outputs")
        .iter()
        .filter_map(|o| o["name"].as_str())
        .collect()
}

/// Where the store `store` in the test directory keeps the blob `hash`.
pub(crate) fn blob_path(test: &Test, hash: &str) -> PathBuf {
    test.path(&format!("store/blobs/{}/{hash}", &hash[..2]))
}

/// `compare ARGS --format json --store store` in the test directory, parsed.
pub(crate) fn compare_json(test: &Test, args: &[&str]) -> serde_json::Value {
    let mut command = vec!["compare"];
    command.extend_from_slice(args);
    command.extend(["--format", "json", "--store", "store"]);
    let outcome = test.clone_args(command).run();
    assert!(outcome.success, "{args:?}: {}", outcome.stderr);
    serde_json::from_str(&outcome.stdout).expect("--format json prints JSON")
}

/// The metric series of stage `stage` of the last run in the store `store`, a point per
/// step (`metrics last STAGE --format json`).
pub(crate) fn metric_series(test: &Test, stage: &str) -> Vec<serde_json::Value> {
    let metrics = test
        .clone_args([
            "metrics", "last", stage, "--store", "store", "--format", "json",
        ])
        .run();
    assert!(metrics.success, "{}", metrics.stderr);
    serde_json::from_str(&metrics.stdout).expect("metrics --format json is JSON")
}

/// A micro model and a small generated dataset, as the manifest `name`: what the fault
/// and hostile cases' manifests start from (their stages follow).
pub(crate) fn micro_manifest(name: &str) -> String {
    format!(
        r#"
name: {name}
seed: 1
models:
  micro: {{preset: tiny, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 64}}
datasets:
  arith: {{kind: arithmetic, num_samples: 40, operations: [add], max_digits: 1}}
"#
    )
}

/// A training test's manifest on the micro model (seconds a stage) and `arith`, one-digit
/// additions, which the `tasks` stage templates into prompts that ask for reasoning: the
/// head those tests share, written once. A test adds its own entries to the sections,
/// then writes its stages (`stages`).
pub(crate) struct MicroPipeline {
    head: String,
    models: String,
    rewards: String,
    datasets: String,
    samples: u32,
    test_size: u32,
}

/// `micro_pipeline(name, seed)`: the manifest `name` on the micro model, seeded `seed`.
pub(crate) fn micro_pipeline(name: &str, seed: u32) -> MicroPipeline {
    MicroPipeline {
        head: format!("\nname: {name}\nseed: {seed}\n"),
        models: String::new(),
        rewards: String::new(),
        datasets: String::new(),
        samples: 200,
        test_size: 10,
    }
}

impl MicroPipeline {
    /// `defaults:` that give every stage these prompt and completion lengths (tokens).
    pub(crate) fn lengths(mut self, prompt: u32, completion: u32) -> Self {
        self.head += &format!(
            "defaults:\n  max_prompt_length: {prompt}\n  max_completion_length: {completion}\n"
        );
        self
    }

    /// How many problems `arith` has (200 unless set) and how many `tasks` holds out as
    /// its test split (10 unless set).
    pub(crate) fn arith(mut self, samples: u32, test_size: u32) -> Self {
        (self.samples, self.test_size) = (samples, test_size);
        self
    }

    /// Another `models:` entry, as one line (`name: {…}`).
    pub(crate) fn model(mut self, entry: &str) -> Self {
        self.models += &format!("  {entry}\n");
        self
    }

    /// A `rewards:` entry, as one line.
    pub(crate) fn reward(mut self, entry: &str) -> Self {
        self.rewards += &format!("  {entry}\n");
        self
    }

    /// Another `datasets:` entry, as one line.
    pub(crate) fn dataset(mut self, entry: &str) -> Self {
        self.datasets += &format!("  {entry}\n");
        self
    }

    /// The manifest, `stages` after `tasks` (the test's stages, then any section after
    /// them, such as `ablations:`).
    pub(crate) fn stages(self, stages: &str) -> String {
        let rewards = if self.rewards.is_empty() {
            String::new()
        } else {
            format!("rewards:\n{}", self.rewards)
        };
        format!(
            r#"{head}models:
  {MICRO}
{models}{rewards}datasets:
  arith: {{kind: arithmetic, num_samples: {samples}, operations: [add], max_digits: 1}}
{datasets}stages:
  tasks: {{kind: dataset, source: arith, template: {{user: "Q: {{question}}\nA: <think>"}}, test_size: {test_size}}}
{stages}"#,
            head = self.head,
            models = self.models,
            datasets = self.datasets,
            samples = self.samples,
            test_size = self.test_size,
        )
    }
}

/// The micro model's `models:` entry.
const MICRO: &str = "micro: {preset: tiny, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 64}";

/// Every output of a run as `stage/output=hash`, sorted: equal lists mean equal bits.
pub(crate) fn output_hashes(run: &serde_json::Value) -> Vec<String> {
    let mut hashes: Vec<String> = run["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .flat_map(|s| {
            let stage = s["name"].as_str().unwrap_or("").to_string();
            s["outputs"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |o| {
                    format!(
                        "{stage}/{}={}",
                        o["name"].as_str().unwrap_or(""),
                        o["hash"].as_str().unwrap_or("")
                    )
                })
        })
        .collect();
    hashes.sort();
    hashes
}

impl Test {
    /// Runs like `run`, but kills the process after `seconds` (a hostile input must never
    /// block); a killed run fails and its stderr ends with "TIMED OUT".
    pub(crate) fn run_within(&self, seconds: u64) -> Outcome {
        use std::io::Read as _;
        use std::process::Stdio;
        let mut child = self
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run r1flow");
        let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                if let Some(mut pipe) = pipe {
                    let _ = pipe.read_to_end(&mut bytes);
                }
                String::from_utf8_lossy(&bytes).into_owned()
            })
        };
        let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
        let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
        let (success, timed_out) = loop {
            match child.try_wait().expect("wait for r1flow") {
                Some(status) => break (status.success(), false),
                None if std::time::Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break (false, true);
                }
                None => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        };
        let mut stderr = stderr.join().unwrap_or_default();
        if timed_out {
            stderr.push_str("\nTIMED OUT");
        }
        Outcome {
            success,
            stdout: stdout.join().unwrap_or_default(),
            stderr,
        }
    }
}

/// Whether an optional tool a test needs is there (`found`): where it is not, the test is
/// skipped with a message naming `what` it checks and how to `install` the tool, unless the
/// environment variable `require` is `1` (`.ci/run` sets it after installing the tool),
/// which makes a missing tool a failure.
pub(crate) fn tool_available(found: bool, what: &str, require: &str, install: &str) -> bool {
    if !found {
        assert!(
            std::env::var(require).as_deref() != Ok("1"),
            "{require}=1, but {what} cannot run: {install}"
        );
        eprintln!("SKIPPED {what}: {install} ({require}=1 makes this a failure)");
    }
    found
}

/// Runs `m.yaml` of `test` into its `store` with `--backend backend`, printing how long it
/// took; on a GPU backend with CubeCL's fewest autotuning candidates (lavapipe runs the
/// autotuning benchmarks on the CPU).
#[cfg(feature = "wgpu")]
pub(crate) fn run_on_backend(test: &Test, backend: &str) -> Outcome {
    let started = std::time::Instant::now();
    let run = test
        .clone_args(["run", "m.yaml", "--store", "store", "--backend", backend])
        .env("CUBECL_AUTOTUNE_LEVEL", "minimal")
        .run();
    eprintln!(
        "pipeline on {backend}: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    run
}
