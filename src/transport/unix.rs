//! Unix-socket listener and dialler, with safe stale-socket cleanup.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use tokio::net::{UnixSocket, UnixStream};

use super::conn::AcceptLoop;
use super::env::socket_dir_from_env;
use super::{
    CloseError, ConnectError, Connection, DEFAULT_CONNECT_TIMEOUT, Endpoint, EnvError, Incoming,
    ListenError, SocketGroup, Transport,
};

/// The longest unix socket path this platform can bind, in bytes: the size
/// of `sockaddr_un.sun_path` (108 on Linux, 104 on macOS and the BSDs) less
/// the terminating NUL.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub const SUN_PATH_MAX: usize = 107;
/// The longest unix socket path this platform can bind, in bytes: the size
/// of `sockaddr_un.sun_path` (108 on Linux, 104 on macOS and the BSDs) less
/// the terminating NUL.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub const SUN_PATH_MAX: usize = 103;

/// Mode of every socket we create, whatever the umask: the owner and the
/// socket's group may connect, nobody else (go-plugin's choice too).
const SOCKET_MODE: u32 = 0o660;

/// Mode of a socket directory we create: nobody else may enter it, list it,
/// or put anything in it (ssh-agent and tmux do the same).
const DIR_MODE: u32 = 0o700;

/// Mode of a socket directory we create when a socket group is configured:
/// the group's members may enter it to reach the 0660 socket, but not
/// create, rename or remove anything in it.
const DIR_MODE_GROUP: u32 = 0o750;

/// Listen backlog: connections the kernel queues before we accept them.
/// Hosts open a handful of connections; brokered services and the echo
/// transport may open dozens at once on start-up.
const BACKLOG: u32 = 1024;

/// Length of the random part of a generated socket name (`pluginXXXXXXXXXX`):
/// 62^10 names make a collision between concurrent plugins negligible while
/// keeping the path well inside `sun_path`.
const RANDOM_NAME_LEN: usize = 10;

/// A unix-socket [`Transport`].
///
/// What [`listen`](Transport::listen) does with the path:
///
/// | at the path | what happens |
/// | --- | --- |
/// | nothing | bind |
/// | a socket nobody listens on (connect refused) | stale: removed, then bind |
/// | a socket with a listener | [`ListenError::InUse`], left alone |
/// | a regular file, directory, symlink, FIFO, device | [`ListenError::NotASocket`], left alone |
/// | a missing parent directory | created with mode 0700 (0750 and the socket group with a group), then bind |
/// | a parent that is a file, a dangling link, … | [`ListenError::NotADirectory`], left alone |
/// | a parent another user could write in | [`ListenError::UnsafeSocketDir`], nothing bound |
/// | a path over [`SUN_PATH_MAX`] bytes | [`ListenError::PathTooLong`] before any bind |
///
/// An existing directory is used only when it is owned by us or root and
/// nobody else may write in it, or when it has the sticky bit (`/tmp`),
/// where nobody else may remove or rename our socket. One exception, so
/// that go-plugin's hosts work: with a socket group, a directory of that
/// group may be group-writable and owned by another user (go-plugin's host
/// creates it so, mode 0770, for a plugin that runs as another user).
///
/// The socket gets mode 0660 whatever the umask, and the group from
/// [`group`](Self::group) (or `PLUGIN_UNIX_SOCKET_GROUP`), both
/// set before it starts listening, on the socket itself: a symbolic link
/// swapped in at the path is refused, never followed.
/// [`close`](Transport::close) (or drop) removes the socket only if the
/// path still holds the socket we bound (same device and inode). A
/// transport that only connects never removes anything.
///
/// ```no_run
/// use rpcplugin::Transport;
/// use rpcplugin::transport::UnixTransport;
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let transport = UnixTransport::new("/run/my-plugin/plugin.sock");
/// let (endpoint, _incoming) = transport.listen().await?;
/// assert_eq!(endpoint.address(), "/run/my-plugin/plugin.sock");
/// transport.close().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct UnixTransport {
    target: Target,
    group: Option<SocketGroup>,
    connect_timeout: Duration,
    state: Mutex<State>,
}

#[derive(Debug)]
enum Target {
    Path(PathBuf),
    GeneratedIn(PathBuf),
}

#[derive(Debug)]
enum State {
    Idle,
    Listening(AcceptLoop, BoundSocket),
    Closed,
}

