"""What the mesh reports to the control plane, and who consumes it.

Replica proxies and the activator send one report a second per revision (load, request
outcomes, latency buckets, tap events). ``report`` parses and checks them (pure);
``windows`` keeps per-revision request outcomes over time for golden metrics and rollout
analysis (pure, injected time); ``tap`` holds live tap sessions; ``hub`` fans reports out
to the autoscaler, the windows and the tap sessions; ``server`` is the mTLS listener the
reports arrive on.
"""
