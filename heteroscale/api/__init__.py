"""The PDServingGroup API: spec and status models, vocabularies, CRD generation, error reporting."""
