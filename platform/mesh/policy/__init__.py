"""Who may call this replica: the policy document, the pure decision, and the file watcher.

``decision`` is purely computational (a parsed policy and an identity in, a verdict out);
``watch`` follows the JSON file the platform writes and hands the current policy to the
authorization layer. Turning SMI TrafficTargets into that file is the platform's job.
"""
