"""The sem_net model: its torch-free card (``card``) and its network (``network``)."""
