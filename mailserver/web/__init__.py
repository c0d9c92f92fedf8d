"""The web portal: self-service password change, the public agency directory
and the operator dashboard, served by aiohttp from the mail server's process.

Importing this package loads nothing heavy; ``mailserver.web.server`` holds the
aiohttp code and is imported by ``App.start`` only.
"""
