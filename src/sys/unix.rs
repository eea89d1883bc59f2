//! Unix: standard streams pointed elsewhere and back (`dup2`), and the
//! few system calls whose Linux form macOS lacks, each in its Linux and its
//! Apple form: close-on-exec sockets made in one call, a unix socket's
//! peer pid, an exit status read without reaping, and a process's start
//! time and zombie state (from `/proc` on Linux, from `proc_pidinfo` on
//! macOS).
//!
//! Everything else the crate does with the OS is POSIX and the same on
//! both. The Apple forms are type-checked in CI for `aarch64-apple-darwin`
//! and `x86_64-apple-darwin`; no macOS machine runs them here.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::process::ExitStatus;

use super::StdStream;

/// A standard stream's original descriptor, kept while the stream points
/// elsewhere.
#[derive(Debug)]
pub(crate) struct SavedStdio {
    stream: StdStream,
    copy: File,
}

/// A duplicate of fd 1 or 2 as it is now.
pub(crate) fn duplicate(stream: StdStream) -> io::Result<File> {
    let fd = match stream {
        StdStream::Stdout => io::stdout().as_fd().try_clone_to_owned()?,
        StdStream::Stderr => io::stderr().as_fd().try_clone_to_owned()?,
    };
    Ok(File::from(fd))
}

impl SavedStdio {
    /// Keeps a duplicate of fd 1 or 2 as it is now.
    pub(crate) fn save(stream: StdStream) -> io::Result<Self> {
        Ok(SavedStdio {
            stream,
            copy: duplicate(stream)?,
        })
    }

    /// The original, to write to while the stream points elsewhere.
    pub(crate) fn file(&self) -> io::Result<File> {
        self.copy.try_clone()
    }

    /// Points fd 1 or 2 at `to` (which may then be closed: the stream
    /// holds its own duplicate).
    pub(crate) fn point_to(&self, to: &impl AsFd) -> io::Result<()> {
        match self.stream {
            StdStream::Stdout => nix::unistd::dup2_stdout(to)?,
            StdStream::Stderr => nix::unistd::dup2_stderr(to)?,
        }
        Ok(())
    }

    /// Points the stream at its original again.
    pub(crate) fn restore(&self) -> io::Result<()> {
        self.point_to(&self.copy)
    }
}

/// Whether `reader` (a pipe) has data, or its end, within `millis`.
pub(crate) fn readable(reader: &impl AsFd, millis: u16) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let mut fds = [PollFd::new(reader.as_fd(), PollFlags::POLLIN)];
    !matches!(poll(&mut fds, PollTimeout::from(millis)), Ok(0))
}

#[cfg(target_vendor = "apple")]
fn set_cloexec(fd: &OwnedFd) -> nix::Result<()> {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map(drop)
}

/// A non-blocking, close-on-exec unix stream socket.
#[cfg(not(target_vendor = "apple"))]
pub(crate) fn unix_socket_nonblocking() -> nix::Result<OwnedFd> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
    socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
}

/// A non-blocking, close-on-exec unix stream socket (macOS: flags set
/// after creation).
#[cfg(target_vendor = "apple")]
pub(crate) fn unix_socket_nonblocking() -> nix::Result<OwnedFd> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::empty(),
        None,
    )?;
    set_cloexec(&fd)?;
    fcntl(&fd, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
    Ok(fd)
}

/// The pid of the process listening at the other end of a connected unix
/// socket, as the kernel saw it when it accepted.
#[cfg(not(target_vendor = "apple"))]
pub(crate) fn peer_pid(fd: &OwnedFd) -> Option<i32> {
    use nix::sys::socket::{getsockopt, sockopt};
    getsockopt(fd, sockopt::PeerCredentials)
        .ok()
        .map(|c| c.pid())
}

/// The pid of the process at the other end of a connected unix socket
/// (`LOCAL_PEERPID`).
#[cfg(target_vendor = "apple")]
pub(crate) fn peer_pid(fd: &OwnedFd) -> Option<i32> {
    use nix::sys::socket::{getsockopt, sockopt};
    getsockopt(fd, sockopt::LocalPeerPid).ok()
}

/// How our child `pid` exited, if it has, without reaping it: while it is
/// unreaped its pid, and so its process group id, cannot be reused, and
/// signalling the group reaches only what it left behind.
#[cfg(not(target_vendor = "apple"))]
pub(crate) fn exit_status_unreaped(pid: u32) -> Option<ExitStatus> {
    use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
    use nix::unistd::Pid;
    use std::os::unix::process::ExitStatusExt;
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    match waitid(Id::Pid(Pid::from_raw(i32::try_from(pid).ok()?)), flags) {
        Ok(WaitStatus::Exited(_, code)) => Some(ExitStatus::from_raw((code & 0xff) << 8)),
        Ok(WaitStatus::Signaled(_, signal, core)) => Some(ExitStatus::from_raw(
            signal as i32 | if core { 0x80 } else { 0 },
        )),
        _ => None,
    }
}

