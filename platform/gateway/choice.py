"""Picking a revision by its weight (pure; shared with the mesh's egress, so it lives in
the model)."""

from fnmesh.platform.model.traffic import pick_weighted

__all__ = ["pick_weighted"]
