//! The crate's layers point one way: a module uses only the modules of
//! layers below it (see the order in `src/lib.rs`). Doc links may point
//! anywhere; code may not.

use std::path::{Path, PathBuf};

/// Lowest first, as in `src/lib.rs`.
const LAYERS: &[&str] = &[
    "sys",
    "chain",
    "env",
    "transport",
    "tls",
    "grpc",
    "handshake",
    "reattach",
    "log",
    "proto",
    "terraform",
    "broker",
    "server",
    "client",
    "probe",
    "echo",
];

fn sources(module: &str) -> Vec<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let file = src.join(format!("{module}.rs"));
    if file.exists() {
        return vec![file];
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(src.join(module))
        .unwrap_or_else(|e| panic!("src/{module}: {e}"))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .collect();
    files.sort();
    files
}

/// The modules that `text`'s code (not its comments) names as `crate::x`.
fn used(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        for (at, _) in code.match_indices("crate::") {
            let name: String = code[at + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            names.push(name);
        }
    }
    names
}

#[test]
fn every_module_uses_only_lower_layers() {
    let mut upward = Vec::new();
    for (level, module) in LAYERS.iter().enumerate() {
        for file in sources(module) {
            let text = std::fs::read_to_string(&file).unwrap();
            for name in used(&text) {
                match LAYERS.iter().position(|m| *m == name) {
                    Some(dep) if dep > level => {
                        upward.push(format!("{} uses crate::{name}", file.display()))
                    }
                    _ => {}
                }
            }
        }
    }
    upward.dedup();
    assert!(
        upward.is_empty(),
        "layers pointing up:\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_check_sees_an_upward_use() {
    assert_eq!(
        used("use crate::client::Client; // crate::echo"),
        ["client"]
    );
    assert!(used("/// [`X`](crate::server::X)").is_empty());
}
