"""The isolated git worktree a run writes and tests code in.

Stages 5-8 never touch the user's checkout: each run gets a detached worktree at
`<repo>/.agent/worktrees/<run_id>`, made from the run's base commit. The pipeline
calls these functions from durable checkpoints that may re-execute after a crash, so
every operation is idempotent given its inputs:

* `Worktree.ensure` reuses a healthy worktree, and replaces a half-made one (a crash
  during `git worktree add`, a directory deleted by hand) with a fresh one.
* The state of a worktree is always *base commit + one diff*. `materialize(diff)`
  rebuilds exactly that state from scratch (reset, clean everything, apply), and
  `diff()` reads it back, so a checkpoint stores a diff string, never a directory.
* `diff()` snapshots the files into a throwaway index (`GIT_INDEX_FILE`) and writes
  a tree object; the worktree's own index and HEAD are never moved by reading.

Every destructive command (`reset --hard`, `clean -ffdx`) first proves that git sees
the worktree itself as the top level, and runs with `GIT_CEILING_DIRECTORIES` so
that a broken worktree can never make git fall back to the enclosing user checkout.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from agent_cli.workspace._git import git, run_git, split_z
from agent_cli.workspace.errors import (
    DiffDoesNotApply,
    NotAGitRepository,
    WorkspaceError,
)

# Artifacts a test run leaves behind that must never end up in a diff or a commit,
# even in repositories that do not ignore them.
_NEVER_RECORDED = (
    ":(exclude,glob)**/__pycache__/**",
    ":(exclude,glob)**/.pytest_cache/**",
)

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")

# How diffs are produced, independent of the user's diff.* and color.* config: fixed
# prefixes (diff.noprefix would break `git apply`), no external or textconv drivers,
# full blob ids so binary patches apply, and no rename detection so each file's
# change reads the same whatever `diff.renames` says.
_DIFF_FLAGS = (
    "--binary",
    "--full-index",
    "--no-renames",
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "--no-relative",
    "--src-prefix=a/",
    "--dst-prefix=b/",
)


def repo_root(path: Path | str) -> Path:
    """The top level of the git checkout containing `path` (resolved, absolute)."""
    p = Path(path).expanduser()
    cwd = p if p.is_dir() else p.parent
    result = run_git(cwd, "rev-parse", "--show-toplevel", check=False) if cwd.is_dir() else None
    if result is None or result.returncode != 0 or not result.stdout.strip():
        raise NotAGitRepository(
            f"not a git repository: {p} — run agent inside a git checkout or pass --repo"
        )
    return Path(result.stdout.decode("utf-8", "surrogateescape").strip()).resolve()


def head_commit(repo: Path | str) -> str:
    """The full id of the commit checked out in `repo`."""
    root = repo_root(repo)
    result = run_git(root, "rev-parse", "--verify", "--quiet", "HEAD^{commit}", check=False)
    if result.returncode != 0:
        raise NotAGitRepository(
            f"{root} has no commit yet — commit something first: git commit --allow-empty -m init"
        )
    return result.stdout.decode().strip()


def resolve_commit(repo: Path, rev: str) -> str:
    """The full id of commit `rev` in `repo`; `WorkspaceError` if there is none."""
    if not rev or rev.startswith("-"):
        raise WorkspaceError(f"not a commit: {rev!r}")
    result = run_git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
    if result.returncode != 0:
        raise WorkspaceError(
            f"commit {rev} is not in {repo}",
            hint="was the history rewritten? start a new run with: agent solve ISSUE.md",
        )
    return result.stdout.decode().strip()


def is_tracked(repo: Path, path: Path) -> bool:
    """Whether git tracks `path` (or anything under it) in `repo`'s index: what the
    repository ships, as opposed to what the user made in the checkout."""
    try:
        rel = Path(path).relative_to(repo)
    except ValueError:
        return False
    listed = run_git(repo, "--literal-pathspecs", "ls-files", "-z", "--", str(rel), check=False)
    return bool(listed.stdout)


def files_at(repo: Path, commit: str) -> frozenset[str]:
    """Every file path in `commit`'s tree."""
    listed = run_git(repo, "ls-tree", "-r", "-z", "--name-only", commit).stdout
    return frozenset(split_z(listed))


