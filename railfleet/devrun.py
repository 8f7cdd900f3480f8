"""honcho for `make run` and `make serve`, stopped by SIGHUP as it is by Ctrl-C.

honcho starts each process (web server, dispatcher, counter server) in a process
group of its own, so closing the terminal, whose SIGHUP goes to its foreground
group, reaches honcho alone. SIGHUP's default action would end honcho at once
and leave its children running, holding their ports. Here SIGHUP becomes the
SIGTERM that honcho handles by stopping every child and waiting for it. The
terminal is gone by then, and writing to it would fail, so from that moment
the output goes to /dev/null.

    python -m railfleet.devrun --procfile Procfile.dev start
"""

import os
import signal

from honcho.command import main


def _hang_up(signum, frame) -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    for fd in (1, 2):
        os.dup2(devnull, fd)
    os.kill(os.getpid(), signal.SIGTERM)


def run() -> None:
    """honcho's command line, with SIGHUP handled as SIGTERM."""
    signal.signal(signal.SIGHUP, _hang_up)
    main()


if __name__ == "__main__":
    run()
