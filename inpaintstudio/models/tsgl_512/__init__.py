"""The tsgl_512 model: its torch-free card (``card``) and its network (``network``)."""
