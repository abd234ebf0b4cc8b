"""WeCom (WeChat Work, 企业微信) channels for notifier.

Three ways in, three channel kinds: ``wework`` (direct, with an access token),
``wework-gateway`` (through the enterprise API gateway) and ``wework-robot`` (a group
robot's webhook). :mod:`notifier_wework.testing` holds a faithful fake WeCom server for
testing configurations; its pytest fixtures live in :mod:`notifier_wework.pytest_plugin`.
"""

__version__ = "0.1.0"
