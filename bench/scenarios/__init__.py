"""The bench's scenarios, one module each, run in this order by bench/run.py.

A scenario module has TITLE (its phase in the run-time table), DATABASES (the
databases it runs on), NEEDS_WEB (whether the shared gunicorn must be up) and
run(bench), which records its results on the bench.Bench it is given.
"""
