"""The device's side of fleet operations: the shared MQTT channel, the status publisher, remote
commands and certificate renewal."""
