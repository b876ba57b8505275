"""The command groups of ``platewatch``; ``service.py`` composes them into one command."""
