"""Assemble the running agent: state, recovery, watchers, pipeline, uploader, local page."""
from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path

from agent import __version__
from agent.config import Config
from agent.health import Health, HealthFlusher
from agent.instance import Instance
from agent.measurement import Measurement
from agent.package.builder import BuiltPackage, Spool
from agent.pairing import Pairer, UnpairedPairer
from agent.pipeline import Pipeline
from agent.private import secure_agent_dirs
from agent.recovery import recover
from agent.state.store import StateStore
from agent.threads import stop_all
from agent.watch.instrument import InstrumentWatcher
from translators import sandbox

log = logging.getLogger(__name__)


class Agent:
    def __init__(self, cfg: Config, *, pairer: Pairer | None = None) -> None:
        self.cfg = cfg
        self.health = Health()
        # first of all: a second agent on this state folder, spool or device id must not touch them
        self.instance = Instance(cfg).claim()
        try:
            secure_agent_dirs(cfg.spool_dir, cfg.state_dir, cfg.log_dir)  # before anything is written (security 6)
            sandbox.set_worker_log_dir(cfg.state_dir / "workers")
            self.store = StateStore(cfg.state_db)
        except BaseException:
            self.instance.release()
            raise
        self.spool = Spool(cfg.spool_dir)
        self._pairer_arg = pairer
        self.pairer = pairer if pairer is not None else self._default_pairer()
        self.threads: list[threading.Thread] = []
        self.watchers: dict[str, InstrumentWatcher] = {}
        self.pipeline: Pipeline | None = None
        self.uploader = None
        self.status_publisher = None
        #: the one MQTT connection's extension point (agent/fleet/channel.py); None when offline
        self.channel = None
        self.web = None
        self._stopped = threading.Event()
        self._reload_lock = threading.RLock()   # run_forever does not count threads stopped for a reload
        self.remote = None                      # agent.remote: signed config from the facility
        self._remote_attached = False

    def _default_pairer(self) -> Pairer:
        try:
            from agent.sheets.pairer import SheetPairer
        except ImportError:
            return UnpairedPairer(self.cfg.default_owner_id)
        return SheetPairer(self.cfg, self.store, self.health)

    def start(self) -> None:
        if not self._remote_attached:  # once per process, not per reload
            self._remote_attached = True
            from agent.remote.hook import attach
            attach(self)  # may roll back an interrupted trial first, replacing self.cfg
        log.info("labedge %s starting for device %s (config %s)", __version__, self.cfg.device_id, self.cfg.source)
        recover(self.spool, self.store,
                delete_delivered=self.cfg.upload.delete_delivered if self.cfg.upload is not None else True)
        self.health.set("started_at", time.time())
        self.health.set("agent_version", __version__)
        flusher = HealthFlusher(self.health, self.store)
        self.pipeline = Pipeline(self.cfg, self.store, self.spool, self.health, self.pairer)
        self.pipeline.on_packaged.append(self._packaged)
        self.pipeline.on_retake = self._retake
        on_sheet = getattr(self.pairer, "on_sheet_file", None)
        for inst in self.cfg.instruments:
            w = InstrumentWatcher(inst, known=self.store.known_files(inst.id), emit=self.pipeline.submit,
                                  health=self.health, rescan_seconds=self.cfg.rescan_seconds, on_sheet=on_sheet)
            self.watchers[inst.id] = w
        if self.cfg.upload is not None:
            from agent.fleet.channel import FleetChannel
            from agent.transport.uploader import Uploader
            self.channel = FleetChannel()
            self.uploader = Uploader(self.cfg, self.store, self.spool, self.health, channel=self.channel)
            from agent.fleet.status_publisher import StatusPublisher
            self.status_publisher = StatusPublisher(self.cfg, self.channel,
                                                    interval=self.cfg.upload.status_interval)
            self.health.set("mode", "online")
        else:
            self.health.set("mode", "offline")
            log.warning("no [upload] section in %s: running offline, packages are built and kept in the queue",
                        self.cfg.source)
        if self.cfg.web.enabled:
            try:
                from agent.sheets.server import LocalServer
            except ImportError:
                LocalServer = None  # type: ignore[assignment,misc]
            if LocalServer is not None:
                self.web = LocalServer(self.cfg, self.store, self.health, self.pairer, self.spool, self.pipeline)
        from agent.fleet.commands import attach_commands  # remote commands ride on the uploader's link
        commands = attach_commands(self)
        # a pairer may bring its own worker (agent.sheets: the hold-timeout timer)
        self.threads = [flusher, self.pipeline, *self.watchers.values(), self.uploader, self.status_publisher, self.web,
                        getattr(self.pairer, "worker", None), commands]
        if self.cfg.status_file is not None:  # machine-wide mode: what every user's tray reads
            from agent.status_file import StatusFileWriter
            self.threads.append(StatusFileWriter(self.cfg, self.cfg.status_file))
        self.threads = [t for t in self.threads if t is not None]
        if self.remote is not None:
            self.remote.bind(self)  # agent.remote: its topics on the new channel, its state in the status
        for t in self.threads:
            t.start()

    def _packaged(self, m: Measurement, built: BuiltPackage) -> None:
        w = self.watchers.get(m.instrument_id)
        if w is not None:
            w.mark_known([(r.path, r.size, r.mtime_ns) for r in built.files])
        if self.uploader is not None:
            self.uploader.wake()

    def _retake(self, m: Measurement) -> None:
        w = self.watchers.get(m.instrument_id)
        if w is not None:
            w.retake([f.path for f in m.files])

    def reload(self, cfg: Config, timeout: float = 15.0) -> list[str]:
        """Stop the components, rebuild them from ``cfg`` and start them again, in this process."""
        with self._reload_lock:
            leaked = stop_all(reversed(self.threads), timeout)
            self.store.close()
            self.cfg = cfg
            self.store, self.spool = StateStore(cfg.state_db), Spool(cfg.spool_dir)
            self.pairer = self._pairer_arg if self._pairer_arg is not None else self._default_pairer()
            self.watchers, self.uploader, self.web = {}, None, None
            self.status_publisher, self.channel = None, None
            self.start()
            log.info("reloaded in process with %s", cfg.source)
            return leaked

    def stop(self, timeout: float = 15.0) -> list[str]:
        leaked = stop_all([self.remote, *reversed(self.threads)], timeout)
        self.store.close()
        self.instance.release()
        self._stopped.set()
        log.info("labedge stopped")
        return leaked

    def run_forever(self) -> int:
        stop_requested = threading.Event()

        def on_signal(signum, _frame):  # noqa: ANN001
            log.info("signal %s received, stopping", signum)
            stop_requested.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, on_signal)
        self.start()
        while not stop_requested.wait(1.0):
            with self._reload_lock:
                dead = [t.name for t in [*self.threads, self.remote] if t is not None and not t.is_alive()]
            if dead:
                log.error("internal threads stopped unexpectedly: %s; exiting so the service manager restarts us",
                          ", ".join(dead))
                self.stop()
                return 3
        self.stop()
        return 0
