"""The docs gate's own machinery can fail: fences, markers, snippet parsing, output matching, the score."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.conftest import Score
from tests.docs.docset import ROOT, code_blocks, inline_code, sections, table_rows
from tests.docs.snippets import output_matches, resolve_placeholders, steps, synopsis_variants
from tests.docs.test_snippets import KNOWN_LANGUAGES

PAGE = ROOT / "docs" / "example.md"
MARKDOWN = """# Title

Run `fundmodel mode get` first.

```
no language
```

<!-- docs-check: not-runnable: needs a real Prometheus with traffic -->

```sh
fundmodel rollout status
```

<!-- docs-check: runnable please -->
```console
$ echo hello \\
  world
hello world
$ fundmodel db verify-backup var/backups/<file>
```

## Second

| code | status |
|---|---|
| `A_B` | 400 |
"""


def test_blocks_languages_and_markers_are_read() -> None:
    untagged, marked, console = code_blocks(PAGE, MARKDOWN)
    assert untagged.language == ""
    assert untagged.language not in KNOWN_LANGUAGES
    assert marked.not_runnable_reason == "needs a real Prometheus with traffic"
    assert console.stray_marker == "<!-- docs-check: runnable please -->"
    assert console.not_runnable_reason is None
    assert [untagged.line, marked.line, console.line] == [5, 11, 16]


def test_console_steps_carry_their_documented_output() -> None:
    console = code_blocks(PAGE, MARKDOWN)[2]
    first, second = steps(console)
    assert first.command == "echo hello \\\n  world"
    assert first.expected_output == ["hello world"]
    assert second.expected_output == []


def test_output_matching_catches_a_missing_or_reordered_line() -> None:
    documented = ["HTTP/1.1 201 Created", "x: ...", "{...}"]
    assert output_matches(documented, "HTTP/1.1 201 Created\nx: 1\n{}") is None
    assert output_matches(["HTTP/1.1 201 Created"], "HTTP/1.1 200 OK") == "HTTP/1.1 201 Created"
    assert output_matches(["b", "a"], "a\nb") == "a"


def test_synopsis_and_placeholders(tmp_path: Path) -> None:
    assert synopsis_variants("x [--json] [--plot f.png]") == ["x", "x --json --plot f.png"]
    assert synopsis_variants("x --a") == ["x --a"]
    with pytest.raises(LookupError, match="no earlier command"):
        resolve_placeholders("verify var/backups/<file>", tmp_path)
    with pytest.raises(LookupError, match="PLACEHOLDERS"):
        resolve_placeholders("restore --target <scratch URL>", tmp_path)
    assert resolve_placeholders("curl -H 'Link: <x>'", tmp_path) == "curl -H 'Link: <x>'"
    (tmp_path / "var" / "backups").mkdir(parents=True)
    (tmp_path / "var" / "backups" / "b.sqlite3").write_text("")
    assert resolve_placeholders("verify var/backups/<file>", tmp_path) == "verify var/backups/b.sqlite3"


def test_inline_code_sections_and_tables() -> None:
    assert inline_code(PAGE, MARKDOWN) == ["fundmodel mode get", "A_B"]
    assert [heading for heading, _ in sections(PAGE, MARKDOWN)] == ["", "Title", "Second"]
    assert "fundmodel rollout status" in dict(sections(PAGE, MARKDOWN))["Title"]


def test_table_rows_need_the_named_table() -> None:
    with pytest.raises(AssertionError, match="no table"):
        table_rows(ROOT / "README.md", "no such first column")


def test_score_line() -> None:
    assert Score(3, 4).line() == "docs-check: 3/4 checks passed (75.0 %)"
    assert Score(0, 0).percent == 100.0
