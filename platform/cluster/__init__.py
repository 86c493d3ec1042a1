"""The platform's components on Kubernetes: one entry point per component, wiring only.

The Helm chart (``charts/fnmesh``) runs each as ``python -m fnmesh.platform.cluster.<name>``:

- ``api``: the REST API on the Kubernetes store, the identity endpoint (TokenReview) and
  the artifact service the replicas' init containers fetch from; no controller (the
  operator is the controller on a cluster). ``local`` runs the same API on this machine
  against the kubeconfig's cluster (``fn up --backend kubernetes``);
- ``gateway``: the ingress, routing to each revision's Service;
- ``activator``: holds requests for revisions without ready replicas (the gateway asks it
  for admission over mTLS) and tells the autoscaler about the demand;
- ``autoscaler``: the stats listener the replica proxies report to, and the autoscaler
  driver scaling Deployments.

What they share: ``settings`` (the environment the chart sets, validated once),
``stores`` (the store as components see it on a cluster), ``endpoints`` (a revision's
Service as its endpoint), ``identity`` (the certificate authority and who may have which
identity), ``certificates`` (a component's own certificate), ``admission`` and
``demand`` (the activator's two wires), ``follow`` (which revisions the autoscaler
scales), ``artifacts`` and ``pod_logs``. Running a component as a process (settings read
once, logging, the loop, SIGTERM, stop steps) is the entry-point shell's
(``fnmesh.platform.shell``), the same as ``fn up``'s. Decisions stay pure functions of
their inputs; these modules do the I/O.
"""
