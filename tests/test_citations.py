"""Every mention of "the thesis" can be followed: the README cites it, and each file that mentions it says which."""

from __future__ import annotations

import re

from tests.conftest import REPO

CITATION = "Durham University, 2025"


def _files_mentioning_the_thesis() -> list:
    found = []
    for pattern in ("inpaintstudio/**/*.py", "docs/**/*.md", "README.md"):
        for path in REPO.glob(pattern):
            if re.search(r"\bthesis\b", path.read_text(encoding="utf-8"), re.I):
                found.append(path)
    return found


def test_the_readme_cites_the_thesis_with_author_institution_and_year() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    references = readme.split("## References", 1)[1].split("\n## ", 1)[0]
    entry = next(line for line in references.splitlines() if line.startswith("- **The thesis**"))
    assert "Shuang Chen" in entry and CITATION in entry


def test_every_file_that_mentions_the_thesis_says_which() -> None:
    files = _files_mentioning_the_thesis()
    assert len(files) > 10  # the protocol, the metrics, three networks, their docs...
    unnamed = [str(path.relative_to(REPO)) for path in files if CITATION not in path.read_text(encoding="utf-8")]
    assert not unnamed
