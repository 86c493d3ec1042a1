"""git push deploys: the smart-HTTP receiver, and the push's build gating the ref update.

What belongs here: repositories per function (``<home>/git/<namespace>/<name>.git``),
serving git's smart HTTP through the real ``git http-backend``, the pre-receive hook that
calls back into the platform, the decisions about which pushed refs deploy, preview or are
refused (pure), and the client side of ``fn git-remote`` (remote URL, credential helper).

Nothing on the import path of ``remote``, ``urls`` or this package imports starlette,
uvicorn or aiohttp: the CLI imports them and must start fast.
"""
