"""ManageSieve (RFC 5804): remote management of users' Sieve scripts.

``parser`` (bytes -> lines of tokens, literals included), ``commands`` (lines
-> typed commands), ``responses`` (response objects -> wire bytes),
``session`` (the state machine, no I/O) and ``server`` (the asyncio driver).
"""
