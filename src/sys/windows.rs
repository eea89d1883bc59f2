//! Windows: processes by handle (exit status, start time, whether one
//! still runs), job objects for a plugin's process tree, a process's
//! parent, and standard handles pointed elsewhere and back
//! (`SetStdHandle`, which Rust's `std::io::stdout` and `stderr` read at
//! every write).
//!
//! A process's pid cannot be reused while any handle to it is open: a
//! child of ours keeps its pid until the `Child` (which holds its handle)
//! is waited for, as an unreaped child does on unix. Every function that
//! takes a pid opens its own handle, closed when it returns.
//!
//! Type-checked in CI for `x86_64-pc-windows-gnu`; the README says where
//! the Windows tests run.

use std::fs::File;
use std::io;
use std::os::windows::io::{AsHandle, AsRawHandle, FromRawHandle, OwnedHandle, RawHandle};
use std::os::windows::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use windows_sys::Win32::Foundation::{FILETIME, HANDLE, INVALID_HANDLE_VALUE, WAIT_OBJECT_0};
use windows_sys::Win32::System::Console::{
    GetStdHandle, STD_ERROR_HANDLE, STD_HANDLE, STD_OUTPUT_HANDLE, SetStdHandle,
};
use windows_sys::Win32::System::Diagnostics::ToolHelp::{
    CreateToolhelp32Snapshot, PROCESSENTRY32W, Process32FirstW, Process32NextW, TH32CS_SNAPPROCESS,
};
use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION, JobObjectExtendedLimitInformation,
    SetInformationJobObject, TerminateJobObject,
};
use windows_sys::Win32::System::Pipes::PeekNamedPipe;
use windows_sys::Win32::System::Threading::{
    GetExitCodeProcess, GetProcessTimes, OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION,
    PROCESS_SYNCHRONIZE, WaitForSingleObject,
};

use super::StdStream;

fn std_handle_id(stream: StdStream) -> STD_HANDLE {
    match stream {
        StdStream::Stdout => STD_OUTPUT_HANDLE,
        StdStream::Stderr => STD_ERROR_HANDLE,
    }
}

/// A standard stream's original handle, kept while the stream points
/// elsewhere.
#[derive(Debug)]
pub(crate) struct SavedStdio {
    stream: StdStream,
    /// The handle the stream had (not ours to close: it is the process's).
    original: usize,
    /// A duplicate of it, ours, to write through.
    copy: File,
}

/// A duplicate of the stream's handle as it is now.
pub(crate) fn duplicate(stream: StdStream) -> io::Result<File> {
    let handle = match stream {
        StdStream::Stdout => io::stdout().as_handle().try_clone_to_owned()?,
        StdStream::Stderr => io::stderr().as_handle().try_clone_to_owned()?,
    };
    Ok(File::from(handle))
}

impl SavedStdio {
    /// Keeps the stream's handle as it is now.
    #[allow(unsafe_code)]
    pub(crate) fn save(stream: StdStream) -> io::Result<Self> {
        // SAFETY: no pointer.
        let original = unsafe { GetStdHandle(std_handle_id(stream)) };
        if original.is_null() || original == INVALID_HANDLE_VALUE {
            return Err(io::Error::other("the process has no such standard handle"));
        }
        Ok(SavedStdio {
            stream,
            original: original as usize,
            copy: duplicate(stream)?,
        })
    }

    /// The original, to write to while the stream points elsewhere.
    pub(crate) fn file(&self) -> io::Result<File> {
        self.copy.try_clone()
    }

    /// Points the stream at `to`, which must stay open until
    /// [`restore`](Self::restore): Windows keeps the handle value, not a
    /// duplicate.
    pub(crate) fn point_to(&self, to: &impl AsRawHandle) -> io::Result<()> {
        set_std_handle(self.stream, to.as_raw_handle() as HANDLE)
    }

    /// Points the stream at its original handle again.
    pub(crate) fn restore(&self) -> io::Result<()> {
        set_std_handle(self.stream, self.original as HANDLE)
    }
}

#[allow(unsafe_code)]
fn set_std_handle(stream: StdStream, handle: HANDLE) -> io::Result<()> {
    // SAFETY: the handle is only stored, not used, by this call.
    match unsafe { SetStdHandle(std_handle_id(stream), handle) } {
        0 => Err(io::Error::last_os_error()),
        _ => Ok(()),
    }
}

