"""Says hello: GET /?name=you -> "Hello, you!"."""

from fnmesh.functions import Request


def handle(req: Request) -> str:
    name = req.query.get("name", "world")
    return f"Hello, {name}!\n"
