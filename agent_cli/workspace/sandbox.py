"""The one door through which project code runs: confinement, environment, lifetime.

A test suite is code from the repository and the model; both are untrusted. Every
process the agent starts on project code goes through `Sandbox.start`, which builds
the whole confinement in one place, deny by default:

* **Filesystem** (bubblewrap, `bwrap`): the host read-only; a private `/tmp` and
  `/run`; the home directories (`/home`, `/root`, `$HOME`), the user's agent config
  directory and the user's checkout replaced by empty directories, with read-only
  holes for what the test command needs to run (its interpreter or virtualenv, the
  `PATH` directories, toolchains such as `~/.cargo`, the paths listed in
  `sandbox_read`) and for the repository's `.git` (read-only: a test cannot plant a
  hook in it). Writable: the worktree and the directories the caller names (where
  the JUnit report goes). `HOME` is a private empty directory.
* **Network**: none (`--unshare-all`), unless the user allows it (`sandbox_network`).
* **Privilege**: every capability dropped, so a test running as root cannot undo
  the mounts.
* **Environment**: an allowlist (`project_env`): PATH, locale, TERM, TZ, the
  virtualenv and toolchain variables, and the names the user lists in `test_env`.
  Nothing named like a credential, nothing `ANTHROPIC_*` or `AGENT_*`.
* **Lifetime**: the command runs in its own session, `--die-with-parent` in a pid
  namespace: when the agent dies, however it dies, every process of the test dies
  with it. Without bubblewrap (Linux), a supervisor (`_reaper.py`) does the same with
  a parent-death signal and a child subreaper. Each process carries the run's tag in
  its environment, so `reap` can find leftovers of a run that died anyway.

`mode: auto` uses bubblewrap where it works and otherwise runs unconfined and says so
(`Confinement.detail`); `required` refuses to run unconfined (`SandboxUnavailable`,
exit 2); `off` never confines. The environment allowlist and the lifetime rules hold
in every mode. On macOS nothing is confined and only the process group is stopped.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal, cast

from agent_cli.durable.redact import looks_secret
from agent_cli.errors import UsageError
from agent_cli.workspace._reaper import descendants, processes

Mode = Literal["auto", "required", "off"]
TAG_VAR = "AGENT_TEST_RUN"
INSTALL_HINT = ("install bubblewrap (Debian/Ubuntu: apt install bubblewrap; Fedora: dnf install "
                "bubblewrap; Arch: pacman -S bubblewrap)")
_REAPER = Path(__file__).with_name("_reaper.py")
_HOME_IN_SANDBOX = "/tmp/home"
_STOP_GRACE_S = 2.0

# Passed through from the agent's environment (with every LC_*): what a test command
# needs to find its tools and speak the user's locale, and nothing that authenticates.
_PASS = ("PATH", "LANG", "LANGUAGE", "TERM", "TZ", "USER", "LOGNAME", "GIT_AUTHOR_NAME",
         "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "VIRTUAL_ENV",
         "CONDA_PREFIX", "CONDA_DEFAULT_ENV", "PYENV_VERSION", "PYENV_ROOT", "GOPATH",
         "GOROOT", "GOMODCACHE", "GOFLAGS", "CARGO_HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN",
         "JAVA_HOME", "NODE_PATH", "NVM_DIR")
# Toolchains whose default location is under $HOME: with a private HOME they would not
# be found, so the variable is set to the real location (and that is made readable).
_HOME_TOOLCHAINS = {"RUSTUP_HOME": ".rustup", "CARGO_HOME": ".cargo", "GOPATH": "go",
                    "PYENV_ROOT": ".pyenv", "NVM_DIR": ".nvm"}
# Credentials that live inside toolchain directories made readable above.
_SECRET_FILES = (".cargo/credentials", ".cargo/credentials.toml")
# Hidden (with $HOME, the checkout and the agent's config directory): people's files,
# mounted data, and the directories where services keep sockets a test could connect
# to even without a network (as root, whatever their permissions).
_MASKED = ("/tmp", "/run", "/var/run", "/home", "/root", "/mnt", "/media", "/srv",
           "/var/snap", "/var/lib/docker", "/var/lib/containerd", "/var/lib/kubelet",
           "/var/lib/lxd", "/var/lib/mysql", "/var/lib/postgresql")
# Directories under home that hold a mix of tools and personal data: a program found
# in one of their bin/ directories exposes that directory, not the whole tree.
_MIXED = (".local", ".config", ".cache")


class SandboxUnavailable(UsageError):
    """`sandbox: required` and bubblewrap is missing or cannot create namespaces here."""


@dataclass(frozen=True)
class Confinement:
    """What confined a process: for the run record, the gate and `inspect`."""

    kind: Literal["bwrap", "none"]
    network: bool
    detail: str
    """One line for people: `bubblewrap 0.8.0: read-only host, ... no network` or
    `UNCONFINED: bwrap not found; install bubblewrap (...)`."""

    def record(self) -> dict[str, object]:
        return {"kind": self.kind, "network": self.network, "detail": self.detail}


@dataclass(frozen=True)
class Sandbox:
    """How project code is confined (from settings) and for whom (repository, run)."""

    mode: Mode = "auto"
    network: bool = False
    pass_env: tuple[str, ...] = ()
    """Extra variable names the user lets through (`test_env`)."""
    read_paths: tuple[str, ...] = ()
    """Extra host paths made readable inside (`sandbox_read`)."""
    repo: Path | None = None
    """The user's checkout: hidden inside, its git directory read-only."""
    hide: tuple[Path, ...] = ()
    """More host directories to hide (the user's agent config directory)."""
    tag: str = ""
    """Marks every process started for a run (`reap`)."""

    @classmethod
    def from_settings(cls, values: Mapping[str, object], *, repo: Path | None = None,
                      hide: tuple[Path, ...] = (), tag: str = "") -> Sandbox:
        """The sandbox a run's (validated, recorded) settings describe."""
        def names(key: str) -> tuple[str, ...]:
            value = values.get(key)
            return tuple(str(v) for v in value) if isinstance(value, (list, tuple)) else ()

        return cls(mode=cast(Mode, values.get("sandbox") or "auto"),
                   network=bool(values.get("sandbox_network")), pass_env=names("test_env"),
                   read_paths=names("sandbox_read"), repo=repo, hide=hide, tag=tag)

    def confinement(self) -> Confinement:
        """What `start` will use; `SandboxUnavailable` when `required` cannot be met."""
        if self.mode == "off":
            return Confinement("none", True, "UNCONFINED: sandbox is off (sandbox: off)")
        bwrap, version, problem = probe()
        if bwrap is not None:
            net = "network allowed" if self.network else "no network"
            return Confinement("bwrap", self.network,
                               f"{version}: read-only host, writable worktree, private HOME "
                               f"and /tmp, {net}")
        if self.mode == "required":
            raise SandboxUnavailable(f"sandbox: required, but {problem}", hint=INSTALL_HINT
                                     + ", or set sandbox: auto to run tests unconfined")
        return Confinement("none", True, f"UNCONFINED: {problem}; {INSTALL_HINT}")

    def start(self, argv: list[str], *, cwd: Path, writable: Iterable[Path] = (),
              env: Mapping[str, str] | None = None) -> Process:
        """Start `argv` in `cwd` (writable), confined; `env` adds to the allowlist.

        The caller vouches for `argv[0]` (the runner's own interpreter, the user's
        virtualenv, a program name): its installation is made readable. Nothing else
        the command says opens a hole: of `sh -c TEXT`, only bare program names found
        on the user's PATH count. Raises `FileNotFoundError` when the program does
        not exist."""
        confinement = self.confinement()
        home = _private_home() if confinement.kind == "none" else None
        child_env = project_env(os.environ, self.pass_env,
                                home=str(home) if home else _HOME_IN_SANDBOX)
        child_env.update(env or {})
        if self.tag:
            child_env[TAG_VAR] = self.tag
        if "/" not in argv[0] and shutil.which(argv[0], path=child_env.get("PATH")) is None:
            _discard(home)
            raise FileNotFoundError(2, "No such file or directory", argv[0])
        supervised = confinement.kind == "none" and sys.platform.startswith("linux")
        # Closed in `finally` below, once bwrap has copied it: not a `with` block.
        data = tempfile.TemporaryFile() if confinement.kind == "bwrap" else None  # noqa: SIM115
        try:
            if confinement.kind == "bwrap":
                assert data is not None
                full = [*self._bwrap_args(argv, cwd, writable, child_env, data), "--", *argv]
            elif supervised:
                _harden_agent()
                full = [sys.executable, "-I", "-S", str(_REAPER), str(os.getpid()), "--", *argv]
            else:
                full = list(argv)
            popen = subprocess.Popen(full, cwd=cwd, env=child_env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     start_new_session=True,
                                     pass_fds=(data.fileno(),) if data else ())
        except BaseException:
            _discard(home)
            raise
        finally:
            if data is not None:
                data.close()  # bwrap copied it before it runs anything
        return Process(popen, confinement, supervised=supervised, home=home)

    def _bwrap_args(self, argv: list[str], cwd: Path, writable: Iterable[Path],
                    env: Mapping[str, str], data: IO[bytes]) -> list[str]:
        bwrap, _, _ = probe()
        real_home = Path(os.environ.get("HOME") or Path.home())
        masks = self._masks(real_home)
        holes = {p for p in self._holes(argv, env, real_home, masks) if _is_hole(p, masks)}
        holes |= {p for p in (Path(r).expanduser() for r in self.read_paths)
                  if p.is_absolute() and p.exists()}  # the user's explicit choice
        if self.repo is not None:
            holes.add(_git_common_dir(self.repo))
        if self.network:
            holes.add(Path("/run/systemd/resolve"))  # where /etc/resolv.conf often points
        holes = {p for p in holes if p.exists() and not _within(Path("/tmp"), _real(p))
                 and any(_within(_real(p), m) or _within(p, m) for m in masks)}
        holes = {p for p in holes if not _covered(p, holes, masks)}
        writable_dirs = {_real(cwd), *(_real(Path(w)) for w in writable)}

        mounts = [(m, 0, "--tmpfs") for m in masks]
        mounts += [(p, 1, "--ro-bind") for p in holes]
        mounts += [(w, 2, "--bind") for w in writable_dirs]
        args = [bwrap or "bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
                # bwrap covers /proc/sysrq-trigger and friends, not /proc/sys: as root, a
                # test could set kernel.core_pattern and have the host run its script.
                "--ro-bind", "/proc/sys", "/proc/sys"]
        for path, _, how in sorted(mounts, key=lambda m: (len(m[0].parts), m[1], str(m[0]))):
            args += [how, str(path)] if how == "--tmpfs" else [how, str(path), str(path)]
        args += self._covers(cwd, real_home, holes, data)
        args += ["--dir", _HOME_IN_SANDBOX]
        # What hides a directory is read-only too: a write there fails, rather than
        # seeming to work and vanishing. /tmp stays the private, writable one.
        for mask in sorted(masks, key=lambda m: len(m.parts)):
            if mask != Path("/tmp"):
                args += ["--remount-ro", str(mask)]
        args += ["--unshare-all", "--unshare-user", "--disable-userns"]
        if self.network:
            args.append("--share-net")
        args += ["--die-with-parent", "--cap-drop", "ALL", "--chdir", str(_real(cwd))]
        return args

    def _masks(self, real_home: Path) -> set[Path]:
        """Directories replaced by empty read-only ones: where people keep secrets and
        data, where services keep their sockets, and the user's own checkout."""
        masks = {*map(Path, _MASKED), real_home, *self.hide, *([self.repo] if self.repo else [])}
        return {_real(m) for m in masks if m.is_dir() and not m.is_symlink()} - {Path("/")}

    def _holes(self, argv: list[str], env: Mapping[str, str], real_home: Path,
               masks: set[Path]) -> set[Path]:
        """Read-only holes the command needs, from trusted sources only: the user's
        PATH (and where its links lead), the program the caller vouches for, the
        interpreter agent runs on, and the user's virtualenv and toolchain variables."""
        path_dirs = [Path(p) for p in env.get("PATH", "").split(os.pathsep) if p.startswith("/")]
        hidden_dirs = [d for d in path_dirs if any(_within(_real(d), m) for m in masks)]
        programs = [Path(sys.executable)]
        if argv[0].startswith("/") and not _is_shell_c(argv):
            programs.append(Path(argv[0]))
        for word in _shell_words(argv):
            found = shutil.which(word, path=env.get("PATH", ""))
            if found:
                programs.append(Path(found))
        holes: set[Path] = set(path_dirs)
        for program in programs:
            holes |= _install_roots(program, real_home)
            interpreter = _shebang(program)
            if interpreter is not None:
                holes |= _install_roots(interpreter, real_home)
        for link in _linked_programs(hidden_dirs):
            holes |= _install_roots(link, real_home)
        holes |= {Path(env[v]) for v in (*_HOME_TOOLCHAINS, "VIRTUAL_ENV", "CONDA_PREFIX",
                                         "GOMODCACHE", "GOROOT", "JAVA_HOME")
                  if env.get(v, "").startswith("/")}
        if env.get("PYTHONUSERBASE"):
            holes.add(Path(env["PYTHONUSERBASE"]) / "lib")
        return holes

    def _covers(self, cwd: Path, real_home: Path, holes: set[Path], data: IO[bytes]) -> list[str]:
        """Files laid over what is visible: credentials inside readable toolchains and
        on the host, the worktree's `.git` link (a test that rewrote it would point
        agent's own `git reset` at the user's branch), and the repository's config
        without the credentials a remote URL or an extra header can carry."""
        args = []
        for secret in (real_home / name for name in _SECRET_FILES):
            if secret.is_file() and any(_within(secret, p) for p in holes):
                args += ["--ro-bind", "/dev/null", str(secret)]
        for secret in _host_secret_files():
            args += ["--ro-bind", "/dev/null", str(secret)]
        link = _real(cwd) / ".git"
        if link.is_file():
            args += ["--ro-bind", str(link), str(link)]
        config = _git_common_dir(self.repo) / "config" if self.repo else None
        if config is not None and config.is_file():
            data.write(_without_credentials(config.read_bytes()))
            data.flush()
            data.seek(0)
            args += ["--ro-bind-data", str(data.fileno()), str(_real(config))]
        return args


