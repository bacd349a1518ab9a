"""An in-process stand-in for the APISIX Admin API (v3), written from its documentation.

APISIX cannot run on this machine, so ``ApisixDriver`` is tested against this HTTP server on a free
loopback port. It keeps routes, upstreams and consumers in dicts and answers as the Admin API is
documented to: ``X-API-KEY`` checked on every call (401 without it or with a wrong one); ``PUT``
creates (201) or replaces (200) and answers ``{key, value}``; ``GET``/``DELETE`` answer 404
``{"message": "Key not found"}`` for a missing object; consumers are written with ``PUT /consumers``
(username in the body) or ``PUT /consumers/{username}``. It enforces what APISIX enforces that a
driver can get wrong: the id and username patterns, the route / upstream / consumer fields, a
route's ``upstream_id`` must exist (400), an upstream a route still uses cannot be deleted (400),
unknown plugins are refused, and the plugin configurations imprun uses are checked (``key-auth``
needs ``key`` on consumers, ``limit-count`` needs ``count`` and ``time_window`` and a Redis host
with ``policy: redis``, ``proxy-rewrite``'s ``regex_uri`` comes in pattern/template pairs, …).
It is stricter than APISIX about unknown plugin fields, to catch typos. ``Fault`` rules make it
answer an error status, echo the request body in an error, drop the connection or stall, for the
next matching requests. Consumer credentials (``/consumers/{name}/credentials``) are not modelled.
"""

from __future__ import annotations

import copy
import json
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, Self

ADMIN_PREFIX: Final = "/apisix/admin"
KINDS: Final = ("routes", "upstreams", "consumers")

_ID: Final = re.compile(r"[a-zA-Z0-9-_.]{1,64}")
_USERNAME: Final = re.compile(r"[a-zA-Z0-9_]{1,100}")
_HOST: Final = re.compile(r"\*?[0-9a-zA-Z-._]+")
_LABEL_VALUE: Final = re.compile(r"\S{1,64}")
_NOT_FOUND: Final = {"message": "Key not found"}


class Rejected(Exception):
    """A request APISIX would refuse with 400 and this ``error_msg``."""


@dataclass
class Fault:
    """Misbehave on the next ``times`` requests matching ``method`` and ``path_prefix``.

    ``status`` answers with that status; ``echo_body`` makes that answer an ``error_msg`` quoting the
    request body (an Admin API that repeats what it was sent); ``drop`` closes the connection without
    answering; ``delay`` stalls that many seconds before handling the request normally.
    """

    method: str | None = None
    path_prefix: str = ""
    status: int | None = None
    echo_body: bool = False
    drop: bool = False
    delay: float = 0.0
    times: int = 1

    def matches(self, method: str, path: str) -> bool:
        wanted = self.method is None or self.method == method
        return self.times > 0 and wanted and path.startswith(self.path_prefix)


