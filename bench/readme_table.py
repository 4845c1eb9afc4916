"""Writing a benchmark's table into the README, between its markers."""

from __future__ import annotations

from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def write_table(name: str, table: str, readme: Path = README) -> None:
    """Replace what stands between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->`` in the
    README with ``table``; a README without those markers is left as it is."""
    start_mark, end_mark = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    text = readme.read_text()
    if start_mark not in text:
        return
    head, rest = text.split(start_mark, 1)
    tail = rest.split(end_mark, 1)[1]
    readme.write_text(f"{head}{start_mark}\n{table}\n{end_mark}{tail}")
