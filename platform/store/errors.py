"""What a store refuses."""


class StoreError(Exception):
    """Base of the store's refusals; ``status`` is the matching HTTP status."""

    status = 500


class NotFound(StoreError):
    status = 404


class Conflict(StoreError):
    """The object exists already, or the update was based on a stale resourceVersion."""

    status = 409


class Expired(StoreError):
    """A watch asked for changes older than the feed keeps: list again, then watch."""

    status = 410


class StoreUnavailable(StoreError):
    """The store could not read or write (a full disk, an I/O error). Nothing was
    written; the same call can be retried once the cause is gone."""

    status = 503
