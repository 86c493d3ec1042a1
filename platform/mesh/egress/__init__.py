"""Egress: a function calling another function through its own replica proxy.

The proxy listens on a Unix socket only its runtime can reach (``FNMESH_OUTBOUND``); the
SDK (``fnmesh.functions.call``) sends a request there with the destination in the Host
header (``<function>`` or ``<function>.<namespace>``). ``destinations`` asks the platform
where that function's revisions and replicas are (cached for a second, and asking the
platform to activate a revision at zero); ``listener`` picks a revision by weight and
sends the request through the outbound stack, over mTLS as this replica's own identity,
so the callee's proxy authorizes the caller itself.
"""
