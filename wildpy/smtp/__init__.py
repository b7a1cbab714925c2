"""The doors that receive mail for local users: SMTP for the MX role and LMTP (aiosmtpd, run on
the host's event loop; never aiosmtpd's threaded Controller, whose own loop would not share the
database client)."""
