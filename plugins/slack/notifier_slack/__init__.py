"""A Slack channel for notifier: the ``slack`` kind posts to an incoming webhook.

Messages carry fallback text plus Block Kit blocks rendered from notifier's shared
templates (:mod:`notifier_slack.blocks`). :mod:`notifier_slack.testing` holds a fake
Slack server for testing configurations.
"""

__version__ = "0.1.0"
