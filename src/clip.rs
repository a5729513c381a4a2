//! Keeps error snippets within what miette's renderer can draw. It pads the
//! underline of a label with a format width, and Rust panics on a width past
//! 65,535, so an error located far into one long line (a minified value, a
//! fuzzed file) would crash the very report that explains it. Here a
//! snippet of such a line starts a little before the label and stops a
//! little after it; the `file:line:column` header stays exact.

use std::fmt;

use miette::{
    Diagnostic, LabeledSpan, MietteError, MietteSpanContents, ReportHandler, Severity, SourceCode,
    SourceSpan, SpanContents,
};

/// Columns of a line shown before and after a label on a long line.
const MARGIN: usize = 40;
/// A label starting further right than this is shown in a clipped line.
const LONG: usize = 120;

/// Wraps a report handler so every diagnostic it draws gets clipped snippets.
pub struct ClippingHandler<H>(pub H);

impl<H: ReportHandler> ReportHandler for ClippingHandler<H> {
    fn debug(&self, error: &dyn Diagnostic, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = error.source_code().map(ClippedSource);
        self.0.debug(
            &Clipped {
                inner: error,
                source,
            },
            f,
        )
    }
}

/// A diagnostic seen through [`ClippedSource`]; everything else is the original's.
struct Clipped<'a> {
    inner: &'a dyn Diagnostic,
    source: Option<ClippedSource<'a>>,
}

impl fmt::Debug for Clipped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.inner, f)
    }
}

impl fmt::Display for Clipped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.inner, f)
    }
}

impl std::error::Error for Clipped<'_> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner.source()
    }
}

impl Diagnostic for Clipped<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.inner.code()
    }
    fn severity(&self) -> Option<Severity> {
        self.inner.severity()
    }
    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.inner.help()
    }
    fn url<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.inner.url()
    }
    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.source.as_ref().map(|s| s as &dyn SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.inner.labels()
    }
    fn related<'b>(&'b self) -> Option<Box<dyn Iterator<Item = &'b dyn Diagnostic> + 'b>> {
        self.inner.related()
    }
    fn diagnostic_source(&self) -> Option<&dyn Diagnostic> {
        self.inner.diagnostic_source()
    }
}

/// Source code whose multi-line snippets never start far left of a label.
pub struct ClippedSource<'a>(pub &'a dyn SourceCode);

impl SourceCode for ClippedSource<'_> {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        // Without lines before, a snippet starts at the label itself: no padding.
        if before == 0 {
            return self.0.read_span(span, before, after);
        }
        let head = self
            .0
            .read_span(&SourceSpan::from((span.offset(), 0)), 0, 0)?;
        let column = head.column();
        // Is the rest of the label's line long? Read a little past the label.
        let past = span.offset() + span.len();
        let long_tail = self
            .0
            .read_span(&SourceSpan::from(past..past + 2 * MARGIN + 1), 0, 0)
            .is_ok_and(|tail| !tail.data().contains(&b'\n'));
        if column <= LONG && !long_tail {
            return self.0.read_span(span, before, after);
        }
        // Start a margin before the label (or at its line's start), on a
        // character boundary: the renderer counts bytes of what it decodes,
        // so a split character would shift every offset after it.
        let start = span.offset() - column.min(MARGIN);
        let end = span.offset() + span.len();
        let contents = self.0.read_span(&SourceSpan::from(start..end), 0, after)?;
        let skip = contents
            .data()
            .iter()
            .take_while(|b| **b & 0xC0 == 0x80)
            .count();
        let data = &contents.data()[skip..];
        // And stop a margin after it when the rest of its line is long too.
        let label_end = end - contents.span().offset() - skip;
        let line_end = data[label_end.min(data.len())..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(data.len(), |p| label_end + p);
        let cut = if line_end > label_end + 2 * MARGIN {
            let mut cut = (label_end + MARGIN).min(data.len());
            // Cut before a UTF-8 continuation byte, never inside a character.
            while cut > label_end && data.get(cut).is_some_and(|b| b & 0xC0 == 0x80) {
                cut -= 1;
            }
            cut
        } else {
            data.len()
        };
        let data = &data[..cut];
        let line_count = data.iter().filter(|b| **b == b'\n').count();
        let span = SourceSpan::from((contents.span().offset() + skip, data.len()));
        Ok(Box::new(match contents.name() {
            Some(name) => MietteSpanContents::new_named(
                name.to_string(),
                data,
                span,
                contents.line(),
                contents.column() + skip,
                line_count,
            ),
            None => MietteSpanContents::new(
                data,
                span,
                contents.line(),
                contents.column() + skip,
                line_count,
            ),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error, Diagnostic)]
    #[error("bad value")]
    struct Bad {
        #[source_code]
        src: miette::NamedSource<String>,
        #[label("here")]
        span: SourceSpan,
    }

    fn render(text: String, span: std::ops::Range<usize>) -> String {
        let handler = ClippingHandler(miette::GraphicalReportHandler::new_themed(
            miette::GraphicalTheme::unicode_nocolor(),
        ));
        let report = miette::Report::new(Bad {
            src: miette::NamedSource::new("dev.toml", text),
            span: span.into(),
        });
        struct Show<'a>(
            &'a ClippingHandler<miette::GraphicalReportHandler>,
            &'a miette::Report,
        );
        impl fmt::Display for Show<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.debug(self.1.as_ref(), f)
            }
        }
        Show(&handler, &report).to_string()
    }

    #[test]
    fn r14_a_label_past_column_65535_renders_with_its_true_location() {
        let text = format!("[a]\nx = 1 {}bad = 2\ny = 3\n", " ".repeat(70_000));
        let at = text.find("bad").unwrap();
        let out = render(text, at..at + 3);
        assert!(out.contains("dev.toml:2:70007"), "{out}");
        assert!(out.contains("bad = 2"), "{out}");
        assert!(
            out.len() < 2_000,
            "the long line is clipped: {} bytes",
            out.len()
        );
    }

    #[test]
    fn long_values_after_the_label_are_clipped_too() {
        let text = format!("{}é{}\n", "x".repeat(200), "é".repeat(70_000));
        let out = render(text, 200..202);
        assert!(out.contains("dev.toml:1:201"), "{out}");
        assert!(out.len() < 2_000, "{} bytes", out.len());
    }

    #[test]
    fn a_margin_never_splits_a_character() {
        let text = format!("{}bad\n", "é".repeat(100));
        for shift in 0..3 {
            let text = format!("{}{text}", "x".repeat(shift));
            let at = text.find("bad").unwrap();
            let out = render(text, at..at + 3);
            assert!(out.contains("bad"), "{out}");
        }
    }

    #[test]
    fn short_lines_render_as_before() {
        let text = "[a]\nport = \"x\"\n".to_string();
        let out = render(text, 11..14);
        assert!(out.contains("dev.toml:2:8"), "{out}");
        assert!(out.contains("port = \"x\""), "{out}");
    }
}
