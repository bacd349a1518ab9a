"""The trusted supervisor of one environment replica, split by job.

``supervisor`` follows the hub's snapshots and runs the request pipeline; ``http`` translates between
HTTP and the worker's messages; ``ports`` are the Protocols it is plugged into; ``log_stream`` sends
invocation logs to Redis; ``admission`` is key auth and the rate limiter; ``callbacks`` answer the
worker's ``imp.db()`` and ``imp.fetch``; ``pool`` spawns and schedules jailed workers.
"""
