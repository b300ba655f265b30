//! Report: the last phase of parse → check → plan → execute → store → report. Reads what
//! the store holds (metric series, eval metrics, stage specs) and turns it into tables,
//! plots (SVG, PNG) and self-contained HTML pages; `report` for one run, `compare` across
//! variants and runs. Reads only; never writes the store. Files are written by the CLI.

pub mod html;
pub mod png;
pub mod svg;

pub use html::HtmlReport;
pub use png::svg_to_png;
pub use svg::{LinePlot, Series};
