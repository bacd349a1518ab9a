"""``WorkerPool`` with real jailed worker processes: the function contract end to end, hot reload,
the watchdog, worker replacement, the queue, callbacks to the supervisor's executors, and the
per-call overhead."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from runtime_actors.replica.pool.worker_pool import JailUnavailable, WorkerPool
from tests.runtime_actors.pool_harness import body_json, eventually, invocation, load_one, run, source

HELLO = """
def main(name: str = "world"):
    return {"hello": name}
"""


def test_sync_main_with_typed_parameters_from_body_and_query() -> None:
    async def scenario(pool: WorkerPool) -> None:
        await load_one(
            pool,
            "tax",
            """
            def main(income: float, deductions: float = 0, region: str = "eu", tags: list[str] | None = None):
                return {"tax": (income - deductions) * 0.2, "region": region, "tags": tags}
            """,
        )
        result = await pool.invoke(
            "tax",
            invocation("tax", json_body={"income": 1000, "deductions": "100"}, query={"tags": ["a", "b"]}),
        )
        assert result.status == 200, result
        assert result.headers["content-type"] == "application/json"
        assert body_json(result) == {"tax": 180.0, "region": "eu", "tags": ["a", "b"]}
        assert result.error is None

    run(scenario)


def test_async_main_is_awaited() -> None:
    async def scenario(pool: WorkerPool) -> None:
        await load_one(
            pool,
            "a",
            """
            async def helper(x):
                return x * 2

            async def main(x: int):
                return {"doubled": await helper(x)}
            """,
        )
        result = await pool.invoke("a", invocation("a", query={"x": ["21"]}, method="GET"))
        assert (result.status, body_json(result)) == (200, {"doubled": 42})

    run(scenario)


def test_main_req_gets_the_raw_request() -> None:
    async def scenario(pool: WorkerPool) -> None:
        await load_one(
            pool,
            "raw",
            """
            def main(req):
                return {"method": req.method, "path": req.path, "q": req.query, "h": req.headers.get("x-a"),
                        "json": req.json(), "body": req.text}
            """,
        )
        result = await pool.invoke(
            "raw",
            invocation("raw", json_body={"k": 1}, query={"q": ["1", "2"]}, headers={"x-a": "b"}, path="/sub"),
        )
        assert body_json(result) == {
            "method": "POST",
            "path": "/sub",
            "q": {"q": "1"},
            "h": "b",
            "json": {"k": 1},
            "body": '{"k": 1}',
        }

    run(scenario)


def test_bad_parameters_answer_422_with_details() -> None:
    async def scenario(pool: WorkerPool) -> None:
        await load_one(pool, "t", "def main(income: float, count: int, flag: bool = False):\n    return 1\n")
        result = await pool.invoke("t", invocation("t", json_body={"count": "many", "flag": "maybe"}))
        assert result.status == 422 and result.error == "invalid"
        details = body_json(result)["error"]["details"]
        assert {"loc": ["income"], "msg": "field required"} in details
        assert {"loc": ["count"], "msg": "expected an integer"} in details
        assert {"loc": ["flag"], "msg": "expected a boolean"} in details

    run(scenario)


@pytest.mark.parametrize(
    ("returned", "status", "content_type", "body"),
    [
        ("'text'", 200, "text/plain; charset=utf-8", b"text"),
        ("b'\\x00\\x01'", 200, "application/octet-stream", b"\x00\x01"),
        ("None", 204, None, b""),
        ("[1, 2]", 200, "application/json", b"[1, 2]"),
        ("imp.Response({'a': 1}, status=201, headers={'X-Id': '7'})", 201, "application/json", b'{"a": 1}'),
    ],
)
def test_return_values_become_responses(
    returned: str, status: int, content_type: str | None, body: bytes
) -> None:
    async def scenario(pool: WorkerPool) -> None:
        await load_one(pool, "r", f"def main():\n    return {returned}\n")
        result = await pool.invoke("r", invocation("r"))
        assert (result.status, result.headers.get("content-type"), result.body) == (
            status,
            content_type,
            body,
        )

    run(scenario)


def test_http_error_keeps_its_status_in_the_error_shape() -> None:
    async def scenario(pool: WorkerPool) -> None:
        await load_one(pool, "h", "def main(id: int):\n    raise imp.HTTPError(404, f'no user {id}')\n")
        result = await pool.invoke("h", invocation("h", json_body={"id": 7}))
        assert result.status == 404 and result.error == "not_found"
        assert body_json(result) == {"error": {"code": "not_found", "message": "no user 7"}}

    run(scenario)


def test_an_exception_is_a_500_with_the_traceback_in_the_logs_only() -> None:
    async def scenario(pool: WorkerPool) -> None:
        await load_one(
            pool,
            "boom",
            """
            def inner(secret_local):
                raise ValueError("it broke")

            def main():
                print("before")
                inner("s3cr3t")
            """,
        )
        result = await pool.invoke("boom", invocation("boom"))
        assert result.status == 500 and result.error == "internal"
        assert b"Traceback" not in result.body and b"it broke" not in result.body
        messages = [entry.message for entry in result.logs]
        assert messages[0] == "before"
        traceback_text = messages[-1]
        assert 'File "<function:boom>", line 3, in inner' in traceback_text
        assert 'raise ValueError("it broke")' in traceback_text
        assert "ValueError: it broke" in traceback_text
        assert "runtime_actors" not in traceback_text  # worker frames are not the tenant's business

    run(scenario)


def test_hot_reload_replaces_the_code_without_restarting_workers() -> None:
    async def scenario(pool: WorkerPool) -> None:
        pids = pool.worker_pids
        await load_one(pool, "v", "def main():\n    return {'version': 1}\n", version=1)
        assert body_json(await pool.invoke("v", invocation("v"))) == {"version": 1}
        await load_one(pool, "v", "def main():\n    return {'version': 2}\n", version=2)
        for _ in range(4):  # every worker answers with the new version
            assert body_json(await pool.invoke("v", invocation("v"))) == {"version": 2}
        assert pool.worker_pids == pids

    run(scenario, size=2)


def test_a_failed_load_keeps_the_previous_version_and_reports_line_and_column() -> None:
    async def scenario(pool: WorkerPool) -> None:
        await load_one(pool, "f", "def main():\n    return 'v1'\n")
        errors = await pool.load([source("f", "def main():\n    return (1 +\n", version=2)])
        assert errors["f"].startswith("SyntaxError:") and "(line 2, column" in errors["f"]
        errors = await pool.load([source("f", "x = 1\n\nraise RuntimeError('at import')\n", version=3)])
        assert errors == {"f": "module code raised RuntimeError: at import (line 3)"}
        errors = await pool.load([source("f", "def helper():\n    pass\n", version=4)])
        assert errors == {"f": "the module defines no 'main' function (line 1, column 1)"}
        assert (await pool.invoke("f", invocation("f"))).body == b"v1"
        assert pool.functions["f"].version == 1

    run(scenario, size=2)


def test_load_with_replace_unloads_functions_that_are_gone() -> None:
    async def scenario(pool: WorkerPool) -> None:
        await pool.load([source("a", HELLO), source("b", HELLO)])
        assert (await pool.invoke("b", invocation("b"))).status == 200
        assert await pool.load([source("a", HELLO)]) == {}
        gone = await pool.invoke("b", invocation("b"))
        assert gone.status == 404 and gone.error == "not_found"

    run(scenario)


def test_a_timeout_answers_504_and_a_fresh_worker_takes_the_next_call() -> None:
    async def scenario(pool: WorkerPool) -> None:
        await load_one(pool, "spin", "def main():\n    while True:\n        pass\n")
        await load_one(pool, "ok", HELLO)
        before = pool.worker_pids
        started = time.monotonic()
        result = await pool.invoke("spin", invocation("spin"), timeout=0.5)
        assert result.status == 504 and result.error == "timeout"
        assert time.monotonic() - started < 5
        answer = await pool.invoke("ok", invocation("ok"))
        assert (answer.status, body_json(answer)) == (200, {"hello": "world"})  # reloaded replacement
        assert pool.worker_pids != before

    run(scenario)


def test_a_worker_killed_by_its_cpu_limit_is_a_500_and_is_replaced() -> None:
    from runtime_actors.shared.jail_config import WorkerLimits

    async def scenario(pool: WorkerPool) -> None:
        await load_one(pool, "burn", "def main():\n    while True:\n        pass\n")
        await load_one(pool, "ok", HELLO)
        result = await pool.invoke("burn", invocation("burn"), timeout=30)
        assert result.status == 500 and result.error == "internal"
        assert "CPU-time limit" in body_json(result)["error"]["message"]
        assert (await pool.invoke("ok", invocation("ok"))).status == 200

    run(scenario, limits=WorkerLimits(cpu_seconds=1))


def test_concurrent_calls_run_on_separate_workers() -> None:
    in_flight = 0
    both = asyncio.Event()

    async def barrier(op: dict[str, Any]) -> dict[str, Any]:
        nonlocal in_flight
        in_flight += 1
        if in_flight == 2:
            both.set()
        await asyncio.wait_for(both.wait(), 10)  # only returns once two calls are inside at once
        return {"result": in_flight}

    async def scenario(pool: WorkerPool) -> None:
        await load_one(pool, "c", "def main():\n    return {'seen': imp.db()['c'].count_documents()}\n")
        results = await asyncio.gather(*(pool.invoke("c", invocation("c")) for _ in range(2)))
        assert [r.status for r in results] == [200, 200]
        assert {body_json(r)["seen"] for r in results} == {2}

    run(scenario, size=2, db_executor=barrier)


def test_calls_queue_when_every_worker_is_busy_and_overflow_is_503() -> None:
    async def scenario(pool: WorkerPool) -> None:
        await load_one(pool, "slow", "import time\n\ndef main(i: int):\n    time.sleep(0.2)\n    return i\n")
        calls = [pool.invoke("slow", invocation("slow", json_body={"i": i})) for i in range(3)]
        results = await asyncio.gather(*calls)
        statuses = sorted(r.status for r in results)
        assert statuses == [200, 200, 503]  # one running, one queued, one over max_queue=1
        refused = next(r for r in results if r.status == 503)
        assert refused.error == "unavailable"

    run(scenario, max_queue=1, pipeline_depth=1)


SLOW = "import time\n\ndef main(i: int):\n    time.sleep(0.2)\n    return i\n"


def test_a_busy_worker_takes_the_next_call_behind_the_one_it_runs() -> None:
    async def scenario(pool: WorkerPool) -> None:
        await load_one(pool, "slow", SLOW)
        calls = [pool.invoke("slow", invocation("slow", json_body={"i": i})) for i in range(4)]
        results = await asyncio.gather(*calls)
        # one running, one sent behind it, one queued, one over max_queue=1
        assert [r.status for r in results] == [200, 200, 200, 503]
        assert [body_json(r) for r in results[:3]] == [0, 1, 2]

    run(scenario, max_queue=1)


def test_a_pool_grows_to_its_maximum_while_calls_wait_and_not_beyond() -> None:
    async def scenario(pool: WorkerPool) -> None:
        await load_one(pool, "slow", SLOW)
        assert len(pool.worker_pids) == 1
        results = await asyncio.gather(
            *(pool.invoke("slow", invocation("slow", json_body={"i": i})) for i in range(8))
        )
        assert [body_json(r) for r in results] == list(range(8))
        assert await eventually(lambda: len(pool.worker_pids) == 2), pool.worker_pids
        # The added worker serves the code loaded before it came, and later loads reach it too.
        await load_one(pool, "slow", SLOW.replace("return i", "return -i"), version=2)
        again = await asyncio.gather(
            *(pool.invoke("slow", invocation("slow", json_body={"i": i})) for i in range(8))
        )
        assert [body_json(r) for r in again] == [-i for i in range(8)]
        assert len(pool.worker_pids) == 2

    run(scenario, max_size=2)


def test_a_pool_without_a_maximum_keeps_its_size_under_load() -> None:
    async def scenario(pool: WorkerPool) -> None:
        await load_one(pool, "slow", SLOW)
        await asyncio.gather(*(pool.invoke("slow", invocation("slow", json_body={"i": i})) for i in range(6)))
        assert len(pool.worker_pids) == 1

    run(scenario)


def test_a_call_sent_behind_one_that_hangs_runs_on_the_replacement_worker() -> None:
    async def scenario(pool: WorkerPool) -> None:
        await load_one(pool, "spin", "def main():\n    while True:\n        pass\n")
        await load_one(pool, "echo", "def main(i: int):\n    return {'i': i}\n")
        [first] = pool.worker_pids
        spin = asyncio.ensure_future(pool.invoke("spin", invocation("spin"), timeout=0.5))
        assert await eventually(lambda: pool.in_flight == 1)
        behind = asyncio.ensure_future(pool.invoke("echo", invocation("echo", json_body={"i": 7})))
        assert await eventually(lambda: pool.in_flight == 2) and pool.queued == 0  # sent, not queued
        assert (await spin).status == 504
        result = await behind  # never started on the killed worker, so it ran on its replacement
        assert result.status == 200 and body_json(result) == {"i": 7}
        assert pool.worker_pids != [first]

    run(scenario)


def test_a_call_sent_behind_one_that_crashes_its_worker_runs_on_the_replacement() -> None:
    from runtime_actors.shared.jail_config import WorkerLimits

    async def scenario(pool: WorkerPool) -> None:
        await load_one(pool, "burn", "def main():\n    while True:\n        pass\n")
        await load_one(pool, "echo", "def main(i: int):\n    return {'i': i}\n")
        burn = asyncio.ensure_future(pool.invoke("burn", invocation("burn"), timeout=30))
        assert await eventually(lambda: pool.in_flight == 1)
        behind = asyncio.ensure_future(pool.invoke("echo", invocation("echo", json_body={"i": 7})))
        assert await eventually(lambda: pool.in_flight == 2) and pool.queued == 0
        assert (await burn).status == 500  # killed by its CPU-time limit
        result = await behind
        assert result.status == 200 and body_json(result) == {"i": 7}

    run(scenario, limits=WorkerLimits(cpu_seconds=1))


QUEUE_TIMEOUT_S = 1.0


def test_a_load_is_not_starved_by_calls_sent_behind_busy_workers() -> None:
    async def scenario(pool: WorkerPool) -> None:
        await load_one(pool, "slow", "import time\n\ndef main(i: int):\n    time.sleep(0.05)\n    return i\n")
        loop = asyncio.get_running_loop()
        until = loop.time() + 3 * QUEUE_TIMEOUT_S

        async def keep_calling() -> None:
            while loop.time() < until:
                assert (await pool.invoke("slow", invocation("slow", json_body={"i": 1}))).status == 200

        callers = [asyncio.ensure_future(keep_calling()) for _ in range(6)]
        assert await eventually(lambda: pool.in_flight == 2)
        errors = await pool.load([source("new", HELLO)], replace=False)  # needs the worker to itself
        assert errors == {}  # not "no worker was free" after the queue timeout
        await asyncio.gather(*callers)
        assert (await pool.invoke("new", invocation("new"))).status == 200

    run(scenario, queue_timeout=QUEUE_TIMEOUT_S)


def test_a_call_given_up_while_it_waits_behind_another_costs_that_one_nothing() -> None:
    async def scenario(pool: WorkerPool) -> None:
        await load_one(pool, "slow", SLOW)
        [first] = pool.worker_pids
        ahead = asyncio.ensure_future(pool.invoke("slow", invocation("slow", json_body={"i": 1})))
        assert await eventually(lambda: pool.in_flight == 1)
        with pytest.raises(TimeoutError):  # sent behind, then given up before its turn came
            await asyncio.wait_for(pool.invoke("slow", invocation("slow", json_body={"i": 2})), 0.05)
        result = await ahead
        assert result.status == 200 and body_json(result) == 1  # the call ahead finished in peace
        assert await eventually(lambda: pool.worker_pids not in ([], [first]))  # then its worker went
        assert body_json(await pool.invoke("slow", invocation("slow", json_body={"i": 3}))) == 3

    run(scenario)


def test_a_call_behind_one_making_db_calls_waits_its_turn_and_each_gets_its_own_answer() -> None:
    def executor(op: dict[str, Any]) -> dict[str, Any]:
        return {"result": op["args"][0]["n"]}

    async def scenario(pool: WorkerPool) -> None:
        await load_one(
            pool,
            "d",
            "def main(i: int):\n    return [imp.db()['c'].find_one({'n': i * 10 + k}) for k in range(3)]\n",
        )
        results = await asyncio.gather(
            *(pool.invoke("d", invocation("d", json_body={"i": i})) for i in range(5))
        )
        assert [body_json(r) for r in results] == [[i * 10 + k for k in range(3)] for i in range(5)]
        assert pool.worker_pids and pool.in_flight == 0

    run(scenario, db_executor=executor)


def test_queued_calls_each_get_their_own_answer_from_the_worker_that_frees_up() -> None:
    async def scenario(pool: WorkerPool) -> None:
        await load_one(pool, "echo", "def main(i: int):\n    return {'i': i}\n")
        results = await asyncio.gather(
            *(pool.invoke("echo", invocation("echo", json_body={"i": i})) for i in range(40))
        )
        assert [body_json(r) for r in results] == [{"i": i} for i in range(40)]

    run(scenario, size=2)


def test_a_queued_call_cancelled_while_waiting_leaves_the_worker_to_the_next() -> None:
    async def scenario(pool: WorkerPool) -> None:
        await load_one(pool, "slow", "import time\n\ndef main(i: int):\n    time.sleep(0.3)\n    return i\n")
        running = asyncio.ensure_future(pool.invoke("slow", invocation("slow", json_body={"i": 1})))
        queued = asyncio.ensure_future(pool.invoke("slow", invocation("slow", json_body={"i": 2})))
        after = asyncio.ensure_future(pool.invoke("slow", invocation("slow", json_body={"i": 3})))
        assert await eventually(lambda: pool.queued == 2)
        queued.cancel()
        assert body_json(await running) == 1
        assert body_json(await after) == 3
        assert queued.cancelled()
        [pid] = pool.worker_pids  # nobody killed the worker
        assert body_json(await pool.invoke("slow", invocation("slow", json_body={"i": 4}))) == 4
        assert pool.worker_pids == [pid]

    run(scenario, pipeline_depth=1)  # the second call waits in the queue, not behind the first


def test_a_waiting_call_with_text_utf8_cannot_carry_fails_alone() -> None:
    async def scenario(pool: WorkerPool) -> None:
        await load_one(pool, "slow", "import time\n\ndef main(i: int):\n    time.sleep(0.3)\n    return i\n")
        running = asyncio.ensure_future(pool.invoke("slow", invocation("slow", json_body={"i": 1})))
        odd = asyncio.ensure_future(pool.debug("def main():\n    return '\ud800'\n", invocation("odd")))
        assert await eventually(lambda: pool.queued == 1)
        assert body_json(await running) == 1  # the call that freed the worker is not the one that fails
        assert (await odd).status in (400, 500)
        assert body_json(await pool.invoke("slow", invocation("slow", json_body={"i": 2}))) == 2

    run(scenario)


def test_db_operations_go_to_the_executor_as_plain_json() -> None:
    ops: list[dict[str, Any]] = []

    def executor(op: dict[str, Any]) -> dict[str, Any]:
        ops.append(op)
        if op["method"] == "find":
            return {"result": [{"_id": "1", "name": "ada"}]}
        return {"error": {"code": "forbidden", "message": "no"}}

    async def scenario(pool: WorkerPool) -> None:
        await load_one(
            pool,
            "d",
            """
            import datetime

            def main():
                users = imp.db().collection("users").find({"age": {"$gt": 3}}, sort=[("name", 1)], limit=5)
                try:
                    imp.db()["users"].insert_one({"at": datetime.date(2024, 1, 2)})
                except imp.DBError as exc:
                    return {"users": users, "refused": [exc.code, exc.message]}
            """,
        )
        result = await pool.invoke("d", invocation("d"))
        assert body_json(result) == {"users": [{"_id": "1", "name": "ada"}], "refused": ["forbidden", "no"]}
        assert ops == [
            {
                "collection": "users",
                "method": "find",
                "args": [{"age": {"$gt": 3}}, None],
                "kwargs": {"limit": 5, "skip": 0, "sort": [["name", 1]]},
            },
            {
                "collection": "users",
                "method": "insert_one",
                "args": [{"at": {"$date": "2024-01-02"}}],
                "kwargs": {},
            },
        ]

    run(scenario, db_executor=executor)


def test_an_executor_exception_reaches_tenant_code_without_its_message() -> None:
    def executor(op: dict[str, Any]) -> dict[str, Any]:
        raise ConnectionError("mongodb://admin:hunter2@db:27017 unreachable")

    async def scenario(pool: WorkerPool) -> None:
        await load_one(
            pool,
            "d",
            """
            def main():
                try:
                    imp.db()["x"].find_one()
                except imp.DBError as exc:
                    return {"code": exc.code, "message": exc.message}
            """,
        )
        result = await pool.invoke("d", invocation("d"))
        assert body_json(result) == {
            "code": "internal",
            "message": "the db operation failed (ConnectionError)",
        }

    run(scenario, db_executor=executor)


def test_fetch_goes_through_the_fetch_executor() -> None:
    seen: list[dict[str, Any]] = []

    async def fetcher(request: dict[str, Any]) -> dict[str, Any]:
        seen.append(request)
        return {"status": 201, "headers": {"content-type": "application/json"}, "body": b'{"ok": true}'}

    async def scenario(pool: WorkerPool) -> None:
        await load_one(
            pool,
            "f",
            """
            def main():
                r = imp.fetch("https://example.org/x", method="post", json={"a": 1})
                return {"status": r.status, "json": r.json(), "ok": r.ok}
            """,
        )
        result = await pool.invoke("f", invocation("f"))
        assert body_json(result) == {"status": 201, "json": {"ok": True}, "ok": True}
        assert seen == [
            {
                "url": "https://example.org/x",
                "method": "POST",
                "headers": {"content-type": "application/json"},
                "body": b'{"a": 1}',
                "timeout": None,
            }
        ]

    run(scenario, fetch_executor=fetcher)


def test_without_a_fetch_executor_fetch_raises_in_tenant_code() -> None:
    async def scenario(pool: WorkerPool) -> None:
        await load_one(
            pool,
            "f",
            "def main():\n    try:\n        imp.fetch('http://x')\n    except imp.FetchError as e:\n        return str(e)\n",
        )
        result = await pool.invoke("f", invocation("f"))
        assert result.body == b"imp.fetch is not available in this environment"

    run(scenario)


def test_logs_and_prints_are_captured_per_invocation() -> None:
    async def scenario(pool: WorkerPool) -> None:
        await load_one(
            pool,
            "l",
            "def main(n: int):\n    print('printed', n)\n    imp.log.warning('careful', n)\n    return n\n",
        )
        first = await pool.invoke("l", invocation("l", json_body={"n": 1}))
        second = await pool.invoke("l", invocation("l", json_body={"n": 2}))
        assert [(e.level, e.message) for e in first.logs] == [("info", "printed 1"), ("warning", "careful 1")]
        assert [(e.level, e.message) for e in second.logs] == [
            ("info", "printed 2"),
            ("warning", "careful 2"),
        ]

    run(scenario)


def test_env_is_filled_by_load_and_read_only() -> None:
    async def scenario(pool: WorkerPool) -> None:
        code = """
        def main():
            try:
                imp.env["X"] = "changed"
            except TypeError:
                pass
            return dict(imp.env)
        """
        assert await pool.load([source("e", code)], env={"REGION": "eu"}) == {}
        assert body_json(await pool.invoke("e", invocation("e"))) == {"REGION": "eu"}

    run(scenario, size=2)


def test_debug_runs_code_once_and_reports_load_errors_as_400() -> None:
    async def scenario(pool: WorkerPool) -> None:
        ok = await pool.debug(
            "def main(x: int):\n    return x + 1\n", invocation("debug", json_body={"x": 1})
        )
        assert (ok.status, ok.body) == (200, b"2")
        bad = await pool.debug("def main(:\n", invocation("debug"))
        assert bad.status == 400 and bad.error == "invalid"
        assert body_json(bad)["error"]["details"] == {
            "message": "SyntaxError: invalid syntax",
            "line": 1,
            "column": 10,
        }
        assert pool.functions == {}

    run(scenario)


def test_an_unknown_function_is_404() -> None:
    result = run(lambda pool: pool.invoke("nope", invocation("nope")))
    assert result.status == 404 and result.error == "not_found"


def test_a_pool_refuses_to_start_without_its_jail(tmp_path: Path) -> None:
    async def start() -> None:
        pool = WorkerPool(size=1, scratch_root=tmp_path, min_landlock_abi=99)
        try:
            await pool.start()
        finally:
            await pool.close()

    with pytest.raises(JailUnavailable, match=r"Landlock ABI is \d+, 99 is required"):
        asyncio.run(start())


def test_an_insecure_pool_runs_but_says_so(capfd: pytest.CaptureFixture[str]) -> None:
    async def scenario(pool: WorkerPool) -> None:
        assert pool.jail is not None and not pool.jail.secure and pool.jail.insecure
        assert pool.jail.landlock_abi == 0 and pool.jail.seccomp
        await load_one(pool, "ok", HELLO)
        assert (await pool.invoke("ok", invocation("ok"))).status == 200

    run(scenario, insecure=True, min_landlock_abi=99)
    assert "INSECURE: running tenant code WITHOUT the full kernel jail" in capfd.readouterr().err


def test_closing_the_pool_ends_every_worker_and_later_calls_get_503() -> None:
    async def scenario() -> tuple[list[int], Path, int]:
        pool = WorkerPool(size=2)
        await pool.start()
        await load_one(pool, "ok", HELLO)
        pids, scratch = pool.worker_pids, pool._scratch_root
        assert scratch is not None and scratch.is_dir()
        await pool.close()
        return pids, scratch, (await pool.invoke("ok", invocation("ok"))).status

    pids, scratch, status = asyncio.run(scenario())
    assert status == 503 and not scratch.exists()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_replacement_after_timeout_restores_the_pool_size() -> None:
    async def scenario(pool: WorkerPool) -> None:
        await load_one(pool, "spin", "def main():\n    while True:\n        pass\n")
        assert (await pool.invoke("spin", invocation("spin"), timeout=0.3)).status == 504
        assert await eventually(lambda: len(pool.worker_pids) == 2)

    run(scenario, size=2)


STDLIB_TOUR = """
from __future__ import annotations

