"""The activator: holds requests for revisions with no ready capacity and forwards them
as soon as a replica is ready, poking the autoscaler at once."""
