"""The README stays a newcomer's page: short, its commands real, its links alive.

Every `make` target and `manage.py` command its code blocks name exists, every
relative link (and its #anchor) resolves, both commands are on its first
screen, and it quotes no measured figure (those live in BENCHMARKS.md and docs/).
The same link check holds for docs/.
"""

import re
from pathlib import Path

import pytest
from django.core.management import get_commands

from tests.helpers import ROOT

README = ROOT / "README.md"
CODE_BLOCK = re.compile(r"^\s*```[a-z]*\n(.*?)^\s*```", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
MAKE = re.compile(r"(?:^|[\s;&|(])make\s+([a-z][\w-]*)")
MANAGE = re.compile(r"manage\.py\s+([a-z_]+)")
# A figure with a unit of time, size, rate or share, as benchmarks give them.
MEASURE = re.compile(r"\b\d[\d.,]*\s?(?:ms|µs|us|s|seconds|minutes|MB|GB|KB|%|req/s|/s)\b")


def _readme() -> str:
    return README.read_text()


def _code(text: str) -> str:
    return "\n".join(CODE_BLOCK.findall(text))


def _make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][\w-]*):", (ROOT / "Makefile").read_text(), re.MULTILINE))


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    headings = re.findall(r"^#+\s+(.*)$", path.read_text(), re.MULTILINE)
    return {_slug(h) for h in headings}


def _broken_links(document: Path) -> list[str]:
    broken = []
    for target in LINK.findall(document.read_text()):
        if re.match(r"^[a-z]+:", target):  # http:, https:, mailto:
            continue
        path_part, _, anchor = target.partition("#")
        path = (document.parent / path_part).resolve() if path_part else document
        if not _resolves(path, anchor):
            broken.append(target)
    return broken


def _resolves(path: Path, anchor: str) -> bool:
    if not path.exists():
        return False
    return not (anchor and path.suffix == ".md" and anchor not in _anchors(path))


def test_the_readme_reads_in_five_minutes():
    assert len(_readme().splitlines()) <= 200


def test_the_two_commands_are_on_the_first_screen():
    first_screen = "\n".join(_readme().splitlines()[:40])
    assert "make run" in first_screen and "make test" in first_screen


def test_every_make_target_it_names_exists():
    named = set(MAKE.findall(_code(_readme())))
    assert {"run", "test"} <= named
    assert named - _make_targets() == set()


def test_every_manage_py_command_it_names_exists():
    named = set(MANAGE.findall(_code(_readme())))
    assert named, "the README shows manage.py commands"
    assert named - set(get_commands()) == set()


@pytest.mark.parametrize(
    "document", [README, *sorted((ROOT / "docs").glob("*.md"))], ids=lambda p: p.name
)
def test_every_relative_link_resolves(document):
    assert _broken_links(document) == []


def test_it_quotes_no_measured_figure():
    assert MEASURE.findall(_readme()) == []


def test_the_checks_catch_what_they_look_for(tmp_path):
    """The link check and the command patterns find what a broken README would have."""
    page = tmp_path / "page.md"
    page.write_text("# Title\n[ok](#title) [gone](missing.md) [bad](#nowhere)\n")
    assert _broken_links(page) == ["missing.md", "#nowhere"]
    code = _code("```bash\nmake serve PORT=1 && .venv/bin/python manage.py broadcast --once\n```\n")
    assert MAKE.findall(code) == ["serve"] and MANAGE.findall(code) == ["broadcast"]
    assert MEASURE.findall("takes 39 s and 132 MB") == ["39 s", "132 MB"]