/// How often a pipe is looked at while waiting for it to be readable:
/// anonymous pipes cannot be waited on, so [`readable`] peeks.
const PEEK_EVERY: Duration = Duration::from_millis(2);

/// Whether `reader` (an anonymous pipe) has data, or its writers are all
/// gone, within `millis`.
#[allow(unsafe_code)]
pub(crate) fn readable(reader: &impl AsRawHandle, millis: u16) -> bool {
    let deadline = Instant::now() + Duration::from_millis(millis.into());
    loop {
        let mut available = 0u32;
        // SAFETY: a valid pipe handle; no buffer (null, size 0) and one
        // exclusively borrowed u32 for the count.
        let ok = unsafe {
            PeekNamedPipe(
                reader.as_raw_handle() as HANDLE,
                std::ptr::null_mut(),
                0,
                std::ptr::null_mut(),
                &mut available,
                std::ptr::null_mut(),
            )
        };
        // A failed peek is a broken pipe: reading gives its end.
        if ok == 0 || available > 0 {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(PEEK_EVERY);
    }
}

/// A handle the call returned, owned (closed when dropped); `None` for the
/// null or invalid handle a failed call returns.
#[allow(unsafe_code)]
fn owned(handle: HANDLE) -> Option<OwnedHandle> {
    if handle.is_null() || handle == INVALID_HANDLE_VALUE {
        return None;
    }
    // SAFETY: a valid handle just returned to us, owned by nobody else.
    Some(unsafe { OwnedHandle::from_raw_handle(handle as RawHandle) })
}

fn raw(handle: &impl AsRawHandle) -> HANDLE {
    handle.as_raw_handle() as HANDLE
}

/// Process `pid`, opened to query it and wait for it.
#[allow(unsafe_code)]
fn open_process(pid: u32) -> Option<OwnedHandle> {
    // SAFETY: no pointer; the result is checked by `owned`.
    owned(unsafe {
        OpenProcess(
            PROCESS_QUERY_LIMITED_INFORMATION | PROCESS_SYNCHRONIZE,
            0,
            pid,
        )
    })
}

/// Whether the process has ended (its handle is signalled).
#[allow(unsafe_code)]
fn ended(process: &OwnedHandle) -> bool {
    // SAFETY: a valid process handle opened with SYNCHRONIZE; no wait.
    unsafe { WaitForSingleObject(raw(process), 0) == WAIT_OBJECT_0 }
}

/// How our child `pid` exited, if it has. While we hold its `Child` the
/// pid is its own, reaped or not (Windows has no reaping: the handle
/// keeps it).
#[allow(unsafe_code)]
pub(crate) fn exit_status_unreaped(pid: u32) -> Option<ExitStatus> {
    let process = open_process(pid)?;
    if !ended(&process) {
        return None;
    }
    let mut code = 0u32;
    // SAFETY: a valid process handle and an exclusively borrowed u32.
    let ok = unsafe { GetExitCodeProcess(raw(&process), &mut code) };
    (ok != 0).then(|| ExitStatus::from_raw(code))
}

/// When process `pid` started (a FILETIME: 100 ns units since 1601): with
/// the pid, what tells one process from a later one that reuses its pid.
/// `None` when there is no such process, or it cannot be queried.
#[allow(unsafe_code)]
pub(crate) fn start_time(pid: i32) -> Option<u64> {
    let process = open_process(u32::try_from(pid).ok()?)?;
    let zero = FILETIME {
        dwLowDateTime: 0,
        dwHighDateTime: 0,
    };
    let (mut created, mut exited, mut kernel, mut user) = (zero, zero, zero, zero);
    // SAFETY: a valid process handle and four exclusively borrowed FILETIMEs.
    let ok = unsafe {
        GetProcessTimes(
            raw(&process),
            &mut created,
            &mut exited,
            &mut kernel,
            &mut user,
        )
    };
    (ok != 0).then(|| u64::from(created.dwHighDateTime) << 32 | u64::from(created.dwLowDateTime))
}

/// Whether process `pid` exists and runs (a plugin that is not our child).
/// Pid 0 is the idle process, never a plugin.
pub(crate) fn process_runs(pid: u32) -> bool {
    pid != 0 && open_process(pid).is_some_and(|process| !ended(&process))
}

/// The pid of our parent process, as it was when we started (Windows keeps
/// no link: the parent may be gone and its pid reused, which
/// [`ParentWatch`] checks).
#[allow(unsafe_code)]
fn parent_pid() -> Option<u32> {
    let me = std::process::id();
    // SAFETY: no pointer; the result is checked by `owned`.
    let snapshot = owned(unsafe { CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0) })?;
    // SAFETY: PROCESSENTRY32W is plain data; all zeroes is a valid value.
    let mut entry: PROCESSENTRY32W = unsafe { std::mem::zeroed() };
    entry.dwSize = u32::try_from(std::mem::size_of::<PROCESSENTRY32W>()).ok()?;
    // SAFETY: a valid snapshot handle and an exclusively borrowed entry
    // whose dwSize is set.
    let mut more = unsafe { Process32FirstW(raw(&snapshot), &mut entry) } != 0;
    while more {
        if entry.th32ProcessID == me {
            return Some(entry.th32ParentProcessID);
        }
        // SAFETY: as above.
        more = unsafe { Process32NextW(raw(&snapshot), &mut entry) } != 0;
    }
    None
}

