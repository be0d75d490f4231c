"""The mobile_sam model (object selection, not inpainting): its torch-free card (``card``) and its network
(``network``)."""