/// How our child `pid` exited, if it has, without reaping it (macOS:
/// `waitid` with `WNOWAIT`, which nix offers on Linux only).
#[cfg(target_vendor = "apple")]
#[allow(unsafe_code)]
pub(crate) fn exit_status_unreaped(pid: u32) -> Option<ExitStatus> {
    use nix::libc;
    use std::os::unix::process::ExitStatusExt;
    let id = libc::id_t::try_from(pid).ok()?;
    // SAFETY: siginfo_t is plain data, all zeroes a valid value; waitid
    // writes into it and reads nothing else of ours.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
    // SAFETY: `info` is a valid, exclusively borrowed siginfo_t.
    let rc = unsafe { libc::waitid(libc::P_PID, id, &mut info, flags) };
    if rc != 0 || info.si_pid == 0 {
        return None;
    }
    match info.si_code {
        libc::CLD_EXITED => Some(ExitStatus::from_raw((info.si_status & 0xff) << 8)),
        libc::CLD_KILLED => Some(ExitStatus::from_raw(info.si_status)),
        libc::CLD_DUMPED => Some(ExitStatus::from_raw(info.si_status | 0x80)),
        _ => None,
    }
}

/// When process `pid` started, in a unit of the platform's (clock ticks
/// since boot on Linux): with the pid, what tells one process from a later
/// one that reuses its pid. `None` when there is no such process.
#[cfg(not(target_vendor = "apple"))]
pub(crate) fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count
    // from the last ')'; the start time is field 22.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether process `pid` exists and runs (a plugin that is not our child):
/// signal 0 reaches it and it is no zombie. A pid that no process can have
/// does not run.
pub(crate) fn process_runs(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid).ok().filter(|&p| p > 0) else {
        return false;
    };
    let exists = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
    exists && !is_zombie(pid)
}

/// Whether process `pid` is a zombie (exited, not yet reaped).
#[cfg(not(target_vendor = "apple"))]
fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// The kernel's record of process `pid` (`proc_pidinfo`,
/// `PROC_PIDTBSDINFO`).
#[cfg(target_vendor = "apple")]
#[allow(unsafe_code)]
fn bsd_info(pid: i32) -> Option<nix::libc::proc_bsdinfo> {
    use nix::libc;
    // SAFETY: proc_bsdinfo is plain data; all zeroes is a valid value.
    let mut info: libc::proc_bsdinfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::proc_bsdinfo>();
    // SAFETY: the buffer is one exclusively borrowed proc_bsdinfo of
    // `size` bytes.
    let written = unsafe {
        libc::proc_pidinfo(
            pid,
            libc::PROC_PIDTBSDINFO,
            0,
            (&raw mut info).cast(),
            i32::try_from(size).ok()?,
        )
    };
    (usize::try_from(written).ok() == Some(size) && i64::from(info.pbi_pid) == i64::from(pid))
        .then_some(info)
}

/// When process `pid` started, in microseconds since the epoch.
#[cfg(target_vendor = "apple")]
pub(crate) fn start_time(pid: i32) -> Option<u64> {
    let info = bsd_info(pid)?;
    info.pbi_start_tvsec
        .checked_mul(1_000_000)?
        .checked_add(info.pbi_start_tvusec)
}

/// Whether process `pid` is a zombie (`SZOMB`).
#[cfg(target_vendor = "apple")]
fn is_zombie(pid: i32) -> bool {
    bsd_info(pid).is_some_and(|info| info.pbi_status == nix::libc::SZOMB)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockets_close_on_exec() {
        use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
        let socket = unix_socket_nonblocking().unwrap();
        let flags = FdFlag::from_bits_truncate(fcntl(&socket, FcntlArg::F_GETFD).unwrap());
        assert!(flags.contains(FdFlag::FD_CLOEXEC));
        let status = OFlag::from_bits_truncate(fcntl(&socket, FcntlArg::F_GETFL).unwrap());
        assert!(status.contains(OFlag::O_NONBLOCK));
    }

    #[test]
    fn our_process_has_a_start_time_and_is_no_zombie() {
        let me = std::process::id() as i32;
        assert!(start_time(me).is_some());
        assert!(!is_zombie(me));
        assert_eq!(start_time(i32::MAX), None);
    }
}
