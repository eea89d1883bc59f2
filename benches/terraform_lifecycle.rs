//! Benchmark: Terraform 1.0.3's `plan`, `apply` and `destroy` of a
//! one-resource configuration with our example provider
//! (`examples/terraform_provider`, release) beside the same with the real
//! Go terraform-provider-null 2.1.2, AutoMTLS on and off, and Terraform's
//! own time with no provider at all. A provider's share is a command's
//! time minus Terraform's own in the same round (the two run one after the
//! other, so that the machine's slower spells fall on both), its median
//! over the rounds; the last column is ours over null's.
//!
//! ```text
//! cargo bench --features terraform --bench terraform_lifecycle   # needs .ci/install-peers
//! ```

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::time::Instant;

/// Rounds; medians of these. In a round, each command runs with Terraform
/// alone, our provider and null's one after the other. `TF_BENCH_ROUNDS`
/// sets another count (more rounds, tighter medians).
const ROUNDS: usize = 5;

const COMMANDS: [&[&str]; 3] = [
    &["plan"],
    &["apply", "-auto-approve"],
    &["destroy", "-auto-approve"],
];

/// A working directory for one provider: its configuration and a CLI
/// configuration whose `dev_overrides` points at the provider binary.
struct Workspace {
    name: &'static str,
    dir: tempfile::TempDir,
}

impl Workspace {
    /// `provider` is `(local name, source address, binary)`, none for
    /// Terraform alone; `body` is the configuration after `terraform {}`.
    fn new(name: &'static str, provider: Option<(&str, &str, &Path)>, body: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        common::terraform_cli_config(dir.path(), provider);
        let required = match provider {
            Some((local, source, _)) => {
                format!("required_providers {{\n {local} = {{ source = \"{source}\" }}\n }}")
            }
            None => String::new(),
        };
        std::fs::write(
            dir.path().join("main.tf"),
            format!("terraform {{\n {required}\n}}\n{body}"),
        )
        .unwrap();
        Workspace { name, dir }
    }

    /// Runs `terraform ARGS` (which must succeed); its wall time in ms.
    fn time(&self, args: &[&str], tls: bool) -> f64 {
        let mut command = common::terraform_command(
            "terraform",
            args,
            self.dir.path(),
            &self.dir.path().join("cli.tfrc"),
        );
        if !tls {
            command.env("TF_DISABLE_PLUGIN_TLS", "1");
        }
        let start = Instant::now();
        let output = command.output().unwrap();
        let ms = start.elapsed().as_secs_f64() * 1e3;
        assert!(
            output.status.success(),
            "{} terraform {args:?}: {}{}",
            self.name,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        ms
    }
}

fn median(xs: &[f64]) -> f64 {
    let mut s = xs.to_vec();
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}

fn main() {
    let rounds = std::env::var("TF_BENCH_ROUNDS").map_or(ROUNDS, |n| {
        n.parse()
            .ok()
            .filter(|&n: &usize| n > 0)
            .unwrap_or_else(|| {
                panic!("TF_BENCH_ROUNDS={n:?}: expected a count of rounds, 1 or more")
            })
    });
    let ours = common::example("terraform_provider");
    let null = common::terraform_peer("terraform-provider-null_v2.1.2_x4");
    let workspaces = [
        Workspace::new(
            "terraform alone",
            None,
            "output \"x\" {\n value = \"y\"\n}\n",
        ),
        Workspace::new(
            "our provider",
            Some(("example", "example.com/rpcplugin/example", &ours)),
            "resource \"example_file\" \"f\" {\n path = \"out.txt\"\n content = \"hello\"\n}\n",
        ),
        Workspace::new(
            "null provider",
            Some(("null", "hashicorp/null", &null)),
            "resource \"null_resource\" \"n\" {}\n",
        ),
    ];
    // times[workspace][tls][command]
    let mut times = vec![vec![vec![Vec::new(); COMMANDS.len()]; 2]; workspaces.len()];
    // One untimed pass: the binaries into the page cache.
    for ws in &workspaces {
        for args in COMMANDS {
            ws.time(args, true);
        }
    }
    // Each workspace still sees plan, apply, destroy in that order.
    for _ in 0..rounds {
        for (t, tls) in [true, false].into_iter().enumerate() {
            for (c, args) in COMMANDS.iter().enumerate() {
                for (w, ws) in workspaces.iter().enumerate() {
                    times[w][t][c].push(ws.time(args, tls));
                }
            }
        }
    }
    println!(
        "Terraform 1.0.3, one resource, medians of {rounds} rounds (ms); share = minus Terraform alone in the same round"
    );
    println!(
        "{:<8} {:<6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>12}",
        "command", "TLS", "alone", "ours", "null", "our share", "null share", "ours / null"
    );
    for (c, args) in COMMANDS.iter().enumerate() {
        for (t, tls) in ["on", "off"].into_iter().enumerate() {
            let [alone, ours, null] = [0, 1, 2].map(|w| median(&times[w][t][c]));
            let share = |w: usize| {
                let paired: Vec<f64> = (times[w][t][c].iter())
                    .zip(&times[0][t][c])
                    .map(|(with, alone)| with - alone)
                    .collect();
                median(&paired)
            };
            let (our_share, null_share) = (share(1), share(2));
            println!(
                "{:<8} {:<6} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>10.1} {:>11.2}x",
                args[0],
                tls,
                alone,
                ours,
                null,
                our_share,
                null_share,
                our_share / null_share
            );
        }
    }
}
