//! Markdown tables and reports: the readable `report.md` next to a run's figures.
//!
//! Tables are written with padded columns, so the raw file reads as well as the rendered one.
//! Cells are plain text: `|` is escaped and line breaks become spaces.

use std::path::Path;

use ppl_core::{Error, Result};

use crate::data::image::write_atomic;

/// How a column's cells are aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Align {
    /// Left (text).
    #[default]
    Left,
    /// Right (numbers).
    Right,
    /// Centred.
    Center,
}

/// `v` with `decimals` decimals; `NaN`, `inf` and `-inf` spelled out and `-0` printed as `0`.
pub fn fmt_num(v: f64, decimals: usize) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        let s = format!("{v:.decimals$}");
        // A negative value that rounds to zero prints as "-0.00"; the sign carries nothing.
        if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
            s[1..].to_string()
        } else {
            s
        }
    }
}

/// `estimate ± half_width`, both with `decimals` decimals: `0.412 ± 0.031`.
pub fn fmt_pm(estimate: f64, half_width: f64, decimals: usize) -> String {
    format!(
        "{} ± {}",
        fmt_num(estimate, decimals),
        fmt_num(half_width, decimals)
    )
}

/// An interval `[lo, hi]` with `decimals` decimals: `[0.381, 0.443]`.
pub fn fmt_interval(lo: f64, hi: f64, decimals: usize) -> String {
    format!("[{}, {}]", fmt_num(lo, decimals), fmt_num(hi, decimals))
}

/// A fraction as a percentage with `decimals` decimals: `0.1234` → `12.3%` (1 decimal).
pub fn fmt_pct(fraction: f64, decimals: usize) -> String {
    format!("{}%", fmt_num(fraction * 100.0, decimals))
}

fn cell_text(s: &str) -> String {
    s.replace(['\r', '\n'], " ").replace('|', "\\|")
}

/// A Markdown table.
///
/// ```
/// use models::report::table::{fmt_num, Align, Table};
/// let mut t = Table::new(["model", "MAE"]).align(1, Align::Right);
/// t.row(["Full".to_string(), fmt_num(0.1234, 3)])?;
/// assert_eq!(
///     t.to_markdown(),
///     "| model |   MAE |\n| :---- | ----: |\n| Full  | 0.123 |\n"
/// );
/// # Ok::<(), ppl_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    headers: Vec<String>,
    align: Vec<Align>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers, every column left-aligned.
    pub fn new<S: Into<String>>(headers: impl IntoIterator<Item = S>) -> Table {
        let headers: Vec<String> = headers.into_iter().map(Into::into).collect();
        let align = vec![Align::Left; headers.len()];
        Table {
            headers,
            align,
            rows: Vec::new(),
        }
    }

    /// Aligns column `col` (a column that does not exist is ignored).
    pub fn align(mut self, col: usize, align: Align) -> Table {
        if let Some(a) = self.align.get_mut(col) {
            *a = align;
        }
        self
    }

    /// Aligns every column but the first to the right (a label column, then numbers).
    pub fn numeric(mut self) -> Table {
        for a in self.align.iter_mut().skip(1) {
            *a = Align::Right;
        }
        self
    }

    /// Appends a row; it must have one cell per column.
    pub fn row<S: AsRef<str>>(&mut self, cells: impl IntoIterator<Item = S>) -> Result<&mut Table> {
        let cells: Vec<String> = cells.into_iter().map(|c| cell_text(c.as_ref())).collect();
        if cells.len() != self.headers.len() {
            return Err(Error::usage(format!(
                "table row {} has {} cells but the table has {} columns ({:?})",
                self.rows.len(),
                cells.len(),
                self.headers.len(),
                self.headers
            )));
        }
        self.rows.push(cells);
        Ok(self)
    }

    /// How many rows (headers not counted).
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as Markdown: header line, alignment line, one line per row, each ending in
    /// a newline, columns padded to their widest cell (at least 3, the shortest rule `---`
    /// plus a colon where aligned).
    pub fn to_markdown(&self) -> String {
        let headers: Vec<String> = self.headers.iter().map(|h| cell_text(h)).collect();
        let n = headers.len();
        let widths: Vec<usize> = (0..n)
            .map(|j| {
                let min = match self.align[j] {
                    Align::Left | Align::Right => 4,
                    Align::Center => 5,
                };
                std::iter::once(&headers[j])
                    .chain(self.rows.iter().map(|r| &r[j]))
                    .map(|c| c.chars().count())
                    .max()
                    .unwrap_or(0)
                    .max(min)
            })
            .collect();
        let pad = |s: &str, w: usize, a: Align| {
            let fill = w - s.chars().count();
            match a {
                Align::Left => format!("{s}{}", " ".repeat(fill)),
                Align::Right => format!("{}{s}", " ".repeat(fill)),
                Align::Center => {
                    let l = fill / 2;
                    format!("{}{s}{}", " ".repeat(l), " ".repeat(fill - l))
                }
            }
        };
        let line = |cells: &[String]| {
            let parts: Vec<String> = (0..n)
                .map(|j| pad(&cells[j], widths[j], self.align[j]))
                .collect();
            format!("| {} |\n", parts.join(" | "))
        };
        let rule: Vec<String> = (0..n)
            .map(|j| match self.align[j] {
                Align::Left => format!(":{}", "-".repeat(widths[j] - 1)),
                Align::Right => format!("{}:", "-".repeat(widths[j] - 1)),
                Align::Center => format!(":{}:", "-".repeat(widths[j] - 2)),
            })
            .collect();
        let mut out = line(&headers);
        out.push_str(&format!("| {} |\n", rule.join(" | ")));
        for r in &self.rows {
            out.push_str(&line(r));
        }
        out
    }
}

