"""What an AI-gateway replica is built from, and the platform application that carries it.

``AiGatewayConfig`` is JSON-able (it travels as the Serve application's args, as a ``serveConfigV2``
entry would carry it): where the system database is, the API-key pepper, the configured chat
providers and the limits. ``ai_gateway_spec`` turns the settings into the ``PlatformAppSpec`` the
lifecycle's ``PlatformAppReconciler`` keeps deployed at route prefix ``/`` (``/mcp`` and
``/ai-gateway/...``; every other path that no environment claims gets the gateway's JSON 404).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Final

from imprun.ai.providers import ProviderConfig, ProviderKind
from imprun.drivers.cluster import PlatformAppSpec
from imprun.settings import Settings

__all__ = [
    "AI_GATEWAY_APP",
    "AI_GATEWAY_IMPORT_PATH",
    "AiGatewayConfig",
    "ai_gateway_spec",
    "configured_providers",
]

AI_GATEWAY_APP: Final = "ai-gateway"
AI_GATEWAY_IMPORT_PATH: Final = "ray_apps.ai_gateway:build_app"
AI_GATEWAY_ROUTE_PREFIX: Final = "/mcp"


@dataclass(frozen=True)
class AiGatewayConfig:
    mongo_url: str | None = None
    sys_db_name: str = "imprun_sys"
    api_key_pepper: str = field(default="", repr=False)
    providers: tuple[Mapping[str, Any], ...] = field(default=(), repr=False)
    default_provider: str | None = None
    max_tool_calls: int = 8
    tool_timeout_seconds: float = 30.0
    mcp_allowed_hosts: tuple[str, ...] = ()
    max_request_bytes: int = 1_048_576
    catalog_ttl_seconds: float = 0.5
    chat_calls_per_period: int = 500
    chat_tokens_per_period: int = 500_000
    chat_period_seconds: int = 86_400
    chat_requests_per_minute: int = 30

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> AiGatewayConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(args) - known)
        if unknown:
            raise ValueError(f"unknown AI-gateway argument(s) {unknown}; expected some of {sorted(known)}")
        values = dict(args)
        values["providers"] = tuple(dict(p) for p in values.get("providers") or ())
        values["mcp_allowed_hosts"] = tuple(values.get("mcp_allowed_hosts") or ())
        config = cls(**values)
        config.provider_configs()  # validates them
        bytes.fromhex(config.api_key_pepper)
        return config

    def to_args(self) -> dict[str, Any]:
        values = asdict(self)
        values["providers"] = [dict(p) for p in self.providers]
        values["mcp_allowed_hosts"] = list(self.mcp_allowed_hosts)
        return values

    def provider_configs(self) -> list[ProviderConfig]:
        return [
            ProviderConfig(
                kind=ProviderKind(p["kind"]),
                model=str(p["model"]),
                api_key=str(p.get("api_key") or ""),
                base_url=p.get("base_url"),
                timeout_seconds=float(p.get("timeout_seconds", 60.0)),
                max_retries=int(p.get("max_retries", 2)),
                models=tuple(str(m) for m in p.get("models") or ()),
            )
            for p in self.providers
        ]


def configured_providers(settings: Settings) -> list[dict[str, Any]]:
    """The providers the settings configure, in preference order: OpenAI, Anthropic, local."""
    common = {
        "timeout_seconds": settings.ai_provider_timeout_seconds,
        "max_retries": settings.ai_provider_retries,
    }
    providers: list[dict[str, Any]] = []
    if settings.openai_api_key is not None:
        providers.append(
            {
                "kind": ProviderKind.OPENAI.value,
                "model": settings.openai_model,
                "models": list(settings.openai_models),
                "api_key": settings.openai_api_key.get_secret_value(),
                "base_url": settings.openai_base_url,
                **common,
            }
        )
    if settings.anthropic_api_key is not None:
        providers.append(
            {
                "kind": ProviderKind.ANTHROPIC.value,
                "model": settings.anthropic_model,
                "models": list(settings.anthropic_models),
                "api_key": settings.anthropic_api_key.get_secret_value(),
                "base_url": settings.anthropic_base_url,
                **common,
            }
        )
    if settings.local_llm_base_url and settings.local_llm_model:
        providers.append(
            {
                "kind": ProviderKind.LOCAL.value,
                "model": settings.local_llm_model,
                "models": list(settings.local_llm_models),
                "api_key": settings.local_llm_api_key.get_secret_value()
                if settings.local_llm_api_key
                else "",
                "base_url": settings.local_llm_base_url,
                **common,
            }
        )
    return providers


def ai_gateway_config(settings: Settings, api_key_pepper: bytes) -> AiGatewayConfig:
    return AiGatewayConfig(
        mongo_url=settings.mongo_url,
        sys_db_name=settings.sys_db_name,
        api_key_pepper=api_key_pepper.hex(),
        providers=tuple(configured_providers(settings)),
        default_provider=settings.ai_provider,
        max_tool_calls=settings.ai_max_tool_calls,
        tool_timeout_seconds=settings.ai_tool_timeout_seconds,
        mcp_allowed_hosts=settings.mcp_allowed_hosts,
        max_request_bytes=settings.max_request_bytes,
        chat_calls_per_period=settings.ai_chat_calls_per_period,
        chat_tokens_per_period=settings.ai_chat_tokens_per_period,
        chat_period_seconds=settings.ai_chat_period_seconds,
        chat_requests_per_minute=settings.ai_chat_requests_per_minute,
    )


def ai_gateway_spec(settings: Settings, api_key_pepper: bytes) -> PlatformAppSpec:
    return PlatformAppSpec(
        name=AI_GATEWAY_APP,
        import_path=AI_GATEWAY_IMPORT_PATH,
        route_prefix=AI_GATEWAY_ROUTE_PREFIX,
        args=ai_gateway_config(settings, api_key_pepper).to_args(),
        replicas=1,
        cpu=0.05,
    )
