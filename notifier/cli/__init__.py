"""The ``notifier`` command line. Each subcommand is a module with ``register()``."""
