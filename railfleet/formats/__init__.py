"""Date and time formats (FORMAT_MODULE_PATH): one format everywhere, with its time zone.

Django's English formats show "Dec. 6, 2026, 10:54 p.m." in the admin's lists
while its forms take "22:54:00", and neither names the time zone. These put
every displayed time as "2026-12-06 22:54:00 UTC", in the project's TIME_ZONE,
the same digits the forms show and take.
"""
