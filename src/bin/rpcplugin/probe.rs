//! `rpcplugin probe`: a conformance report for any go-plugin plugin.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use rpcplugin::HandshakeConfig;
use rpcplugin::probe::{Probe, ProbeReport};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OnOff {
    On,
    Off,
}

#[derive(Debug, Args)]
pub(crate) struct ProbeArgs {
    /// The magic cookie, KEY=VALUE (default: go-plugin's examples'
    /// BASIC_PLUGIN=hello).
    #[arg(long, conflicts_with = "terraform", value_parser = parse_cookie)]
    cookie: Option<(String, String)>,
    /// Terraform's cookie, offering app versions 5 and 6.
    #[arg(long)]
    terraform: bool,
    /// App protocol versions to offer, e.g. 5,6 (default: 1, or 5,6 with
    /// --terraform).
    #[arg(long, value_delimiter = ',')]
    versions: Vec<u32>,
    /// Offer go-plugin's AutoMTLS.
    #[arg(long, value_enum, default_value = "on")]
    mtls: OnOff,
    /// Print the report as one JSON object (one per line with --launches).
    #[arg(long)]
    json: bool,
    /// Probe this many launches in a row; every one must pass.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    launches: u32,
    /// The plugin and its arguments.
    #[arg(last = true, required = true)]
    plugin: Vec<String>,
}

fn parse_cookie(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() && !value.is_empty() => {
            Ok((key.to_owned(), value.to_owned()))
        }
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

pub(crate) async fn run(args: ProbeArgs) -> ExitCode {
    let (handshake, versions) = match (&args.cookie, args.terraform) {
        (_, true) => (HandshakeConfig::terraform(6), vec![5, 6]),
        (Some((key, value)), false) => (HandshakeConfig::new(1, key, value), vec![1]),
        (None, false) => (HandshakeConfig::basic_example(), vec![1]),
    };
    let versions = if args.versions.is_empty() {
        versions
    } else {
        args.versions.clone()
    };
    let probe = Probe::new(handshake)
        .versions(versions)
        .mtls(args.mtls == OnOff::On);
    // Progress goes to a terminal only; piped output stays the report.
    let progress = args.launches > 1 && std::io::stderr().is_terminal();
    let mut failed = 0;
    let mut last: Option<ProbeReport> = None;
    for launch in 1..=args.launches {
        let mut command = std::process::Command::new(&args.plugin[0]);
        command.args(&args.plugin[1..]);
        // Ctrl-C or SIGTERM drops the probe, which kills the plugin's
        // process group: the plugin is in a group of its own, so the
        // terminal's signal never reached it.
        let report = tokio::select! {
            report = probe.run(command) => report,
            signal = crate::stop_signal() => {
                eprintln!("rpcplugin: {signal}: stopped; the plugin was killed");
                return ExitCode::from(130);
            }
        };
        if !report.passed() {
            failed += 1;
        }
        if args.json {
            println!("{}", report.to_json());
        } else if !report.passed() || launch == args.launches {
            println!("{report}");
        }
        if progress {
            eprint!("\rlaunch {launch}/{}: {failed} failed", args.launches);
            let _ = std::io::stderr().flush();
        }
        last = Some(report);
    }
    if progress {
        eprintln!();
    }
    if args.launches > 1 && !args.json {
        println!(
            "{} of {} launches passed",
            args.launches - failed,
            args.launches
        );
    }
    match (failed, last) {
        (0, Some(_)) => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}
