"""A2A server and client for PenguiFlow (aiohttp)."""
