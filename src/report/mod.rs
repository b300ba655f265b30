//! Report: the last phase of parse → check → plan → execute → store → report. Reads what
//! the store holds (metric series, eval metrics, stage specs) and turns it into tables,
//! plots (SVG, PNG) and self-contained HTML pages; `report` for one run, `compare` across
//! variants and runs. Reads only; never writes the store. Files are written by the CLI.

pub mod compare;
pub mod curves;
pub mod html;
pub mod params;
pub mod png;
pub mod rescore;
pub mod run_report;
pub mod score;
pub mod stats;
pub mod stored;
pub mod svg;
pub mod variants;

pub use compare::{compare, Comparison, EvalResult, Row, VariantResult};
pub use curves::NamedPlot;
pub use html::HtmlReport;
pub use png::svg_to_png;
pub use rescore::{rescore, RescoreError, RescoreRequest, Rescored, RewardSummary};
pub use run_report::{run_report, RunReport};
pub use score::{score_file, ScoreError, ScoredLine};
pub use stats::mean_std;
pub use svg::{LinePlot, Series};
