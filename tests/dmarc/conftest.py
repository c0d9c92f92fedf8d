"""The recording "remote" SMTP server of tests/clients/test_submission.py."""

from tests.clients.test_submission import remote, remote_tls

__all__ = ["remote", "remote_tls"]
