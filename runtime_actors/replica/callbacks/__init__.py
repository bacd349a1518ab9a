"""What answers a worker's callbacks: ``bridge`` turns ``db``/``fetch`` frames into executor calls,
``db_proxy`` runs ``imp.db()`` against the gateway's database, ``egress`` runs ``imp.fetch`` under the
environment's egress policy."""
