"""The {{name}} function: fnmesh calls handle(req) for every request."""

from fnmesh.functions import Request


def init() -> None:
    """Runs once per replica before it takes traffic (optional: delete it if unused)."""


def handle(req: Request) -> dict[str, str]:
    name = req.query.get("name", "world")
    return {"message": f"Hello, {name}!"}
