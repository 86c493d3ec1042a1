"""Live tap: request and response events of this replica, for ``fn tap`` and the dashboard.

Nothing is recorded unless the control plane has a tap session open (its reply to a stats
report says so, with filters). Then requests that pass the filters (``filters``) and the
rate limit (``bucket``) leave events in a bounded ring (``recorder``) that the stats
reporter pushes to the platform with its next report; ``layer`` is the inbound layer.
"""
