"""A2A push notifications: task updates POSTed to a local webhook."""
