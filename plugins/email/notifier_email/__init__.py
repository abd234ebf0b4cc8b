"""An email channel for notifier: the ``email`` kind sends alerts over SMTP.

Each alert is a multipart/alternative message (plain text and HTML from notifier's
shared templates, :mod:`notifier_email.message`) sent over a small pool of reused
connections (:mod:`notifier_email.pool`). :mod:`notifier_email.testing` holds
:class:`~notifier_email.testing.FakeSMTP`, a real SMTP server for testing configurations.
"""

__version__ = "0.1.0"
