"""Secrets handling: password hashing, session tokens, the master key material."""
