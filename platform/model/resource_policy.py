"""The platform's defaults and maximums for a replica's resources, and the checks they make.

A function asks for ``resources`` (see ``spec_schema.RESOURCES_FIELDS``); what it leaves
out takes the platform's default, and what it asks for must not exceed the platform's
maximum. The operator of the platform sets both (embedded: the ``resources`` group of
``config.yaml``). Pure: the values come in, problems and effective limits go out.
"""

from __future__ import annotations

from dataclasses import dataclass

from fnmesh.platform.model.errors import FieldError
from fnmesh.platform.model.quantities import cores, format_cpu, format_memory, millicores
from fnmesh.platform.model.resources import ResourcesSpec

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ResourcePolicy:
    """Defaults and maximums: memory in bytes, cpu in millicores, pids a count."""

    default_memory: int = 256 * MiB
    default_cpu: int = 1000
    default_pids: int = 256
    max_memory: int = 4096 * MiB
    max_cpu: int = 2000
    max_pids: int = 4096

    def effective(self, asked: ResourcesSpec) -> ResourcesSpec:
        """What a replica runs with: what it asked for, else the default."""
        return ResourcesSpec(
            memory=asked.memory if asked.memory is not None else self.default_memory,
            cpu=asked.cpu if asked.cpu is not None else cores(self.default_cpu),
            pids=asked.pids if asked.pids is not None else self.default_pids,
        )

    def refusals(self, asked: ResourcesSpec, path: str = "resources") -> list[FieldError]:
        """A problem for every field above the platform's maximum, with the fix."""
        found: list[FieldError] = []
        if asked.memory is not None and asked.memory > self.max_memory:
            found.append(
                _over(path, "memory", format_memory(asked.memory), format_memory(self.max_memory))
            )
        if asked.cpu is not None and millicores(asked.cpu) > self.max_cpu:
            found.append(
                _over(path, "cpu", format_cpu(millicores(asked.cpu)), format_cpu(self.max_cpu))
            )
        if asked.pids is not None and asked.pids > self.max_pids:
            found.append(_over(path, "pids", str(asked.pids), str(self.max_pids)))
        return found

    def problems(self) -> list[tuple[str, str]]:
        """Settings that contradict each other: (setting, message)."""
        found: list[tuple[str, str]] = []
        pairs = (
            ("memory", self.default_memory, self.max_memory, format_memory),
            ("cpu", self.default_cpu, self.max_cpu, format_cpu),
            ("pids", self.default_pids, self.max_pids, str),
        )
        for name, default, maximum, spell in pairs:
            if default > maximum:
                found.append(
                    (
                        f"default_{name}",
                        f"is {spell(default)}, above max_{name} {spell(maximum)}: "
                        "lower the default or raise the maximum",
                    )
                )
        return found


def _over(path: str, name: str, asked: str, maximum: str) -> FieldError:
    return FieldError(
        f"{path}.{name}" if path else name,
        f"asks for {asked}, above this platform's maximum of {maximum}: ask for at most "
        f"{maximum} (the platform's operator sets the maximum, resources.max_{name})",
    )
