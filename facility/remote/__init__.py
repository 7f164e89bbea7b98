"""Signed remote configuration, the facility side: keys commands, push, staged rollout, history.

The device side is `agent/remote/`; the envelope both sides share is `wire/signed.py`.
"""
