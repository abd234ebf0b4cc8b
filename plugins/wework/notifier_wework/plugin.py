"""The WeCom channel kinds and their hooks (registered through the ``notifier`` entry point).

Not implemented yet: the channels are built on the core HTTP layer (``notifier.http``).
"""