/// A Markdown report: a title, then sections, paragraphs, lists, tables and images in the
/// order they were added.
///
/// ```
/// use models::report::table::{MarkdownReport, Table};
/// let mut r = MarkdownReport::new("DeepSCM tutorial");
/// r.section("Training").paragraph("Loss fell from 3.1 to 0.4.");
/// r.image("training loss", "loss.png");
/// assert!(r.to_markdown().starts_with("# DeepSCM tutorial\n\n## Training\n"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkdownReport {
    title: String,
    blocks: Vec<String>,
}

impl MarkdownReport {
    /// A report with a top-level title.
    pub fn new(title: impl Into<String>) -> MarkdownReport {
        MarkdownReport {
            title: title.into(),
            blocks: Vec::new(),
        }
    }

    fn push(&mut self, block: String) -> &mut MarkdownReport {
        self.blocks.push(block);
        self
    }

    /// A second-level heading.
    pub fn section(&mut self, heading: &str) -> &mut MarkdownReport {
        self.push(format!("## {}\n", heading.replace('\n', " ")))
    }

    /// A third-level heading.
    pub fn subsection(&mut self, heading: &str) -> &mut MarkdownReport {
        self.push(format!("### {}\n", heading.replace('\n', " ")))
    }

    /// A paragraph of text (Markdown inline syntax is kept as written).
    pub fn paragraph(&mut self, text: &str) -> &mut MarkdownReport {
        self.push(format!("{}\n", text.trim_end()))
    }

    /// A bulleted list.
    pub fn bullets<S: AsRef<str>>(
        &mut self,
        items: impl IntoIterator<Item = S>,
    ) -> &mut MarkdownReport {
        let lines: String = items
            .into_iter()
            .map(|i| format!("- {}\n", i.as_ref().replace('\n', " ")))
            .collect();
        self.push(lines)
    }

    /// A table.
    pub fn table(&mut self, table: &Table) -> &mut MarkdownReport {
        self.push(table.to_markdown())
    }

    /// An image, `path` relative to the report's folder (paths with spaces are wrapped in
    /// `<…>` so that the link still parses).
    pub fn image(&mut self, alt: &str, path: &str) -> &mut MarkdownReport {
        let alt = alt.replace(['[', ']', '\n'], " ");
        let target = if path.contains(' ') {
            format!("<{path}>")
        } else {
            path.to_string()
        };
        self.push(format!("![{alt}]({target})\n"))
    }

    /// A fenced code block (for a command line or a configuration).
    pub fn code(&mut self, language: &str, text: &str) -> &mut MarkdownReport {
        // A fence longer than any backtick run inside keeps the block closed.
        let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
        let fence = "`".repeat(longest.max(2) + 1);
        self.push(format!("{fence}{language}\n{}\n{fence}\n", text.trim_end()))
    }

    /// The report as Markdown: blocks separated by blank lines, ending in one newline.
    pub fn to_markdown(&self) -> String {
        let mut out = format!("# {}\n", self.title.replace('\n', " "));
        for b in &self.blocks {
            out.push('\n');
            out.push_str(b);
        }
        out
    }

    /// Writes the report to `path`, atomically.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        write_atomic(path, self.to_markdown().as_bytes())
    }
}
