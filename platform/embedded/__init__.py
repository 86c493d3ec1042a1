"""The embedded platform: every component wired into one process (``fn up``).

This package only wires: it reads the configuration once, builds the store, builder,
runtime, controller, gateway and API, starts them in a fixed order and stops them in the
reverse order. Decisions live in the components.
"""
