"""Ingress: request -> function -> traffic split -> revision -> ready replica.

``routing`` maps a request to a function (pure), ``table`` follows the store and keeps an
immutable snapshot of routes, ``choice`` picks a revision and a replica (pure), and
``server`` is the hot path on top of ``fnmesh.platform.http``.
"""

from fnmesh.platform.gateway.server import Gateway

__all__ = ["Gateway"]