/// Our parent process, held open so that its pid stays its own: whether
/// it is gone is then a wait on its handle.
#[derive(Debug)]
pub(crate) struct ParentWatch {
    pid: u32,
    process: OwnedHandle,
}

impl ParentWatch {
    /// The parent, if it still runs and started before us. `Err` with a
    /// reason when there is nothing to watch; `Ok(None)` when the parent
    /// is already gone (its pid now names a later process, or none).
    pub(crate) fn open() -> Result<Option<Self>, &'static str> {
        let pid = parent_pid().ok_or("the parent process is not known")?;
        let me = std::process::id();
        let mine = start_time(i32::try_from(me).map_err(|_| "pid out of range")?)
            .ok_or("our own start time is not known")?;
        let Some(process) = open_process(pid) else {
            return Ok(None);
        };
        let theirs = i32::try_from(pid).ok().and_then(start_time);
        if ended(&process) || theirs.is_none_or(|theirs| theirs > mine) {
            return Ok(None);
        }
        Ok(Some(ParentWatch { pid, process }))
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether the parent has ended.
    pub(crate) fn gone(&self) -> bool {
        ended(&self.process)
    }
}

/// A job object holding a plugin and every process it starts: ended as
/// one by [`terminate`](Self::terminate), and by Windows when the last
/// handle to it closes (the host exited or dropped the plugin), so no
/// plugin outlives its host.
#[derive(Debug)]
pub(crate) struct Job(OwnedHandle);

impl Job {
    /// A new job that kills its processes when its last handle closes,
    /// with the process behind `process` in it.
    ///
    /// Processes the plugin starts after this are in the job too; one it
    /// started between its creation and this call is not (the plugin's
    /// runtime has barely begun by then).
    #[allow(unsafe_code)]
    pub(crate) fn with_process(process: RawHandle) -> io::Result<Self> {
        // SAFETY: null attributes and name are allowed; the result is
        // checked by `owned`.
        let job = owned(unsafe { CreateJobObjectW(std::ptr::null(), std::ptr::null()) })
            .ok_or_else(io::Error::last_os_error)?;
        // SAFETY: plain data; all zeroes is a valid value.
        let mut limits: JOBOBJECT_EXTENDED_LIMIT_INFORMATION = unsafe { std::mem::zeroed() };
        limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
        let size = u32::try_from(std::mem::size_of_val(&limits)).expect("a small struct");
        // SAFETY: a valid job handle, and `limits` is the structure of
        // `size` bytes the class names.
        let set = unsafe {
            SetInformationJobObject(
                raw(&job),
                JobObjectExtendedLimitInformation,
                (&raw const limits).cast(),
                size,
            )
        };
        if set == 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: valid job and process handles.
        if unsafe { AssignProcessToJobObject(raw(&job), process as HANDLE) } == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Job(job))
    }

    /// Ends every process in the job at once (exit code 1, as
    /// `TerminateProcess` gives a killed Go plugin).
    #[allow(unsafe_code)]
    pub(crate) fn terminate(&self) -> io::Result<()> {
        // SAFETY: a valid job handle.
        match unsafe { TerminateJobObject(raw(&self.0), 1) } {
            0 => Err(io::Error::last_os_error()),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_process_has_a_start_time_and_runs() {
        let me = std::process::id();
        assert!(start_time(me as i32).is_some());
        assert!(process_runs(me));
        assert_eq!(start_time(i32::MAX), None);
    }
}
