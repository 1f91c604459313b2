"""Files that survive a crash whole or not at all: written under a temporary name, synced, renamed, and
the directory synced so the rename itself is durable. Backups, manifests and verification records."""

from __future__ import annotations

import os
from pathlib import Path


def temporary_path_for(final: Path) -> Path:
    """Where ``final`` is written before it is complete (hidden, unique per process)."""
    return final.with_name(f".{final.name}.tmp-{os.getpid()}")


def fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(final: Path, data: bytes) -> None:
    """``final`` holds ``data`` (owner-readable only), or is as it was before."""
    temporary = temporary_path_for(final)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, final)
    fsync_directory(final.parent)
