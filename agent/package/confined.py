"""Open an instrument file only if it really is inside its watched folder.

Anyone with a lab account can write the instrument folders, while the agent's account can read
things they cannot (its key, other users' files). O_NOFOLLOW on the last component is not enough:
replacing a *sub-folder* by a symlink while a measurement waits (for a sheet, for intake) makes
``watch/sub/data.dat`` resolve anywhere, with a decoy of the same size and mtime to pass the
settle check. So on POSIX every component is opened with O_NOFOLLOW relative to the directory
before it (openat), starting at the watched root: no symlink can be followed at any depth, and
what is opened is a child of the root by construction. Where ``dir_fd`` is not available
(Windows), the descriptor's identity is compared with the real path, which must lie in the root.

A hard link is a second name for a file that may belong to someone else; a file with several
links whose owner is not the owner of the folder it appears in is refused too.
"""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
FILE_FLAGS = os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0) \
    | getattr(os, "O_CLOEXEC", 0)
_OPENAT = os.open in os.supports_dir_fd and bool(_NOFOLLOW)


class OutsideWatchedFolder(OSError):
    """The path leads out of the watched folder (a symlink at some depth, a foreign hard link)."""


def open_confined(root: Path, path: Path) -> int:
    """A read-only descriptor of ``path``, which must be a regular file below ``root``.

    Raises FileNotFoundError if it vanished, OutsideWatchedFolder for an escape, OSError otherwise.
    """
    parts: tuple[str, ...] | None = None
    for base in (Path(root), Path(os.path.abspath(root)), Path(os.path.realpath(root))):
        try:
            parts = Path(os.path.abspath(path)).relative_to(base).parts
            break
        except ValueError:
            continue
    # the configured root may itself be a link (the admin chose it); below it nothing is followed
    root = Path(os.path.realpath(root))
    if parts is None:
        raise OutsideWatchedFolder(errno.EXDEV, f"{path}: not inside the watched folder {root}")
    if not parts or any(p in ("..", ".") for p in parts):
        raise OutsideWatchedFolder(errno.EXDEV, f"{path}: not a file inside the watched folder {root}")
    fd = _open_walk(root, parts) if _OPENAT else _open_checked(root, Path(path))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OutsideWatchedFolder(errno.EINVAL, f"{path}: is not a regular file")
        if st.st_nlink > 1:
            owner = os.stat(Path(path).parent, follow_symlinks=False).st_uid
            if st.st_uid != owner:
                raise OutsideWatchedFolder(errno.EPERM, f"{path}: is a hard link to a file of another owner "
                                                        f"(uid {st.st_uid}, folder owner uid {owner}); refused")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_walk(root: Path, parts: tuple[str, ...]) -> int:
    cur = os.open(root, _DIR_FLAGS & ~_NOFOLLOW)
    try:
        for i, name in enumerate(parts):
            last = i == len(parts) - 1
            try:
                nxt = os.open(name, FILE_FLAGS if last else _DIR_FLAGS, dir_fd=cur)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                    where = root.joinpath(*parts[:i + 1])
                    raise OutsideWatchedFolder(exc.errno, f"{root.joinpath(*parts)}: {where} is a symbolic link "
                                                          "(or not a folder); links are never followed") from None
                raise
            os.close(cur)
            cur = nxt
        return cur
    except BaseException:
        os.close(cur)
        raise


def _open_checked(root: Path, path: Path) -> int:  # pragma: no cover - Windows (no dir_fd)
    fd = os.open(path, FILE_FLAGS)
    try:
        real = Path(os.path.realpath(path))
        st, now = os.fstat(fd), os.stat(real)
        if root not in real.parents or (st.st_dev, st.st_ino) != (now.st_dev, now.st_ino):
            raise OutsideWatchedFolder(errno.EXDEV, f"{path}: resolves to {real}, outside the watched folder {root}")
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_in_watched(roots: "list[Path] | tuple[Path, ...]", path: Path) -> int:
    """open_confined against whichever configured watched folder ``path`` lies in."""
    for root in roots:
        for base in (Path(root), Path(os.path.realpath(root))):
            if base == Path(path) or base in Path(path).parents:
                return open_confined(root, path)
    raise OutsideWatchedFolder(errno.EXDEV, f"{path}: not inside any watched folder")
