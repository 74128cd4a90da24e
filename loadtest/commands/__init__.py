"""The ``loadtest`` sub-commands, one module each."""
