"""`make bench`: NotifyHub's end-to-end benchmarks against a bare `websockets` + Redis pub/sub baseline.

Processes: the driver (`python -m bench`, Django-configured: fixtures, publishing,
orchestration), the servers under test (NotifyHub under daphne and uvicorn, and
`bench.bare_server`), and client swarms (`bench.clients`, many WebSocket
connections per process, no Django). See README's "Benchmarks" section.

`bench.soak` (`make soak`) is the chaos soak: the same kind of driver and
client processes, judging losses and duplicates under restarts instead of speed.
"""
