"""Every document the code, the tests or the docs cite is in the repository: a reader
who follows a reference finds the page."""

import re
import subprocess
from pathlib import Path

from django.conf import settings

ROOT = Path(settings.BASE_DIR)
# A Markdown file named in text: `docs/api.md`, (docs/security.md), README.md.
CITED = re.compile(r"(?<![\w/.-])((?:[\w-]+/)*[\w-]+\.md)\b")
TEXT_FILES = (".py", ".md", ".html", ".yml", ".toml", ".txt", ".cfg")


def tracked_text_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return [ROOT / name for name in listed if name.endswith(TEXT_FILES)]


def found(cited: str, citing: Path) -> bool:
    """A path is read from the repository's root, or beside the file citing it."""
    return (ROOT / cited).is_file() or (citing.parent / cited).is_file()


def test_every_cited_document_exists():
    dangling = [
        f"{path.relative_to(ROOT)} cites {cited}"
        for path in tracked_text_files()
        for cited in CITED.findall(path.read_text(encoding="utf-8", errors="replace"))
        if not found(cited, path)
    ]

    assert dangling == []
