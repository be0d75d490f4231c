"""The tsgl model: its torch-free card (``card``) and its network (``network``)."""