class Process:
    """A started, confined command: its pipe, and how to stop all of it."""

    def __init__(self, popen: subprocess.Popen[bytes], confinement: Confinement, *,
                 supervised: bool, home: Path | None) -> None:
        self.popen = popen
        self.pid = popen.pid
        self.confinement = confinement
        self._supervised = supervised
        self._home = home
        self._born = _start_time(popen.pid) if supervised else 0

    def interrupt(self) -> None:
        """SIGINT to the command (pytest then writes its report and stops). Under
        bwrap, not to bwrap itself or the namespace's init: bwrap dies of SIGINT and
        would take the namespace, and the report, with it."""
        if self.confinement.kind != "bwrap":
            _signal_group(self.pid, signal.SIGINT)
            return
        for pid, ppid in processes(group=self.pid):
            if self.pid not in (pid, ppid):
                try:
                    os.kill(pid, signal.SIGINT)
                except OSError:
                    pass

    def kill(self) -> None:
        """Stop every process of the command now, also those that left its group."""
        if self._supervised and self.popen.poll() is None:
            try:
                os.kill(self.pid, signal.SIGTERM)  # the supervisor kills its descendants
                self.popen.wait(timeout=_STOP_GRACE_S)
            except (OSError, subprocess.TimeoutExpired):
                pass
        # Under bwrap this kills the namespace's init, and with it the namespace.
        _signal_group(self.pid, signal.SIGKILL)
        if self._supervised:
            self._kill_orphans()

    def _kill_orphans(self) -> None:
        """A test that killed its supervisor left orphans, re-parented to the agent
        (a child subreaper): every child of ours born since this command started,
        with its descendants."""
        me, born = os.getpid(), self._born
        for _ in range(50):
            mine = [pid for pid, _ in processes(parent=me, zombies=True)
                    if pid != self.pid and _start_time(pid) >= born]
            if not mine:
                return
            for pid in mine:
                for victim in [pid, *descendants(pid)]:
                    try:
                        os.kill(victim, signal.SIGKILL)
                    except OSError:
                        pass
            time.sleep(0.01)
            for pid in mine:
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass

    def close(self) -> None:
        _discard(self._home)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _start_time(pid: int) -> int:
    """When `pid` started, in clock ticks since boot (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return 0
    return int(stat[stat.rindex(b")") + 2:].split()[19])


def _discard(path: Path | None) -> None:
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)


# -- environment ---------------------------------------------------------------------


def project_env(environ: Mapping[str, str], allow: Iterable[str] = (), *,
                home: str) -> dict[str, str]:
    """The environment a test command gets: the allowlist, the user's `test_env` names
    (taken even when named like a secret: the user asked), toolchain locations, and a
    private HOME."""
    env = {k: v for k, v in environ.items()
           if (k in _PASS or k.startswith("LC_")) and not looks_secret(k)}
    env.update({k: environ[k] for k in allow if k in environ})
    real_home = Path(environ.get("HOME") or Path.home())
    for var, sub in _HOME_TOOLCHAINS.items():
        if var not in env and (real_home / sub).is_dir():
            env[var] = str(real_home / sub)
    if any((real_home / ".local" / "lib").glob("python3*")) and "PYTHONUSERBASE" not in env:
        env["PYTHONUSERBASE"] = str(real_home / ".local")  # pip install --user
    env.update(HOME=home, TMPDIR="/tmp", GIT_TERMINAL_PROMPT="0")
    for role in ("AUTHOR", "COMMITTER"):  # a suite that commits needs an identity
        env.setdefault(f"GIT_{role}_NAME", "agent tests")
        env.setdefault(f"GIT_{role}_EMAIL", "agent-tests@localhost")
    return env


# -- what the command needs to see -----------------------------------------------------


def _is_shell_c(argv: list[str]) -> bool:
    return len(argv) >= 3 and Path(argv[0]).name in ("sh", "bash", "dash") and argv[1] == "-c"


def _shell_words(argv: list[str]) -> list[str]:
    """Bare words of `sh -c TEXT` that may name programs: no `/` (a path in a test
    command is where it points, not a program to make readable), no option, no
    assignment. A test command can come from the repository."""
    if not _is_shell_c(argv):
        return []
    try:
        words = shlex.split(argv[2])
    except ValueError:
        words = argv[2].split()
    return [w for w in words[:100] if re.fullmatch(r"[A-Za-z0-9_.+-]+", w) and w[0] != "-"]


def _linked_programs(path_dirs: list[Path]) -> list[Path]:
    """Symbolic links in the user's PATH directories (pipx puts its tools in
    ~/.local/bin as links into ~/.local/share/pipx/venvs/...)."""
    found: list[Path] = []
    for directory in path_dirs:
        try:
            entries = list(os.scandir(directory))[:2000]
        except OSError:
            continue
        found += [Path(e.path) for e in entries if e.is_symlink()]
    return found


def _is_hole(path: Path, masks: set[Path]) -> bool:
    """A computed hole may open a directory inside a hidden one, never a hidden
    directory itself or one that contains one (a home, the checkout)."""
    if not path.is_absolute():
        return False
    real = _real(path)
    return not any(_within(m, real) or _within(m, path) for m in masks)


def _host_secret_files() -> list[Path]:
    """Files that only root can read, readable to a test that runs as root."""
    candidates = [Path(p) for p in ("/etc/shadow", "/etc/shadow-", "/etc/gshadow",
                                    "/etc/gshadow-", "/etc/sudoers")]
    ssh = Path("/etc/ssh")
    if ssh.is_dir():
        candidates += sorted(ssh.glob("ssh_host_*_key"))
    return [p for p in candidates if p.is_file() and not p.is_symlink()]


_CREDENTIAL_LINE = re.compile(rb"^\s*(extraheader|helper|username|password|token)\s*=",
                              re.IGNORECASE)


def _without_credentials(config: bytes) -> bytes:
    """A git config without what authenticates: `user:password@` in URLs, extra
    headers (`http.*.extraheader`), credential helpers and their sections."""
    out, skipping = [], False
    for line in config.splitlines(keepends=True):
        stripped = line.strip()
        if stripped.startswith(b"["):
            skipping = stripped.lower().startswith(b"[credential")
        if skipping or _CREDENTIAL_LINE.match(line):
            continue
        out.append(re.sub(rb"(://)[^/@\s]+@", rb"\1", line))
    return b"".join(out)


def _private_home() -> Path:
    """A fresh HOME for an unconfined run; those of dead agents are removed."""
    for stale in Path(tempfile.gettempdir()).glob("agent-home-*-*"):
        try:
            pid = int(stale.name.split("-")[2])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(stale, ignore_errors=True)
        except (ValueError, IndexError, OSError):
            continue
    return Path(tempfile.mkdtemp(prefix=f"agent-home-{os.getpid()}-"))


@functools.cache
def _harden_agent() -> None:
    """Before the first unconfined run (Linux): tests run as the user, so make the
    agent not dumpable (a test cannot read its /proc environ or ptrace it) and a
    child subreaper (a test that kills its supervisor hands its orphans to us, and
    `Process.kill` stops them)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def _shebang(path: Path) -> Path | None:
    try:
        with open(path, "rb") as f:
            head = f.read(256)
    except OSError:
        return None
    if not head.startswith(b"#!"):
        return None
    words = head[2:].split(b"\n", 1)[0].decode("utf-8", "replace").split()
    return Path(words[0]) if words and words[0].startswith("/") else None


