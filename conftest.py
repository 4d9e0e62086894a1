# Real NATS JetStream and PostgreSQL fixtures for every test folder of the workspace.
pytest_plugins = ["lapor.devtools.testing"]