/// The socket file we created, identified by device and inode.
#[derive(Debug)]
struct BoundSocket {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl UnixTransport {
    /// Listens at `path` (made absolute against the current directory).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self::with_target(Target::Path(path.into()))
    }

    /// Listens at a fresh, unique path `pluginXXXXXXXXXX` in `dir`.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        Self::with_target(Target::GeneratedIn(dir.into()))
    }

    /// Listens at a fresh, unique path in `PLUGIN_UNIX_SOCKET_DIR`, else in
    /// the temporary directory (`TMPDIR` or `/tmp`), with the group from
    /// `PLUGIN_UNIX_SOCKET_GROUP`: what a go-plugin host expects.
    ///
    /// # Errors
    ///
    /// [`EnvError::UnknownGroup`] when the group does not exist.
    pub fn from_env() -> Result<Self, EnvError> {
        let transport = Self::in_dir(socket_dir_from_env());
        Ok(match SocketGroup::from_env() {
            Some(group) => {
                group.gid()?;
                transport.group(group)
            }
            None => transport,
        })
    }

    /// The group that owns the socket (`chown` before listening).
    #[must_use]
    pub fn group(mut self, group: SocketGroup) -> Self {
        self.group = Some(group);
        self
    }

    /// How long [`connect`](Transport::connect) may take.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    fn with_target(target: Target) -> Self {
        UnixTransport {
            target,
            group: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            state: Mutex::new(State::Idle),
        }
    }

    async fn bind(&self, gid: Option<u32>) -> Result<(UnixSocket, PathBuf), ListenError> {
        match &self.target {
            Target::Path(path) => {
                let path = absolute(path)?;
                check_length(&path)?;
                if let Some(dir) = path.parent() {
                    prepare_dir(dir, gid)?;
                }
                clear_stale(&path)?;
                let socket = bind_socket(&path).map_err(|source| bind_error(&path, source))?;
                Ok((socket, path))
            }
            Target::GeneratedIn(dir) => {
                let dir = absolute(dir)?;
                let longest = dir.join(format!("plugin{}", "x".repeat(RANDOM_NAME_LEN)));
                check_length(&longest)?;
                prepare_dir(&dir, gid)?;
                let named = tempfile::Builder::new()
                    .prefix("plugin")
                    .rand_bytes(RANDOM_NAME_LEN)
                    .make_in(&dir, bind_socket)
                    .map_err(|source| bind_error(&longest, source))?;
                let (socket, path) = named.keep().map_err(|e| bind_error(&dir, e.error))?;
                Ok((socket, path))
            }
        }
    }
}

impl Transport for UnixTransport {
    async fn listen(&self) -> Result<(Endpoint, Incoming), ListenError> {
        if !matches!(*self.state.lock().expect("state lock"), State::Idle) {
            return Err(ListenError::AlreadyListened);
        }
        let gid = self.group.as_ref().map(SocketGroup::gid).transpose()?;
        let (socket, path) = self.bind(gid).await?;
        // On failure, `secure` removes the socket only if it proved it ours.
        let bound = secure(&path, gid)?;
        let listener = match socket.listen(BACKLOG) {
            Ok(listener) => listener,
            Err(source) => {
                discard(&bound);
                return Err(bind_error(&path, source));
            }
        };
        let endpoint = Endpoint::unix(&path).expect("a bound path is not empty");
        let (accept, incoming) = AcceptLoop::spawn(listener);
        let mut state = self.state.lock().expect("state lock");
        if !matches!(*state, State::Idle) {
            drop(state);
            discard(&bound);
            return Err(ListenError::AlreadyListened);
        }
        *state = State::Listening(accept, bound);
        Ok((endpoint, incoming))
    }

    async fn connect(&self, endpoint: &Endpoint) -> Result<Connection, ConnectError> {
        super::with_timeout(endpoint, self.connect_timeout, connect(endpoint)).await
    }

    async fn close(&self) -> Result<(), CloseError> {
        let previous =
            std::mem::replace(&mut *self.state.lock().expect("state lock"), State::Closed);
        if let State::Listening(accept, bound) = previous {
            // Compare and remove while our listener still holds the inode,
            // so its number cannot have been reused by a newer file.
            let removed = remove_if_ours(&bound);
            accept.stop().await;
            removed.map_err(|source| CloseError::Remove {
                path: bound.path.clone(),
                source,
            })?;
        }
        Ok(())
    }
}

impl Drop for UnixTransport {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        if let State::Listening(_, bound) = std::mem::replace(state, State::Closed)
            && let Err(err) = remove_if_ours(&bound)
        {
            tracing::warn!(error = %err, "removing the plugin socket on drop failed");
        }
    }
}

