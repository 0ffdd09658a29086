"""The names of the Redis store's keys that more than one of its modules uses (the rest
are named where they are used; the layout as a whole: sesame/store/migrations.py)."""

PREFIX = "sesame:"
LINKS = PREFIX + "links"  # link ids, scored by creation time
EVENTS = PREFIX + "events"  # the download log, a stream; each link's own is a list
