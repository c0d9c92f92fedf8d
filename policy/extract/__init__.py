"""Text and attachment extraction for the policy checks.

``analyse(message, limits)`` (``policy.extract.walk``) turns one RFC 5322
message into an ``Analysis``: every piece of text with where it was found,
every leaf attachment (inside archives and attached messages too) and the
findings of the structural checks (executables, macros, encrypted archives,
limits exceeded). It is pure and synchronous, so the pipeline runs it in a
worker process; the result is picklable.
"""
