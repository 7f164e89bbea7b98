"""The device's side of fleet operations: the shared MQTT channel and the status publisher."""
