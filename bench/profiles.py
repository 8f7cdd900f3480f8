"""Summaries of py-spy's raw (collapsed stack) profiles, small enough for the results JSON."""

import re
from collections import Counter
from pathlib import Path

LINE_NUMBER = re.compile(r":\d+\)$")
TOP = 20


def _frame(frame: str) -> str:
    """`f (path/file.py:12)` -> `f (path/file.py)`: one entry per function, not per line."""
    return LINE_NUMBER.sub(")", frame.strip())


def summarize(path: Path) -> dict:
    """Samples per thread, and the functions with the most samples, self and inclusive."""
    if not path.exists():
        return {"samples": 0}
    threads, own, inclusive = Counter(), Counter(), Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        frames = stack.split(";")
        if frames[0].startswith("thread ("):
            threads[frames[0].partition(": ")[2] or frames[0]] += samples
            frames = frames[1:]
        names = [_frame(f) for f in frames]
        total += samples
        if names:
            own[names[-1]] += samples
        for name in set(names):
            inclusive[name] += samples
    return {
        "samples": total,
        "threads": dict(threads.most_common()),
        "self": own.most_common(TOP),
        "inclusive": inclusive.most_common(TOP * 2),
    }
