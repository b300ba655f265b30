//! The committed schemas in `schemas/` equal what the types generate (`r1flow schema`).

use r1flow::schema::SCHEMAS;

use crate::support::{repo_root, Test};

#[test]
fn committed_schemas_match_the_types() {
    for schema in SCHEMAS {
        let path = repo_root().join("schemas").join(schema.file);
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == schema.render(),
            "schemas/{} is out of date: run `cargo run -- schema --write schemas`",
            schema.file
        );
    }
}

#[test]
fn the_cli_prints_the_pipeline_schema_as_draft_07() {
    let outcome = Test::in_dir(&repo_root()).args(["schema"]).run();
    let value = outcome.stdout_json();
    assert_eq!(value["$schema"], "http://json-schema.org/draft-07/schema#");
    // Field docs come from the doc comments.
    // A stage is one of the kinds, or a variation of another stage (`extends:`).
    let kinds = value["definitions"]["StageDecl"]["anyOf"][0]["oneOf"]
        .as_array()
        .expect("stage kinds");
    assert_eq!(
        value["definitions"]["StageDecl"]["anyOf"][1]["required"][0],
        "extends"
    );
    assert!(
        value["definitions"]["Defaults"]["properties"]["eval"]["properties"]["temperature"]
            .is_object(),
        "defaults by kind"
    );
    let grpo = kinds
        .iter()
        .find(|k| k["properties"]["kind"]["const"] == "grpo")
        .expect("a grpo stage schema");
    assert_eq!(
        grpo["additionalProperties"], false,
        "unknown fields are rejected"
    );
    let beta = &grpo["properties"]["beta"]["description"];
    assert!(
        beta.as_str().is_some_and(|d| d.contains("KL coefficient")),
        "{beta}"
    );
}
