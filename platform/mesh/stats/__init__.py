"""Load reports from this replica to the control plane.

``load`` integrates requests in flight over time (pure, on an injected clock), ``report``
builds a report and reads the reply (pure), and ``reporter`` is the driver that sends one
every interval over mTLS and carries pending tap events with it.
"""
