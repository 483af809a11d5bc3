"""The HTTP server over the chain: `scripts/serve.py` starts it.

`server.app.create_app(service, server_settings)` is the ASGI app; `server.service.RagService` holds the one
open index; `server.discovery` is how CLIs find a running server. Importing this package loads nothing.
"""
