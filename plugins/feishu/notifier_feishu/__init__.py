"""Feishu / Lark (飞书) custom bots for notifier.

One channel kind, ``feishu-bot``: a custom bot (自定义机器人) in a group chat, addressed by
its webhook URL and, when "签名校验" (signature verification) is on, its signing secret.
:mod:`notifier_feishu.testing` holds a fake Feishu server that verifies signatures and
enforces the bot's limits, for testing configurations.
"""

__version__ = "0.1.0"
