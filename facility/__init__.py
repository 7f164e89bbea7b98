"""The facility side: what runs at the facility, not on the instrument PC.

The reference receiver (`labedge receive`), its store and config, and the CA (`labedge pki ...`).
It talks to devices only through the broker, in the messages of `wire.protocol`, and imports from
`agent` nothing but the package format's verification (`agent.package`).
"""
