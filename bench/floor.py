"""The reference "floor": bare Django views on the same model, no DRF, no authentication.

`create` inserts a defect through the model's own save() (so, like the API, it
also writes the outbox event in the same transaction) and answers 201;
`list_200` answers the 200 newest defects as JSON. Every API target is a ratio
to these, measured by the same server in the same run.
"""

import json

from django.contrib.auth import get_user_model
from django.http import HttpResponseBadRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from defect.models import Defect

BENCH_USERNAME = "bench"
_user_id: list[int] = []


def _bench_user_id() -> int:
    if not _user_id:
        _user_id.append(get_user_model().objects.get(username=BENCH_USERNAME).pk)
    return _user_id[0]


@csrf_exempt
@require_POST
def create(request):
    try:
        comment = json.loads(request.body)["comment"]
    except (ValueError, KeyError, TypeError):
        return HttpResponseBadRequest()
    defect = Defect(user_id=_bench_user_id(), comment=comment)
    defect.save()
    return JsonResponse(
        {
            "id": defect.pk,
            "comment": defect.comment,
            "timestamp": defect.timestamp,
            "user": defect.user_id,
        },
        status=201,
    )


@require_GET
def list_200(request):
    rows = list(
        Defect.objects.order_by("-timestamp", "-id").values(
            "id", "comment", "timestamp", "user_id", "user__username"
        )[:200]
    )
    return JsonResponse({"results": rows})
