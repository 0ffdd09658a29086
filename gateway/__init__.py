"""Sesame's download gateway (FastAPI). Start it with
``uvicorn --factory gateway.app:create_app``."""