/// Dials a unix endpoint.
pub(super) async fn connect(endpoint: &Endpoint) -> Result<Connection, ConnectError> {
    let path = endpoint
        .unix_path()
        .ok_or_else(|| ConnectError::WrongNetwork {
            transport: "unix",
            endpoint: endpoint.clone(),
        })?;
    UnixStream::connect(path)
        .await
        .map(Connection::from)
        .map_err(|source| ConnectError::Refused {
            endpoint: endpoint.clone(),
            source,
        })
}

fn absolute(path: &Path) -> Result<PathBuf, ListenError> {
    std::path::absolute(path).map_err(|source| ListenError::Inspect {
        path: path.to_owned(),
        source,
    })
}

fn check_length(path: &Path) -> Result<(), ListenError> {
    let len = path.as_os_str().len();
    if len > SUN_PATH_MAX {
        return Err(ListenError::PathTooLong {
            path: path.to_owned(),
            len,
            max: SUN_PATH_MAX,
        });
    }
    Ok(())
}

/// Makes `dir` ready to hold our socket: creates what is missing, private
/// to us, or checks that an existing directory is safe (see
/// [`UnixTransport`]). A symbolic link to a directory is followed (macOS's
/// `/tmp`, a `TMPDIR` pointing elsewhere); the directory it leads to is
/// checked.
fn prepare_dir(dir: &Path, gid: Option<u32>) -> Result<(), ListenError> {
    let inspect_err = |source| ListenError::Inspect {
        path: dir.to_owned(),
        source,
    };
    match fs::symlink_metadata(dir) {
        Ok(_) => {}
        Err(err) if is_missing(&err) => create_private_dirs(dir, gid)?,
        Err(err) => return Err(inspect_err(err)),
    }
    let meta = directory_metadata(dir)?;
    check_dir_safety(dir, &meta, gid)
}

/// Whether a stat error means the path is not there: nothing at it, or a
/// parent that is not a directory (the parent is then named).
fn is_missing(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

/// The metadata of the directory at `dir` (links followed), or
/// [`ListenError::NotADirectory`] saying what is there instead.
fn directory_metadata(dir: &Path) -> Result<fs::Metadata, ListenError> {
    let inspect_err = |source| ListenError::Inspect {
        path: dir.to_owned(),
        source,
    };
    let not_a_dir = |what: String| ListenError::NotADirectory {
        path: dir.to_owned(),
        what,
    };
    let own = fs::symlink_metadata(dir).map_err(inspect_err)?;
    if own.is_dir() {
        return Ok(own);
    }
    if !own.file_type().is_symlink() {
        return Err(not_a_dir(format!("a {}", kind_of(own.file_type()))));
    }
    let target = fs::read_link(dir).map_err(inspect_err)?;
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(meta),
        Ok(meta) => Err(not_a_dir(format!(
            "a symbolic link to {}, a {}",
            target.display(),
            kind_of(meta.file_type())
        ))),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Err(not_a_dir(format!(
            "a symbolic link to {}, which does not exist (a dangling link)",
            target.display()
        ))),
        Err(err) => Err(inspect_err(err)),
    }
}

/// Creates `dir` and its missing parents, each with [`DIR_MODE`] (or
/// [`DIR_MODE_GROUP`] and the group), whatever the umask. Modes and groups
/// are set on the open directory, never through a path that could have
/// been swapped for a link.
fn create_private_dirs(dir: &Path, gid: Option<u32>) -> Result<(), ListenError> {
    // The missing components, from the outermost down.
    let mut missing = Vec::new();
    for ancestor in dir.ancestors() {
        if ancestor.as_os_str().is_empty() {
            break;
        }
        match fs::symlink_metadata(ancestor) {
            Ok(_) => {
                // Say clearly what is in the way (a file, a dangling link).
                directory_metadata(ancestor)?;
                break;
            }
            Err(err) if is_missing(&err) => missing.push(ancestor),
            Err(source) => {
                return Err(ListenError::Inspect {
                    path: ancestor.to_owned(),
                    source,
                });
            }
        }
    }
    let mode = if gid.is_some() {
        DIR_MODE_GROUP
    } else {
        DIR_MODE
    };
    for component in missing.into_iter().rev() {
        let create_err = |source| ListenError::CreateDir {
            dir: component.to_owned(),
            source,
        };
        match fs::DirBuilder::new().mode(DIR_MODE).create(component) {
            Ok(()) => {}
            // Created meanwhile by someone else: checked like any
            // existing directory, not adopted.
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                directory_metadata(component)?;
                continue;
            }
            Err(err) => return Err(create_err(err)),
        }
        secure_new_dir(component, gid, mode).map_err(create_err)?;
        tracing::debug!(dir = %component.display(), mode = format!("{mode:04o}"), "created socket directory");
    }
    Ok(())
}

