"""`make soak`: the real stack under chaos, and a verdict on what it lost, duplicated or failed.

Modules, in the order a run uses them: `options` (command line, delivery
timings, settle bound), `stack` and `processes` (private Redis, fake FCM, the
Procfile's lines), `population` (users, departments, publisher), `client` and
`swarm` (WebSocket clients in child processes), `publisher` (the REST
publisher and device registration), `chaos` (the steps), `database` (settling
and the final rows), `analysis` (figures), `result` (the rule), `report`
(the table), `run` (the driver); `judge` turns what a run recorded into its
result. What it runs, the rule and the settings: README, "Chaos soak".
"""
