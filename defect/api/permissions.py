"""Who may do what: any authenticated user may read, create and update; only the creator deletes."""

from rest_framework.permissions import BasePermission

from defect.services import can_delete


class CreatorMayDelete(BasePermission):
    """The delete rule of `can_delete`, with no superuser exception in the API."""

    message = "Only the user who created this defect may delete it."

    def has_object_permission(self, request, view, obj) -> bool:
        if request.method == "DELETE":
            return can_delete(user=request.user, defect=obj)
        return True
