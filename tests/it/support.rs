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

    /// Starts the command without waiting for it (its output goes to `log` in the test
    /// directory).
    pub(crate) fn spawn(&self, log: &str) -> std::process::Child {
        let log = std::fs::File::create(self.dir.join(log)).expect("create the log");
        let log_err = log.try_clone().expect("clone the log handle");
        Command::new(env!("CARGO_BIN_EXE_r1flow"))
            .args(&self.args)
            .current_dir(&self.dir)
            .env_remove("R1FLOW_STORE")
            .env_remove("RUST_LOG")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .expect("start r1flow")
    }

    pub(crate) fn run(&self) -> Outcome {
        let output = Command::new(env!("CARGO_BIN_EXE_r1flow"))
            .args(&self.args)
            .current_dir(&self.dir)
            .env_remove("R1FLOW_STORE")
            .env_remove("RUST_LOG")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .expect("run r1flow");
        Outcome {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// The repository root (where Cargo.toml is).
pub(crate) fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `runs show last --json` of the store `store` in the test directory.
pub(crate) fn last_run_json(test: &Test) -> serde_json::Value {
    let shown = test
        .clone_args(["runs", "show", "last", "--json", "--store", "store"])
        .run();
    assert!(shown.success, "{}", shown.stderr);
    serde_json::from_str(&shown.stdout).expect("runs show --json is JSON")
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
        let mut child = Command::new(env!("CARGO_BIN_EXE_r1flow"))
            .args(&self.args)
            .current_dir(&self.dir)
            .env_remove("R1FLOW_STORE")
            .env_remove("RUST_LOG")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
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