class AdminApiStandIn:
    """The Admin API of one APISIX instance; ``base_url`` is what ``ApisixDriver`` is given."""

    def __init__(self, admin_key: str) -> None:
        self.admin_key = admin_key
        self.requests: list[tuple[str, str, int]] = []  # method, path, status (0: dropped)
        self._objects: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in KINDS}
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._clock = 1_700_000_000
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # Life cycle ---------------------------------------------------------------------------------

    def start(self) -> Self:
        handler = _handler_for(self)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="apisix-standin",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() the stand-in first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # What tests look at and do behind the driver's back -----------------------------------------

    def objects(self, kind: str) -> dict[str, dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._objects[kind])

    def get(self, kind: str, object_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._objects[kind].get(object_id)
            return copy.deepcopy(found) if found is not None else None

    def remove(self, kind: str, object_id: str) -> None:
        """Delete an object the way an operator would, bypassing every check (drift)."""
        with self._lock:
            del self._objects[kind][object_id]

    def put_raw(self, kind: str, object_id: str, value: dict[str, Any]) -> None:
        """Store an object as someone else wrote it, bypassing every check."""
        with self._lock:
            self._objects[kind][object_id] = copy.deepcopy(value)

    def inject(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    # Request handling (called from the server's threads) ----------------------------------------

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    return fault
        return None

    def record(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self.requests.append((method, path, status))

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        parts = path.removeprefix(ADMIN_PREFIX).strip("/").split("/")
        kind, object_id = parts[0], "/".join(parts[1:])
        needs_id = (kind, method) != ("consumers", "PUT")  # consumers may name themselves in the body
        if kind not in KINDS or "/" in object_id or (needs_id and not object_id):
            return 404, {"error_msg": f"not found: {method} {path}"}
        with self._lock:
            try:
                if method == "GET":
                    return self._get(kind, object_id)
                if method == "DELETE":
                    return self._delete(kind, object_id)
                if method == "PUT":
                    return self._put(kind, object_id, _json_object(body))
            except Rejected as exc:
                return 400, {"error_msg": str(exc)}
        return 405, {"error_msg": f"method {method} is not allowed here"}

    def _get(self, kind: str, object_id: str) -> tuple[int, dict[str, Any]]:
        value = self._objects[kind].get(object_id)
        if value is None:
            return 404, _NOT_FOUND
        return 200, {"key": f"/apisix/{kind}/{object_id}", "value": copy.deepcopy(value)}

    def _delete(self, kind: str, object_id: str) -> tuple[int, dict[str, Any]]:
        if object_id not in self._objects[kind]:
            return 404, _NOT_FOUND
        if kind == "upstreams":
            for route_id, route in self._objects["routes"].items():
                if str(route.get("upstream_id")) == object_id:
                    raise Rejected(f"can not delete this upstream, route [{route_id}] is still using it now")
        del self._objects[kind][object_id]
        return 200, {"deleted": "1", "key": f"/apisix/{kind}/{object_id}"}

    def _put(self, kind: str, object_id: str, conf: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if kind == "consumers":
            username = conf.get("username")
            if object_id and username not in (None, object_id):
                raise Rejected("wrong username")
            conf.setdefault("username", object_id)
            _check_consumer(conf)
            object_id = str(conf["username"])
        else:
            if not _ID.fullmatch(object_id):
                raise Rejected(f'invalid configuration: property "id" validation failed: {object_id!r}')
            if "id" in conf and str(conf["id"]) != object_id:
                raise Rejected(f"wrong {kind[:-1]} id")
            conf["id"] = object_id
            (_check_route if kind == "routes" else _check_upstream)(conf)
            if kind == "routes" and "upstream_id" in conf:
                upstream_id = str(conf["upstream_id"])
                if upstream_id not in self._objects["upstreams"]:
                    raise Rejected(
                        f"failed to fetch upstream info by upstream id [{upstream_id}], response code: 404"
                    )
        previous = self._objects[kind].get(object_id)
        self._clock += 1
        conf["create_time"] = previous["create_time"] if previous else self._clock
        conf["update_time"] = self._clock
        self._objects[kind][object_id] = conf
        return (200 if previous else 201), {
            "key": f"/apisix/{kind}/{object_id}",
            "value": copy.deepcopy(conf),
        }


# Schemas, after APISIX's schema_def and the plugin documentation ---------------------------------

_UPSTREAM_FIELDS: Final = {
    "id", "name", "desc", "labels", "type", "nodes", "scheme", "pass_host", "upstream_host", "retries",
    "retry_timeout", "timeout", "checks", "hash_on", "key", "keepalive_pool", "tls", "service_name",
    "discovery_type", "discovery_args", "create_time", "update_time",
}  # fmt: skip
_ROUTE_FIELDS: Final = {
    "id", "name", "desc", "labels", "uri", "uris", "host", "hosts", "methods", "priority", "vars",
    "remote_addr", "remote_addrs", "filter_func", "plugins", "plugin_config_id", "upstream",
    "upstream_id", "service_id", "timeout", "enable_websocket", "status", "script", "create_time",
    "update_time",
}  # fmt: skip
_CONSUMER_FIELDS: Final = {"username", "desc", "labels", "plugins", "group_id", "create_time", "update_time"}


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        conf = json.loads(body or b"null")
    except ValueError as exc:
        raise Rejected(f"invalid request body: {exc}") from exc
    if not isinstance(conf, dict):
        raise Rejected("invalid request body: an object is required")
    return conf


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise Rejected(f"invalid configuration: {message}")


def _unknown_fields(conf: dict[str, Any], allowed: set[str], what: str) -> None:
    extra = sorted(set(conf) - allowed)
    _require(not extra, f"additional properties forbidden in {what}, found {extra}")


def _check_labels(conf: dict[str, Any]) -> None:
    labels = conf.get("labels", {})
    _require(isinstance(labels, dict) and len(labels) <= 16, 'property "labels" validation failed')
    for value in labels.values():
        _require(isinstance(value, str) and bool(_LABEL_VALUE.fullmatch(value)), f"bad label value {value!r}")


def _check_text(conf: dict[str, Any], field: str, longest: int) -> None:
    if field in conf:
        value = conf[field]
        _require(isinstance(value, str) and len(value) <= longest, f'property "{field}" validation failed')


def _check_upstream(conf: dict[str, Any]) -> None:
    _unknown_fields(conf, _UPSTREAM_FIELDS, "upstream")
    _check_labels(conf)
    _check_text(conf, "name", 100)
    _check_text(conf, "desc", 256)
    _require(conf.get("type") in ("roundrobin", "chash", "ewma", "least_conn"), 'property "type" is required')
    _require(conf.get("scheme", "http") in ("http", "https", "grpc", "grpcs"), 'property "scheme" is invalid')
    _require(conf.get("pass_host", "pass") in ("pass", "node", "rewrite"), 'property "pass_host" is invalid')
    nodes = conf.get("nodes")
    _require(isinstance(nodes, (list, dict)), 'property "nodes" is required')
    entries = nodes if isinstance(nodes, list) else []
    for node in entries:
        _require(
            isinstance(node, dict) and {"host", "port", "weight"} <= set(node),
            "a node needs host, port, weight",
        )
        _require(isinstance(node["host"], str) and bool(_HOST.fullmatch(node["host"])), "bad node host")
        _require(isinstance(node["port"], int) and node["port"] >= 1, "bad node port")
        _require(isinstance(node["weight"], int) and node["weight"] >= 0, "bad node weight")


def _check_route(conf: dict[str, Any]) -> None:
    _unknown_fields(conf, _ROUTE_FIELDS, "route")
    _check_labels(conf)
    _check_text(conf, "name", 100)
    _check_text(conf, "desc", 256)
    _require(("uri" in conf) != ("uris" in conf), 'exactly one of "uri" and "uris" is required')
    _require(not ("host" in conf and "hosts" in conf), 'only one of "host" and "hosts" is allowed')
    hosts = conf.get("hosts", [conf["host"]] if "host" in conf else [])
    for host in hosts:
        _require(isinstance(host, str) and bool(_HOST.fullmatch(host)), f"bad host {host!r}")
    targets = {"plugins", "upstream", "upstream_id", "service_id", "script"}
    _require(bool(targets & set(conf)), "a route needs plugins, an upstream, upstream_id or service_id")
    _check_plugins(conf.get("plugins", {}), consumer=False)


def _check_consumer(conf: dict[str, Any]) -> None:
    _unknown_fields(conf, _CONSUMER_FIELDS, "consumer")
    username = conf.get("username")
    _require(
        isinstance(username, str) and bool(_USERNAME.fullmatch(username)), 'property "username" is invalid'
    )
    _check_labels(conf)
    _check_text(conf, "desc", 256)
    _check_plugins(conf.get("plugins", {}), consumer=True)


def _check_plugins(plugins: Any, *, consumer: bool) -> None:
    _require(isinstance(plugins, dict), 'property "plugins" must be an object')
    for name, plugin_conf in plugins.items():
        checker = _PLUGINS.get(name)
        if checker is None:
            raise Rejected(f"unknown plugin [{name}]")
        _require(isinstance(plugin_conf, dict), f"plugin {name} needs an object")
        try:
            checker(plugin_conf, consumer)
        except Rejected as exc:
            raise Rejected(f"failed to check the configuration of plugin {name} err: {exc}") from None


def _fields(conf: dict[str, Any], types: dict[str, type | tuple[type, ...]]) -> None:
    for field, value in conf.items():
        expected = types.get(field)
        _require(expected is not None, f"unknown property {field!r}")
        assert expected is not None
        _require(isinstance(value, expected) and not (expected is int and isinstance(value, bool)), field)


def _key_auth(conf: dict[str, Any], consumer: bool) -> None:
    if consumer:
        _fields(conf, {"key": str})
        _require(bool(conf.get("key")), 'property "key" is required')
    else:
        _fields(conf, {"header": str, "query": str, "hide_credentials": bool, "anonymous_consumer": str})


def _proxy_rewrite(conf: dict[str, Any], _: bool) -> None:
    _fields(conf, {"uri": str, "regex_uri": list, "host": str, "method": str, "headers": dict})
    regex_uri = conf.get("regex_uri", [])
    _require(len(regex_uri) % 2 == 0 and all(isinstance(part, str) for part in regex_uri), "regex_uri pairs")
    for pattern in regex_uri[::2]:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise Rejected(f"invalid regex_uri {pattern!r}: {exc}") from None
    headers = conf.get("headers", {})
    _fields(headers, {"set": dict, "add": dict, "remove": list})
    for action in ("set", "add"):
        values = headers.get(action, {}).values()
        _require(all(isinstance(value, str) for value in values), f"headers.{action} values are strings")


def _limit_count(conf: dict[str, Any], _: bool) -> None:
    _fields(
        conf,
        {
            "count": int, "time_window": int, "key_type": str, "key": str, "rejected_code": int,
            "rejected_msg": str, "policy": str, "allow_degradation": bool, "show_limit_quota_header": bool,
            "group": str, "redis_host": str, "redis_port": int, "redis_username": str, "redis_password": str,
            "redis_database": int, "redis_timeout": int, "redis_ssl": bool, "redis_ssl_verify": bool,
        },
    )  # fmt: skip
    _require(
        conf.get("count", 0) > 0 and conf.get("time_window", 0) > 0, "count and time_window are required"
    )
    _require(conf.get("key_type", "var") in ("var", "var_combination", "constant"), "bad key_type")
    _require(200 <= conf.get("rejected_code", 503) <= 599, "rejected_code must be 200-599")
    _require(conf.get("policy", "local") in ("local", "redis", "redis-cluster"), "bad policy")
    if conf.get("policy") == "redis":
        _require(bool(conf.get("redis_host")), "redis_host is required when policy is redis")
        _require(
            conf.get("redis_port", 6379) >= 1 and conf.get("redis_database", 0) >= 0, "bad redis port/db"
        )


def _consumer_restriction(conf: dict[str, Any], _: bool) -> None:
    _fields(
        conf, {"type": str, "whitelist": list, "blacklist": list, "rejected_code": int, "rejected_msg": str}
    )
    _require(
        conf.get("type", "consumer_name") in ("consumer_name", "consumer_group_id", "service_id", "route_id"),
        "bad type",
    )
    _require(("whitelist" in conf) != ("blacklist" in conf), "one of whitelist and blacklist is required")
    _require(all(isinstance(item, str) for item in conf.get("whitelist", conf.get("blacklist", []))), "lists")


_PLUGINS: Final[dict[str, Callable[[dict[str, Any], bool], None]]] = {
    "key-auth": _key_auth,
    "proxy-rewrite": _proxy_rewrite,
    "limit-count": _limit_count,
    "consumer-restriction": _consumer_restriction,
}


# HTTP ---------------------------------------------------------------------------------------------


def _handler_for(stand_in: AdminApiStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True
        wbufsize = 1 << 16  # one write per answer (headers and body together); flushed per request

        def do_GET(self) -> None:
            self._serve()

        def do_PUT(self) -> None:
            self._serve()

        def do_DELETE(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean; ``stand_in.requests`` records what happened

        def _serve(self) -> None:
            method, path = self.command, self.path.split("?", 1)[0]
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            fault = stand_in.take_fault(method, path)
            if fault is not None and fault.delay:
                time.sleep(fault.delay)
            if fault is not None and fault.drop:
                stand_in.record(method, path, 0)
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if self.headers.get("X-API-KEY") != stand_in.admin_key:
                status, payload = 401, {"error_msg": "failed to check token"}
            elif fault is not None and fault.status is not None:
                message = body.decode(errors="replace") if fault.echo_body else "injected failure"
                status, payload = fault.status, {"error_msg": message}
            else:
                status, payload = stand_in.handle(method, path, body)
            stand_in.record(method, path, status)
            self._answer(status, payload)

        def _answer(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up (a timeout test)

    return Handler


def free_port_without_listener() -> int:
    """A loopback port nothing listens on (for connection-refused tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
