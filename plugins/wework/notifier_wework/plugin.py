"""The WeCom channel kinds and their hooks (registered through the ``notifier`` entry point).

Each operation hook answers only for channels this plugin built and returns ``None`` for
any other, so the host asks the next plugin. The robot kind cannot create or manage
groups: its hooks return ``None`` and the host raises ``UnsupportedOperation``.
"""

from __future__ import annotations

from notifier.channelhooks import ChannelHooks
from notifier_wework.channels import DirectChannel, GatewayChannel, WeComChannel
from notifier_wework.kinds import KINDS

hooks = ChannelHooks(kinds=KINDS, sends=(WeComChannel,), groups=(DirectChannel, GatewayChannel))
notifier_channel_kinds = hooks.notifier_channel_kinds
notifier_send = hooks.notifier_send
notifier_create_group = hooks.notifier_create_group
notifier_get_group = hooks.notifier_get_group
notifier_update_group = hooks.notifier_update_group
