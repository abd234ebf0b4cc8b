"""DingTalk (钉钉) group robots for notifier.

One channel kind, ``dingtalk-robot``: a custom robot in a group chat, addressed by its
``access_token`` and, when the robot has "加签" (signing) turned on, its signing secret.
:mod:`notifier_dingtalk.testing` holds a fake DingTalk server that checks tokens and
signatures and enforces the robot's limits, for testing configurations.
"""

__version__ = "0.1.0"
