//! The runnable examples in `examples/` work: the library walkthrough runs a pipeline.

#[path = "../../examples/library_pipeline.rs"]
#[allow(dead_code, unreachable_pub)]
mod library_pipeline;

#[test]
fn the_library_example_runs_a_pipeline_and_reads_its_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let question = library_pipeline::run(dir.path()).expect("the example runs");
    assert!(question.starts_with("Using the numbers ["), "{question}");
}
