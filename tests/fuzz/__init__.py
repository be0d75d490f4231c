"""A generated corpus of malformed inputs and user slips for every command (see ``corpus.py``)."""
