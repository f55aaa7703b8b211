"""One module per `physavatar` command (see physavatar.cli.COMMANDS)."""
