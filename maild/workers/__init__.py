"""Processing in worker processes of their own, beside the daemon's accept path."""
