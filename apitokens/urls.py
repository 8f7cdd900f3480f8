"""/api/tokens routes, with and without a trailing slash (as defect/api/urls.py)."""

from django.urls import re_path

from apitokens.api import TokenDetail, TokenList

urlpatterns = [
    re_path(r"^tokens/?$", TokenList.as_view(), name="token-list"),
    re_path(r"^tokens/(?P<pk>[^/.]+)/?$", TokenDetail.as_view(), name="token-detail"),
]