def _install_roots(program: Path, home: Path) -> set[Path]:
    """Where a program's installation lives (a virtualenv and the Python it was made
    from, a toolchain prefix such as ~/.cargo), for the link and for its target."""
    roots: set[Path] = set()
    for exe in {program, _real(program)}:
        bin_dir = exe.parent
        venv_cfg = bin_dir.parent / "pyvenv.cfg"
        if venv_cfg.is_file():
            roots.add(bin_dir.parent)
            base = _venv_home(venv_cfg)
            if base is not None:
                roots |= {base.parent, _real(base).parent}
        elif bin_dir.name in ("bin", "sbin", "shims") and not _mixed(bin_dir.parent, home):
            roots.add(bin_dir.parent)
        else:
            roots.add(bin_dir)
    return roots


def _venv_home(cfg: Path) -> Path | None:
    """The `home` (the base interpreter's bin directory) of a virtualenv: absolute,
    and holding a python, or nothing."""
    try:
        for line in cfg.read_text(errors="replace").splitlines():
            key, _, value = line.partition("=")
            home = Path(value.strip())
            if key.strip() == "home" and home.is_absolute() and any(home.glob("python*")):
                return home
    except OSError:
        pass
    return None


def _mixed(directory: Path, home: Path) -> bool:
    return directory in (home, Path("/")) or any(directory == home / m for m in _MIXED)


