"""The commented starter config written by `labedge init`."""
from __future__ import annotations

STARTER = '''\
# labedge configuration. Every key is checked against config/schema/config.v1.schema.json;
# an unknown or misspelt key is an error that names it. Paths may be relative to this file.
config_version = 1

# Must equal the CN of this PC's device certificate (see `labedge enroll`).
device_id = "{device_id}"

# Where packages wait for upload, the state database and the logs. Defaults are the
# platform's per-user folders; uncomment to choose your own.
# spool_dir = "{spool_dir}"
# state_dir = "{state_dir}"
# log_dir = "{log_dir}"

# Intake stops (nothing is dropped) when waiting packages reach this size, or when the
# spool's disk has less than min_free_bytes free. It resumes by itself.
spool_max_bytes = 53687091200   # 50 GiB
min_free_bytes = 1073741824     # 1 GiB
rescan_seconds = 60             # full rescan of watched folders (events get lost on SMB/Windows)

# Remove this whole section to run offline: packages are built and kept in the queue.
# [upload]
# broker = "mqtts://broker.example.org:8883"
# ca_file = "ca.pem"
# cert_file = "{device_id}.pem"
# key_file = "{device_id}.key"

[web]
port = 8765                     # the local page, on 127.0.0.1 only

[[instruments]]
id = "{instrument_id}"
translator = "auto"             # or a name from `labedge translators`
template = "general"            # sample-sheet template (config/templates)
watch = ["{watch}"]
include = ["*"]                 # e.g. ["*.ras", "*.rasx"]
exclude = []                    # temp files (*.tmp, ~$*, *.part, ...) are always ignored
settle_seconds = 5              # a file is taken once size and mtime stay unchanged this long
group = "file"                  # "file", "stem" (image + .txt sidecar) or "folder"
# group_quiet_seconds = 10      # stem/folder: a group is complete after this quiet period
# marker = "*.done"             # folder: ...or as soon as a file matching this appears
polling = "auto"                # "auto" polls network shares, "always", or "never"
# A measurement with no sample sheet waits as "needs a sheet" (see the local page) for hold_seconds;
# then unpaired_policy "send" sends it with a minimal invoice marked unpaired, "hold" keeps waiting.
unpaired_policy = "send"
hold_seconds = 600
'''
