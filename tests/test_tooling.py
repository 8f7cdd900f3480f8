"""The pre-commit hooks and `make lint` run the same tool versions."""

import tomllib

import yaml

from tests.helpers import ROOT


def _pinned() -> dict[str, str]:
    """The `name==version` pins of pyproject.toml's dev group."""
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]["dev"]
    return dict(pin.split("==") for pin in dev if "==" in pin)


def _hook_revs() -> dict[str, str]:
    """Each .pre-commit-config.yaml repository's name (its URL's last part) and rev."""
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    return {repo["repo"].rsplit("/", 1)[1]: repo["rev"].lstrip("v") for repo in config["repos"]}


def test_pre_commit_revs_are_the_pinned_versions():
    revs, pinned = _hook_revs(), _pinned()
    assert revs == {
        "ruff-pre-commit": pinned["ruff"],
        "django-upgrade": pinned["django-upgrade"],
    }
