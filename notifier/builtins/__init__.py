"""Built-in channels, shipped as ordinary plugins registered by the plugin host.

``console`` and ``jsonl`` need no network (the Quick start uses them); ``webhook`` posts
JSON anywhere through the shared HTTP layer.
"""
