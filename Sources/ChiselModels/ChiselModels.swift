// The model engine: see docs/architecture.md.
