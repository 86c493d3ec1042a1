"""Where replicas run: local processes (``local``) or Kubernetes (``kubernetes``)."""
