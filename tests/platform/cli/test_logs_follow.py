"""``imprun logs -f`` in a real subprocess: a call's ``imp.log`` line appears, and the stream ends
with a message (no hang) when the gateway is deleted."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

from tests.fixtures.live_stack import SMALL_BUNDLE, LiveStack
from tests.fixtures.polling import eventually

IMPRUN = Path(sys.executable).parent / "imprun"
SHOUT = "import imp\n\ndef main(word: str):\n    imp.log('shouting', word)\n    return word.upper()\n"


def test_follow_shows_new_lines_and_ends_when_the_gateway_goes(live_stack: LiveStack, tmp_path: Path) -> None:
    gw = live_stack.gateway_id("follow")
    with live_stack.client() as client:
        client.create_gateway("follow", gateway_id=gw, bundle=SMALL_BUNDLE)
        gateway = client.gateway(gw)
        gateway.wait_started(timeout=240)
        gateway.environment("dev").update(auth_type="none")
        fn = gateway.function("shout")
        fn.save(SHOUT)
        fn.publish("dev")
        assert fn.call({"word": "warm"}).body == "WARM"

        env = live_stack.env(IMPRUN_CONFIG_DIR=str(tmp_path))
        follower = subprocess.Popen(
            [str(IMPRUN), "logs", gw, "dev", "-f", "--json", "--since", "1s"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines: list[str] = []
        reader = threading.Thread(
            target=lambda: lines.extend(iter(follower.stdout.readline, "")), daemon=True
        )  # type: ignore[union-attr]
        reader.start()
        try:

            def logged(word: str) -> bool:
                return any(word in line for line in lines)

            # The follower may subscribe after a call: call until one call's line shows up.
            assert eventually(
                lambda: fn.call({"word": "hello"}).status == 200 and logged("shouting hello"),
                timeout=30,
                interval=0.3,
            ), lines
            entry = json.loads(next(line for line in lines if "shouting hello" in line))
            assert entry["function"] == "shout" and entry["requestId"]

            gateway.delete()
            assert eventually(lambda: follower.poll() is not None, timeout=180, interval=0.2), lines
            assert follower.returncode == 0
            reader.join(10)
            assert any("stream ended" in line for line in lines), lines
        finally:
            if follower.poll() is None:
                follower.kill()
            follower.wait(10)
