//! r1flow: DeepSeek-R1-style training pipelines from declarative YAML manifests.
pub mod model;
