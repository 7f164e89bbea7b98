"""Installing labedge as a machine-wide service (systemd on Linux, WinSW on Windows)."""
