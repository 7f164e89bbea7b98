"""Whether a receiver's "stored" message may free a package's spool copy.

Two conditions, both needed: the receipt is signed by a receiver certificate of our CA (security
finding 2: anyone on the broker can publish a "stored" for someone else's package), and it names
the manifests of the package we sent (a receipt for another version of the bag is not ours).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from agent.health import Health
from wire import protocol as P
from wire.receipt import ReceiptError, ReceiptVerifier

log = logging.getLogger(__name__)


def digests_match(files: list[P.FileEntry], body: dict[str, Any]) -> bool:
    want = {f.path: f.sha256 for f in files}
    return (body.get("manifest_sha256") == want["manifest-sha256.txt"]
            and body.get("tagmanifest_sha256") == want["tagmanifest-sha256.txt"])


class ReceiptCheck:
    """Verifies receipts for one device; a forged one is ignored and shown as a warning, so the package
    stays in transfer and the real receiver's answer counts."""

    def __init__(self, ca_file: Path, device_id: str, health: Health) -> None:
        self.ca_file, self.device_id, self.health = ca_file, device_id, health
        self._verifier: ReceiptVerifier | None = None   # loaded on the first receipt: the CA file may come later

    def genuine(self, pid: str, body: dict[str, Any]) -> bool:
        try:
            if self._verifier is None:
                self._verifier = ReceiptVerifier(self.ca_file)
            self._verifier.verify(self.device_id, pid, body)
            return True
        except (ReceiptError, OSError, ValueError) as exc:
            msg = f"ignored a 'stored' message for {pid} that does not prove storage: {exc}"
            log.warning("%s", msg)
            self.health.problem("upload:receipt", f"{msg}. The package stays queued on this PC; if this "
                                "repeats, someone is impersonating the receiver", kind="warning", ttl=3600)
            return False
