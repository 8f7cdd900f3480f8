"""English formats (https://docs.djangoproject.com/en/5.2/ref/templates/builtins/#date)."""

DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i:s"
# T: the time zone's abbreviation (UTC, CET...), of the time as displayed.
DATETIME_FORMAT = "Y-m-d H:i:s T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i:s T"
