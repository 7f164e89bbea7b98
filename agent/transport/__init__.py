"""The device's side of the upload: the uploader, reading a bag for transfer, and enrollment.

What the device and the facility agree on (topics, messages, TLS, the MQTT link) is in `wire/`; the
facility's receiver and CA are in `facility/`.
"""
