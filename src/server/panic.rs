//! A plugin's panic text goes to its real stderr at once, as a Go plugin's
//! does (the Go runtime writes it to fd 2, which go-plugin never
//! redirects). While GRPCStdio captures fd 2, the standard hook's text
//! would go into the capture instead: a host that never opens the stream
//! (go-plugin 1.0.1, pyvider) would not see it until shutdown, and a panic
//! that aborts (`panic = "abort"`) would lose it. go-plugin hosts log a
//! plugin's panic from its stderr at error level, and Terraform builds its
//! crash report from it.

use std::fs::File;
use std::io::Write;
use std::panic::PanicHookInfo;
use std::sync::Arc;

type HookFn = dyn Fn(&PanicHookInfo<'_>) + Sync + Send + 'static;

/// The installed hook; [`uninstall`](Self::uninstall) puts the previous
/// one back.
pub(crate) struct PanicToStderr {
    previous: Arc<HookFn>,
}

impl std::fmt::Debug for PanicToStderr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PanicToStderr").finish_non_exhaustive()
    }
}

impl PanicToStderr {
    /// Writes each panic's text (with a backtrace when `RUST_BACKTRACE`
    /// asks for one) to `stderr`, the real one, in one write, then runs
    /// the hook that was installed before (the standard one writes into
    /// the capture, so a host reading GRPCStdio sees it there too).
    pub(crate) fn install(out: File) -> Self {
        let previous: Arc<HookFn> = Arc::from(std::panic::take_hook());
        let chained = previous.clone();
        std::panic::set_hook(Box::new(move |info| {
            let _ = (&out).write_all(text(info).as_bytes());
            chained(info);
        }));
        PanicToStderr { previous }
    }

    /// Puts the previous hook back (serving is over, fd 2 is itself again).
    pub(crate) fn uninstall(self) {
        let previous = self.previous;
        std::panic::set_hook(Box::new(move |info| previous(info)));
    }
}

/// The standard hook's text: `thread 'NAME' panicked at FILE:LINE:COL:`,
/// the message, and a backtrace if one was captured.
fn text(info: &PanicHookInfo<'_>) -> String {
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("<unnamed>");
    let message = match info.payload().downcast_ref::<&str>() {
        Some(s) => (*s).to_owned(),
        None => match info.payload().downcast_ref::<String>() {
            Some(s) => s.clone(),
            None => "Box<dyn Any>".to_owned(),
        },
    };
    let location = info
        .location()
        .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
        .unwrap_or_default();
    let mut text = format!("thread '{name}' panicked at {location}:\n{message}\n");
    let backtrace = std::backtrace::Backtrace::capture();
    if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
        text.push_str(&format!("stack backtrace:\n{backtrace}\n"));
    }
    text
}
