"""The gateway: the only component that reads ingress topics and writes shared and deliver topics."""
