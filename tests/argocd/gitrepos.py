"""Local Git repositories that Argo CD reads through ``file://`` URLs, with no server.

Each repository is a bare one; `publish` commits a set of files on top of the current
tree of a branch and pushes, as a person editing the configuration repository would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

__all__ = ["GitRepo", "git"]

# Commits made here are reproducible and carry no user identity from the machine.
_GIT_ENV = {
    "GIT_AUTHOR_NAME": "regcred tests",
    "GIT_AUTHOR_EMAIL": "tests@regcred.dev",
    "GIT_COMMITTER_NAME": "regcred tests",
    "GIT_COMMITTER_EMAIL": "tests@regcred.dev",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}


def git(*args: str, cwd: Path) -> str:
    result = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**os.environ, **_GIT_ENV},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {cwd}: {result.stderr.strip()}")
    return result.stdout.strip()


class GitRepo:
    """One bare repository; its URL is what an Application's repoURL names."""

    def __init__(self, bare: Path) -> None:
        """The bare repository at `bare`, created (empty, branch main) if absent."""
        self.bare = bare
        if not (bare / "HEAD").is_file():
            bare.mkdir(parents=True, exist_ok=True)
            git("init", "--quiet", "--bare", "--initial-branch=main", str(bare), cwd=bare)

    @property
    def url(self) -> str:
        return self.bare.as_uri()

    def publish(
        self,
        files: Mapping[str, str | Path],
        message: str,
        branch: str = "main",
        remove: tuple[str, ...] = (),
        tag: str | None = None,
    ) -> str:
        """Commit `files` (path in the repository -> text, or a file or folder to copy).

        Other files of the branch stay as they were, except those listed in `remove`.
        Returns the new commit's hash.
        """
        with tempfile.TemporaryDirectory(prefix="regcred-git-") as scratch:
            work = Path(scratch)
            git("init", "--quiet", f"--initial-branch={branch}", cwd=work)
            git("remote", "add", "origin", str(self.bare), cwd=work)
            if git("ls-remote", "--heads", "origin", branch, cwd=work):
                git("fetch", "--quiet", "origin", branch, cwd=work)
                git("checkout", "--quiet", "-B", branch, "FETCH_HEAD", cwd=work)
            for name in remove:
                git("rm", "-r", "--quiet", "--ignore-unmatch", name, cwd=work)
            for name, content in files.items():
                target = work / name
                if isinstance(content, Path) and content.is_dir():
                    shutil.rmtree(target, ignore_errors=True)
                    shutil.copytree(content, target)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                if isinstance(content, Path):
                    shutil.copyfile(content, target)
                else:
                    target.write_text(content)
            git("add", "--all", cwd=work)
            git("commit", "--quiet", "--allow-empty", "-m", message, cwd=work)
            git("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", cwd=work)
            if tag is not None:
                git("tag", tag, cwd=work)
                git("push", "--quiet", "--force", "origin", f"refs/tags/{tag}", cwd=work)
            return git("rev-parse", "HEAD", cwd=work)
