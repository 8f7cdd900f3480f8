"""The dispatcher, its decisions apart from its doing (docs/broadcast.md, "The dispatcher").

loop.py     Dispatcher: the loop that claims, sends and records (all the doing)
pacing.py   Pacer: when rounds run, how much they claim, when to listen (pure)
policy.py   decide(): what an answer means for the event and its destination (pure)
gates.py    Pause, Breaker, Hold, RateLimit: what may be claimed and sent, and when
lanes.py    a lane per destination: its gates, its pacer, its queue, its share of requests
rounds.py   a round's database work, on the database thread or the loop's (dbcalls.py)
wake.py     what wakes the loop: its self-pipe, LISTEN, SQLite's doorbell
"""
