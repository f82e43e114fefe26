"""The web for agents and administrators, served by the daemon (Starlette on uvicorn)."""