def _git_common_dir(repo: Path) -> Path:
    dot_git = repo / ".git"
    if dot_git.is_file():  # a linked worktree or a submodule: follow `gitdir:`
        text = dot_git.read_text(errors="replace").strip()
        if text.startswith("gitdir:"):
            gitdir = (repo / text[len("gitdir:"):].strip()).resolve()
            common = gitdir / "commondir"
            if common.is_file():
                return (gitdir / common.read_text().strip()).resolve()
            return gitdir
    return dot_git


def _covered(path: Path, readable: set[Path], masks: set[Path]) -> bool:
    """Whether a shallower readable path already shows `path` (no mask between them)."""
    return any(q != path and _within(path, q)
               and not any(_within(m, q) and m != q and _within(path, m) for m in masks)
               for q in readable)


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


# -- bubblewrap ----------------------------------------------------------------------


@functools.cache
def probe() -> tuple[str | None, str, str]:
    """(path, `bubblewrap VERSION`, "") when bwrap can build a sandbox here, else
    (None, "", why). Run once per process: installed is not enough (a kernel or
    AppArmor policy can forbid the namespaces it needs)."""
    if not sys.platform.startswith("linux"):
        return None, "", f"bubblewrap is Linux-only and this is {sys.platform}"
    path = shutil.which("bwrap")
    if path is None:
        return None, "", "bwrap not found on PATH"
    try:
        trial = subprocess.run(  # the flags every real run uses
            [path, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--ro-bind",
             "/proc/sys", "/proc/sys", "--unshare-all", "--unshare-user", "--disable-userns",
             "--die-with-parent", "--cap-drop", "ALL", "--", "/bin/sh", "-c", ":"],
            capture_output=True, timeout=20, stdin=subprocess.DEVNULL, check=False)
        version = subprocess.run([path, "--version"], capture_output=True, timeout=20,
                                 check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, "", f"{path} cannot be run ({exc})"
    if trial.returncode != 0:
        why = trial.stderr.decode("utf-8", "replace").strip().splitlines()
        return None, "", (f"{path} cannot create a sandbox here "
                          f"({why[-1] if why else trial.returncode})")
    return path, version.stdout.decode().strip() or "bubblewrap", ""


# -- leftovers -------------------------------------------------------------------------


def reap(tag: str) -> list[int]:
    """SIGKILL every process whose environment carries `tag` (a run's leftovers after
    its agent died in a way the lifetime rules could not catch). Linux only; returns
    the pids killed."""
    if not tag or not Path("/proc").is_dir():
        return []
    marker = f"{TAG_VAR}={tag}".encode() + b"\0"
    me, killed = os.getpid(), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                environ = f.read() + b"\0"
        except OSError:
            continue
        if b"\0" + marker in b"\0" + environ:
            try:
                os.kill(int(entry), signal.SIGKILL)
                killed.append(int(entry))
            except OSError:
                pass
    return killed
