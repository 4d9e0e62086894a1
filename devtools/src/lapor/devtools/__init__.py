"""lapor.devtools: the local system and the test harness, for development only."""
