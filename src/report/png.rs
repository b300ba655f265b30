//! Report: PNG versions of the plots, rasterised from the very SVG the HTML report inlines
//! (resvg, pure Rust, offline). Text is drawn with DejaVu Sans embedded in the binary
//! (`src/report/fonts/`, Bitstream Vera licence), so no system font is needed.

use std::fmt;
use std::sync::{Arc, OnceLock};

use resvg::tiny_skia::{Pixmap, Transform};
use resvg::usvg;

/// DejaVu Sans 2.37; see `src/report/fonts/LICENSE`.
const FONT: &[u8] = include_bytes!("fonts/DejaVuSans.ttf");

/// Pixels per SVG unit: plots are drawn at twice their CSS size, for sharp text.
pub const SCALE: f32 = 2.0;

/// Why an SVG could not be rasterised.
#[derive(Debug)]
pub enum PngError {
    /// The SVG did not parse.
    Svg(String),
    /// The SVG has no area, or one too large to allocate.
    Size { width: f32, height: f32 },
    /// PNG encoding failed.
    Encode(String),
}

impl fmt::Display for PngError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Svg(message) => write!(f, "the plot's SVG does not parse: {message}"),
            Self::Size { width, height } => {
                write!(f, "cannot rasterise a {width}×{height} SVG")
            }
            Self::Encode(message) => write!(f, "PNG encoding failed: {message}"),
        }
    }
}

impl std::error::Error for PngError {}

/// Rasterises an SVG document (see `LinePlot::to_svg_document`) at `SCALE` to PNG bytes.
pub fn svg_to_png(svg: &str) -> Result<Vec<u8>, PngError> {
    // The font database is built once per process (a report has dozens of plots).
    static FONTS: OnceLock<Arc<usvg::fontdb::Database>> = OnceLock::new();
    let fonts = FONTS.get_or_init(|| {
        let mut fonts = usvg::fontdb::Database::new();
        fonts.load_font_data(FONT.to_vec());
        fonts.set_sans_serif_family("DejaVu Sans");
        Arc::new(fonts)
    });
    let options = usvg::Options {
        font_family: "DejaVu Sans".to_string(),
        fontdb: Arc::clone(fonts),
        ..usvg::Options::default()
    };
    let tree = usvg::Tree::from_str(svg, &options).map_err(|e| PngError::Svg(e.to_string()))?;
    let size = tree.size();
    let (width, height) = (size.width() * SCALE, size.height() * SCALE);
    let mut pixmap = Pixmap::new(width.ceil() as u32, height.ceil() as u32)
        .ok_or(PngError::Size { width, height })?;
    resvg::render(
        &tree,
        Transform::from_scale(SCALE, SCALE),
        &mut pixmap.as_mut(),
    );
    pixmap
        .encode_png()
        .map_err(|e| PngError::Encode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::svg::{LinePlot, Series};

    /// Decodes a PNG made by `svg_to_png` back into pixels.
    fn pixels(png: &[u8]) -> Pixmap {
        Pixmap::decode_png(png).expect("a PNG we wrote decodes")
    }

    #[test]
    fn a_plot_rasterises_with_lines_and_text() {
        let mut plot = LinePlot::new("reward", "step", "reward");
        plot.push(Series::new(
            "zero",
            vec![(1.0, 0.1), (2.0, 0.5), (3.0, 0.4)],
        ));
        let png = svg_to_png(&plot.to_svg_document()).expect("renders");
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let image = pixels(&png);
        assert_eq!(
            image.width(),
            (crate::report::svg::WIDTH as f32 * SCALE) as u32
        );
        let data = image.data();
        // The series colour (#4e79a7) is drawn somewhere.
        let line = data
            .chunks_exact(4)
            .any(|p| p[0] == 0x4e && p[1] == 0x79 && p[2] == 0xa7);
        assert!(line, "the line is drawn");
        // The title's text: dark pixels in the title band at the top left, which only
        // glyphs from the embedded font can produce there.
        let width = image.width() as usize;
        let dark_in_title = (0..(30.0 * SCALE) as usize)
            .flat_map(|y| (0..(300.0 * SCALE) as usize).map(move |x| (x, y)))
            .filter(|(x, y)| {
                let p = &data[(y * width + x) * 4..][..4];
                p[0] < 0x60 && p[1] < 0x60 && p[2] < 0x60
            })
            .count();
        assert!(
            dark_in_title > 50,
            "title glyphs drawn: {dark_in_title} dark pixels"
        );
    }

    #[test]
    fn broken_svg_is_an_error_value() {
        let error = svg_to_png("<svg").expect_err("not SVG");
        assert!(
            error
                .to_string()
                .starts_with("the plot's SVG does not parse"),
            "{error}"
        );
    }
}
