"""The chaos soak (`make soak`): the production shape under load and seeded faults, then a ledger.

- `run`: one soak per database, start to verdict (`python -m soak`);
- `services`: the processes (gunicorn, dispatchers, a counter server per destination);
- `proxy`: the fault-injecting HTTP proxy between the dispatchers and a counter server
  (one per destination: the built-in one, and a second subscribed to creations only);
- `faults`: the seeded fault schedule and the driver that plays it;
- `load`: the API clients and the ORM paths;
- `ledger`: the checker that balances the books at the end, each destination's on its own.
"""
