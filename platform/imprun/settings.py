"""Typed settings for every imprun process, read from ``IMPRUN_*`` environment variables.

Build one ``Settings`` at start (``Settings()``) and pass it down; nothing in imprun reads the
environment at import time. An unset ``mongo_url`` / ``redis_url`` / ``ray_address`` means "use the
embedded service": ``imprun up`` starts it as a child process on loopback and fills in the URL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


def _default_data_dir() -> Path:
    """``./.imprun`` when the working directory already has one, else ``~/.imprun``."""
    local = Path.cwd() / ".imprun"
    return local if local.is_dir() else Path.home() / ".imprun"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IMPRUN_", extra="ignore", frozen=True)

    # External services; None = embedded child process started by `imprun up`.
    mongo_url: str | None = Field(default=None, description="MongoDB URL (a replica set in production).")
    redis_url: str | None = Field(default=None, description="Redis URL.")
    ray_address: str | None = Field(default=None, description="Ray cluster address (ray://… or host:port).")
    sys_db_name: str = Field(default="imprun_sys", description="Name of the system database.")

    # Where we listen and where embedded services listen (all on loopback by default).
    host: str = "127.0.0.1"
    api_port: int = Field(default=8080, description="Control-plane HTTP port.")
    serve_port: int = Field(default=8000, description="Data-plane (Ray Serve ingress) HTTP port.")
    dashboard_port: int = Field(default=8265, description="Ray dashboard port.")
    embedded_mongo_port: int = 27117
    embedded_redis_port: int = 6479
    embedded_redis_maxmemory_mb: int = Field(
        default=256, ge=16, description="Memory of the embedded Redis; full, it refuses writes (noeviction)."
    )
    embedded_ray_port: int = 6380

    data_dir: Path = Field(default_factory=_default_data_dir, description="Embedded data, keys and logs.")
    master_key: SecretStr | None = Field(
        default=None,
        description="Base64 32-byte master key material; generated into <data_dir>/master.key when unset.",
    )
    insecure_dev: bool = Field(
        default=False, description="Allow running tenant code without the jail (local development only)."
    )

    # Function runtime (what replicas get).
    worker_pool_size: int = Field(default=2, ge=1, le=16, description="Jailed worker processes per replica.")
    default_tier: Literal["shared", "dedicated"] = Field(
        default="shared",
        description="Tier of a gateway created without one: shared (loaded on demand into the shared "
        "runtime) or dedicated (one Serve application per environment).",
    )
    shared_runtime: bool = Field(
        default=True,
        description="Deploy the shared-runtime application (the shared tier, at route prefix /) on the cluster.",
    )
    shared_replicas: int = Field(default=1, ge=1, le=64, description="Replicas of the shared runtime.")
    shared_max_environments: int = Field(
        default=48, ge=1, le=1000, description="Environments one shared replica holds loaded at most."
    )
    shared_idle_seconds: float = Field(
        default=120.0,
        gt=0,
        le=86_400,
        description="Idle time after which a shared replica unloads an environment.",
    )
    shared_memory_budget_mb: int = Field(
        default=3072,
        ge=256,
        le=1_048_576,
        description="Resident memory of a shared replica and its workers past which it unloads the least "
        "recently used environments.",
    )
    shared_worker_pool_size: int = Field(
        default=1, ge=1, le=16, description="Jailed worker processes per environment on the shared tier."
    )
    shared_worker_pool_max: int = Field(
        default=2,
        ge=1,
        le=16,
        description="Jailed workers an environment on the shared tier grows to while its calls wait for "
        "one (kept until it is unloaded); at most IMPRUN_SHARED_WORKER_POOL_SIZE means no growth.",
    )
    shared_spare_workers: int = Field(
        default=1,
        ge=0,
        le=16,
        description="Jailed workers each shared replica spawns ahead, handed to the next environment it "
        "loads (a cold call does not wait for a worker to start); 0 spawns on demand only.",
    )
    replica_reserved_cpu: float = Field(
        default=0.02,
        ge=0,
        le=16,
        description="Most CPU a replica reserves on a local Ray cluster (a bundle asking less reserves "
        "that); what tenant code uses is bounded by its jailed workers, not by this.",
    )
    egress_allow: tuple[str, ...] = Field(
        default=(),
        description="Hosts or CIDRs imp.fetch may reach although private (comma-separated JSON list).",
    )

    # Function logs (Redis streams, one per environment) and environment variables.
    log_retention_entries: int = Field(
        default=10_000, ge=100, description="Entries kept per environment log stream (approximate trim)."
    )
    log_keepalive_seconds: float = Field(
        default=15.0, gt=0, description="Keep-alive comment interval of a followed log stream."
    )
    log_recheck_seconds: float = Field(
        default=2.0, gt=0, description="How often a log follower checks its environment still exists."
    )

    # Ingress: the embedded one (key-auth in the function actors) or APISIX through its Admin API.
    ingress: Literal["embedded", "apisix"] = "embedded"
    apisix_admin_url: str | None = Field(default=None, description="e.g. http://apisix-admin.apisix.svc:9180")
    apisix_admin_key: SecretStr | None = None
    apisix_domain: str | None = Field(default=None, description="Routes answer on {gw}.{env}.<domain>.")
    apisix_redis_host: str | None = Field(default=None, description="Redis for APISIX's limit-count.")
    apisix_redis_port: int = 6379
    apisix_redis_password: SecretStr | None = None
    apisix_redis_database: int = 0

    # Cluster driver: the local Ray Serve driver (embedded default) or KubeRay RayServices on Kubernetes.
    cluster_driver: Literal["local", "kuberay"] = "local"
    kuberay_api_url: str | None = Field(
        default=None, description="Kubernetes API URL; unset = in-cluster service account, else kubeconfig."
    )
    kuberay_image: str = Field(default="ghcr.io/imprun/runtime:latest", description="Ray pod image.")
    kuberay_runtime_class: str | None = Field(default=None, description="Pod runtimeClassName, e.g. gvisor.")
    kuberay_system_namespace: str = Field(default="imprun-system", description="Namespace of platform apps.")
    redis_runtime_users: bool = Field(
        default=True,
        description="Under KubeRay, runtimes log in to Redis as ACL users limited to their own keys (Redis 6+); "
        "false: they use IMPRUN_REDIS_URL.",
    )
    kuberay_shared_namespace: str = Field(
        default="imprun-shared",
        description="Namespace of the shared runtime (the shared tier runs tenant code, so not the system one).",
    )
    kuberay_ingress_namespace: str = Field(default="apisix", description="Namespace allowed to call Serve.")
    kuberay_operator_namespace: str = Field(
        default="kuberay-system",
        description="Namespace of the KubeRay operator (allowed to the Ray dashboard).",
    )
    kuberay_ingress_proxies: tuple[str, ...] = Field(
        default=(),
        description="Addresses or CIDRs the ingress (APISIX) reaches Serve from (JSON list); Serve's proxies "
        "in the RayServices believe its X-Forwarded-For, so rate limits count each client on its own.",
    )
    kuberay_head_cpu: float = Field(default=1.0, gt=0, description="CPU of each Ray head pod.")
    kuberay_head_memory_mb: int = Field(default=2048, ge=512, description="MiB of each Ray head pod.")
    kuberay_ready_timeout_seconds: float = Field(
        default=600.0, gt=0, description="A RayService not Ready this long after a change has failed."
    )
    kuberay_request_timeout_seconds: float = Field(default=10.0, gt=0, description="Per API-server call.")
    kuberay_retries: int = Field(default=3, ge=0, le=10, description="Retries on API-server 5xx/timeouts.")

    # AI gateway: chat providers (the MCP endpoint needs none of these) and tool-dispatch limits.
    ai_gateway: bool = Field(
        default=True, description="Deploy the ai-gateway application (/mcp, /ai-gateway/chat) on the cluster."
    )
    ai_provider: Literal["openai", "anthropic", "local"] | None = Field(
        default=None, description="Chat provider when a request names none; unset = the first configured."
    )
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = Field(default=None, description="Override of the OpenAI API URL.")
    openai_model: str = "gpt-4.1-mini"
    anthropic_api_key: SecretStr | None = None
    anthropic_base_url: str | None = Field(default=None, description="Override of the Anthropic API URL.")
    anthropic_model: str = "claude-sonnet-4-5"
    local_llm_base_url: str | None = Field(
        default=None, description="OpenAI-compatible URL of a local model server (vLLM, Ollama, ...)."
    )
    local_llm_model: str | None = None
    local_llm_api_key: SecretStr | None = None
    ai_max_tool_calls: int = Field(default=8, ge=1, le=100, description="Tool calls per chat request.")
    ai_tool_timeout_seconds: float = Field(default=30.0, gt=0, description="Deadline of one tool call.")
    ai_provider_timeout_seconds: float = Field(default=60.0, gt=0, description="Deadline of one LLM call.")
    ai_provider_retries: int = Field(default=2, ge=0, le=10, description="Retries on provider 429/5xx.")
    openai_models: tuple[str, ...] = Field(
        default=(), description="Models a chat request may name for OpenAI besides openai_model (JSON list)."
    )
    anthropic_models: tuple[str, ...] = Field(
        default=(), description="Models a chat request may name for Anthropic besides anthropic_model."
    )
    local_llm_models: tuple[str, ...] = Field(
        default=(), description="Models a chat request may name for the local server besides local_llm_model."
    )
    ai_chat_calls_per_period: int = Field(
        default=500, ge=0, description="LLM calls one application may make per budget period (0 = none)."
    )
    ai_chat_tokens_per_period: int = Field(
        default=500_000, ge=0, description="LLM tokens (input + output) one application may use per period."
    )
    ai_chat_period_seconds: int = Field(
        default=86_400, ge=60, description="Length of the chat budget period (fixed windows from the epoch)."
    )
    ai_chat_requests_per_minute: int = Field(
        default=30, ge=1, description="Chat requests per application per minute, apart from tool calls."
    )
    mcp_allowed_hosts: tuple[str, ...] = Field(
        default=(), description="Host header values /mcp accepts besides loopback (JSON list)."
    )

    # Accounts, sign-in and sessions.
    registration: Literal["open", "invite", "closed"] | None = Field(
        default=None,
        description="Who may register: anyone, holders of an admin's invite, or no one (the first user of "
        "an empty platform always may, and becomes admin); unset = open on loopback, else invite.",
    )
    invite_ttl_seconds: int = Field(default=7 * 86_400, ge=60, description="How long an invite stays usable.")
    registrations_per_client: int = Field(
        default=20, ge=1, description="Registration attempts per client address per registration window."
    )
    registration_window_seconds: int = Field(default=3600, ge=1)
    password_hash_concurrency: int = Field(
        default=4,
        ge=2,
        le=256,
        description="Argon2id hashes (64 MiB each) computed at once, half for registrations and half for "
        "sign-ins; the rest wait.",
    )
    password_hash_wait_seconds: float = Field(
        default=10.0, gt=0, description="How long a sign-in waits for a hashing slot before a 503."
    )
    trusted_proxies: tuple[str, ...] = Field(
        default=(),
        description="Addresses or CIDRs of proxies whose X-Forwarded-For names the client (JSON list).",
    )
    session_ttl_seconds: int = Field(default=86_400, ge=60)
    login_max_failures: int = Field(
        default=5, ge=1, description="Failed logins of one user from one client before back-off starts."
    )
    login_window_seconds: int = Field(
        default=900, ge=1, description="How long failed logins are remembered (from the last one)."
    )
    login_max_lockout_seconds: int = Field(
        default=900, ge=1, description="The longest back-off after repeated failed logins."
    )

    # Each user's share of the control plane's long-running work.
    debug_runs_per_user: int = Field(default=2, ge=1, description="Debug runs one user may have at once.")
    debug_run_threads: int = Field(
        default=8, ge=1, description="Debug runs in flight at once (threads apart from the request pool)."
    )
    log_followers_per_user: int = Field(default=4, ge=1, description="Followed log streams per user.")

    # Per-user quotas (defaults that suit one machine); past one, 403 quota_exceeded.
    quota_gateways: int = Field(default=16, ge=0, description="Gateways per user.")
    quota_functions_per_gateway: int = Field(default=100, ge=0, description="Functions per gateway.")
    quota_code_bytes: int = Field(
        default=256 * 1024, ge=1024, le=512 * 1024, description="UTF-8 bytes of one function's code."
    )
    quota_history_versions: int = Field(
        default=50, ge=1, description="Versions of a function's history kept; older ones are dropped."
    )
    quota_variables_per_environment: int = Field(default=100, ge=0, description="Variables per environment.")
    quota_log_mb_per_environment: float = Field(
        default=4.0,
        gt=0,
        description="MiB of Redis memory an environment's log stream may hold; the oldest entries go first.",
    )
    quota_gateway_db_mb: int = Field(
        default=256,
        ge=1,
        description="MiB of data and indexes in a gateway's database; past it imp.db() writes are refused.",
    )
    quota_bundle_cpu: float = Field(default=2.0, gt=0, description="CPUs per replica of a gateway's bundle.")
    quota_bundle_memory_mb: int = Field(default=2048, ge=64, description="MiB per replica of a bundle.")
    quota_bundle_replicas: int = Field(default=4, ge=1, description="maxReplicas of a bundle.")
    quota_bundle_resources: float = Field(
        default=4.0, ge=0, description="Amount of each custom resource per replica of a bundle."
    )

    # Lifecycle reconcilers.
    reconcile: bool = Field(default=True, description="Run the reconcilers in this control plane.")
    lease_seconds: int = Field(default=60, ge=1, description="How long a reconciler holds a resource.")
    reconcile_interval_seconds: float = Field(default=1.0, gt=0)
    reconcile_resync_seconds: float = Field(
        default=120.0,
        gt=0,
        le=3600,
        description="How often a settled resource is looked at again for drift (a change made through the "
        "API wakes it at once). Each look costs a few database operations (about 10 ms of CPU on the embedded "
        "database): 100 gateways are 400 resources.",
    )
    public_data_plane_url: str | None = Field(
        default=None, description="Base URL users call functions at (defaults to the local data plane)."
    )

    # Request limits and observability.
    max_request_bytes: int = Field(default=1_048_576, ge=1024, description="Largest accepted request body.")
    log_level: str = "INFO"
    log_json: bool | None = Field(
        default=None, description="JSON-lines logs; unset = JSON unless stderr is a terminal."
    )

    # Deadlines (seconds) for the service checks behind /readyz and start-up.
    dependency_timeout_seconds: float = Field(default=2.0, gt=0)
    startup_timeout_seconds: float = Field(default=60.0, gt=0)

    @property
    def registration_mode(self) -> Literal["open", "invite", "closed"]:
        """``registration``, or its default: open when the control plane listens on loopback only."""
        if self.registration is not None:
            return self.registration
        return "open" if self.host in _LOOPBACK_HOSTS else "invite"

    @property
    def control_plane_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    @property
    def data_plane_url(self) -> str:
        return f"http://{self.host}:{self.serve_port}"

    @property
    def function_base_url(self) -> str:
        return (self.public_data_plane_url or self.data_plane_url).rstrip("/")

    @property
    def dashboard_url(self) -> str:
        return f"http://{self.host}:{self.dashboard_port}"
