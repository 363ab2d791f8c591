"""Stand-ins for what the local cluster may run without: a kubelet, kube-controller-manager.

Storage is real (:mod:`localcluster.storage`); what is left here is only what no real part
plays when that part does not run:

* ``kubelet`` (when no kubelet runs, i.e. without :class:`~localcluster.node.LocalNode`):
  a kubelet's last step of pod deletion. A pod bound to a node stays Terminating until
  that node's kubelet confirms its containers are gone; there are none, so the stand-in
  confirms at once (``grace_period=0``).
* ``core_controllers`` (when kube-controller-manager does not run): the controllers of
  :mod:`localcluster.core_controllers` (default service accounts, generic ephemeral
  volumes, static PV binding, garbage collection, namespace finalization).

Every pass is a level-triggered reconcile of everything, triggered by watches, so a
restarted stand-in picks up where the last one stopped.

Run it in a thread (``StandIns(kubeconfig, config).start()`` / ``.stop()``) or as a
process: ``python -m localcluster.stand_ins --kubeconfig FILE``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from lightkube import AsyncClient, KubeConfig
from lightkube.types import on_error_retry

from localcluster.core_controllers import CoreControllers
from localcluster.kube import KINDS, ApiError, Kube, is_conflict, make_client, meta
from localcluster.lifecycle import Started

__all__ = ["StandInConfig", "StandIns", "World", "main"]

log = logging.getLogger("localcluster.stand_ins")

Obj = dict[str, Any]
Key = tuple[str, str]

#: Kinds whose changes call for a pass (only Pods matter to the kubelet stand-in).
_WATCHED: Final = ("Pod", "PersistentVolumeClaim", "PersistentVolume", "Namespace", "StorageClass")


@dataclass(frozen=True, slots=True)
class StandInConfig:
    """Which parts to play (see the module docstring) and how often to resync anyway."""

    kubelet: bool = True
    core_controllers: bool = True
    resync_interval: float = 30.0

    @property
    def anything(self) -> bool:
        """False when the real parts run and nothing is left to stand in for."""
        return self.kubelet or self.core_controllers


@dataclass
class World:
    """Everything the stand-ins look at, listed at the start of one pass."""

    storage_classes: dict[str, Obj] = field(default_factory=dict)
    claims: dict[Key, Obj] = field(default_factory=dict)
    volumes: dict[str, Obj] = field(default_factory=dict)
    pods: dict[Key, Obj] = field(default_factory=dict)
    namespaces: dict[str, Obj] = field(default_factory=dict)
    #: Namespaces that have a ``default`` service account (listed on first use).
    service_accounts: set[str] | None = None

    @classmethod
    def load(cls, kube: Kube) -> World:
        """List every watched kind."""

        def by_key(kind: str) -> dict[Key, Obj]:
            return {(meta(o)["namespace"], meta(o)["name"]): o for o in kube.list(kind)}

        def by_name(kind: str) -> dict[str, Obj]:
            return {meta(o)["name"]: o for o in kube.list(kind)}

        return cls(
            storage_classes=by_name("StorageClass"),
            claims=by_key("PersistentVolumeClaim"),
            volumes=by_name("PersistentVolume"),
            pods=by_key("Pod"),
            namespaces=by_name("Namespace"),
        )


def _deleting(obj: Mapping[str, Any]) -> bool:
    return meta(obj).get("deletionTimestamp") is not None


class StandIns(Started):
    """The stand-ins of ``config``, against the API server of ``kubeconfig``."""

    def __init__(self, kubeconfig: Path, config: StandInConfig | None = None) -> None:
        self.kubeconfig = kubeconfig
        self.config = config or StandInConfig()
        self._client = make_client(kubeconfig)
        self.kube = Kube(self._client)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._watcher: threading.Thread | None = None
        self._watch_loop: asyncio.AbstractEventLoop | None = None
        self._watch_stop: asyncio.Event | None = None
        self._retry_at: float | None = None
        self._core = (
            CoreControllers(self.kube, kubeconfig) if self.config.core_controllers else None
        )

    def start(self) -> StandIns:
        """Reconcile everything once, then keep reconciling on watch events in the background."""
        try:
            self.reconcile_once()
        except ApiError as exc:
            # e.g. 429 while the API server's caches fill: the worker tries again.
            log.warning("first pass failed (%s); retrying in the background", exc)
            self._retry_at = time.monotonic() + 0.5
        self._stop.clear()
        if self._core is not None:
            self._core.start()
        self._watcher = threading.Thread(
            target=self._run_watches, name="stand-ins-watch", daemon=True
        )
        self._worker = threading.Thread(target=self._run, name="stand-ins", daemon=True)
        self._watcher.start()
        self._worker.start()
        return self

    def stop(self) -> None:
        """Stop the watches and the worker and close the clients."""
        self._stop.set()
        self._wake.set()
        if self._watch_loop is not None and self._watch_stop is not None:
            with contextlib.suppress(RuntimeError):
                self._watch_loop.call_soon_threadsafe(self._watch_stop.set)
        for thread in (self._worker, self._watcher):
            if thread is not None:
                thread.join(timeout=15)
        self._worker = self._watcher = None
        self._client.close()
        if self._core is not None:
            self._core.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            timeout = self.config.resync_interval
            if self._retry_at is not None:
                timeout = max(0.0, min(timeout, self._retry_at - time.monotonic()))
            self._wake.wait(timeout)
            if self._stop.is_set():
                return
            # Let a burst of events settle into one pass.
            time.sleep(0.02)
            self._wake.clear()
            self._retry_at = None
            try:
                self.reconcile_once()
            except Exception:
                log.exception("reconcile pass failed; retrying")
                self._retry_at = time.monotonic() + 1.0

    def _run_watches(self) -> None:
        loop = asyncio.new_event_loop()
        self._watch_loop = loop
        try:
            loop.run_until_complete(self._watch_all())
        finally:
            loop.close()

    async def _watch_all(self) -> None:
        self._watch_stop = asyncio.Event()
        config = KubeConfig.from_file(str(self.kubeconfig)).get()
        client = AsyncClient(config=config, trust_env=False)
        kinds = [k for k in _WATCHED if k == "Pod" or self._core is not None]
        tasks = [asyncio.create_task(self._watch(client, kind)) for kind in kinds]
        try:
            await self._watch_stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await client.close()

    async def _watch(self, client: AsyncClient, kind: str) -> None:
        k = KINDS[kind]
        kwargs: dict[str, Any] = {"on_error": on_error_retry, "server_timeout": 300}
        if k.namespaced:
            kwargs["namespace"] = "*"
        while True:
            try:
                async for _event in client.watch(k.resource, **kwargs):
                    self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the API server restarting, a network blip
                log.debug("watch %s failed: %s; restarting", kind, exc)
                self._wake.set()
                await asyncio.sleep(1.0)

    def reconcile_once(self) -> None:
        """One level-triggered pass over everything (safe to call at any time, idempotent)."""
        world = World.load(self.kube)
        steps = [self._kubelet]
        if self._core is not None:
            steps.append(self._core.reconcile)
        for step in steps:
            try:
                step(world)
            except ApiError as exc:
                # Someone changed an object under us: the watch brings us back.
                if not is_conflict(exc):
                    raise
                log.debug("conflict in %s: %s", step.__name__, exc)

    def _kubelet(self, world: World) -> None:
        if not self.config.kubelet:
            return
        for (ns, name), pod in world.pods.items():
            if _deleting(pod) and (pod.get("spec") or {}).get("nodeName"):
                # The kubelet confirms deletion once containers are gone; there are none.
                self.kube.delete("Pod", name, ns, grace_period=0)


def main(argv: list[str] | None = None) -> int:
    """``python -m localcluster.stand_ins --kubeconfig FILE``: run until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(
        prog="python -m localcluster.stand_ins", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument(
        "--no-kubelet", action="store_true", help="a kubelet runs: do not finish pod deletions"
    )
    parser.add_argument(
        "--no-core-controllers",
        action="store_true",
        help="kube-controller-manager runs: do not play its controllers",
    )
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    config = StandInConfig(
        kubelet=not args.no_kubelet, core_controllers=not args.no_core_controllers
    )
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())
    stand_ins = StandIns(args.kubeconfig, config)
    # The API server may still be coming up when `up` starts us.
    for attempt in range(60):
        try:
            stand_ins.start()
            break
        except Exception as exc:
            if attempt == 59 or stopped.is_set():
                raise
            log.warning("start failed (%s); retrying", exc)
            time.sleep(1)
    log.info("stand-ins running (%s)", args.kubeconfig)
    stopped.wait()
    stand_ins.stop()
    log.info("stand-ins stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
