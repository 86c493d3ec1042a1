"""Validation errors that carry every problem found, each with its field path."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem: where it is (``scale.min``), what is wrong and how to fix it."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message

    def to_dict(self) -> dict[str, str]:
        return {"field": self.path, "message": self.message}


class ValidationError(ValueError):
    """Raised with *all* the problems of an input, never just the first."""

    def __init__(self, errors: list[FieldError], source: str = "") -> None:
        self.errors = list(errors)
        self.source = source
        super().__init__(self.render())

    def render(self) -> str:
        head = f"{self.source} is invalid" if self.source else "invalid input"
        lines = [f"{head} ({len(self.errors)} problem{'s' if len(self.errors) != 1 else ''}):"]
        lines += [f"  - {error}" for error in self.errors]
        return "\n".join(lines)

    def prefixed(self, prefix: str) -> ValidationError:
        """The same errors with ``prefix.`` in front of every field path."""
        return ValidationError(
            [
                FieldError(f"{prefix}.{e.path}" if e.path else prefix, e.message)
                for e in self.errors
            ],
            self.source,
        )


class Problems:
    """Collects field errors while a validator walks its input."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def add(self, path: str, message: str) -> None:
        self.errors.append(FieldError(path, message))

    def raise_if_any(self, source: str = "") -> None:
        if self.errors:
            raise ValidationError(self.errors, source)
