"""The subcommands of `maild`."""