/// Refuses a directory in which another user could remove, rename or
/// replace our socket (see [`UnixTransport`]).
fn check_dir_safety(dir: &Path, meta: &fs::Metadata, gid: Option<u32>) -> Result<(), ListenError> {
    let euid = nix::unistd::geteuid().as_raw();
    let mode = meta.mode() & 0o7777;
    let sticky = mode & 0o1000 != 0;
    // go-plugin's host makes a 0770 directory of the socket group for a
    // plugin that runs as another user of that group.
    let socket_group_dir = gid == Some(meta.gid());
    let reason = if meta.uid() != euid && meta.uid() != 0 && !socket_group_dir {
        Some(if gid.is_some() {
            "it is owned by another user and its group is not the socket group"
        } else {
            "it is owned by another user, who could replace our socket"
        })
    } else if mode & 0o002 != 0 && !sticky {
        Some("every user may write in it and it has no sticky bit")
    } else if mode & 0o020 != 0 && !sticky && !socket_group_dir {
        Some("its group may write in it and it has no sticky bit")
    } else {
        None
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(ListenError::UnsafeSocketDir {
            dir: dir.to_owned(),
            reason,
            owner: meta.uid(),
            group: meta.gid(),
            mode,
            euid,
        }),
    }
}

/// The kind of file `stat` describes (`S_IFDIR`, `S_IFSOCK`, …).
fn file_kind(stat: &nix::sys::stat::FileStat) -> nix::sys::stat::SFlag {
    nix::sys::stat::SFlag::from_bits_truncate(stat.st_mode) & nix::sys::stat::SFlag::S_IFMT
}

/// Whether `stat` is a `kind` owned by our effective uid: what we just
/// created, not something swapped in meanwhile.
fn is_our(stat: &nix::sys::stat::FileStat, kind: nix::sys::stat::SFlag) -> bool {
    file_kind(stat) == kind && stat.st_uid == nix::unistd::geteuid().as_raw()
}

/// An `O_PATH | O_NOFOLLOW` descriptor of `path` and what it refers to. A
/// symbolic link swapped in at `path` is opened as the link itself (and
/// refused by the caller's type check), never followed; the descriptor
/// needs no permission on the file, so a directory made mode 0000 by the
/// umask opens too.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn open_inode(path: &Path) -> io::Result<(std::os::fd::OwnedFd, nix::sys::stat::FileStat)> {
    use nix::fcntl::OFlag;
    let fd = nix::fcntl::open(
        path,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    let stat = nix::sys::stat::fstat(&fd)?;
    Ok((fd, stat))
}

/// Sets the group (when given) and the mode of the inode behind an
/// [`open_inode`] descriptor, whatever its path holds by now.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn set_group_and_mode(fd: &std::os::fd::OwnedFd, gid: Option<u32>, mode: u32) -> io::Result<()> {
    if let Some(gid) = gid {
        nix::unistd::fchownat(
            fd,
            "",
            None,
            Some(nix::unistd::Gid::from_raw(gid)),
            nix::fcntl::AtFlags::AT_EMPTY_PATH,
        )?;
    }
    // fchmod refuses an O_PATH descriptor; its /proc link leads to the
    // opened inode itself, not through the path.
    use std::os::unix::fs::PermissionsExt;
    let proc_path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(fd));
    fs::set_permissions(&proc_path, fs::Permissions::from_mode(mode))
}

/// Gives a directory we just created its group and mode, on the
/// directory itself: refused if something else is at the path by now.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn secure_new_dir(dir: &Path, gid: Option<u32>, mode: u32) -> io::Result<()> {
    let (fd, stat) = open_inode(dir)?;
    if !is_our(&stat, nix::sys::stat::SFlag::S_IFDIR) {
        return Err(io::Error::other(
            "the path no longer holds the directory we created",
        ));
    }
    set_group_and_mode(&fd, gid, mode)
}

