"""A dispatcher's lanes: one per enabled destination, each delivered to on its own.

A lane holds what keeps its destination from delaying the others: its gates
(pause, breaker, Retry-After hold, rate limit: gates.py), its pacer (when it
wants a round, how much it claims: pacing.py), its queue of claimed
deliveries, and its share of the requests in flight, `concurrency // lanes`
(at least one), so that a slow destination holding all of its requests leaves
every other its own. What the lanes share: the rounds (one claim for all of
them, one record of every answer), the HTTP client, the wake-ups.

The lanes follow the enabled destinations as the rounds read them (at most
once a second): a new destination gets a lane, a changed one keeps its lane
(its gates' state, its queue) with the new settings, and a destination
disabled or deleted loses its lane, whose claims are released.
"""

from collections import deque
from collections.abc import Iterator

from broadcast.conf import Config
from broadcast.destinations import Target
from broadcast.dispatch.gates import Gates
from broadcast.dispatch.pacing import Pace, Pacer
from broadcast.models import BUILTIN_NAME, formatted
from broadcast.signing import Signer, parse_secrets
from broadcast.store import Claimed


class Lane:
    """One destination's gates, pacer, queue and requests in flight."""

    def __init__(self, target: Target, config: Config) -> None:
        self.target = target
        self.gates = Gates.build(
            target.name, threshold=config.concurrency,
            probe_interval=config.probe_interval, max_rate=_rate(target, config),
        )  # fmt: skip
        self.pacer = Pacer(pace_of(config))
        self.signer = _signer(target, config)
        self.queue: deque[tuple[float, Claimed]] = deque()  # (lease deadline, delivery)
        self.in_flight = 0
        self.moved_at = 0.0  # when a request to it was last sent or answered (monotonic)
        self.asked = 0  # what the running round claims for it at most

    def follow(self, target: Target, config: Config) -> None:
        """Take the destination's new settings; the gates' and the queue's state stay."""
        if _rate(target, config) != _rate(self.target, config):
            self.gates.set_rate(_rate(target, config))
        if target.secrets != self.target.secrets:
            self.signer = _signer(target, config)
        self.target = target

    def body(self, delivery: Claimed) -> bytes:
        """What the destination receives: its format's body."""
        return formatted(self.target.format, delivery.body, delivery.envelope).encode()


class Lanes:
    """The dispatcher's lanes by destination id, and the pacer that times the rounds
    while there is none (so that a destination added later is found)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.by_id: dict[int, Lane] = {}
        self.idle = Pacer(pace_of(config))
        self._names: dict[int, str] = {}  # of every destination that had a lane

    def name_of(self, destination: int) -> str:
        """The destination's name, even once its lane is gone (its answers still come)."""
        return self._names.get(destination, f"destination {destination}")

    def __iter__(self) -> Iterator[Lane]:
        return iter(self.by_id.values())

    def __len__(self) -> int:
        return len(self.by_id)

    def get(self, destination: int) -> Lane | None:
        return self.by_id.get(destination)

    @property
    def share(self) -> int:
        """The requests in flight a lane may have at most."""
        return max(1, self.config.concurrency // max(1, len(self.by_id)))

    @property
    def connections(self) -> int:
        """How many requests may be in flight in all: every lane's share."""
        return max(self.config.concurrency, self.share * len(self.by_id))

    def free(self, lane: Lane) -> int:
        """How many more requests the lane may start."""
        return max(0, self.share - lane.in_flight)

    def follow(self, targets: tuple[Target, ...]) -> list[int]:
        """Lanes for exactly these destinations; the claims queued in lanes gone (to release)."""
        wanted = {target.id: target for target in targets}
        dropped: list[int] = []
        for destination in list(self.by_id):
            if destination not in wanted:
                lane = self.by_id.pop(destination)
                dropped += [delivery.id for _, delivery in lane.queue]
        for destination, target in wanted.items():
            self._names[destination] = target.name
            if (kept := self.by_id.get(destination)) is None:
                self.by_id[destination] = Lane(target, self.config)
            else:
                kept.follow(target, self.config)
        return dropped


def pace_of(config: Config) -> Pace:
    return Pace(
        concurrency=config.concurrency, batch_size=config.batch_size,
        poll_interval=config.poll_interval, request_timeout=config.request_timeout,
        lease=config.lease,
    )  # fmt: skip


def _rate(target: Target, config: Config) -> float:
    """Its own rate; the built-in destination's, when its row sets none, BROADCAST_MAX_RATE
    (not the alerts destination's, which the settings keep too)."""
    builtin = target.managed and target.name == BUILTIN_NAME
    return target.max_rate or (config.max_rate if builtin else 0.0)


def _signer(target: Target, config: Config) -> Signer | None:
    """The built-in destination signs with BROADCAST_SIGNING_SECRETS (the config's signer);
    the others with their own secrets."""
    if target.managed:
        return config.signer
    return Signer(parse_secrets(target.secrets, name=f"destination {target.name}"))
