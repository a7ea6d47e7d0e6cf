"""The shared runner: models, feature cache, weak teacher, the method API and its process."""
