//! The runnable examples in `examples/` work: the library walkthrough runs a pipeline, and
//! the `command` reward example (`examples/verifier/`) checks and scores generated items —
//! their worked solutions as right, altered answers as wrong.

use std::path::Path;

use r1flow::check::check_file;
use r1flow::records::Answer;
use r1flow::rewards::{RewardOutcome, RewardSet, Sample};
use r1flow::tasks::generate;

#[path = "../../examples/library_pipeline.rs"]
#[allow(dead_code, unreachable_pub)]
mod library_pipeline;

#[test]
fn the_library_example_runs_a_pipeline_and_reads_its_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let question = library_pipeline::run(dir.path()).expect("the example runs");
    assert!(question.starts_with("Using the numbers ["), "{question}");
}

#[test]
fn the_example_verifier_scores_generated_items() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/verifier/pipeline.yaml");
    let checked = check_file(&manifest, &r1flow::model::capabilities());
    assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
    let pipeline = &checked.pipelines[0];

    let items = generate(&pipeline.datasets["arithmetic"], pipeline.seed)
        .expect("a generated dataset")
        .expect("valid settings");
    let weights = [("verifier".to_string(), 1.0), ("accuracy".to_string(), 1.0)]
        .into_iter()
        .collect();
    let rewards =
        RewardSet::build(&weights, &pipeline.rewards, &pipeline.base_dir).expect("builds");

    let items = &items[..20];
    let answers: Vec<Answer> = items
        .iter()
        .map(|i| Answer::Text(i.answer.clone()))
        .collect();
    let wrong: Vec<String> = items
        .iter()
        .map(|i| i.solution.replace("<answer> ", "<answer> 1"))
        .collect();
    let mut samples = Vec::new();
    for (item, answer) in items.iter().zip(&answers) {
        samples.push(Sample::new(&item.question, &item.solution, Some(answer)));
    }
    for (item, (completion, answer)) in items.iter().zip(wrong.iter().zip(&answers)) {
        samples.push(Sample::new(&item.question, completion, Some(answer)));
    }
    let batch = rewards.score(&samples).expect("the verifier runs");
    let verifier = &batch.per_reward["verifier"];
    let accuracy = &batch.per_reward["accuracy"];
    for i in 0..20 {
        assert_eq!(
            verifier[i],
            RewardOutcome::Score(1.0),
            "{}",
            samples[i].completion
        );
        assert_eq!(verifier[20 + i], RewardOutcome::Score(0.0));
        assert_eq!(accuracy[i], RewardOutcome::Score(1.0));
        assert_eq!(accuracy[20 + i], RewardOutcome::Score(0.1));
    }
}