/// Gives a directory we just created its group and mode, through a
/// descriptor opened with `O_NOFOLLOW`: refused if something else is at
/// the path by now.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn secure_new_dir(dir: &Path, gid: Option<u32>, mode: u32) -> io::Result<()> {
    use nix::fcntl::OFlag;
    let fd = nix::fcntl::open(
        dir,
        OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY,
        nix::sys::stat::Mode::empty(),
    )?;
    let stat = nix::sys::stat::fstat(&fd)?;
    if !is_our(&stat, nix::sys::stat::SFlag::S_IFDIR) {
        return Err(io::Error::other(
            "the path no longer holds the directory we created",
        ));
    }
    if let Some(gid) = gid {
        nix::unistd::fchown(&fd, None, Some(nix::unistd::Gid::from_raw(gid)))?;
    }
    nix::sys::stat::fchmod(&fd, nix::sys::stat::Mode::from_bits_truncate(mode as _))?;
    Ok(())
}

fn bind_error(path: &Path, source: io::Error) -> ListenError {
    ListenError::Bind {
        endpoint: Endpoint::unix(path).expect("a socket path is not empty"),
        source,
    }
}

fn bind_socket(path: &Path) -> io::Result<UnixSocket> {
    let socket = UnixSocket::new_stream()?;
    // Linux creates the socket file with the socket inode's mode less the
    // umask: this keeps the file at most 0660 from the moment it exists,
    // before `secure` sets exactly 0660.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    nix::sys::stat::fchmod(
        &socket,
        nix::sys::stat::Mode::from_bits_truncate(SOCKET_MODE as _),
    )?;
    socket.bind(path)?;
    Ok(socket)
}

/// Sets group and mode on the bound (not yet listening) socket without
/// following links, and records its identity for [`remove_if_ours`]. On
/// failure the socket is removed only if it was proven ours.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn secure(path: &Path, gid: Option<u32>) -> Result<BoundSocket, ListenError> {
    let perm_err = |source| ListenError::Permissions {
        path: path.to_owned(),
        source,
    };
    let (fd, stat) = open_inode(path).map_err(perm_err)?;
    if !is_our(&stat, nix::sys::stat::SFlag::S_IFSOCK) {
        return Err(perm_err(io::Error::other(
            "the path no longer holds the socket we bound",
        )));
    }
    // dev_t and ino_t are narrower than u64 on some 32-bit targets.
    #[allow(clippy::unnecessary_cast)]
    let bound = BoundSocket {
        path: path.to_owned(),
        dev: stat.st_dev as u64,
        ino: stat.st_ino as u64,
    };
    match set_group_and_mode(&fd, gid, SOCKET_MODE) {
        Ok(()) => Ok(bound),
        Err(err) => {
            let _ = remove_if_ours(&bound);
            Err(perm_err(err))
        }
    }
}

/// Sets group and mode on the bound (not yet listening) socket without
/// following links (`lchown`, `fchmodat(AT_SYMLINK_NOFOLLOW)`), and records
/// its identity for [`remove_if_ours`].
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn secure(path: &Path, gid: Option<u32>) -> Result<BoundSocket, ListenError> {
    use nix::sys::stat::{FchmodatFlags, Mode, fchmodat};
    let perm_err = |source| ListenError::Permissions {
        path: path.to_owned(),
        source,
    };
    let meta = fs::symlink_metadata(path).map_err(perm_err)?;
    if !meta.file_type().is_socket() || meta.uid() != nix::unistd::geteuid().as_raw() {
        return Err(perm_err(io::Error::other(
            "the path no longer holds the socket we bound",
        )));
    }
    let bound = BoundSocket {
        path: path.to_owned(),
        dev: meta.dev(),
        ino: meta.ino(),
    };
    let changed = (|| {
        if let Some(gid) = gid {
            std::os::unix::fs::lchown(path, None, Some(gid))?;
        }
        fchmodat(
            nix::fcntl::AT_FDCWD,
            path,
            Mode::from_bits_truncate(SOCKET_MODE as _),
            FchmodatFlags::NoFollowSymlink,
        )?;
        Ok::<(), io::Error>(())
    })();
    match changed {
        Ok(()) => Ok(bound),
        Err(err) => {
            let _ = remove_if_ours(&bound);
            Err(perm_err(err))
        }
    }
}

fn kind_of(file_type: fs::FileType) -> &'static str {
    if file_type.is_symlink() {
        "symbolic link"
    } else if file_type.is_dir() {
        "directory"
    } else if file_type.is_file() {
        "regular file"
    } else if file_type.is_fifo() {
        "named pipe"
    } else if file_type.is_block_device() || file_type.is_char_device() {
        "device"
    } else {
        "special file"
    }
}

