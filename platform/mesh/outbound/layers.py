"""The layers of the outbound stack: one class per mechanism, one signature for all.

Every layer is ``async (Call) -> Response`` around an inner one (Starlette's middleware
shape, Linkerd's layers). A ``Call`` carries one request through the stack together with
its destination's state and what the layers learn on the way (the deadline, the
endpoint tried). The decisions are made by the pure modules (``balance``, ``accrual``,
``budget``, ``retry``); the layers only ask them and act. ``client.stack`` puts the
layers in their order.

Timeouts start no timer of their own: the deadline is a number on the clock, and each try
hands its share (``Call.timeout``) to the connection pool, whose single timer per request
enforces it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from ssl import SSLContext

from fnmesh.platform.http import (
    ConnectError,
    ConnectionPool,
    Request,
    ResetError,
    Response,
    UpstreamError,
    UpstreamTimeout,
)
from fnmesh.platform.mesh.metrics.responses import ResponseMetrics
from fnmesh.platform.mesh.outbound.accrual import FailureAccrual
from fnmesh.platform.mesh.outbound.balance import Balancer
from fnmesh.platform.mesh.outbound.budget import RetryBudget
from fnmesh.platform.mesh.outbound.retry import Failure
from fnmesh.platform.mesh.outbound.target import Destination, Endpoint, Settings

Clock = Callable[[], float]
_JSON = (b"content-type", b"application/json")


class NoEndpoint(Exception):
    """No endpoint of the destination may be chosen: none is ready, or all are ejected."""


class DestinationState:
    """What outlives a request, per destination: loads, circuits, budget, metric children."""

    __slots__ = ("accrual", "balancer", "budget", "endpoints", "metrics", "settings", "used")

    def __init__(
        self,
        destination: Destination,
        metrics: ResponseMetrics,
        roll: Callable[[], float],
        now: float,
    ) -> None:
        settings = destination.settings
        self.settings = settings
        self.endpoints = destination.endpoints
        self.balancer = Balancer(roll=roll)
        self.accrual = FailureAccrual(settings.accrual, roll=roll)
        self.budget = RetryBudget(settings.budget)
        self.metrics = metrics
        self.used = now

    def follow(self, destination: Destination, now: float) -> None:
        """Take up changed settings and endpoints (cheap when nothing changed)."""
        self.used = now
        settings = destination.settings
        if settings is not self.settings:
            if settings.budget != self.settings.budget:
                self.budget = RetryBudget(settings.budget)
            if settings.accrual != self.settings.accrual:
                self.accrual.spec = settings.accrual
            self.settings = settings
        endpoints = destination.endpoints
        if endpoints is not self.endpoints:
            self.endpoints = endpoints
            names = {e.name for e in endpoints}
            self.balancer.forget(names)
            self.accrual.forget(names)


class Call:
    """One request on its way through the stack."""

    __slots__ = (
        "deadline",
        "destination",
        "endpoint",
        "request",
        "started",
        "state",
        "timeout",
        "tls",
        "tried",
    )

    def __init__(
        self, destination: Destination, request: Request, state: DestinationState, started: float
    ) -> None:
        self.destination = destination
        self.request = request
        self.state = state
        self.started = started  # clock time the request entered the stack
        self.deadline = 0.0  # clock time by which the whole request must be answered
        self.timeout = 0.0  # seconds the current try may take
        self.endpoint: Endpoint | None = None  # the endpoint of the current (or last) try
        self.tls = False  # the current try went over mTLS
        self.tried: list[str] = []  # endpoints tried, in order


Service = Callable[[Call], Awaitable[Response]]


def error_response(status: int, message: str) -> Response:
    body = json.dumps({"error": message}).encode() + b"\n"
    return Response(status=status, headers=[_JSON], body=body)


class Measure:
    """Count each request and its final response; time it."""

    def __init__(self, inner: Service, clock: Clock) -> None:
        self.inner = inner
        self.clock = clock

    async def __call__(self, call: Call) -> Response:
        response = await self.inner(call)
        endpoint = call.endpoint
        server_id = (endpoint.identity or "") if call.tls and endpoint is not None else ""
        metrics = call.state.metrics
        metrics.request(server_id)
        metrics.response(response.status, server_id, (self.clock() - call.started) * 1e3)
        return response


class Respond:
    """Turn what went wrong into a response with a reason: 503, 504 or 502."""

    def __init__(self, inner: Service) -> None:
        self.inner = inner

    async def __call__(self, call: Call) -> Response:
        try:
            return await self.inner(call)
        except NoEndpoint as reason:
            call.endpoint = None
            return error_response(503, f"no ready endpoint for {call.destination.name}: {reason}")
        except UpstreamTimeout as failure:
            message = f"{call.destination.name} did not answer in time{_where(call)}{failure}"
            call.endpoint = None
            return error_response(504, message)
        except UpstreamError as failure:
            message = f"{call.destination.name} failed{_where(call)}{failure}"
            call.endpoint = None
            return error_response(502, message)


def _where(call: Call) -> str:
    """`` after 3 tries: replica x: `` -- what precedes the last failure in a reason."""
    tries = len(call.tried)
    after = f" after {tries} tries" if tries > 1 else ""
    replica = f"replica {call.endpoint.name}: " if call.endpoint is not None else ""
    return f"{after}: {replica}"


class TotalTimeout:
    """Set the deadline that bounds all tries of the request."""

    def __init__(self, inner: Service) -> None:
        self.inner = inner

    async def __call__(self, call: Call) -> Response:
        call.deadline = call.started + call.state.settings.timeout
        return await self.inner(call)


_FAILURES: dict[type[UpstreamError], Failure] = {
    ConnectError: Failure.CONNECT,
    ResetError: Failure.RESET,
    UpstreamTimeout: Failure.TIMEOUT,
}


def failure_of(error: UpstreamError) -> Failure:
    kind = _FAILURES.get(type(error))
    if kind is None:
        kind = next((v for k, v in _FAILURES.items() if isinstance(error, k)), Failure.PROTOCOL)
    return kind


class Retry:
    """Try again what the policy allows, while the budget and the deadline allow it."""

    def __init__(self, inner: Service, clock: Clock) -> None:
        self.inner = inner
        self.clock = clock

    async def __call__(self, call: Call) -> Response:
        state = call.state
        policy = state.settings.retry
        method = call.request.method
        size = len(call.request.body)
        state.budget.deposit(call.started)
        retries = 0
        last: Response | UpstreamError | None = None
        while True:
            try:
                response = await self.inner(call)
            except NoEndpoint:
                # the endpoints left were ejected meanwhile: the last failure is the news
                if isinstance(last, UpstreamError):
                    raise last from None
                if last is None:
                    raise
                return last
            except UpstreamError as error:
                if not (
                    policy.retries_failure(failure_of(error), method, size)
                    and self._again(call, state.settings, retries)
                ):
                    raise
                last = error
            else:
                if not (
                    response.status >= 500
                    and policy.retries_status(response.status, method, size)
                    and self._again(call, state.settings, retries)
                ):
                    return response
                last = response
            retries += 1

    def _again(self, call: Call, settings: Settings, retries: int) -> bool:
        """Within the retry limit and the deadline, and the budget gives one: withdraw it."""
        if retries >= settings.retry.max_retries:
            return False
        now = self.clock()
        if call.deadline <= now:
            return False
        return call.state.budget.withdraw(now)


class Balance:
    """Choose the endpoint (P2C, peak EWMA, skipping ejected ones); feed back the outcome."""

    def __init__(self, inner: Service, clock: Clock) -> None:
        self.inner = inner
        self.clock = clock

    async def __call__(self, call: Call) -> Response:
        state = call.state
        accrual = state.accrual
        balancer = state.balancer
        endpoints = call.destination.endpoints
        now = self.clock()
        ejections = accrual.any_ejected
        endpoint = balancer.pick(
            endpoints, now, admits=accrual.admits if ejections else None, avoid=call.tried
        )
        if endpoint is None:
            raise NoEndpoint(_unavailable(accrual, endpoints, now))
        name = endpoint.name
        probe = accrual.dispatch(name, now) if ejections else False
        load = balancer.start(name, now)
        call.endpoint = endpoint
        call.tried.append(name)
        try:
            response = await self.inner(call)
        except UpstreamError:
            end = self.clock()
            balancer.finish(load, end - now, end, failed=True)
            accrual.failure(name, end, probe=probe)
            raise
        except BaseException:  # cancelled: no outcome to learn from
            load.pending -= 1
            accrual.abandon(name, probe=probe)
            raise
        end = self.clock()
        if response.status >= 500:
            balancer.finish(load, end - now, end, failed=True)
            accrual.failure(name, end, probe=probe)
        else:
            balancer.finish(load, end - now, end)
            accrual.success(name, end, probe=probe)
        return response


def _unavailable(accrual: FailureAccrual, endpoints: Sequence[Endpoint], now: float) -> str:
    if not endpoints:
        return "it has no ready replica"
    names = [e.name for e in endpoints]
    wait = accrual.probe_in(names, now)
    if wait is None:
        return "no endpoint is admitted"
    if wait == 0:
        return f"all {len(names)} replicas are ejected after consecutive failures; a probe is out"
    return (
        f"all {len(names)} replicas are ejected after consecutive failures;"
        f" the next probe goes in {wait:.1f}s"
    )


class TryTimeout:
    """Give the try its time: the per-try timeout, within what is left of the total."""

    def __init__(self, inner: Service, clock: Clock) -> None:
        self.inner = inner
        self.clock = clock

    async def __call__(self, call: Call) -> Response:
        settings = call.state.settings
        left = call.deadline - self.clock()
        per_try = settings.per_try_timeout
        timeout = per_try if per_try is not None and per_try < left else left
        if timeout <= 0:
            raise UpstreamTimeout(f"the request's timeout of {settings.timeout:g}s passed")
        call.timeout = timeout
        return await self.inner(call)


class Forward:
    """Send the try over a pooled connection: mTLS checking the endpoint's identity."""

    def __init__(self, pool: ConnectionPool, tls: SSLContext | None) -> None:
        self.pool = pool
        self.tls = tls

    async def __call__(self, call: Call) -> Response:
        endpoint = call.endpoint
        assert endpoint is not None, "Forward runs below Balance"
        limit = call.state.settings.max_response_bytes
        if self.tls is None:
            call.tls = False
            return await self.pool.request(
                endpoint.host,
                endpoint.port,
                call.request,
                timeout=call.timeout,
                max_body_bytes=limit,
            )
        identity = endpoint.identity
        if not identity:
            raise ConnectError(
                f"replica {endpoint.name} has no identity to verify: refusing to send in plaintext"
            )
        call.tls = True
        return await self.pool.request(
            endpoint.host,
            endpoint.port,
            call.request,
            timeout=call.timeout,
            ssl=self.tls,
            server_hostname=identity,
            max_body_bytes=limit,
        )
