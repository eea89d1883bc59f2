//! What the host benchmarks share: run a host that prints `JSON: {...}`
//! measurements, gather them per configuration, print medians.

use std::process::Command;

#[path = "../../tests/common/mod.rs"]
pub mod common;

/// Measurements of one configuration, over all its runs.
#[derive(Default)]
pub struct Samples {
    pub first_reply_ms: Vec<f64>,
    pub put_us: Vec<f64>,
    pub get_us: Vec<f64>,
    pub kill_ms: Vec<f64>,
    pub peak_rss_kib: i64,
}

impl Samples {
    /// Runs `host` (which must pass) and adds what it measured.
    pub fn run(&mut self, host: &mut Command) {
        let run = common::run_capture(host);
        run.assert_pass();
        let json = run
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("JSON: "))
            .expect("the host printed its measurements");
        let report: serde_json::Value = serde_json::from_str(json).unwrap();
        self.first_reply_ms
            .extend(floats(&report["first_reply_ms"]));
        self.put_us.extend(floats(&report["put_us"]));
        self.get_us.extend(floats(&report["get_us"]));
        self.kill_ms.extend(floats(&report["kill_ms"]));
        let rss = report["plugin_peak_rss_kib"].as_i64().unwrap_or(0);
        self.peak_rss_kib = self.peak_rss_kib.max(rss);
    }
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
        .unwrap_or_default()
}

/// The `q` quantile (0.5 for the median).
pub fn quantile(xs: &[f64], q: f64) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let mut s = xs.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s[((s.len() - 1) as f64 * q) as usize]
}
