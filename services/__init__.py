"""Department services: the kit (SDK), the Approval Bureau, and the departments."""
