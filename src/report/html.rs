//! Report: the self-contained HTML page of `report` and `compare` — inline CSS, plots as
//! inline SVG, no script, no external fetch of any kind, so the file can be mailed,
//! archived or opened offline and looks the same everywhere.

use std::fmt::Write as _;

use super::svg::{escape, LinePlot};

const STYLE: &str = "
:root { color-scheme: light; }
body { font-family: 'DejaVu Sans', Verdana, Arial, sans-serif; color: #222; background: #fff;
  margin: 0 auto; padding: 24px 32px 48px; max-width: 1500px; line-height: 1.45; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 32px 0 8px; padding-bottom: 4px; border-bottom: 1px solid #ddd; }
h3 { font-size: 15px; margin: 20px 0 6px; }
p { margin: 6px 0; }
.meta { color: #555; font-size: 13px; }
.note { color: #8a5300; background: #fff6e5; border-left: 3px solid #f0a830;
  padding: 6px 10px; font-size: 13px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0 16px; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f4f6f8; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tbody tr:nth-child(even) { background: #fafbfc; }
.plots { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 16px; }
.plot { border: 1px solid #e4e4e4; border-radius: 4px; padding: 4px; margin: 0; }
.table-wrap { overflow-x: auto; max-width: 100%; }
.plot svg { width: 100%; height: auto; display: block; }
code { font-family: 'DejaVu Sans Mono', monospace; font-size: 12px; }
";

/// A table cell: text, or a number (right-aligned).
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Number(String),
}

impl Cell {
    /// The cell's text, whatever its alignment.
    pub fn text(&self) -> &str {
        match self {
            Self::Text(t) | Self::Number(t) => t,
        }
    }
}

/// An HTML page under construction.
#[derive(Debug, Clone)]
pub struct HtmlReport {
    title: String,
    body: String,
    /// Whether a `<div class="plots">` is open.
    in_plots: bool,
}

impl HtmlReport {
    pub fn new(title: impl Into<String>) -> Self {
        let title = title.into();
        let mut body = String::new();
        let _ = writeln!(body, "<h1>{}</h1>", escape(&title));
        Self {
            title,
            body,
            in_plots: false,
        }
    }

    fn close_plots(&mut self) {
        if self.in_plots {
            self.body.push_str("</div>\n");
            self.in_plots = false;
        }
    }

    /// A section heading (`level` 2 or 3).
    pub fn heading(&mut self, level: u8, text: &str) {
        self.close_plots();
        let level = level.clamp(2, 3);
        let _ = writeln!(self.body, "<h{level}>{}</h{level}>", escape(text));
    }

    /// A line of grey details (ids, dates, paths).
    pub fn meta(&mut self, text: &str) {
        self.close_plots();
        let _ = writeln!(self.body, "<p class=\"meta\">{}</p>", escape(text));
    }

    pub fn paragraph(&mut self, text: &str) {
        self.close_plots();
        let _ = writeln!(self.body, "<p>{}</p>", escape(text));
    }

    /// A highlighted remark (something missing, not logged, not run).
    pub fn note(&mut self, text: &str) {
        self.close_plots();
        let _ = writeln!(self.body, "<p class=\"note\">{}</p>", escape(text));
    }

    pub fn table(&mut self, headers: &[String], rows: &[Vec<Cell>]) {
        self.close_plots();
        self.body
            .push_str("<div class=\"table-wrap\"><table>\n<thead><tr>");
        for header in headers {
            let _ = write!(self.body, "<th>{}</th>", escape(header));
        }
        self.body.push_str("</tr></thead>\n<tbody>\n");
        for row in rows {
            self.body.push_str("<tr>");
            for cell in row {
                match cell {
                    Cell::Text(text) => {
                        let _ = write!(self.body, "<td>{}</td>", escape(text));
                    }
                    Cell::Number(text) => {
                        let _ = write!(self.body, "<td class=\"num\">{}</td>", escape(text));
                    }
                }
            }
            self.body.push_str("</tr>\n");
        }
        self.body.push_str("</tbody>\n</table></div>\n");
    }

    /// A plot, inline; consecutive plots share a grid.
    pub fn plot(&mut self, plot: &LinePlot) {
        if !self.in_plots {
            self.body.push_str("<div class=\"plots\">\n");
            self.in_plots = true;
        }
        let _ = writeln!(
            self.body,
            "<figure class=\"plot\">{}</figure>",
            plot.to_svg_inline()
        );
    }

    /// The finished page.
    pub fn finish(mut self) -> String {
        self.close_plots();
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{}<p class=\"meta\">Generated by r1flow {}.</p>\n</body>\n</html>\n",
            escape(&self.title),
            self.body,
            env!("CARGO_PKG_VERSION"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::svg::Series;

    #[test]
    fn a_page_is_self_contained_and_escaped() {
        let mut page = HtmlReport::new("run <1>");
        page.heading(2, "eval & more");
        page.table(
            &["variant".into(), "pass@1".into()],
            &[vec![Cell::Text("a+b".into()), Cell::Number("0.50".into())]],
        );
        let mut plot = LinePlot::new("reward", "step", "reward");
        plot.push(Series::new("a", vec![(1.0, 1.0), (2.0, 2.0)]));
        page.plot(&plot);
        page.plot(&plot);
        page.note("language consistency is not logged");
        let html = page.finish();
        assert!(html.contains("<title>run &lt;1&gt;</title>"));
        assert!(html.contains("<h2>eval &amp; more</h2>"));
        assert!(html.contains("<td class=\"num\">0.50</td>"));
        assert_eq!(html.matches("<div class=\"plots\">").count(), 1, "one grid");
        assert_eq!(html.matches("<svg").count(), 2);
        for external in ["http://", "https://", "src=", "<link", "<script", "url("] {
            assert!(!html.contains(external), "{external} in {html}");
        }
    }
}
