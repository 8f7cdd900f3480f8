"""The soak's load: API clients with tokens, and the ORM paths no API request takes.

Every answer a client gets is recorded (time, user, operation, status, defect
id), so the ledger can check that each 201 and 204 has its event. The ORM paths
(bulk_create, QuerySet.delete(), the admin's bulk delete, a user deleted with
their defects) run in this process and record what they committed, or, when
they raised, what they might have done.
"""

import random
import threading
import time
from dataclasses import dataclass, field

import httpx

CREATE = "create"
DELETE = "delete"


@dataclass(frozen=True, slots=True)
class Answer:
    at: float  # time.time() when the answer (or the failure) came
    user: int
    op: str  # CREATE or DELETE
    status: int  # 0: no answer (connection reset or refused, timeout)
    defect: int | None


@dataclass
class OrmOp:
    at: float
    kind: str  # bulk_create, queryset_delete, admin_delete, user_cascade
    user: int
    ids: list[int] = field(default_factory=list)  # created, or selected for deletion
    deleted: int = 0  # defects the committed deletion removed
    error: str = ""  # set when it raised: it may or may not have committed


class _LoadThread(threading.Thread):
    """A load thread that runs `_loop` until stopped and keeps what stopped it early."""

    def __init__(self, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.stopping = threading.Event()
        self.error: BaseException | None = None  # what stopped the thread early, if anything

    def run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # reported by the run, which then fails
            self.error = exc
            raise

    def _loop(self) -> None:
        raise NotImplementedError


class ApiClient(_LoadThread):
    """One user creating defects and deleting some of their own, until stopped."""

    def __init__(self, base: str, user: int, token: str, seed: int, answers: list) -> None:
        super().__init__(name=f"soak-client-{user}")
        self.base = base
        self.user = user
        self.token = token
        self.rng = random.Random(seed)
        self.answers = answers
        self.live: list[int] = []  # ids this client created and has not tried to delete

    def _loop(self) -> None:
        headers = {"Authorization": f"Token {self.token}"}
        with httpx.Client(base_url=self.base, headers=headers, timeout=30) as http:
            while not self.stopping.is_set():
                if self.live and self.rng.random() < 0.3:
                    self._delete_defect(http, self.live.pop(self.rng.randrange(len(self.live))))
                else:
                    self._create_defect(http)
                self.stopping.wait(self.rng.uniform(0.05, 0.25))

    def _create_defect(self, http: httpx.Client) -> None:
        comment = f"Soak defect of user {self.user}: brake pad worn"
        status, body = self._request(http, "POST", "/api/defects", json={"comment": comment})
        defect = body.get("id") if status == 201 else None
        if defect is not None:
            self.live.append(defect)
        self.answers.append(Answer(time.time(), self.user, CREATE, status, defect))

    def _delete_defect(self, http: httpx.Client, defect: int) -> None:
        status, _ = self._request(http, "DELETE", f"/api/defects/{defect}")
        self.answers.append(Answer(time.time(), self.user, DELETE, status, defect))

    @staticmethod
    def _request(http: httpx.Client, method: str, path: str, **kwargs) -> tuple[int, dict]:
        try:
            response = http.request(method, path, **kwargs)
        except httpx.HTTPError:
            return 0, {}
        try:
            body = response.json()
        except ValueError:
            body = {}
        return response.status_code, body if isinstance(body, dict) else {}


class OrmPaths(_LoadThread):
    """Every few seconds one of the other paths, on one user's defects; the cascade once."""

    def __init__(self, users: list[int], seed: int, *, cascade_at: float, cascade) -> None:
        super().__init__(name="soak-orm")
        self.users = users
        self.rng = random.Random(seed)
        self.cascade_at = cascade_at  # time.time() of the user deletion
        self.cascade = cascade  # (stop that user's client) -> user id to delete
        self.ops: list[OrmOp] = []

    def _loop(self) -> None:
        kinds = [self._bulk_create, self._queryset_delete, self._admin_delete]
        while not self.stopping.wait(self.rng.uniform(2, 5)):
            if self.cascade is not None and time.time() >= self.cascade_at:
                user, self.cascade = self.cascade(), None
                self.users.remove(user)
                self._attempt("user_cascade", user, self._user_cascade)
            else:
                act = self.rng.choice(kinds)
                self._attempt(act.__name__.lstrip("_"), self.rng.choice(self.users), act)

    def _attempt(self, kind: str, user: int, act) -> None:
        from django.db import connection

        op = OrmOp(time.time(), kind, user)
        try:
            act(op)
        except Exception as exc:  # a database outage: the op may or may not have committed
            op.error = f"{type(exc).__name__}: {exc}"[:200]
            connection.close()  # the next op reconnects
        op.at = time.time()
        self.ops.append(op)

    def _bulk_create(self, op: OrmOp) -> None:
        from defect.models import Defect

        count = self.rng.randint(1, 20)
        op.ids = [0] * count  # what it may create if it raises
        defects = [Defect(user_id=op.user, comment=f"Soak bulk {n}") for n in range(count)]
        op.ids = [defect.pk for defect in Defect.objects.bulk_create(defects)]

    def _selection(self, op: OrmOp):
        from defect.models import Defect

        ids = list(Defect.objects.filter(user_id=op.user).values_list("id", flat=True))
        op.ids = self.rng.sample(ids, min(len(ids), self.rng.randint(1, 10)))
        return Defect.objects.filter(id__in=op.ids)

    def _queryset_delete(self, op: OrmOp) -> None:
        _, per_model = self._selection(op).delete()
        op.deleted = per_model.get("defect.Defect", 0)

    def _admin_delete(self, op: OrmOp) -> None:
        """The admin's "delete selected": DefectAdmin.delete_queryset, run as the owner.

        It returns no count: the selection is locked first, so no API request
        deletes one of its defects meanwhile and the count is exact.
        """
        from django.contrib import admin
        from django.contrib.auth import get_user_model
        from django.db import transaction
        from django.http import HttpRequest

        from defect.models import Defect

        request = HttpRequest()
        request.user = get_user_model().objects.get(pk=op.user)
        with transaction.atomic():
            selected = self._selection(op).select_for_update()
            locked = list(selected.values_list("id", flat=True))
            admin.site.get_model_admin(Defect).delete_queryset(
                request, Defect.objects.filter(id__in=locked)
            )
        op.deleted = len(locked)

    def _user_cascade(self, op: OrmOp) -> None:
        from django.contrib.auth import get_user_model

        from defect.models import Defect

        op.ids = list(Defect.objects.filter(user_id=op.user).values_list("id", flat=True))
        _, per_model = get_user_model().objects.filter(pk=op.user).delete()
        op.deleted = per_model.get("defect.Defect", 0)
