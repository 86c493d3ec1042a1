"""The embedded proxy: layers, identity, inbound/outbound stacks."""
