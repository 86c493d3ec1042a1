"""The secrets API's body parsing and its place in the OpenAPI document."""

from __future__ import annotations

import base64

import pytest

from fnmesh.platform.api.errors import ApiError
from fnmesh.platform.api.openapi import document
from fnmesh.platform.api.secrets import parse_secret

VALUE = b"api-plaintext-33e1"


def body(**data: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "data": data}


def test_a_secret_body_decodes_to_bytes() -> None:
    encoded = base64.b64encode(VALUE).decode()
    assert parse_secret(body(password=encoded), None) == ("db", {"password": VALUE})
    assert parse_secret(body(password=encoded), "db")[0] == "db"


@pytest.mark.parametrize(
    ("given", "name", "field"),
    [
        (body(k="dg=="), "other", "metadata.name"),
        (body(k="%%%"), None, "data.k"),
        ({"metadata": {"name": "db"}, "data": ["k"]}, None, "data"),
        ({"kind": "ConfigMap", "metadata": {"name": "db"}, "data": {"k": "dg=="}}, None, "kind"),
    ],
)
def test_bad_bodies_name_the_field(given: dict[str, object], name: str | None, field: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_secret(given, name)
    assert caught.value.code == 422
    assert field in [c.path for c in caught.value.causes or []]


def test_a_refusal_never_repeats_the_value() -> None:
    encoded = base64.b64encode(VALUE).decode()
    with pytest.raises(ApiError) as caught:
        parse_secret(body(**{"bad/key": encoded}), None)
    assert VALUE.decode() not in caught.value.message and encoded not in caught.value.message


def test_the_secret_routes_are_documented() -> None:
    paths = document()["paths"]
    secrets = "/apis/fnmesh.dev/v1alpha1/namespaces/{namespace}/secrets"
    assert set(paths[secrets]) == {"get", "post"}
    assert set(paths[secrets + "/{name}"]) == {"get", "put", "delete"}
