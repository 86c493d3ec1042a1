"""The inbound side of the replica proxy: one module and one class per layer.

``tls`` accepts connections and terminates mTLS (refusing plaintext and foreign
certificates at the handshake), ``reserved`` answers the platform's own paths, ``authz``
applies the authorization policy, ``timeout`` bounds a request's time in the proxy,
``concurrency`` holds the revision's limit and bounded queue, ``forward`` sends to the
function runtime, and ``drain`` shuts the inbound side down in fixed steps. Every layer
is a ``Handler`` wrapping the next; ``fnmesh.platform.mesh.proxy.stack`` puts them in order.
"""
