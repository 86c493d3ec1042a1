"""Source in, Function out: check a bundle, build it, point the function at the artifact.

Shared by the API's source upload and the git receiver, so both refuse the same bad
input the same way and deploy through the same builder.
"""

from fnmesh.platform.deploy.service import DeployResult, DeployService, NameMismatch

__all__ = ["DeployResult", "DeployService", "NameMismatch"]