def common_dir(repo: Path) -> Path:
    """The repository's shared git directory, also when `repo/.git` is a file
    (a linked worktree or a submodule)."""
    out = git(repo, "rev-parse", "--git-common-dir")
    return (repo / out).resolve()


def ensure_excluded(repo: Path) -> None:
    """Add `.agent/` to `info/exclude` once, so the user's `git status` stays clean.
    Called before anything is written under `.agent/` (the run store, worktrees)."""
    exclude = common_dir(repo) / "info" / "exclude"
    existing = exclude.read_text(errors="replace") if exclude.exists() else ""
    if any(
        line.strip() in (".agent", ".agent/", "/.agent", "/.agent/")
        for line in existing.splitlines()
    ):
        return
    exclude.parent.mkdir(parents=True, exist_ok=True)
    sep = "" if not existing or existing.endswith("\n") else "\n"
    with exclude.open("a") as f:
        f.write(f"{sep}# agent: run records and worktrees\n.agent/\n")


def _make_writable_and_retry(func, path, _exc) -> None:  # type: ignore[no-untyped-def]
    """rmtree helper: test runs can leave read-only files and directories behind."""
    os.chmod(os.path.dirname(path), 0o700)
    if os.path.lexists(path) and not os.path.islink(path):
        os.chmod(path, 0o700)
    func(path)


