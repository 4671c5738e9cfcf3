//! Progress bars for the long training runs, and log lines that survive without a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar on a terminal (hidden otherwise) over `len` steps, labelled `what`.
pub fn bar(len: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>14} [{elapsed_precise}] {wide_bar} {pos}/{len} steps  {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix(what.to_string());
    bar
}

/// A line above the bar, or on stderr when the bar is hidden (a log should still show
/// progress).
pub fn say(bar: &ProgressBar, line: String) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}

/// A line on stderr.
pub fn note(line: impl AsRef<str>) {
    eprintln!("{}", line.as_ref());
}

/// Runs `f`, then logs how long the stage `what` took.
pub fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let start = std::time::Instant::now();
    let out = f();
    note(format!("{what}: {:.1} s", start.elapsed().as_secs_f64()));
    out
}
