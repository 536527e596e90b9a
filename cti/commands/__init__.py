"""Click subcommands, one module each; cti/cli.py lists them."""
