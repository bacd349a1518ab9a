"""The control plane's HTTP API (FastAPI): app factory, middleware, error mapping, routers."""
