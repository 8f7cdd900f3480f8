"""The REST API for defects: /api/defects and /api/defects/<id> (Django REST framework)."""
