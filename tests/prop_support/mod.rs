//! What the property-test files share: their proptest configuration.

use proptest::test_runner::{Config, FileFailurePersistence};

/// Cases per property when `PROPTEST_CASES` is not set: enough to shake out
/// the parsers in `cargo test` within seconds; `.ci/run` asks for 20000.
pub const CASES: u32 = 1000;

/// `proptest`'s defaults (which read `PROPTEST_CASES` and the other
/// `PROPTEST_*` variables), with `default_cases` when `PROPTEST_CASES` is
/// not set, and failing seeds kept in `seeds` (a file under
/// `tests/proptest-regressions/`, written only when a property fails).
pub fn config(seeds: &'static str, default_cases: u32) -> Config {
    let mut config = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = default_cases;
    }
    config.failure_persistence = Some(Box::new(FileFailurePersistence::Direct(seeds)));
    config
}
