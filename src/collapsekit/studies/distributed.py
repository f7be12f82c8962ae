"""Ray, the distributed engine collapsekit runs sweeps and sharded geometry on.

:func:`start` joins the cluster at ``address`` (``auto``, ``ray://host:port``) or starts a
local one (``ray.init()``); :func:`run_tasks` runs one function over a list of payloads as
Ray tasks, each with its own resource request, and hands every result to a callback as it
arrives. Without ``ray`` installed (``pip install 'collapsekit[scale]'``) the same
payloads run one after another in this process. Ray is imported only here.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from ..errors import CollapsekitError, MissingPackageError


def ray_module():
    """The ``ray`` module, or None when it is not installed."""
    try:
        import ray
    except ImportError:
        return None
    return ray


def reachable(address: str) -> None:
    """CollapsekitError unless ``address`` (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``)
    is well formed and, when it names a host, something listens there (ray.init would
    otherwise retry an unreachable address for minutes)."""
    if address == "auto":
        return
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        raise CollapsekitError(f"--ray-address {address!r}: write auto, HOST:PORT or "
                               "ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError:
        raise CollapsekitError(f"no Ray cluster answers at {address}: start one with ray "
                               "start --head (it prints the address), or drop --ray-address "
                               "for a local cluster") from None


def start(address: str | None = None, *, workers: int | None = None):
    """(ray, started_here): a connected ``ray`` module, or (None, False) without ray (an
    ``address`` then fails: joining a cluster needs ray). ``workers``: CPUs of a local
    cluster (default: all). A cluster this process already joined is reused."""
    ray = ray_module()
    if ray is None:
        if address:
            raise MissingPackageError(f"ray (needed for --ray-address {address})",
                                      "'collapsekit[scale]'")
        return None, False
    if ray.is_initialized():
        return ray, False
    if address:
        reachable(address)
    kw = dict(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        if address:
            ray.init(address=address, **kw)
        else:
            ray.init(num_cpus=workers, **kw)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = f"the Ray cluster at {address}" if address else "a local Ray cluster"
        raise CollapsekitError(f"could not start or join {where} ({first}): check the address "
                               "(ray start --head prints it) or drop --ray-address") from None
    return ray, True


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message, prefixed by its type when that helps."""
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    name = type(exc).__name__
    return first if first and isinstance(exc, (CollapsekitError, ValueError, OSError)) \
        else f"{name}: {first}" if first else name


def run_tasks(fn: Callable, payloads: list, *, resources: list[dict], ray=None,
              on_result: Callable[[int, object], None], max_retries: int = 2) -> None:
    """``on_result(i, fn(payloads[i]))`` for every payload, as results arrive: as Ray tasks
    with ``resources[i]`` (``num_cpus``, ``num_gpus``) when ``ray`` is given (``max_retries``
    reruns a task whose worker died; a task that still fails gives ``{"status": "failed",
    "error": ...}``), else one after another in this process."""
    if ray is None:
        for i, payload in enumerate(payloads):
            on_result(i, fn(payload))
        return
    remote = ray.remote(fn)
    refs = {remote.options(max_retries=max_retries, **res).remote(p): i
            for i, (p, res) in enumerate(zip(payloads, resources))}
    pending = list(refs)
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        for ref in ready:
            try:
                result = ray.get(ref)
            except Exception as exc:  # noqa: BLE001 - a worker killed past max_retries
                result = {"status": "failed", "error": one_line(exc)}
            on_result(refs[ref], result)
