"""Admission before routing: API keys against the environment's access documents (``key_auth``) and
rate limits counted in Redis (``limiter``)."""
