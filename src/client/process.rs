//! Starting the plugin process and ending it: checksum, environment,
//! process group, the first stdout line, and killing the whole group.

use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout};

use super::ClientError;
use super::stderr::Tail;
use crate::{HandshakeConfig, PortRange};

/// How long to let the stderr reader catch up after the plugin exited, so
/// that an error report carries the plugin's last words.
const STDERR_SETTLE: Duration = Duration::from_millis(100);

/// `command` as a go-plugin host runs a plugin: its own environment plus
/// the cookie, `PLUGIN_MIN_PORT`/`PLUGIN_MAX_PORT`,
/// `PLUGIN_PROTOCOL_VERSIONS` and, for AutoMTLS, `PLUGIN_CLIENT_CERT`;
/// stdin closed, stdout and stderr piped, in a process group of its own.
pub(crate) fn plugin_command(
    command: std::process::Command,
    handshake: &HandshakeConfig,
    versions: &[u32],
    ports: PortRange,
    client_cert_pem: Option<&str>,
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::from(command);
    let versions: Vec<String> = versions.iter().map(u32::to_string).collect();
    cmd.env(&handshake.magic_cookie_key, &handshake.magic_cookie_value)
        .env("PLUGIN_MIN_PORT", ports.min().to_string())
        .env("PLUGIN_MAX_PORT", ports.max().to_string())
        .env("PLUGIN_PROTOCOL_VERSIONS", versions.join(","))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0);
    if let Some(pem) = client_cert_pem {
        cmd.env("PLUGIN_CLIENT_CERT", pem);
    }
    cmd
}

/// Where a program named without a slash is found, as `execvp` does.
pub(crate) fn resolve_program(program: &Path) -> PathBuf {
    if program.components().count() > 1 {
        return program.to_owned();
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| program.to_owned())
}

/// Refuses a binary whose SHA-256 is not `expected` (compared in constant
/// time), before anything runs.
pub(crate) fn verify_checksum(program: &Path, expected: &[u8; 32]) -> Result<(), ClientError> {
    let path = resolve_program(program);
    let bytes = std::fs::read(&path).map_err(|source| ClientError::ChecksumRead {
        path: path.clone(),
        source,
    })?;
    let actual = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes);
    if aws_lc_rs::constant_time::verify_slices_are_equal(actual.as_ref(), expected).is_err() {
        return Err(ClientError::ChecksumMismatch {
            path,
            expected: hex(expected),
            actual: hex(actual.as_ref()),
        });
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The outcome of waiting for the handshake line.
pub(crate) enum FirstLine {
    Line(String, ChildStdout),
    Failed(ClientError),
}

/// Reads the first stdout line within `timeout`, unless the process exits
/// first.
pub(crate) async fn first_line(child: &mut Child, timeout: Duration, tail: &Tail) -> FirstLine {
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    let outcome = tokio::select! {
        read = reader.read_line(&mut line) => match read {
            Ok(n) if n > 0 => None,
            // EOF or an error: the plugin closed stdout; report its exit.
            _ => Some(exited(child, tail).await),
        },
        status = child.wait() => Some(match status {
            Ok(status) => exited_with(status, tail).await,
            Err(source) => ClientError::Spawn { program: "plugin".into(), source },
        }),
        () = tokio::time::sleep(timeout) => Some(ClientError::StartTimeout {
            timeout,
            stderr: tail.lines(),
        }),
    };
    match outcome {
        None => FirstLine::Line(line, reader.into_inner()),
        Some(err) => FirstLine::Failed(err),
    }
}

async fn exited(child: &mut Child, tail: &Tail) -> ClientError {
    match child.wait().await {
        Ok(status) => exited_with(status, tail).await,
        Err(source) => ClientError::Spawn {
            program: "plugin".into(),
            source,
        },
    }
}

async fn exited_with(status: ExitStatus, tail: &Tail) -> ClientError {
    tokio::time::sleep(STDERR_SETTLE).await;
    ClientError::ExitedBeforeHandshake {
        status,
        stderr: tail.lines(),
    }
}

/// Drains the plugin's stdout after the handshake line, so it never blocks
/// on a full pipe; go-plugin hosts discard these lines, we log them.
pub(crate) async fn drain_stdout(plugin: String, stdout: ChildStdout) {
    let mut lines = BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::debug!(target: "rpcplugin::plugin", plugin, stdout = %line, "plugin stdout after the handshake line");
    }
}

/// SIGKILLs the plugin's whole process group: the plugin and every child
/// it forked. A group that is already gone is not an error.
pub(crate) fn kill_group(pgid: u32) -> io::Result<()> {
    match killpg(Pid::from_raw(pgid as i32), Signal::SIGKILL) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(errno) => Err(errno.into()),
    }
}

/// Whether a process exists (signal 0), for a plugin that is not our child.
/// A zombie counts as gone.
pub(crate) fn pid_alive(pid: u32) -> bool {
    let exists = nix::sys::signal::kill(Pid::from_raw(pid as i32), None).is_ok();
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    });
    exists && !zombie
}

/// Kills the group and reaps the plugin.
pub(crate) async fn kill_and_reap(child: &mut Child, pgid: u32) -> Option<ExitStatus> {
    let _ = kill_group(pgid);
    child.wait().await.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_compares_and_names_both() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plugin");
        std::fs::write(&path, b"hello").unwrap();
        // SHA-256("hello")
        let good: [u8; 32] = *b"\x2c\xf2\x4d\xba\x5f\xb0\xa3\x0e\x26\xe8\x3b\x2a\xc5\xb9\xe2\x9e\x1b\x16\x1e\x5c\x1f\xa7\x42\x5e\x73\x04\x33\x62\x93\x8b\x98\x24";
        verify_checksum(&path, &good).unwrap();
        let err = verify_checksum(&path, &[0; 32]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"),
            "{text}"
        );
        assert!(
            text.contains(&"0".repeat(64)) && text.contains(path.to_str().unwrap()),
            "{text}"
        );
        let missing = verify_checksum(&dir.path().join("absent"), &good).unwrap_err();
        assert!(matches!(missing, ClientError::ChecksumRead { .. }));
    }

    #[test]
    fn programs_without_a_slash_are_found_on_path() {
        assert_eq!(resolve_program(Path::new("sh")).file_name().unwrap(), "sh");
        assert!(resolve_program(Path::new("sh")).is_absolute());
        assert_eq!(resolve_program(Path::new("./x")), PathBuf::from("./x"));
    }
}
