"""What the book adds on top of the model: the path catalog and the seed's claims, the
atlas of chapter 1, figures, and the named scenarios the chapters run.

No Kubernetes counterpart.
"""
