//! No input makes `check` panic: mutations of every shipped manifest (lines dropped,
//! duplicated, characters replaced) and raw byte noise all come back as diagnostics.

use r1flow::check::check_document;
use r1flow::diag::SourceFile;
use r1flow::syntax::parse;

use crate::support::repo_root;

/// A deterministic generator (SplitMix64), so a failure reproduces.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn check_text(text: &str) {
    if let Ok(doc) = parse(SourceFile::new(
        repo_root().join("pipelines/mutant.yaml"),
        text,
    )) {
        let checked = check_document(&doc, &r1flow::model::capabilities());
        for diagnostic in &checked.diagnostics {
            let _ = diagnostic.render();
        }
    }
}

#[test]
fn mutated_manifests_never_panic() {
    const PIECES: &[&str] = &[
        ":",
        "- ",
        "{",
        "}",
        "[",
        "]",
        "&a",
        "*a",
        "!!str ",
        "\"",
        "'",
        "#",
        "\t",
        "~",
        "-1",
        "1e999",
        "null",
        "<<: *a",
        "\u{feff}",
        "é",
        "\n  ",
        "kind: grpo",
        "from: ",
        "rewards: {x: -1}",
        "stages.",
        "ablations:",
    ];
    let mut noise = Noise(42);
    let dir = repo_root().join("pipelines");
    let mut sources: Vec<String> = std::fs::read_dir(&dir)
        .expect("pipelines/")
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "yaml"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .collect();
    sources.sort();
    for source in &sources {
        for _ in 0..150 {
            let mut lines: Vec<String> = source.lines().map(str::to_string).collect();
            for _ in 0..1 + noise.below(3) {
                let i = noise.below(lines.len());
                match noise.below(4) {
                    0 => {
                        lines.remove(i);
                    }
                    1 => {
                        let copy = lines[i].clone();
                        lines.insert(i, copy);
                    }
                    2 => {
                        let piece = PIECES[noise.below(PIECES.len())];
                        let line = &mut lines[i];
                        let at = line
                            .char_indices()
                            .map(|(b, _)| b)
                            .nth(noise.below(line.chars().count() + 1))
                            .unwrap_or(line.len());
                        line.insert_str(at, piece);
                    }
                    _ => {
                        let j = noise.below(lines.len());
                        lines.swap(i, j);
                    }
                }
                if lines.is_empty() {
                    break;
                }
            }
            check_text(&lines.join("\n"));
        }
    }
}

#[test]
fn byte_noise_never_panics() {
    let mut noise = Noise(7);
    for _ in 0..300 {
        let len = noise.below(200);
        const ALPHABET: &[u8] = b" :-[]{}\n\"'#&*!|>abc019";
        let bytes: Vec<u8> = (0..len)
            .map(|_| ALPHABET[noise.below(ALPHABET.len())])
            .collect();
        check_text(&String::from_utf8_lossy(&bytes));
    }
}
