"""The replica proxy process: configuration, the inbound stack, and the entry point.

``config`` reads and validates ``FNMESH_PROXY_*`` once; ``stack`` assembles the inbound
layers in their one order; ``admin`` serves ``/metrics``, ``/ready`` and ``/live``;
``main`` wires it all together (``ReplicaProxy``) and shuts it down in fixed steps
(``python -m fnmesh.platform.mesh.proxy``). Certificates come from
``fnmesh.platform.mesh.identity`` (``IdentityClient`` over ``HttpIdentityEndpoint``).
"""
