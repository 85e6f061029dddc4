"""The workshop of regcred-operator: what builds, tests, demonstrates and releases it.

Never shipped: the operator's wheel and image hold `regcred` only. Subpackages:
`controlplane` (a local kube-apiserver and etcd built from source), `kind` (kind
clusters of a node image built here, a test registry, the operator's image),
`release` (the release pipeline and its pinned tools), `demo` (``make demo``), and
`cli` (``regcred-dev``). The workshop may import the product; never the reverse.
"""
