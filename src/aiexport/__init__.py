"""aiexport."""
