//! The operating system's calls that differ between platforms, one module
//! per family: `unix` (Linux, and macOS where it differs) and
//! `windows`. Each offers the same functions where the concept exists on
//! both (a process's exit status without reaping it, its start time,
//! whether it still runs); what only one family has stays in its module.
//!
//! Also glibc's allocator thresholds, for the one process-wide switch the
//! crate offers (`echo::keep_freed_memory`).

/// A standard output stream of this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StdStream {
    Stdout,
    Stderr,
}

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use unix::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::*;

/// glibc: blocks up to 32 MiB come from the heap, and up to 256 MiB freed
/// at its top stays there, instead of thresholds that follow the largest
/// block freed. Elsewhere nothing.
#[cfg(all(feature = "echo", target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub(crate) fn keep_freed_memory() {
    const MMAP_THRESHOLD: i32 = 32 << 20;
    const TRIM_THRESHOLD: i32 = 256 << 20;
    // SAFETY: `mallopt` only sets allocator parameters, under the
    // allocator's own lock; it takes no pointer.
    unsafe {
        nix::libc::mallopt(nix::libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        nix::libc::mallopt(nix::libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}

#[cfg(all(feature = "echo", not(all(target_os = "linux", target_env = "gnu"))))]
pub(crate) fn keep_freed_memory() {}
