//! The README's demo runs on a fresh build: three example plugins
//! launched, used and shut down, nothing left behind.

mod common;

#[test]
fn the_demo_runs() {
    for plugin in ["kv_plugin", "echo_plugin", "counter_plugin"] {
        common::example(plugin);
    }
    let run = common::run_capture(&mut std::process::Command::new(common::example("demo")));
    assert!(run.status.success(), "{}\n{}", run.stdout, run.stderr);
    for line in [
        "kv_plugin: 200 Put and 200 Get calls, each value read back",
        "echo_plugin: 20000 samples of float32[4],float32[1],uint8[84,84,3] (21188 bytes each) streamed and acknowledged",
        "each calling back into this host's AddHelper through the broker (10 callbacks); total = 55",
        "demo: done in",
    ] {
        assert!(run.stdout.contains(line), "{line:?}:\n{}", run.stdout);
    }
    assert_eq!(
        run.stdout.matches("AutoMTLS on").count(),
        3,
        "{}",
        run.stdout
    );
    assert_eq!(
        run.stdout.matches("socket removed").count(),
        3,
        "{}",
        run.stdout
    );
}