import base64, binascii, bisect, calendar, copy, datetime, decimal, difflib, enum, fractions, functools
import hashlib, heapq, hmac, html, itertools, json, math, numbers, operator, random, re, statistics
import string, textwrap, time, typing, unicodedata, uuid, zoneinfo
from collections import Counter, namedtuple
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlencode


@dataclass
class Point:
    x: int
    tags: list[str] = field(default_factory=list)


class Color(enum.Enum):
    RED = 1


class Pair(typing.NamedTuple):
    a: int
    b: str


@functools.lru_cache(maxsize=None)
def fib(n: int) -> int:
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def main():
    paris = datetime.datetime(2024, 7, 1, 12, tzinfo=zoneinfo.ZoneInfo("Europe/Paris"))
    try:
        zoneinfo.ZoneInfo("Nowhere/Atlantis")
    except zoneinfo.ZoneInfoNotFoundError:
        unknown_zone = "not found"
    return {
        "unknown_zone": unknown_zone,
        "utc": paris.astimezone(datetime.timezone.utc).isoformat(),
        "parsed": datetime.datetime.strptime("2024-02-03", "%Y-%m-%d").date().isoformat(),
        "decimal": str(decimal.Decimal("1.10") + decimal.Decimal("2.205")),
        "fraction": str(fractions.Fraction(1, 3) * 3),
        "mean": statistics.mean([1, 2, 3, 4]),
        "sha": hashlib.sha256(b"x").hexdigest()[:8],
        "hmac": hmac.new(b"k", b"m", "sha256").hexdigest()[:8],
        "uuid": len(str(uuid.uuid4())),
        "random": 1 <= random.randint(1, 6) <= 6,
        "re": re.findall(r"\\d+", "a1b22"),
        "b64": base64.b64encode(b"hi").decode(),
        "crc": binascii.crc32(b"x"),
        "point": repr(Point(1)),
        "nt": namedtuple("P", "a b")(1, 2).b,
        "pair": Pair(1, "x").b,
        "color": Color.RED.name,
        "fib": fib(50),
        "counter": Counter("aab").most_common(1),
        "mapping": isinstance({}, Mapping),
        "deep": copy.deepcopy({"a": [1]}),
        "heap": heapq.nsmallest(2, [3, 1, 2]),
        "bisect": bisect.bisect([1, 2, 4], 3),
        "calendar": calendar.isleap(2024),
        "diff": list(difflib.unified_diff(["a"], ["b"], lineterm=""))[-1],
        "html": html.escape("<a>"),
        "chain": list(itertools.chain([1], [2])),
        "number": isinstance(1, numbers.Number),
        "op": operator.add(1, 2),
        "math": math.isclose(math.pi, 3.14159, rel_tol=1e-5),
        "template": string.Template("$x").substitute(x=1),
        "wrap": textwrap.shorten("hello world", 8),
        "time": time.time() > 0,
        "unicode": unicodedata.name("é"),
        "query": urlencode({"a": "b c"}),
        "text": "é".encode("latin-1").decode("latin-1") + "x".encode("idna").decode(),
    }
