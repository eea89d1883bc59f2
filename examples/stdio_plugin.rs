//! A plugin that writes to its stdout and stderr, to show (and test) how
//! `GRPCStdio` carries a plugin's own output to the host: `println!`,
//! `eprintln!` and the output of child processes alike.
//!
//! It serves go-plugin's KV service; `Put(key, value)` writes `value`:
//! - key `stdout`: with `println!`; key `stderr`: with `eprintln!`;
//! - key `child`: from a child process that inherits fd 1 (this program
//!   again, `--print VALUE`);
//! - key `flood`: the value's length in bytes is read as a number of bytes
//!   of `x` to write to stdout (back-pressure tests);
//! - key `exit`: the process exits at once with the value as its status, in
//!   the middle of the call (a plugin that dies);
//! - key `eprint-lines`: the value is a number N of lines of 200 bytes to
//!   write with `eprintln!`, one by one, from the async handler itself (on
//!   a runtime worker, as a plugin author debugging would);
//! - key `print-bytes`: the value is a number N of bytes to write with one
//!   `println!`, from the async handler itself;
//! - key `panic-abort`: panics with the value as its message, then aborts
//!   while unwinding (what a plugin built with `panic = "abort"` does);
//! - key `print-then-exit`: the value is a number N of lines to write with
//!   `println!` and N with `eprintln!`, then the process exits at once with
//!   status 3, output still in flight.
//!
//! - key `spawn`: starts a child process of its own that idles for 1000 s
//!   (this program again, `--idle`), and writes the child's pid to the file
//!   the value names (a plugin that leaves children behind).
//! - key `fork-then-exit` (unix): forks a copy of itself that holds every
//!   descriptor, the call's connection included, and idles for 60 s;
//!   writes the copy's pid to the file the value names, then exits with
//!   status 3 in the middle of the call (a plugin whose helper keeps its
//!   socket open after it died).
//!
//! `stdio_plugin --current-thread` serves on a `current_thread` runtime.
//! `stdio_plugin --launch PROGRAM` is no plugin but a stand-in host: it
//! starts PROGRAM with its own environment and stdout, prints `pid N`
//! (PROGRAM's pid), and idles for 1000 s (tests kill it).

use std::io::Write;

use demo_proto::kv::kv_server::{Kv, KvServer};
use demo_proto::kv::{Empty, GetRequest, GetResponse, PutRequest};
use rpcplugin::{HandshakeConfig, ServeConfig};
use tonic::{Request, Response, Status};

struct Printer;

#[tonic::async_trait]
impl Kv for Printer {
    async fn get(&self, _: Request<GetRequest>) -> Result<Response<GetResponse>, Status> {
        Err(Status::not_found("this plugin only prints"))
    }

    async fn put(&self, req: Request<PutRequest>) -> Result<Response<Empty>, Status> {
        let PutRequest { key, value } = req.into_inner();
        let text = String::from_utf8_lossy(&value).into_owned();
        match key.as_str() {
            "stdout" => println!("{text}"),
            "stderr" => eprintln!("{text}"),
            "child" => {
                let exe = std::env::current_exe().map_err(|e| Status::internal(e.to_string()))?;
                let status = tokio::process::Command::new(exe)
                    .args(["--print", &text])
                    .status()
                    .await
                    .map_err(|e| Status::internal(e.to_string()))?;
                if !status.success() {
                    return Err(Status::internal(format!("child failed: {status}")));
                }
            }
            "flood" => {
                let bytes: usize = text
                    .parse()
                    .map_err(|_| Status::invalid_argument("flood takes a byte count"))?;
                // Blocking writes, as a careless plugin would make them.
                tokio::task::spawn_blocking(move || {
                    let chunk = [b'x'; 1024];
                    let mut out = std::io::stdout().lock();
                    for _ in 0..bytes / chunk.len() {
                        out.write_all(&chunk)?;
                    }
                    out.flush()
                })
                .await
                .map_err(|e| Status::internal(e.to_string()))?
                .map_err(|e| Status::internal(e.to_string()))?;
            }
            "exit" => std::process::exit(text.parse().unwrap_or(1)),
            "print-then-exit" => {
                let lines: usize = text
                    .parse()
                    .map_err(|_| Status::invalid_argument("print-then-exit takes a count"))?;
                for i in 0..lines {
                    println!("last words {i} on stdout");
                    eprintln!("last words {i} on stderr");
                }
                std::process::exit(3);
            }
            "panic-abort" => {
                struct AbortOnUnwind;
                impl Drop for AbortOnUnwind {
                    fn drop(&mut self) {
                        std::process::abort();
                    }
                }
                let _abort = AbortOnUnwind;
                panic!("{text}");
            }
            "eprint-lines" => {
                let lines: usize = text
                    .parse()
                    .map_err(|_| Status::invalid_argument("eprint-lines takes a count"))?;
                let line = "e".repeat(199);
                for _ in 0..lines {
                    eprintln!("{line}");
                }
            }
            "print-bytes" => {
                let bytes: usize = text
                    .parse()
                    .map_err(|_| Status::invalid_argument("print-bytes takes a count"))?;
                println!("{}", "p".repeat(bytes.saturating_sub(1)));
            }
            "spawn" => {
                let exe = std::env::current_exe().map_err(|e| Status::internal(e.to_string()))?;
                let child = std::process::Command::new(exe)
                    .arg("--idle")
                    .stdin(std::process::Stdio::null())
                    .spawn()
                    .map_err(|e| Status::internal(e.to_string()))?;
                std::fs::write(&text, child.id().to_string())
                    .map_err(|e| Status::internal(e.to_string()))?;
            }
            #[cfg(unix)]
            "fork-then-exit" => {
                use nix::unistd::{ForkResult, fork};
                // SAFETY: the forked copy only sleeps and kills itself: it
                // calls nothing that could wait on a lock another thread
                // held.
                #[allow(unsafe_code)]
                match unsafe { fork() } {
                    Ok(ForkResult::Child) => {
                        std::thread::sleep(std::time::Duration::from_secs(60));
                        // Ends at once, with no exit handler run.
                        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
                        std::process::abort();
                    }
                    Ok(ForkResult::Parent { child }) => {
                        std::fs::write(&text, child.to_string())
                            .map_err(|e| Status::internal(e.to_string()))?;
                        std::process::exit(3);
                    }
                    Err(err) => return Err(Status::internal(err.to_string())),
                }
            }
            other => return Err(Status::invalid_argument(format!("unknown key {other:?}"))),
        }
        Ok(Response::new(Empty {}))
    }
}

fn main() {
    let mut runtime = match std::env::args().nth(1).as_deref() {
        Some("--print") => {
            println!("{}", std::env::args().nth(2).unwrap_or_default());
            return;
        }
        Some("--launch") => {
            let program = std::env::args().nth(2).expect("--launch PROGRAM");
            let mut plugin = std::process::Command::new(program)
                .stdin(std::process::Stdio::null())
                .spawn()
                .expect("the plugin starts");
            println!("pid {}", plugin.id());
            std::thread::sleep(std::time::Duration::from_secs(1000));
            let _ = plugin.kill();
            let _ = plugin.wait();
            return;
        }
        Some("--idle") => {
            std::thread::sleep(std::time::Duration::from_secs(1000));
            return;
        }
        Some("--current-thread") => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = runtime.enable_all().build().expect("a tokio runtime");
    let served = runtime.block_on(
        ServeConfig::new(HandshakeConfig::basic_example())
            .service(KvServer::new(Printer))
            .serve(),
    );
    if let Err(err) = served {
        eprintln!("stdio_plugin: {err}");
        std::process::exit(1);
    }
}
