"""``PlatformAppReconciler`` over a recording fake of the cluster driver (the local driver's platform
app methods run for real in the e2e walkthrough): apply when missing, failed or changed, not when
running and unchanged; failures are states, not crashes; checks happen once per interval."""

from __future__ import annotations

from imprun.domain.observations import AppStatus
from imprun.drivers.cluster import ObservedApp, PlatformAppSpec
from imprun.errors import Unavailable
from imprun.lifecycle.platform_apps import PlatformAppReconciler

SPEC = PlatformAppSpec(name="ai-gateway", import_path="ray_apps.ai_gateway:build_app", route_prefix="/")


class RecordingDriver:
    def __init__(self) -> None:
        self.status = AppStatus.MISSING
        self.applied: list[PlatformAppSpec] = []
        self.down = False

    def observe_platform_app(self, name: str) -> ObservedApp:
        if self.down:
            raise Unavailable("Ray is not reachable")
        return ObservedApp(self.status, "")

    def apply_platform_app(self, spec: PlatformAppSpec) -> None:
        self.applied.append(spec)
        self.status = AppStatus.DEPLOYING


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def reconciler(driver: RecordingDriver, clock: Clock, spec: PlatformAppSpec = SPEC) -> PlatformAppReconciler:
    return PlatformAppReconciler([spec], driver, interval=5.0, clock=clock)  # type: ignore[arg-type]


def test_applies_when_missing_then_only_when_needed() -> None:
    driver, clock = RecordingDriver(), Clock()
    r = reconciler(driver, clock)
    assert r.reconcile_one() is False
    assert driver.applied == [SPEC] and r.states["ai-gateway"].status == "Deploying"
    driver.status = AppStatus.RUNNING
    clock.now = 1.0
    r.reconcile_one()  # not due yet
    assert r.states["ai-gateway"].status == "Deploying"
    clock.now = 6.0
    r.reconcile_one()
    assert len(driver.applied) == 1 and r.states["ai-gateway"].status == "Running"
    driver.status = AppStatus.DEPLOY_FAILED
    clock.now = 12.0
    r.reconcile_one()
    assert len(driver.applied) == 2, "a failed deployment is applied again"


def test_a_changed_spec_is_applied_once_per_control_plane() -> None:
    driver, clock = RecordingDriver(), Clock()
    driver.status = AppStatus.RUNNING
    changed = PlatformAppSpec(
        name="ai-gateway",
        import_path="ray_apps.ai_gateway:build_app",
        route_prefix="/",
        args={"max_tool_calls": 3},
    )
    r = reconciler(driver, clock, changed)
    r.reconcile_one()
    driver.status = AppStatus.RUNNING
    clock.now = 10.0
    r.reconcile_one()
    assert driver.applied == [changed]


def test_an_unreachable_cluster_is_a_failed_state_and_recovers() -> None:
    driver, clock = RecordingDriver(), Clock()
    driver.down = True
    r = reconciler(driver, clock)
    r.reconcile_one()
    assert r.states["ai-gateway"].status == "Failed" and "not reachable" in r.states["ai-gateway"].message
    driver.down = False
    clock.now = 5.0
    r.reconcile_one()
    assert driver.applied == [SPEC]
