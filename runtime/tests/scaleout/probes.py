"""Requests to the probe app's routes that the read-routing tests share."""

from collections.abc import Callable
from typing import Any

import anyio
from httpx import AsyncClient, Response
from pg_runtime.health import readiness_details
from probe.migrations import migrations
from probe.routes import router
from probe.session import sessionmanager

PROBES = router.url_path_for("create_probe")


async def add_probe(client: AsyncClient, token: str | None = "0/0") -> tuple[int, str | None]:
    """A new row's id, and the consistency token its response carried: a client that
    carries one (`token`) gets one back."""
    headers = {"X-Consistency-Token": token} if token else {}
    response = await client.post(PROBES, headers=headers)
    assert response.status_code == 201, response.text
    assert response.json()["on_standby"] is False, "a request that writes reads on the primary"
    return response.json()["id"], response.headers.get("X-Consistency-Token")


async def read_probe(
    client: AsyncClient, probe_id: int, token: str | None = None, pause: float = 0
) -> Response:
    """GET the probe, found where the read was routed, `pause` seconds spent there first."""
    headers = {"X-Consistency-Token": token} if token else {}
    path = router.url_path_for("read_probe", probe_id=probe_id)
    return await client.get(path, params={"pause": pause}, headers=headers)


def found(probe_id: int, on_standby: bool) -> dict[str, object]:
    """The body of a probe the tests created (with no name), read on a standby or not."""
    return {"id": probe_id, "name": None, "on_standby": on_standby}


async def operator_readiness() -> dict[str, Any]:
    """The readiness details an operator gets (logged; the API's port says status only)."""
    return (await readiness_details(sessionmanager, migrations)).model_dump()


async def readiness_when(
    standby_state: Callable[[str], bool], seconds: float = 10
) -> dict[str, Any]:
    """The readiness details, once the first standby's state satisfies `standby_state`."""
    with anyio.fail_after(seconds):
        while True:
            ready = await operator_readiness()
            if standby_state(ready["standbys"][0]["state"]):
                return ready
            await anyio.sleep(0.02)
