"""This commit's scenarios beside another commit's, alternated repetition by repetition.

    python -m bench.sidebyside ../railfleet-before                # create and drain
    python -m bench.sidebyside ../railfleet-before --only create --pairs 5
    python -m bench.sidebyside ../railfleet-before --append      # 3 pairs more

The other commit is a git worktree with its own `make install` (and the bench
group) done. Each pair runs one repetition of the scenarios there, then one
here (`BENCH_REPS=1 python -m bench.run --only ...`, each database afresh), so
that the machine's drift over the session falls on both sides alike: on these
shared machines two runs a quarter of an hour apart differ by more than the
10% a side by side must tell apart. The repetitions are gathered into
bench/results/side-by-side/<db>.json (the other commit's) and <db>-now.json
(this one's), which `python -m bench.report` puts side by side in BENCHMARKS.md.
"""

import argparse
import json
import os
import subprocess
from pathlib import Path

from bench import config, database
from bench.context import log
from bench.run import DATABASES, GIT_COMMIT

SIDE_BY_SIDE = config.RESULTS / "side-by-side"


def gather(runs: list[dict]) -> dict:
    """One result from several runs of one commit: every scenario's repetitions in turn."""
    out: dict = {"database": runs[0].get("database"), "scenarios": {}}
    for run in runs:
        for name, reps in run["scenarios"].items():
            if isinstance(reps, list):
                out["scenarios"].setdefault(name, []).extend(reps)
    return out


def commit_of(root: Path) -> str:
    out = subprocess.run(GIT_COMMIT, cwd=root, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def one_rep(root: Path, db: str, only: str) -> dict:
    """One repetition of `only` on `db` in the tree at `root`, by its own runner."""
    env = {**os.environ, "BENCH_REPS": "1"}
    python = str(root / ".venv" / "bin" / "python")
    command = [python, "-m", "bench.run", "--db", db, "--only", only]
    subprocess.run(command, cwd=root, env=env, check=True)
    return json.loads((root / "bench" / "results" / "tmp" / f"{db}-partial.json").read_text())


def earlier(name: str, commit: str | None = None) -> list[dict]:
    """The alternated repetitions SIDE_BY_SIDE/<name>.json holds already (`--append`): of
    `commit` only, if given (the other's; this tree's commits may differ only in the bench)."""
    path = SIDE_BY_SIDE / f"{name}.json"
    if not path.exists():
        return []
    held = json.loads(path.read_text())
    wanted = held.get("alternated") and commit in (None, held.get("commit"))
    return [held] if wanted else []


def alternate(other: Path, db: str, only: str, pairs: int, append: bool) -> None:
    """`pairs` repetitions of each commit on `db`, alternated, gathered into SIDE_BY_SIDE
    (after those it holds already, with `append`)."""
    before = earlier(db, commit_of(other)) if append else []
    now = earlier(f"{db}-now") if append else []
    for pair in range(pairs):
        log(f"{db}: pair {pair + 1}/{pairs}")
        before.append(one_rep(other, db, only))
        now.append(one_rep(config.ROOT, db, only))
    for runs, root, name in ((before, other, db), (now, config.ROOT, f"{db}-now")):
        result = gather(runs) | {"commit": commit_of(root), "alternated": True}
        (SIDE_BY_SIDE / f"{name}.json").write_text(json.dumps(result, default=str) + "\n")
    log(f"{db}: wrote {SIDE_BY_SIDE.relative_to(config.ROOT)}/{db}.json and {db}-now.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("worktree", type=Path, help="the other commit's git worktree")
    parser.add_argument("--only", default="create,drain", help="scenarios (bench/scenarios/)")
    parser.add_argument("--pairs", type=int, default=3, help="repetitions of each commit")
    parser.add_argument("--append", action="store_true", help="add to those gathered already")
    args = parser.parse_args()
    SIDE_BY_SIDE.mkdir(parents=True, exist_ok=True)
    for db in DATABASES:
        if db == "sqlite" or database.postgres_url():
            alternate(args.worktree.resolve(), db, args.only, args.pairs, args.append)


if __name__ == "__main__":
    main()
