"""Calls to private functions: the caller must send an API token that may invoke there.

A function with ``visibility: private`` is served through the gateway only to a request
with ``Authorization: Bearer <token>`` whose role may ``invoke`` (invoker, deployer,
admin) in the function's namespace. Without one the answer is 401, with one that may not
403, each with a JSON body saying why. The header is the platform's: it is taken off the
request before it reaches the function, whose code is not trusted with the token.

``refusal`` decides (pure); ``PrivateAccess`` checks the token through the token table,
whose snapshot makes a check a hash and a look-up (a revocation holds within 5 s).
"""

from __future__ import annotations

from typing import Protocol

from fnmesh.platform.model.access import Grant, decide

AUTHORIZATION = b"authorization"


class TokenCheck(Protocol):
    def authenticate(self, secret: str) -> Grant | str: ...


def bearer(header: bytes | None) -> str | None:
    if header is None:
        return None
    scheme, _, secret = header.decode("latin-1").strip().partition(" ")
    secret = secret.strip()
    return secret if scheme.lower() == "bearer" and secret else None


def refusal(found: Grant | str | None, namespace: str, function: str) -> tuple[int, str] | None:
    """(status, message) when the caller may not invoke the private ``function``."""
    where = f"{namespace}/{function}"
    if found is None:
        return (
            401,
            f"function {where} is private: send 'Authorization: Bearer <token>' with a "
            "token of role invoker, deployer or admin (`fn token create --role invoker`)",
        )
    if isinstance(found, str):
        return 401, f"function {where} is private and the bearer token was refused: {found}"
    denial = decide(found, "invoke", "write", namespace)
    if denial is not None:
        return 403, f"function {where} is private: {denial.message}"
    return None


class PrivateAccess:
    def __init__(self, tokens: TokenCheck) -> None:
        self.tokens = tokens

    def check(self, namespace: str, function: str, header: bytes | None) -> tuple[int, str] | None:
        secret = bearer(header)
        found = None if secret is None else self.tokens.authenticate(secret)
        return refusal(found, namespace, function)
