"""The ``fn`` command line: argument parsing, the API client, output formatting.

What belongs here: one small module per sub-command under ``commands/``, the HTTP client
(stdlib ``http.client`` only), the CLI context (which platform, which token) and output
(tables, JSON, YAML). The CLI must start fast: nothing on its import path imports
aiohttp, starlette, uvicorn or yaml at module level; commands import the heavier parts of
fnmesh (the model, the builder, the embedded platform) inside the function that needs them.
"""
