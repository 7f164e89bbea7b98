"""The device's part in fleet operations: status, remote commands, certificate renewal."""
