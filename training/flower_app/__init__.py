"""The BCFL Flower app (ServerApp, ClientApp, task code). See pyproject.toml in this folder."""
