"""The HTTP API (``medchat api``): OpenAI-compatible chat over the consultation engine, nurse
triage and knowledge-base search, behind API keys with roles. docs/API.md describes it.

``chatbot.api.app.create_api(settings)`` wires it; ``chatbot.api.server.serve`` runs it under
uvicorn. Nothing is imported here, so ``medchat api key ...`` and ``medchat --help`` do not load
FastAPI."""
