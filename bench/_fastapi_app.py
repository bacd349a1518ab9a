"""The plain FastAPI baseline of ``throughput.py``: one uvicorn process, no platform in front.

``GET /hello`` answers ``hi``; ``GET /find_one`` (only with ``--mongo-url``) answers the document
``{"_id": "x"}`` of ``<database>.items`` read with pymongo (a sync route, so FastAPI runs it in its
thread pool, as a hand-written service would). Run: ``python bench/_fastapi_app.py --port 8001``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException
from fastapi.responses import PlainTextResponse


def build_app(mongo_url: str | None, database: str) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/hello", response_class=PlainTextResponse)
    async def hello() -> str:
        return "hi"

    if mongo_url is not None:
        from pymongo import MongoClient

        client: MongoClient[dict[str, Any]] = MongoClient(mongo_url)
        items = client[database]["items"]

        @app.get("/find_one")
        def find_one() -> dict[str, Any]:
            document = items.find_one({"_id": "x"})
            if document is None:
                raise HTTPException(404)
            return document

    return app


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mongo-url")
    parser.add_argument("--database", default="bench")
    args = parser.parse_args()
    app = build_app(args.mongo_url, args.database)
    uvicorn.run(app, host="127.0.0.1", port=args.port, access_log=False, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
