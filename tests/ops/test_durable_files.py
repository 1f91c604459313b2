"""Atomic, private file writes (``ops/durable_files.py``)."""

from __future__ import annotations

import stat
from pathlib import Path

from fundmodel.ops.durable_files import temporary_path_for, write_atomically


def test_a_write_replaces_the_file_whole_private_and_leaves_no_temporary(tmp_path: Path) -> None:
    final = tmp_path / "backup.manifest.json"
    final.write_text("old")
    write_atomically(final, b"new")
    assert final.read_bytes() == b"new"
    assert stat.S_IMODE(final.stat().st_mode) == 0o600
    assert list(tmp_path.iterdir()) == [final]


def test_the_temporary_name_is_hidden_next_to_the_file(tmp_path: Path) -> None:
    temporary = temporary_path_for(tmp_path / "x.dump")
    assert temporary.parent == tmp_path
    assert temporary.name.startswith(".x.dump.tmp-")
