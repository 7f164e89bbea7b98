"""How many renewal requests one `labedge pki serve` checks and signs per second (CPU only, no broker).

Reference in the same run: issuing a certificate with `labedge pki issue`'s code (key generation +
signing), so the ratio says what the renewal checks (chain, revocation list, proof, CSR) add.
Run: .venv/bin/python bench/bench_renewal.py [N]
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "fleetops"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "transport"))

from facility import pki as P  # noqa: E402
from facility.renewal import check_renewal  # noqa: E402
from facility.revocation import revoke  # noqa: E402
from test_renewal_checks import request  # noqa: E402  - the device's request, as agent.fleet.renew makes it


def main(n: int = 200) -> None:
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        ca = P.init_ca(root / "ca")
        for i in range(50):  # a CA with history: 50 devices issued, 10 revoked
            P.issue(ca, f"old-{i}", root / "old")
        for i in range(10):
            revoke(ca, f"old-{i}")
        cert, key = P.issue(ca, "dev-01", root)
        bodies = [request(cert, key, "dev-01") for _ in range(n)]  # made outside the timing
        t0 = time.perf_counter()
        for b in bodies:
            csr, cn = check_renewal(ca, "dev-01", b)
            P.sign_parsed_csr(ca, csr, cn, 365)
        renew = (time.perf_counter() - t0) / n
        t0 = time.perf_counter()
        for i in range(n):
            P.issue(ca, f"ref-{i}", root / "ref")
        ref = (time.perf_counter() - t0) / n
    print(f"renewal check + sign: {renew * 1000:.2f} ms each ({1 / renew:.0f}/s); "
          f"pki issue reference: {ref * 1000:.2f} ms; ratio {renew / ref:.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
