"""Pure decisions: no kopf, no Kubernetes client, no I/O."""
