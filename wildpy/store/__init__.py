"""The message store: adding, reading, changing, removing, searching and expiring mail.

`wildpy.services.messages.MessageService` is its facade for every door; the modules here do the
work, one purpose each (add, read, change, remove, retention, search, threads ...).
"""
