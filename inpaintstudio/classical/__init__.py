"""The engines that need no weights: OpenCV's Telea and Navier–Stokes, PatchMatch (``engines``), the
multi-scale exemplar fill that keeps full-resolution texture (``multiscale``), and their cards (``card``)."""
