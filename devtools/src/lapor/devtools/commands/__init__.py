"""The development subcommands of ``lapor``, one module each (``lapor.commands`` entry points)."""