@dataclass(frozen=True)
class Worktree:
    """A run's detached worktree. Build it with `Worktree.ensure`."""

    repo: Path
    """Top level of the user's checkout (resolved)."""
    path: Path
    """`<repo>/.agent/worktrees/<run_id>` (resolved)."""
    base_commit: str
    """Full id of the commit the worktree starts from; diffs are relative to it."""

    @classmethod
    def ensure(cls, repo: Path | str, run_id: str, base_commit: str) -> Worktree:
        """Create, or reuse, the worktree for `run_id` at `base_commit`.

        A healthy existing worktree is reused with its files untouched (its HEAD is moved
        back to base with `reset --soft` if something committed on it). Anything else at
        that path (a half-created or unregistered directory) is removed and recreated.
        """
        root = repo_root(repo)
        if not _RUN_ID.match(run_id) or ".." in run_id:
            raise WorkspaceError(f"invalid run id for a worktree: {run_id!r}")
        base = resolve_commit(root, base_commit)
        agent_dir = root / ".agent"
        if agent_dir.is_symlink():
            # A repository could commit `.agent` as a symlink; we would then create and
            # delete directories wherever it points.
            raise WorkspaceError(
                f"{agent_dir} is a symlink; refusing to create worktrees through it",
                hint=f"remove it with: rm {agent_dir}",
            )
        ensure_excluded(root)
        wt = cls(repo=root, path=agent_dir / "worktrees" / run_id, base_commit=base)
        if wt._healthy():
            if wt._git("rev-parse", "HEAD") != base:
                wt._git("reset", "-q", "--soft", base)
            return wt
        wt._discard_directory()
        git(root, "worktree", "prune")
        wt.path.parent.mkdir(parents=True, exist_ok=True)
        git(root, "worktree", "add", "--detach", "-q", str(wt.path), base)
        if not wt._healthy():
            raise WorkspaceError(f"git worktree add did not produce a usable worktree at {wt.path}")
        return wt

    def materialize(self, diff: str) -> None:
        """Make the worktree exactly `base_commit` + `diff` (a `git diff --binary` text).

        Everything else goes: tracked changes, untracked and ignored files. An empty diff
        leaves the clean base. If the diff does not apply, the worktree is left at the
        clean base and `DiffDoesNotApply` says why.
        """
        self._require_healthy()
        self._to_base()
        if not diff.strip():
            return
        data = diff.encode("utf-8", "surrogateescape")
        if not data.endswith(b"\n"):
            data += b"\n"
        result = run_git(
            self.path,
            "apply",
            "--binary",
            "--whitespace=nowarn",
            "-",
            input=data,
            env=self._env(),
            check=False,
        )
        if result.returncode != 0:
            # `git apply` is all-or-nothing, but clean up anyway so the state is known.
            self._to_base()
            raise DiffDoesNotApply(
                f"the diff does not apply to {self.base_commit[:12]} in {self.path}:\n"
                + result.stderr.decode("utf-8", "replace").strip()
            )

    def tree(self, files: list[str] | None = None) -> str:
        """Id of a git tree: base, plus the worktree's current content (all of it, or
        only `files`). Written to the object store; HEAD and the real index stay put."""
        self._require_healthy()
        with tempfile.TemporaryDirectory(prefix="agent-index-") as tmp:
            env = {**self._env(), "GIT_INDEX_FILE": str(Path(tmp) / "index")}
            if files is None:
                # Start from the worktree's own index: its stat data lets `add -A` skip
                # re-hashing unchanged files; `add -A` then makes it match the files.
                # copy2, keeping the index's mtime: git re-reads a file whose mtime is not
                # older than the index's (racy git); under a fresh mtime, a same-size
                # rewrite in the tick of its checkout looked unchanged and was dropped.
                real_index = self.path / self._git("rev-parse", "--git-path", "index")
                if real_index.exists():
                    shutil.copy2(real_index, env["GIT_INDEX_FILE"])
                else:
                    run_git(self.path, "read-tree", self.base_commit, env=env)
                run_git(self.path, "add", "-A", "--", ".", *_NEVER_RECORDED, env=env)
            else:
                run_git(self.path, "read-tree", self.base_commit, env=env)
                specs = self._pathspecs(files)
                if specs:
                    # -f: a file named explicitly is wanted even if a .gitignore covers it.
                    run_git(self.path, "add", "-A", "-f", "--", *specs, env=env)
            return run_git(self.path, "write-tree", env=env).stdout.decode().strip()

    def diff(self) -> str:
        """The whole change against base: edits, new, deleted and binary files, as a
        `git diff --binary` text that `materialize` applies. Empty when unchanged.

        The text is always valid UTF-8 (it goes into JSON artifacts): a text file that
        is not UTF-8 is carried as a binary patch instead of a text hunk.
        """
        tree = self.tree()
        raw = self._git_bytes("diff", *_DIFF_FLAGS, self.base_commit, tree)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return self._diff_per_file(tree)

    def changed_files(self) -> list[str]:
        """Paths (relative, `/`-separated, sorted) that differ from base, including
        added and deleted files."""
        out = self._git_bytes(
            "diff",
            "--name-only",
            "-z",
            "--no-renames",
            "--no-relative",
            self.base_commit,
            self.tree(),
        )
        return sorted(split_z(out))

    def remove(self) -> None:
        """Delete the worktree and its git bookkeeping. Idempotent; the branch a run
        committed (`agent/<run_id>`) is kept."""
        if self.path.exists():
            run_git(
                self.repo, "worktree", "remove", "--force", "--force", str(self.path), check=False
            )
        self._discard_directory()
        git(self.repo, "worktree", "prune")

    # -- internals ---------------------------------------------------------------

    def _to_base(self) -> None:
        """The clean base commit, whatever the worktree held. Untracked files go first:
        a `.gitattributes` the last diff added (`*.py text eol=crlf`) would otherwise
        steer how `reset --hard` writes the files back (CRLF), and the same diff would
        then not apply to them: rebuilds alternately failing. Reset then rewrites the
        tracked files under the base commit's own attributes (read from the index on
        checkout). -ff: also delete nested git repositories a test run may have made."""
        self._git("clean", "-q", "-ffdx")
        self._git("reset", "-q", "--hard", self.base_commit)

    def _env(self) -> dict[str, str]:
        return {"GIT_CEILING_DIRECTORIES": str(self.path.parent)}

    def _git(self, *args: str) -> str:
        return git(self.path, *args, env=self._env())

    def _git_bytes(self, *args: str) -> bytes:
        return run_git(self.path, *args, env=self._env()).stdout

    def _healthy(self) -> bool:
        """True when git, asked from inside `path`, sees `path` as the top level of a
        worktree of *this* repository."""
        if not (self.path / ".git").is_file():
            return False
        result = run_git(
            self.path,
            "rev-parse",
            "--show-toplevel",
            "--git-common-dir",
            "--absolute-git-dir",
            env=self._env(),
            check=False,
        )
        if result.returncode != 0:
            return False
        lines = result.stdout.decode("utf-8", "surrogateescape").splitlines()
        if len(lines) != 3:
            return False
        top, common = Path(lines[0]).resolve(), (self.path / lines[1]).resolve()
        # Its own git directory, not the checkout's: a test that rewrote `.git` to
        # `gitdir: <checkout>/.git` would make `reset` below move the user's branch.
        own = Path(lines[2]).resolve()
        return (top == self.path.resolve() and common == common_dir(self.repo)
                and own.parent == common / "worktrees")

    def _require_healthy(self) -> None:
        if not self._healthy():
            raise WorkspaceError(
                f"the worktree {self.path} is missing or broken",
                hint="resume the run (agent resume) to recreate it",
            )

    def _discard_directory(self) -> None:
        if self.path.is_symlink() or self.path.is_file():
            self.path.unlink()
        elif self.path.exists():
            # The path is ours by construction (`.agent/worktrees/<validated id>` under a
            # non-symlinked `.agent`), so deleting it cannot reach the user's files.
            if sys.version_info >= (3, 12):
                shutil.rmtree(self.path, onexc=_make_writable_and_retry)
            else:
                shutil.rmtree(self.path, onerror=_make_writable_and_retry)

    def _pathspecs(self, files: list[str]) -> list[str]:
        """Literal pathspecs for `files` that exist now or in base (git refuses a
        pathspec matching nothing)."""
        specs = []
        for name in files:
            parts = Path(name).parts
            if Path(name).is_absolute() or ".." in parts or not parts:
                raise WorkspaceError(f"not a path inside the worktree: {name}")
            in_base = run_git(
                self.path,
                "cat-file",
                "-e",
                f"{self.base_commit}:{name}",
                env=self._env(),
                check=False,
            )
            if (
                (self.path / name).exists()
                or (self.path / name).is_symlink()
                or in_base.returncode == 0
            ):
                specs.append(f":(literal){name}")
        return specs

    def _diff_per_file(self, tree: str) -> str:
        """Fallback of `diff()` when some file is not UTF-8: diff file by file, and
        re-diff the undecodable ones with every path forced binary.

        The forcing attribute comes from `core.attributesFile`, which in-tree
        `.gitattributes` would override, so those diffs run against the bare object
        store (no work tree, hence no in-tree attributes)."""
        pieces = []
        common = common_dir(self.repo)
        for name in sorted(
            split_z(
                self._git_bytes("diff", "--name-only", "-z", "--no-renames", self.base_commit, tree)
            )
        ):
            spec = f":(literal){name}"
            raw = self._git_bytes("diff", *_DIFF_FLAGS, self.base_commit, tree, "--", spec)
            try:
                pieces.append(raw.decode("utf-8"))
                continue
            except UnicodeDecodeError:
                pass
            with tempfile.TemporaryDirectory(prefix="agent-attr-") as tmp:
                attrs = Path(tmp) / "attributes"
                attrs.write_text("* -diff\n")
                raw = run_git(
                    common,
                    f"--git-dir={common}",
                    "-c",
                    f"core.attributesFile={attrs}",
                    "diff",
                    *_DIFF_FLAGS,
                    self.base_commit,
                    tree,
                    "--",
                    spec,
                ).stdout
            # surrogateescape only if $GIT_DIR/info/attributes insists on a text diff.
            pieces.append(raw.decode("utf-8", "surrogateescape"))
        return "".join(pieces)
