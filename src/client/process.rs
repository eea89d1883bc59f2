//! Starting the plugin process: checksum, environment, its own process
//! group (a new console process group on Windows), the first stdout line,
//! and waiting for its exit without reaping it.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::{Child, ChildStdout};
#[cfg(unix)]
use tokio::signal::unix::{SignalKind, signal};
use tokio::time::Instant;

use super::ClientError;
use super::pipe::{Line, LineReader, MAX_HANDSHAKE_LINE, printable};
use super::stderr::Tail;
use crate::env;
use crate::handshake::{HandshakeConfig, HandshakeError};
use crate::transport::PortRange;

/// How long to let the stderr reader catch up after the plugin exited, so
/// that an error report carries the plugin's last words.
const STDERR_SETTLE: Duration = Duration::from_millis(100);

/// How long a plugin that closed its stdout without a line may take to
/// exit before we report it as still running: a process that closes stdout
/// on its way out exits within milliseconds.
const EXIT_SETTLE: Duration = Duration::from_millis(500);

/// `command` as a go-plugin host runs a plugin: its own environment plus
/// the cookie, `PLUGIN_MIN_PORT`/`PLUGIN_MAX_PORT`,
/// `PLUGIN_PROTOCOL_VERSIONS` and, for AutoMTLS, `PLUGIN_CLIENT_CERT`;
/// stdin closed, stdout and stderr piped, in a process group of its own
/// (on Windows a console process group of its own, so a Ctrl-C in the
/// host's console does not reach it; its tree is then put in a job, see
/// [`Group`](super::group::Group)).
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
        .env(env::PLUGIN_MIN_PORT, ports.min().to_string())
        .env(env::PLUGIN_MAX_PORT, ports.max().to_string())
        .env(env::PLUGIN_PROTOCOL_VERSIONS, versions.join(","))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    own_group(&mut cmd);
    // One in our own environment must not reach the plugin, which would
    // then multiplex a connection we do not (go-plugin's host passes it on,
    // and breaks); `start` sets it when it asks.
    cmd.env_remove(env::PLUGIN_MULTIPLEX_GRPC);
    if let Some(pem) = client_cert_pem {
        cmd.env(env::PLUGIN_CLIENT_CERT, pem);
    }
    cmd
}

/// Starts the plugin in a process group of its own, which the host kills
/// as one and a terminal's Ctrl-C does not reach; on Windows in a console
/// process group of its own, for the same Ctrl-C reason (the tree the host
/// kills is a job there).
pub(crate) fn own_group(cmd: &mut tokio::process::Command) {
    #[cfg(unix)]
    cmd.process_group(0);
    #[cfg(windows)]
    cmd.creation_flags(windows_sys::Win32::System::Threading::CREATE_NEW_PROCESS_GROUP);
}

/// The file `exec` will run for `command`, found exactly as the child's
/// `execvp` finds it: a program with a slash relative to the command's
/// working directory; one without, in the child's `PATH` (the command's own
/// if it sets one, ours otherwise, `/bin:/usr/bin` when neither is set),
/// skipping what is not an executable file, each relative `PATH` entry
/// relative to the working directory.
///
/// On Windows only a program given with a directory (`.\\plugin.exe`,
/// `C:\\plugins\\p`, with `.exe` appended as the standard library's spawn
/// appends it) is resolved: Windows searches the host's own directory and system
/// directories before `PATH`, so a file found here by name could be
/// another than the one Windows runs.
#[cfg(unix)]
pub(crate) fn resolve_program(command: &std::process::Command) -> Result<PathBuf, io::Error> {
    let program = Path::new(command.get_program());
    let in_dir = in_dir_of(command);
    if program.as_os_str().as_encoded_bytes().contains(&b'/') {
        return Ok(in_dir(program));
    }
    let path_var = match command.get_envs().find(|(key, _)| *key == "PATH") {
        Some((_, value)) => value.map(ToOwned::to_owned),
        None => std::env::var_os("PATH"),
    }
    .unwrap_or_else(|| "/bin:/usr/bin".into());
    std::env::split_paths(&path_var)
        .map(|entry| in_dir(&entry).join(program))
        .find(|candidate| {
            candidate.is_file()
                && nix::unistd::access(candidate, nix::unistd::AccessFlags::X_OK).is_ok()
        })
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("no executable {} in PATH", program.display()),
            )
        })
}

/// See the unix form.
#[cfg(windows)]
pub(crate) fn resolve_program(command: &std::process::Command) -> Result<PathBuf, io::Error> {
    let program = Path::new(command.get_program());
    let bytes = program.as_os_str().as_encoded_bytes();
    if !bytes.contains(&b'/') && !bytes.contains(&b'\\') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "give {} with its directory: Windows finds a bare program name in places besides PATH",
                program.display()
            ),
        ));
    }
    // As the standard library's spawn: `.exe` appended unless the name
    // ends with it, if that file exists; else the name as given.
    let path = in_dir_of(command)(program);
    if path
        .to_string_lossy()
        .to_ascii_lowercase()
        .ends_with(".exe")
    {
        return Ok(path);
    }
    let mut exe = path.clone().into_os_string();
    exe.push(".exe");
    let exe = PathBuf::from(exe);
    Ok(if exe.is_file() { exe } else { path })
}

