"""Staged rollout of one signed config: canaries first, then waves, stop at K failures (hawkBit-like).

One document is signed for the whole push (targets: the named devices, or the group). It is published,
retained, on each device's own topic wave by wave; only devices in a published wave can ever see it
(the ACL lets a device read only its own topic and the group topics). After the last wave a group push
is also retained on the group topic, for members that were never seen. A device that is offline gets
its retained copy when it returns.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable

from facility.keys import Signer
from facility.remote.history import History
from facility.remote.session import AdminSession, config_section, outcome_for
from wire import topics
from wire.config_layer import LayerError, flatten, local_only_keys, parse_fragment


class RolloutError(Exception):
    """The push cannot start; the text says why."""


@dataclass
class RolloutResult:
    version: int
    push_id: int
    state: str = "running"              # done / stopped / aborted / incomplete
    results: dict[str, tuple[str, str]] = field(default_factory=dict)   # device -> (state, reason)
    never_sent: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[str]:
        return [d for d, (s, _) in self.results.items() if s in ("refused", "rolled_back")]


def check_fragment(text: str) -> dict[str, Any]:
    """The checks a device would make on the fragment alone, before anything is signed."""
    try:
        frag = parse_fragment(text)
        bad = local_only_keys(frag)
    except LayerError as exc:
        raise RolloutError(str(exc)) from None
    if bad:
        raise RolloutError(f"the fragment sets local-only keys ({', '.join(bad)}); devices refuse those, "
                           "only each PC's own labedge.toml can set them")
    if not frag:
        raise RolloutError("the fragment sets nothing")
    return frag


def members(statuses: dict[str, dict[str, Any]], group: str) -> list[str]:
    return sorted(d for d, doc in statuses.items() if group in (config_section(doc).get("groups") or []))


def waves(devices: list[str], canary: int) -> list[list[str]]:
    """Canaries, then waves that double in size: a bad config reaches few before it is stopped."""
    if canary <= 0 or canary >= len(devices):
        return [devices] if devices else []
    out, rest, size = [devices[:canary]], devices[canary:], canary * 2
    while rest:
        out.append(rest[:size])
        rest, size = rest[size:], size * 2
    return out


def reported_version(statuses: dict[str, dict[str, Any]], devices: list[str]) -> int:
    """The highest version the devices said they desired, applied or tried: a push must go above it."""
    seen = [0]
    for d in devices:
        c = config_section(statuses.get(d) or {})
        for k in ("desired_version", "applied_version", "event_version"):
            try:
                seen.append(int(c.get(k) or 0))
            except (TypeError, ValueError):
                pass
    return max(seen)


def next_version(history: History, statuses: dict[str, dict[str, Any]], devices: list[str]) -> int:
    """What the next push would get now (a preview: reserve_push allocates it under the push lock)."""
    return max(history.max_version(), reported_version(statuses, devices)) + 1


def diff_lines(history: History, statuses: dict[str, dict[str, Any]], devices: list[str], text: str) -> list[str]:
    """Per device, what the push would change in its remote layer (the facility knows that layer)."""
    new = flatten(check_fragment(text))
    out = []
    for d in devices:
        applied = int(config_section(statuses.get(d) or {}).get("applied_version") or 0)
        old_text = history.fragment_of(applied) if applied else ""
        old = flatten(parse_fragment(old_text)) if old_text else {}
        changes = [f"  + {k} = {v!r}" for k, v in sorted(new.items()) if k not in old]
        changes += [f"  ~ {k}: {old[k]!r} -> {v!r}" for k, v in sorted(new.items()) if k in old and old[k] != v]
        changes += [f"  - {k} (back to the PC's own value)" for k in sorted(old) if k not in new]
        where = f"remote version {applied}" if applied else "no remote layer"
        if applied and old_text is None:
            where += " (not in this history: shown as if empty)"
        out.append(f"{d} ({where}):" + ("" if changes else " no change"))
        out += changes
    return out


def run_rollout(session: AdminSession, history: History, signer: Signer, *, text: str, devices: list[str],
                group: str | None, canary: int, max_failures: int, wait: float,
                version: int | None = None, valid_for: timedelta = timedelta(days=7),
                say: Callable[[str], None] = print) -> RolloutResult:
    check_fragment(text)
    if not devices:
        raise RolloutError(f"no device to push to{f' (no device reports group {group!r})' if group else ''}")
    statuses = session.statuses()
    targets = {"groups": [group]} if group else {"devices": sorted(devices)}

    def sign(v: int) -> bytes:  # inside the push lock: the version is ours once this returns
        bundle = signer.bundle("config", {"toml": text}, version=v, targets=targets, valid_for=valid_for)
        _self_check(bundle, session.cfg.trust_root)
        return bundle

    push_id, version, bundle = history.reserve_push(signer=signer.name, key_id=signer.key_id, targets=targets,
                                                    fragment=text, sign=sign, version=version,
                                                    floor=reported_version(statuses, devices))
    res = RolloutResult(version, push_id)
    prefix = session.cfg.topic_prefix
    # online devices make the better canaries: they answer within --wait
    order = sorted(devices, key=lambda d: (not (statuses.get(d) or {}).get("online", False), d))
    plan = waves(order, canary)
    say(f"push {push_id}: version {version} signed by {signer.name!r} for {len(devices)} device(s) in "
        f"{len(plan)} wave(s)" + (f" (canary {canary})" if canary else ""))
    for i, wave in enumerate(plan):
        if history.abort_requested(push_id):
            return _finish(res, history, "aborted", "aborted by an administrator", plan[i:], say)
        for d in wave:
            session.publish(topics.device_config_topic(prefix, d), bundle)
            history.result(push_id, d, version, "sent")
        say(f"wave {i + 1}: sent to {', '.join(wave)}; waiting up to {wait:.0f} s")
        session.wait_until(lambda st: all(outcome_for(st.get(d), version) for d in wave)
                           or len(res.failures) + _wave_failures(st, wave, version) >= max_failures > 0,
                           wait, abort=lambda: history.abort_requested(push_id))
        now = session.statuses()
        aborted = history.abort_requested(push_id)
        for d in wave:
            got = outcome_for(now.get(d), version)
            state, reason = got if got else ("no_answer", f"no report within {wait:.0f} s (offline devices take "
                                                          "the retained document when they return)")
            res.results[d] = (state, reason)
            history.result(push_id, d, version, state, reason)
            say(f"  {d}: {state}" + (f": {reason}" if reason else ""))
        if aborted:
            return _finish(res, history, "aborted", "aborted by an administrator", plan[i + 1:], say)
        if max_failures > 0 and len(res.failures) >= max_failures:
            return _finish(res, history, "stopped", f"{len(res.failures)} device(s) refused or rolled back "
                                                    f"(--max-failures {max_failures})", plan[i + 1:], say)
        if i == 0 and canary and any(res.results[d][0] != "applied" for d in wave):
            return _finish(res, history, "stopped", "the canaries did not all report applied", plan[1:], say)
    if group:
        session.publish(topics.group_config_topic(prefix, group), bundle)
    missing = [d for d, (s, _) in res.results.items() if s != "applied"]
    return _finish(res, history, "incomplete" if missing else "done",
                   f"{len(missing)} device(s) without a report" if missing else "", [], say)


def _self_check(bundle: bytes, trust_root: Any) -> None:
    """Verify our own bundle as a device pinned to fleet.toml's trust_root would, before anything is sent:
    a revoked or unlisted signing key, or an expired key list, is caught here, not on every device."""
    if trust_root is None:
        return
    from wire import signed
    try:
        pinned = signed.load_public_pem(trust_root.read_bytes(), what=f"trust_root {trust_root}")
        signed.open_bundle(bundle, signed.TrustStore(pinned), time.time(), kind="config")
    except OSError as exc:
        raise RolloutError(f"trust_root {trust_root}: {exc.strerror or exc}") from None
    except signed.SignedError as exc:
        raise RolloutError(f"devices would refuse this push: {exc.reason}") from None


def _wave_failures(statuses: dict[str, dict[str, Any]], wave: list[str], version: int) -> int:
    return sum(1 for d in wave if (outcome_for(statuses.get(d), version) or ("",))[0] in ("refused", "rolled_back"))


def _finish(res: RolloutResult, history: History, state: str, note: str, left: list[list[str]],
            say: Callable[[str], None]) -> RolloutResult:
    res.state = state
    res.never_sent = [d for w in left for d in w]
    history.finish_push(res.push_id, state, note)
    tail = f"; never sent to: {', '.join(res.never_sent)}" if res.never_sent else ""
    say(f"push {res.push_id}: {state}" + (f" ({note})" if note else "") + tail)
    return res
