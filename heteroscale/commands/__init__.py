"""One module per `heteroscale` subcommand; each exposes ``register(subparsers)``."""
