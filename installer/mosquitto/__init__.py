"""Facility broker configuration (mosquitto.conf, labedge.acl) and the loopback renderer."""
