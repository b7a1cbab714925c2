"""Background workers the host runs beside the doors (the janitor; later outbound and webhooks)."""
