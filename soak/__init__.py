"""The chaos soak (`make soak`): the production shape under load and seeded faults, then a ledger.

- `run`: one soak per database, start to verdict (`python -m soak`);
- `services`: the processes (gunicorn, dispatchers, counter server) and their faults;
- `proxy`: the fault-injecting HTTP proxy between the dispatchers and the counter server;
- `faults`: the seeded fault schedule and the driver that plays it;
- `load`: the API clients and the ORM paths;
- `ledger`: the checker that balances the books at the end.
"""
