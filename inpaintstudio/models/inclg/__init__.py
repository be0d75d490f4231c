"""The inclg model: its torch-free card (``card``) and its network (``network``)."""
