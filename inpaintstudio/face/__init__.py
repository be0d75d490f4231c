"""Faces: 68-point landmarks (``landmarks``) and the clinician's cleft-lip preview (``clinic``)."""
