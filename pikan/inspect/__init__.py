"""Looking at a model: input importance, structure tests, constraint checks and plots (the only matplotlib importer)."""
