"""The Kubernetes shell around the pure policy: the only package that imports kopf, kubernetes or aiohttp.

Pure helpers (names, manifests, observations, conditions, drain choice, conflict detection) live in
small modules here and take time as an argument; :mod:`reconcile` sequences one tick and
:mod:`handlers` binds it to kopf.
"""
