//! Figures from benchmarks and long runs, collected into one table by `scripts/bench`.
//!
//! Each program prints its own report as before, and also calls [`record`] for every
//! figure worth comparing. When `REKEY_FIGURES` names a file, the figure is appended to it
//! as one tab-separated line: `group, figure, value, baseline, ratio`. Without it nothing is
//! written, so a benchmark run by hand behaves as it always did.

use std::io::Write;

/// The environment variable that names the figures file.
pub const FIGURES_ENV: &str = "REKEY_FIGURES";

/// Records one figure: `value` (with its unit, e.g. `"4639 req/s"`) measured against
/// `baseline` (what it is compared with, e.g. `"GET /healthz 60809 req/s"`, or `""`),
/// and the ratio of the two when there is one (a ratio that is not finite, say over a
/// baseline of zero, is left blank).
pub fn record(group: &str, figure: &str, value: &str, baseline: &str, ratio: Option<f64>) {
    let Some(path) = std::env::var_os(FIGURES_ENV) else {
        return;
    };
    let clean = |s: &str| s.replace(['\t', '\n', '\r'], " ");
    let ratio = ratio
        .filter(|r| r.is_finite())
        .map(|r| format!("{r:.2}×"))
        .unwrap_or_default();
    let line = format!(
        "{}\t{}\t{}\t{}\t{}\n",
        clean(group),
        clean(figure),
        clean(value),
        clean(baseline),
        ratio
    );
    // One write per line, opened in append mode: lines from programs that run one after
    // another (or even at once) never interleave inside a line.
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = written {
        eprintln!("could not record a figure in {}: {e}", path.to_string_lossy());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_one_clean_line_per_figure() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("figures.tsv");
        std::env::set_var(FIGURES_ENV, &file);
        record(
            "http",
            "forgot\tthroughput",
            "4639 req/s",
            "healthz 60809 req/s",
            Some(0.0763),
        );
        record("crash", "kills", "200", "", None);
        record("http", "p99", "12 ms", "nothing 0 ms", Some(f64::INFINITY));
        std::env::remove_var(FIGURES_ENV);
        let text = std::fs::read_to_string(&file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "http\tforgot throughput\t4639 req/s\thealthz 60809 req/s\t0.08×",
                "crash\tkills\t200\t\t",
                "http\tp99\t12 ms\tnothing 0 ms\t"
            ]
        );
    }
}
