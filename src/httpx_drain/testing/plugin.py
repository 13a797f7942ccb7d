"""pytest plugin: fixtures that start replay servers (filled in by the testing package)."""
