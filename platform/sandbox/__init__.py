"""Containment of untrusted function code: namespaces, mounts, identities and limits.

``layout`` decides (purely) what a replica's sandbox shows; ``enter`` builds it with the
system calls in ``syscalls`` inside a warm runtime process and drops privileges;
``uids`` gives every function an unprivileged uid of its own. Nothing here imports a
component: the runtime and the builder call in.
"""
