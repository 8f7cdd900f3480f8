"""drf-spectacular hooks for the API's OpenAPI schema (SPECTACULAR_SETTINGS in settings)."""

SLASH_OPTIONAL = "/?$"


def unslashed_paths(endpoints):
    """Name each route that takes an optional trailing slash by its unslashed form.

    Routes such as `^defects/?$` answer both forms without a redirect; Django's
    regex simplification would otherwise document only `/api/defects/`.
    PREPROCESSING_HOOKS in SPECTACULAR_SETTINGS.
    """
    return [
        (path.rstrip("/") if path_regex.endswith(SLASH_OPTIONAL) else path, path_regex, *rest)
        for path, path_regex, *rest in endpoints
    ]
