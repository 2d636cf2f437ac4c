"""A flow served over A2A and a second flow calling it through RemoteNode."""