/// What a connection attempt says about a socket path.
enum Probe {
    /// Somebody accepts connections (or queues them: a full backlog).
    Listening,
    /// Connection refused: a socket nobody listens on.
    Refused,
    /// Nothing at the path any more.
    Gone,
}

/// Connects once, without blocking (a blocking connect to a socket with a
/// full backlog would wait for room).
fn probe(path: &Path) -> io::Result<Probe> {
    use nix::errno::Errno;
    match connect_now(path) {
        Ok(_) | Err(Errno::EAGAIN) | Err(Errno::EINPROGRESS) => Ok(Probe::Listening),
        Err(Errno::ECONNREFUSED) => Ok(Probe::Refused),
        Err(Errno::ENOENT) => Ok(Probe::Gone),
        Err(errno) => Err(errno.into()),
    }
}

/// A non-blocking connect to the unix socket at `path`, for checks that
/// must not wait (a full backlog answers `EAGAIN` at once): the connected
/// socket, whose peer credentials name the listener.
pub(crate) fn connect_now(path: &Path) -> nix::Result<std::os::fd::OwnedFd> {
    use nix::sys::socket::{UnixAddr, connect};
    let addr = UnixAddr::new(path)?;
    let fd = crate::sys::unix_socket_nonblocking()?;
    connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr)?;
    Ok(fd)
}

/// Whether somebody listens on the unix socket at `path` (or queues
/// connections to it), asked without waiting.
pub(crate) fn is_listening(path: &Path) -> bool {
    matches!(probe(path), Ok(Probe::Listening))
}

/// Removes the socket at `path` if nobody listens on it: what a host does
/// after killing a plugin that could not remove its own. `Ok(true)` when
/// it was removed; anything that is not a stale socket is left alone.
///
/// # Errors
///
/// [`ListenError::Inspect`] or [`ListenError::Remove`].
pub(crate) fn remove_stale_socket(path: &Path) -> Result<bool, ListenError> {
    match clear_stale(path) {
        Ok(()) => Ok(true),
        Err(ListenError::InUse { .. } | ListenError::NotASocket { .. }) => Ok(false),
        Err(err) => Err(err),
    }
}

/// Makes way for a new socket at `path`: only a socket that refuses
/// connections (nobody listens on it) is removed.
fn clear_stale(path: &Path) -> Result<(), ListenError> {
    let inspect_err = |source| ListenError::Inspect {
        path: path.to_owned(),
        source,
    };
    let before = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(inspect_err(err)),
    };
    if !before.file_type().is_socket() {
        return Err(ListenError::NotASocket {
            path: path.to_owned(),
            kind: kind_of(before.file_type()),
        });
    }
    match probe(path) {
        Ok(Probe::Listening) => Err(ListenError::InUse {
            path: path.to_owned(),
        }),
        Ok(Probe::Gone) => Ok(()),
        Ok(Probe::Refused) => {
            // Remove it only if it is still the socket we probed: another
            // process may have replaced it in the meantime.
            let stale = BoundSocket {
                path: path.to_owned(),
                dev: before.dev(),
                ino: before.ino(),
            };
            let removed = remove_if_ours(&stale).map_err(|source| ListenError::Remove {
                path: path.to_owned(),
                source,
            })?;
            if removed {
                tracing::debug!(path = %path.display(), "removed a stale unix socket");
                Ok(())
            } else {
                Err(ListenError::InUse {
                    path: path.to_owned(),
                })
            }
        }
        Err(err) => Err(inspect_err(err)),
    }
}

/// Removes our socket after a failed listen; the failure to report is the
/// listen's, so a failure to remove is only logged.
fn discard(socket: &BoundSocket) {
    if let Err(err) = remove_if_ours(socket) {
        tracing::warn!(path = %socket.path.display(), %err, "cannot remove our socket");
    }
}

/// Removes the socket if the path still holds it (same device and inode);
/// `Ok(false)` when something else, or nothing, is there now.
fn remove_if_ours(socket: &BoundSocket) -> io::Result<bool> {
    match fs::symlink_metadata(&socket.path) {
        Ok(meta)
            if meta.file_type().is_socket()
                && meta.dev() == socket.dev
                && meta.ino() == socket.ino =>
        {
            match fs::remove_file(&socket.path) {
                Ok(()) => Ok(true),
                Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
                Err(err) => Err(err),
            }
        }
        Ok(_) => Ok(false),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(err),
    }
}
