"""The MQTT v5 PUBACK reason codes labedge acts on (OASIS MQTT 5.0, section 3.4.2.1), one place
for both sides: paho hands them over as plain integers."""
from __future__ import annotations

#: Accepted, but nobody is subscribed (the receiver, the renewal service or the device is offline).
NO_MATCHING_SUBSCRIBERS = 0x10
#: The broker's ACL refuses the topic for this certificate's CN.
NOT_AUTHORIZED = 0x87
#: The broker holds too much for this client already (max_queued_messages and the like).
QUOTA_EXCEEDED = 0x97
#: Larger than the broker's max_packet_size.
PACKET_TOO_LARGE = 0x95
