"""A platform component's own certificate on a cluster: its fixed component identity,
obtained from the identity endpoint with the pod's projected token, renewed in place.

``obtain`` retries while the identity endpoint cannot be reached (the API may start after
the component) and gives up at once when the endpoint refuses the credential.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from fnmesh.platform.cluster.settings import ClusterSettings
from fnmesh.platform.mesh.identity import (
    HttpIdentityEndpoint,
    IdentityClient,
    IdentityError,
    IdentityRefused,
    component_identity,
)

log = logging.getLogger("fnmesh.cluster")


class ComponentIdentity:
    """The certificate of one component (``gateway``, ``activator``, ``autoscaler``)."""

    def __init__(self, component: str, settings: ClusterSettings) -> None:
        domain = settings.trust_domain
        self.name = component_identity(component, domain)
        self.token_file: Path = settings.token_file
        self.endpoint = HttpIdentityEndpoint(
            settings.addresses.identity_url,
            server_identity=component_identity("identity", domain),
            trust_domain=domain,
        )
        self.client = IdentityClient(
            self.name,
            trust_anchors_pem=settings.trust_anchors,
            endpoint=self.endpoint,
            credential=self._token,
        )

    def _token(self) -> str:
        try:
            return self.token_file.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise IdentityRefused(
                f"cannot read the projected identity token {self.token_file}: {error}; mount "
                "a serviceAccountToken volume with audience identity.fnmesh.dev there"
            ) from None

    async def obtain(self, stop: asyncio.Event, *, max_delay: float = 5.0) -> bool:
        """The first certificate; False when ``stop`` was set first."""
        delay = 0.1
        while not stop.is_set():
            try:
                await self.client.start()
            except IdentityRefused:
                raise
            except (IdentityError, OSError) as error:
                log.warning(
                    "%s: no certificate yet (retrying in %.1fs): %s", self.name, delay, error
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(max_delay, delay * 2)
            else:
                log.info("certified as %s", self.name)
                return True
        return False

    async def close(self) -> None:
        await self.client.close()
        await self.endpoint.close()