"""


def test_the_allowed_standard_library_works_inside_the_jail() -> None:
    async def scenario(pool: WorkerPool) -> None:
        await load_one(pool, "tour", STDLIB_TOUR)
        result = await pool.invoke("tour", invocation("tour"))
        assert result.status == 200, result.logs
        body = body_json(result)
        assert body["utc"] == "2024-07-01T10:00:00+00:00" and body["parsed"] == "2024-02-03"
        assert body["unknown_zone"] == "not found"
        assert body["decimal"] == "3.305" and body["fraction"] == "1" and body["fib"] == 12586269025
        assert body["point"] == "Point(x=1, tags=[])" and body["pair"] == "x" and body["color"] == "RED"
        assert body["unicode"] == "LATIN SMALL LETTER E WITH ACUTE" and body["text"] == "éx"

    run(scenario)


def test_module_code_that_never_finishes_is_a_load_error_and_the_old_version_stays() -> None:
    async def scenario(pool: WorkerPool) -> None:
        await load_one(pool, "f", "def main():\n    return 'v1'\n")
        errors = await pool.load([source("f", "while True:\n    pass\n", version=2)])
        assert errors == {"f": "the module's top-level code did not finish within 0.5 s"}
        assert (await pool.invoke("f", invocation("f"))).body == b"v1"

    run(scenario, load_timeout=0.5)


def _is_zombie(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rpartition(")")[2].split()[0] == "Z"


def test_a_worker_that_died_while_idle_is_replaced_before_the_next_call() -> None:
    async def scenario(pool: WorkerPool) -> None:
        await load_one(pool, "ok", HELLO)
        [pid] = pool.worker_pids
        os.kill(pid, signal.SIGKILL)
        assert await eventually(lambda: _is_zombie(pid))  # dead (not yet reaped) before the call
        result = await pool.invoke("ok", invocation("ok"))
        assert result.status == 200 and pool.worker_pids != [pid]

    run(scenario)


def test_a_cancelled_call_costs_its_worker_but_not_the_pool() -> None:
    async def scenario(pool: WorkerPool) -> None:
        await load_one(pool, "spin", "def main():\n    while True:\n        pass\n")
        await load_one(pool, "ok", HELLO)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(pool.invoke("spin", invocation("spin"), timeout=30), 0.3)
        assert (await pool.invoke("ok", invocation("ok"))).status == 200

    run(scenario)


def _uids(pid: int) -> list[int]:
    """Real, effective, saved and filesystem uids of process ``pid`` (``/proc/<pid>/status``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return [int(field) for field in line.split()[1:]]
    raise AssertionError(f"no Uid line for {pid}")


def test_a_root_replicas_workers_run_tenant_code_as_nobody() -> None:
    """Started by root, a worker runs tenant code as uid 65534 (every uid of it), so it can neither
    signal nor renice the platform's processes; started by anyone else, as that user."""
    expected = [65534] * 4 if os.geteuid() == 0 else [os.geteuid()] * 4

    async def scenario(pool: WorkerPool) -> None:
        await load_one(pool, "w", "def main():\n    return {'ok': True}\n")
        answer = await pool.invoke("w", invocation("w"))
        assert answer.status == 200, answer.body
        assert pool.worker_pids
        for pid in pool.worker_pids:
            assert _uids(pid) == expected

    run(scenario, size=2)
