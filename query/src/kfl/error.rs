//! KFL errors: a message about a span of the filter, shown with a caret.

use std::fmt;

/// Byte range of the filter text an error or node is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span { start: self.start.min(other.start), end: self.end.max(other.end) }
    }
}

/// A filter that cannot be run, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KflError {
    pub span: Span,
    pub message: String,
    /// Extra advice, such as the nearest known field names.
    pub hint: Option<String>,
    /// The filter text, filled in by [`KflError::with_source`].
    pub source: String,
}

impl KflError {
    pub fn new(span: Span, message: impl Into<String>) -> KflError {
        KflError { span, message: message.into(), hint: None, source: String::new() }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> KflError {
        self.hint = Some(hint.into());
        self
    }

    pub fn with_source(mut self, source: &str) -> KflError {
        self.source = source.to_string();
        self
    }
}

impl fmt::Display for KflError {
    /// ```text
    /// invalid KFL filter: unknown field `status_cod`
    ///   http && status_cod >= 400
    ///           ^^^^^^^^^^
    ///   hint: did you mean `status_code`?
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid KFL filter: {}", self.message)?;
        if !self.source.is_empty() && !self.source.contains('\n') {
            // Columns are counted in characters so that the caret lines up
            // under non-ASCII text too.
            let start = self.span.start.min(self.source.len());
            let end = self.span.end.clamp(start, self.source.len());
            let col = self.source.get(..start).map_or(start, |s| s.chars().count());
            let width = self.source.get(start..end).map_or(1, |s| s.chars().count()).max(1);
            write!(f, "\n  {}\n  {}{}", self.source, " ".repeat(col), "^".repeat(width))?;
        }
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for KflError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caret_sits_under_the_span() {
        let e = KflError::new(Span::new(8, 18), "unknown field `status_cod`")
            .hint("did you mean `status_code`?")
            .with_source("http && status_cod >= 400");
        assert_eq!(
            e.to_string(),
            "invalid KFL filter: unknown field `status_cod`\n  http && status_cod >= 400\n          ^^^^^^^^^^\n  hint: did you mean `status_code`?"
        );
    }

    #[test]
    fn caret_counts_characters() {
        let e = KflError::new(Span::new(13, 14), "x").with_source("path == \"é\" &");
        assert_eq!(e.to_string().lines().nth(2), Some(format!("  {}^", " ".repeat(12)).as_str()));
    }
}
