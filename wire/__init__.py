"""What the device and the facility agree on, imported by both sides and by nothing else's internals.

- `protocol`: topics, message encodings and limits of the upload protocol (docs/protocol.md);
- `tls`: the one TLS client context both sides use, and TLS failures in plain words;
- `link`: the MQTT v5 connection (persistent session, reconnect with backoff);
- `identity`: the rule for device and receiver names, and how private keys are written;
- `words`: sizes in words, as both sides show them to people.
- `signed`, `trust`: Ed25519 envelopes for configs and commands, and the root/administrator trust;
- `config_layer`: which config keys the facility may push, and how a fragment merges.
"""
