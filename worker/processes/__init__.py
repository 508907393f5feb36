"""The processes you deploy: the worker, the API app, the codec server."""
