"""Source in, Function out: check a bundle, build it, point the function at the artifact.

Shared by the API's source upload and the git receiver, so both refuse the same bad
input the same way and deploy through the same builder.

No deploy is lost: the function is updated only once the controller has stamped the
previous change (``status.observedGeneration`` caught up), so every deploy gets a
revision of its own, carrying its build id in ``spec.artifact.build``. A deploy may
carry a precondition, the generation it read; if the function changed since, it is
refused with ``DeployConflict`` (409) and the deployer reads again and retries.
"""

from fnmesh.platform.deploy.service import (
    DeployConflict,
    DeployResult,
    DeployService,
    NameMismatch,
)

__all__ = ["DeployConflict", "DeployResult", "DeployService", "NameMismatch"]
