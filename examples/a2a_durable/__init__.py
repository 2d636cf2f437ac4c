"""An A2A server on a durable flow: its tasks survive a restart."""
