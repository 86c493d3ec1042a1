"""The admission contract between the gateway and the activator (no I/O of its own).

A request for a revision with no ready replica, or too little spare capacity, is not
sent straight to a replica: it is *admitted* first. The gateway asks ``Admission``;
the activator (in the gateway's process on one machine, across the network on a
cluster) answers. Both sides import this package and nothing of each other:

- ``Admission``: ``through`` (cheap, on every request: does this one go through
  admission?) and ``admit`` (hold the request until a capacity slot is free);
- ``Refused``: why a request was not admitted, with the status to answer (503 when the
  queue is full or the activator cannot be reached, 504 past the activation deadline);
- ``ReadyWaiter.wait_ready``: wait, with a deadline, until a route table shows a ready
  replica of a revision (a grant made elsewhere reaches this process's routes a little
  later; an egress lookup waits for a revision at zero).
"""

from fnmesh.platform.admission.contract import Admission, Refused
from fnmesh.platform.admission.ready import ReadyRoutes, ReadyWaiter

__all__ = ["Admission", "ReadyRoutes", "ReadyWaiter", "Refused"]