/// `path` as the command's child sees it: relative to the command's
/// working directory, if it sets one.
fn in_dir_of(command: &std::process::Command) -> impl Fn(&Path) -> PathBuf + '_ {
    let dir = command.get_current_dir();
    move |path: &Path| match dir {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path.to_owned(),
    }
}

/// Refuses a binary whose SHA-256 is not `expected` (compared in constant
/// time), before anything runs.
pub(crate) fn verify_checksum(
    command: &std::process::Command,
    expected: &[u8; 32],
) -> Result<(), ClientError> {
    let read_err = |path: PathBuf| move |source| ClientError::ChecksumRead { path, source };
    let program = PathBuf::from(command.get_program());
    let path = resolve_program(command).map_err(read_err(program))?;
    let bytes = std::fs::read(&path).map_err(read_err(path.clone()))?;
    let actual = ring::digest::digest(&ring::digest::SHA256, &bytes);
    // Every byte is compared, with no early exit.
    let differing = (actual.as_ref().iter().zip(expected)).fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if actual.as_ref().len() != expected.len() || differing != 0 {
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
    /// The line, and the rest of stdout to drain.
    Line(String, LineReader<ChildStdout>),
    Failed(ClientError),
}

/// What ended the wait for the first line.
enum Waited {
    Read(Option<Line>),
    Exited,
    Timeout,
}

/// Reads the first stdout line by `deadline`. A line that was read wins
/// over an exit seen at the same moment; a line that is too long, not
/// UTF-8, or a stdout closed without one fails at once. The plugin is not
/// reaped here, so its process group stays ours to kill.
pub(crate) async fn first_line(
    child: &mut Child,
    deadline: Instant,
    timeout: Duration,
    tail: &Tail,
) -> FirstLine {
    let pid = child.id().expect("an unreaped child has a pid");
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut reader = LineReader::new(stdout, MAX_HANDSHAKE_LINE);
    let waited = {
        let read = reader.next_line_or_cap();
        tokio::pin!(read);
        let waited = tokio::select! {
            biased;
            line = &mut read => Waited::Read(line),
            () = wait_exit(pid) => Waited::Exited,
            () = tokio::time::sleep_until(deadline) => Waited::Timeout,
        };
        match waited {
            // What it printed before it exited is in the pipe already.
            Waited::Exited => match tokio::time::timeout(STDERR_SETTLE, &mut read).await {
                Ok(Some(line)) => Waited::Read(Some(line)),
                _ => Waited::Exited,
            },
            other => other,
        }
    };
    let line = match waited {
        Waited::Read(Some(line)) => line,
        Waited::Read(None) => return FirstLine::Failed(stdout_closed(pid, deadline, tail).await),
        Waited::Exited => return FirstLine::Failed(exited(pid, tail).await),
        Waited::Timeout => {
            return FirstLine::Failed(ClientError::StartTimeout {
                timeout,
                stderr: tail.lines(),
            });
        }
    };
    let refused = |source| ClientError::Handshake {
        line: printable(&line.lossy()).chars().take(200).collect(),
        source: Box::new(source),
        stderr: tail.lines(),
    };
    if line.cut() {
        return FirstLine::Failed(refused(HandshakeError::LineTooLong {
            limit: MAX_HANDSHAKE_LINE,
        }));
    }
    match String::from_utf8(line.bytes.clone()) {
        Ok(text) => FirstLine::Line(text, reader),
        Err(err) => FirstLine::Failed(refused(HandshakeError::NotUtf8 {
            at: err.utf8_error().valid_up_to(),
        })),
    }
}

/// Stdout ended without a line: the plugin exited, or is about to, or
/// closed stdout and runs on (it can never print its line now).
async fn stdout_closed(pid: u32, deadline: Instant, tail: &Tail) -> ClientError {
    let settle = deadline.min(Instant::now() + EXIT_SETTLE);
    match tokio::time::timeout_at(settle, wait_exit(pid)).await {
        Ok(()) => exited(pid, tail).await,
        Err(_) => {
            tokio::time::sleep(STDERR_SETTLE).await;
            ClientError::StdoutClosed {
                stderr: tail.lines(),
            }
        }
    }
}

async fn exited(pid: u32, tail: &Tail) -> ClientError {
    tokio::time::sleep(STDERR_SETTLE).await;
    ClientError::ExitedBeforeHandshake {
        status: crate::sys::exit_status_unreaped(pid).unwrap_or_default(),
        stderr: tail.lines(),
    }
}

/// How often an exit is looked for without reaping when no SIGCHLD came
/// (`waitid` with `WNOWAIT` has no asynchronous form): a backstop only.
/// SIGCHLD wakes [`wait_exit`] when a child exits; polling every 10 ms
/// instead made `Client::kill` take 11.5 ms where it took 1.1 ms
/// (`cargo bench --bench host_pair`, median of 20).
#[cfg(unix)]
const EXIT_POLL: Duration = Duration::from_millis(100);

/// Returns once our child `pid` has exited, leaving it unreaped.
#[cfg(unix)]
pub(crate) async fn wait_exit(pid: u32) {
    wait_exit_every(pid, EXIT_POLL).await;
}

/// [`wait_exit`], looking every `backstop` when no SIGCHLD came (every
/// tenth of it when SIGCHLD cannot be listened for).
#[cfg(unix)]
pub(crate) async fn wait_exit_every(pid: u32, backstop: Duration) {
    // Registered before the first look, so an exit after it is signalled.
    let mut sigchld = signal(SignalKind::child()).ok();
    while crate::sys::exit_status_unreaped(pid).is_none() {
        match &mut sigchld {
            Some(sigchld) => {
                let _ = tokio::time::timeout(backstop, sigchld.recv()).await;
            }
            None => tokio::time::sleep(backstop / 10).await,
        }
    }
}

/// How often Windows is asked whether a child has exited: there is no
/// SIGCHLD, and a wait on the process handle would hold a thread until the
/// plugin exits. 10 ms keeps `Client::kill` within a few ms of the exit.
#[cfg(windows)]
const EXIT_POLL_WINDOWS: Duration = Duration::from_millis(10);

/// Returns once our child `pid` has exited (its `Child` still holds its
/// handle, so the pid stays its own).
#[cfg(windows)]
pub(crate) async fn wait_exit(pid: u32) {
    wait_exit_every(pid, EXIT_POLL_WINDOWS).await;
}

/// [`wait_exit`], looking every `interval`.
#[cfg(windows)]
pub(crate) async fn wait_exit_every(pid: u32, interval: Duration) {
    while crate::sys::exit_status_unreaped(pid).is_none() {
        tokio::time::sleep(interval).await;
    }
}

/// Drains the plugin's stdout after the handshake line, whatever it holds,
/// so the plugin never blocks on a full pipe or dies of a closed one;
/// go-plugin hosts discard these lines, we log them.
pub(crate) async fn drain_stdout(plugin: String, mut stdout: LineReader<ChildStdout>) {
    while let Some(line) = stdout.next_line().await {
        tracing::debug!(target: "rpcplugin::plugin", plugin, stdout = %printable(&line.lossy()), "plugin stdout after the handshake line");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_compares_and_names_both() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plugin");
        std::fs::write(&path, b"hello").unwrap();
        let path_cmd = std::process::Command::new(&path);
        // SHA-256("hello")
        let good: [u8; 32] = *b"\x2c\xf2\x4d\xba\x5f\xb0\xa3\x0e\x26\xe8\x3b\x2a\xc5\xb9\xe2\x9e\x1b\x16\x1e\x5c\x1f\xa7\x42\x5e\x73\x04\x33\x62\x93\x8b\x98\x24";
        verify_checksum(&path_cmd, &good).unwrap();
        let err = verify_checksum(&path_cmd, &[0; 32]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"),
            "{text}"
        );
        assert!(
            text.contains(&"0".repeat(64)) && text.contains(path.to_str().unwrap()),
            "{text}"
        );
        let absent = std::process::Command::new(dir.path().join("absent"));
        let missing = verify_checksum(&absent, &good).unwrap_err();
        assert!(matches!(missing, ClientError::ChecksumRead { .. }));
    }

    #[cfg(unix)]
    #[test]
    fn programs_are_found_as_exec_finds_them() {
        use std::os::unix::fs::PermissionsExt;
        use std::process::Command;
        let sh = resolve_program(&Command::new("sh")).unwrap();
        assert!(sh.is_absolute() && sh.ends_with("sh"), "{}", sh.display());
        assert_eq!(
            resolve_program(&Command::new("./x")).unwrap(),
            PathBuf::from("./x")
        );
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("./x");
        cmd.current_dir(dir.path());
        assert_eq!(resolve_program(&cmd).unwrap(), dir.path().join("./x"));

        // The child's PATH, not ours; a file without the exec bit is skipped.
        let (first, second) = (dir.path().join("a"), dir.path().join("b"));
        for d in [&first, &second] {
            std::fs::create_dir(d).unwrap();
            std::fs::write(d.join("plugin"), b"#!/bin/sh\n").unwrap();
        }
        let exec = std::fs::Permissions::from_mode(0o755);
        std::fs::set_permissions(second.join("plugin"), exec).unwrap();
        let mut cmd = Command::new("plugin");
        cmd.env("PATH", std::env::join_paths([&first, &second]).unwrap());
        assert_eq!(resolve_program(&cmd).unwrap(), second.join("plugin"));
        cmd.env("PATH", &first);
        assert!(resolve_program(&cmd).is_err());
        // Relative PATH entries are relative to the working directory.
        let mut cmd = Command::new("plugin");
        cmd.env("PATH", "b").current_dir(dir.path());
        assert_eq!(resolve_program(&cmd).unwrap(), dir.path().join("b/plugin"));
    }
}
